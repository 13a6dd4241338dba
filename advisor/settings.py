"""One ``Settings`` object for the whole advisor.

Priority, highest first: explicit arguments (``Settings(k=3)``, CLI flags) >
environment variables (``ADVISOR_K=3``) > the TOML file (``ADVISOR_CONFIG``, or
``advisor.toml`` in ``ADVISOR_HOME``) > built-in defaults.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from advisor.errors import ConfigError

__all__ = ["MAX_K", "Settings", "default_home", "describe_settings", "load_settings"]

MAX_K = 50  # the most passages an answer may be given


def default_home() -> Path:
    """Where the store lives unless ``ADVISOR_HOME`` says otherwise."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "advisor"


def _config_file(home: Any = None) -> Path | None:
    explicit = os.environ.get("ADVISOR_CONFIG")
    if explicit:
        return Path(explicit)
    home = Path(home or os.environ.get("ADVISOR_HOME") or default_home()).expanduser()
    candidate = home / "advisor.toml"
    return candidate if candidate.is_file() else None


class Settings(BaseSettings):
    """Every tunable of the advisor. See the README's *Settings* table."""

    # inf and nan are refused: ADVISOR_ABSTAIN_THRESHOLD=nan would silently turn abstention off
    model_config = SettingsConfigDict(env_prefix="ADVISOR_", extra="forbid", validate_default=True, allow_inf_nan=False)

    home: Path = Field(default_factory=default_home, description="data directory (store, caches)")
    corpus: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description=f"default paths for ingest; empty = bundled corpus (env: separated by {os.pathsep!r}, or JSON)",
    )
    collection: str = Field("advisor", description="Chroma collection name")
    chroma_url: str | None = Field(
        None, description="use a Chroma server (http://host:port) instead of the embedded store"
    )

    embedder: str = Field(
        "use-multilingual", description="use-multilingual | e5-small | use+e5 | minilm | st:<model name or path>"
    )
    embed_batch: int = Field(32, ge=1, description="texts per embedding call")
    chunk_tokens: int = Field(256, ge=16, description="maximum chunk size in embedder tokens")

    k: int = Field(5, ge=1, le=MAX_K, description="passages given to the answer")
    candidates: int = Field(50, ge=1, description="candidates per retriever before fusion")
    hybrid: bool = Field(
        False,
        description="fuse dense and lexical (BM25) retrieval (off: it lowered every metric on the shipped scenarios)",
    )
    rrf_k: int = Field(60, ge=1, description="reciprocal-rank-fusion constant")
    lexical_weight: float = Field(0.5, ge=0.0, description="weight of the lexical ranking in fusion (dense = 1)")
    word_weight: float = Field(
        0.75, ge=0.0, description="weight of cross-lingual word matching next to dense similarity (0 = off)"
    )
    word_threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="word-to-word similarity that counts as a match; empty = the embedder's calibrated default",
    )
    mmr_lambda: float = Field(0.9, ge=0.0, le=1.0, description="relevance vs. diversity when picking the top k")
    reranker: str = Field(
        "", description="rerank fused candidates with a cross-encoder: st-cross:<model name or path>; empty = off"
    )
    rerank_candidates: int = Field(20, ge=1, description="top fused candidates the reranker scores")
    abstain_threshold: float | None = Field(
        None,
        description="abstain when the best dense similarity is below this; empty = the embedder's calibrated default",
    )

    model: Path | None = Field(
        None, description="GGUF model path; empty = the default Qwen2.5-Coder-1.5B-Instruct (installed with advisor)"
    )
    llm_url: str | None = Field(
        None, description="OpenAI-compatible endpoint (http://host:port/v1) instead of a local GGUF"
    )
    llm_model_name: str = Field("local", description="model name sent to the OpenAI-compatible endpoint")
    n_ctx: int = Field(2048, ge=256, description="model context window (tokens)")
    n_threads: int | None = Field(
        None,
        ge=1,
        description="model CPU threads; empty = llama.cpp's default (half the cores generate, all prefill)",
    )
    gloss: bool = Field(
        True,
        description="with a model, add a checked one-sentence translation to quotes in another language",
    )
    translation_round_trip: bool = Field(
        False,
        description=(
            "also translate each translation back into the quote's language and refuse it when that no "
            "longer reads like the quote (stricter, about 2-3 s more per new quote)"
        ),
    )
    translation_context: bool = Field(
        False,
        description=(
            "also translate each quote with the two sentences before it shown as context and keep, of the "
            "translations that pass every check, the one the model's check scores higher (fewer wrong "
            "translations, about twice the translation time)"
        ),
    )
    english_fallback: bool = Field(
        True,
        description=(
            "when a quote's translation into the question's language fails its checks, show the quote's "
            "checked English translation instead, labelled as English (Spanish and German askers)"
        ),
    )
    prompt_cache: bool = Field(
        True,
        description=(
            "keep the local model's evaluated prompt starts (instructions and worked examples) in "
            "<home>/prompt-states, so a new `advisor ask` does not evaluate them again (about 20 MB)"
        ),
    )
    max_tokens: int = Field(
        96, ge=8, description="tokens the model may write for the direct answer (a translation gets its own budget)"
    )
    temperature: float = Field(0.0, ge=0.0, description="0 = deterministic")
    seed: int = Field(0, description="sampling seed")
    timeout: float = Field(120.0, gt=0, description="seconds before generation is cut off")

    @field_validator("corpus", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        # ADVISOR_CORPUS=~/notes:~/cv, like PATH; a JSON list ('["~/notes"]') works too
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"not a JSON list of paths ({exc.msg})") from None
            value = [part.strip() for part in text.split(os.pathsep) if part.strip()]
        if isinstance(value, list):
            return [Path(v).expanduser() if isinstance(v, str | Path) else v for v in value]
        return value

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            return Path(value).expanduser()
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file(getattr(init_settings, "init_kwargs", {}).get("home"))
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def store_dir(self) -> Path:
        return self.home / "chroma"


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`, turning validation problems into a one-line :class:`ConfigError`."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    path = _config_file(clean.get("home"))
    if path is not None and not path.is_file():
        raise ConfigError(f"config file not found at {path}; fix ADVISOR_CONFIG or create the file")
    try:
        return Settings(**clean)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first.get("loc", ())
        where = ".".join(str(part) for part in loc) or "settings"
        variable = f"ADVISOR_{str(loc[0]).upper()}" if loc else "the ADVISOR_ variables"  # corpus.1: ADVISOR_CORPUS
        raise ConfigError(
            f"invalid setting {where!r}: {first.get('msg', 'invalid value')} "
            f"(check {variable}, the config file or the command-line option)"
        ) from None
    except ValueError as exc:  # a TOML syntax error
        where = f"the config file {path}" if path is not None else "the ADVISOR_ environment variables"
        raise ConfigError(f"cannot read settings: {exc}; fix {where}") from None


def describe_settings(settings: Settings, **overrides: Any) -> list[dict[str, Any]]:
    """Every setting with its value, where that value came from and what it means.

    ``source`` is ``argument`` (``overrides``, e.g. a CLI flag), ``env``
    (``ADVISOR_<NAME>``), ``file`` (the TOML file) or ``default``, following
    the priority order of :class:`Settings`.
    """
    import tomllib

    path = _config_file(overrides.get("home"))
    in_file: set[str] = set()
    if path is not None and path.is_file():
        try:
            in_file = set(tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            in_file = set()  # load_settings has already reported an unreadable file
    env = {key.upper() for key in os.environ}
    rows: list[dict[str, Any]] = []
    for name, field in Settings.model_fields.items():
        if overrides.get(name) is not None:
            source = "argument"
        elif f"ADVISOR_{name.upper()}" in env:
            source = "env"
        elif name in in_file:
            source = f"file {path}"
        else:
            source = "default"
        value = getattr(settings, name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, list):
            value = [str(v) for v in value]
        rows.append({"name": name, "value": value, "source": source, "description": field.description or ""})
    return rows
