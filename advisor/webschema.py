"""Shapes of the HTTP API's requests and responses (validation and the OpenAPI schema).

Answers are sent as :meth:`Answer.to_dict` returns them (not re-validated), so a
field added there (such as a citation's ``translation``) reaches clients as is;
these models document them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from advisor.settings import MAX_K

__all__ = ["ERRORS", "AnswerOut", "AskRequest", "Citation", "ErrorOut", "RetrieveRequest", "Sentence", "SourceRequest"]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="the question, in English, Spanish or German", max_length=20_000)
    k: int | None = Field(None, ge=1, le=MAX_K, description="passages to retrieve (default: the k setting)")
    llm: bool | None = Field(None, description="false: extractive answer, no model (default: the server's)")
    history: list[str] = Field(default_factory=list, max_length=100, description="earlier questions, oldest first")
    timeout: float | None = Field(None, gt=0, le=3600, description="seconds before generation is cut off")


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=20_000)
    k: int | None = Field(None, ge=1, le=MAX_K)


class SourceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(description="a stored source id, as /api/documents lists it")


class Sentence(BaseModel):
    text: str
    start: int
    end: int


class Citation(BaseModel):
    model_config = ConfigDict(extra="allow")
    marker: int
    source: str
    title: str
    lang: str
    start: int = Field(description="document character offset where the passage starts")
    end: int
    text: str
    score: float | None
    path: str
    chunk_id: str
    chunk: int
    signals: dict[str, float | None]
    flagged: bool
    part: str
    supporting_sentence: Sentence | None
    translation: str | None = Field(None, description="a checked translation of the quote, when there is one")
    english_translation: str | None = Field(
        None, description="the quote's checked English translation, when one into the question's language was refused"
    )


class AnswerOut(BaseModel):
    """The JSON of ``advisor ask --json``."""

    model_config = ConfigDict(extra="allow")
    question: str
    answer: str
    mode: str = Field(description="llm, extractive or abstain")
    abstained: bool
    lang: str
    citations: list[Citation]
    retrieved: list[dict[str, Any]]
    groundedness: float | None = Field(None, description="share of the shown sentences the verifier finds supported")
    prompt_tokens: int = Field(0, description="the model's answer request, in tokens (0: no model was asked)")
    completion_tokens: int = 0
    timings: dict[str, float | None]
    notes: list[str]


class ErrorOut(BaseModel):
    error: str
    exit_code: int | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 404, 409, 413, 421, 500, 502, 503)
}
