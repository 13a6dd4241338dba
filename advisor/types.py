"""Typed values that flow through the pipeline.

:class:`Passage` is the one unit that carries a citation from ingest to output:
``source_text[start:end] == text`` always holds for the document it names.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "Answer",
    "Chunk",
    "Document",
    "DocumentInfo",
    "IngestReport",
    "Mode",
    "Passage",
    "Sentence",
    "embedding_text",
    "finite",
]


@dataclass(frozen=True)
class Document:
    """A source document as read from disk (text already decoded)."""

    doc_id: str
    path: str
    title: str
    lang: str
    text: str
    sha256: str
    decode_note: str = ""
    text_path: str = ""  # a converted file (PDF, HTML, DOCX): where its extracted ``text`` is kept
    pages: tuple[int, ...] = ()  # a PDF: where each page starts in ``text``


def embedding_text(text: str, context: str = "") -> str:
    """What is embedded (and word-matched) for a chunk: its heading context, then its text."""
    return f"{context}\n{text}" if context else text


@dataclass(frozen=True)
class Chunk:
    """A piece of a document; ``document.text[start:end] == text``."""

    chunk_id: str
    doc_id: str
    index: int
    start: int
    end: int
    text: str
    context: str = ""  # heading / section path, prepended for embedding only
    part: str = ""  # in a Q&A thread: "question" (the post and its comments) or "answer"

    @property
    def embed_text(self) -> str:
        return embedding_text(self.text, self.context)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with where it came from and how well it matched."""

    source: str  # stable document id (corpus id or the path of a user document)
    title: str
    lang: str
    start: int
    end: int
    text: str
    score: float = 0.0
    path: str = ""
    chunk_id: str = ""
    chunk: int = 0
    signals: dict[str, float] = field(default_factory=dict)
    flagged: bool = False  # looks like instructions aimed at a model
    part: str = ""  # in a Q&A thread: "question" (the post and its comments) or "answer"
    text_path: str = ""  # a converted file: its extracted text, which start and end index (else: path)
    page: int = 0  # a PDF: the page (from 1) where the passage starts; else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage: ``source_text[start:end] == text`` (document offsets)."""

    text: str
    start: int
    end: int


Mode = Literal["llm", "extractive", "abstain"]


@dataclass(kw_only=True)
class Answer:
    """What :meth:`advisor.Advisor.ask` returns.

    ``citations[i]`` is the passage behind marker ``[i+1]``, ``quotes[i]`` the
    sentence of it the answer rests on (verbatim, document offsets) and
    ``translations[i]`` that sentence's checked machine translation into the
    question's language (None: same language, or no translation passed its checks).
    ``english[i]`` is the sentence's checked English machine translation, given only
    when the question is in another language than English and ``translations[i]``
    was refused (None otherwise): an answer never rests on it.
    """

    question: str
    text: str
    mode: Mode  # "llm": a model-written sentence that passed every check; "extractive": quotes; "abstain"
    citations: list[Passage]
    retrieved: list[Passage]
    lang: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage ("..._ms")
    notes: list[str] = field(default_factory=list)
    quotes: list[Sentence] = field(default_factory=list)
    translations: list[str | None] = field(default_factory=list)
    english: list[str | None] = field(default_factory=list)
    groundedness: float | None = None  # share of the shown sentences the verifier finds supported (None: abstained)
    prompt_tokens: int = 0  # the model's direct-answer request (0: no model was asked)
    completion_tokens: int = 0

    @property
    def abstained(self) -> bool:
        return self.mode == "abstain"

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.text,
            "mode": self.mode,
            "abstained": self.abstained,
            "lang": self.lang,
            "citations": [
                {
                    "marker": i + 1,
                    **p.to_dict(),
                    # the sentence of the passage that supports the answer, verbatim, with document offsets
                    "supporting_sentence": asdict(self.quotes[i]) if i < len(self.quotes) else None,
                    # its checked machine translation into the question's language, or None
                    "translation": self.translations[i] if i < len(self.translations) else None,
                    # when that was refused and the question is not in English: its checked English one
                    "english_translation": self.english[i] if i < len(self.english) else None,
                }
                for i, p in enumerate(self.citations)
            ],
            "retrieved": [{"source": p.source, "chunk_id": p.chunk_id, "score": p.score} for p in self.retrieved],
            "groundedness": self.groundedness,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "timings": self.timings,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class DocumentInfo:
    """A document as the store holds it (what ``advisor sources`` lists)."""

    source: str  # the id citations use
    path: str
    title: str
    lang: str
    chunks: int
    sha256: str
    complete: bool = True  # False: an interrupted ingest left part of it; the next ingest repairs it
    file: str = "same"  # the file now: "same" (as stored), "changed" or "missing"; "" when it was not checked

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestReport:
    """What :meth:`advisor.Advisor.ingest` did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finite(data: Any) -> Any:
    """``data`` with NaN and infinities as null, so its JSON is strict (``--json`` output, the web API)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data
