"""Optional second-stage reranking of fused candidates with a cross-encoder.

Names (``Settings.reranker``):

* ``""`` or ``none`` (default) -- no reranking.
* ``st-cross:<model name or path>`` -- a sentence-transformers ``CrossEncoder``
  (needs the ``st`` extra). Local directories work offline; hub names download
  once when a network exists, then load from the Hugging Face cache.
* a bare path to an existing directory -- the same, for a local checkpoint.

No multilingual cross-encoder ships its weights in a registry package, so
reranking is off by default. Heavy libraries are imported inside the class.
Names are registered in :data:`RERANKERS`; :func:`register_reranker` adds one.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from advisor.embedders import model_label, quiet_model_load
from advisor.errors import ModelError, first_line
from advisor.registry import Registry
from advisor.settings import Settings

__all__ = ["RERANKERS", "CrossEncoderReranker", "Reranker", "make_reranker", "register_reranker", "unregister_reranker"]

_HOW = "set ADVISOR_RERANKER or pass --rerank (st-cross:<model name or path>, a local directory, or none)"


@runtime_checkable
class Reranker(Protocol):
    """Scores (question, passage) pairs; higher is more relevant."""

    name: str

    def score(self, question: str, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or Path(model).expanduser().exists()


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder``, by hub name or local directory."""

    def __init__(self, model: str, device: str = "cpu") -> None:
        local = Path(model).expanduser()
        if _looks_like_path(model):
            if not local.is_dir():
                raise ModelError(f"reranker model not found at {model}; {_HOW}")
            config = local / "config.json"
            if config.is_file():
                try:
                    archs = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
                except (OSError, ValueError, AttributeError):
                    raise ModelError(f"cannot read {config}; {_HOW}") from None
                if not any("ForSequenceClassification" in str(a) for a in archs):
                    raise ModelError(f"{model} is not a cross-encoder (no classification head); {_HOW}")
        if importlib.util.find_spec("sentence_transformers") is None:
            raise ModelError('reranking needs sentence-transformers: pip install "torch==2.13.0" ".[st]"')
        from sentence_transformers import CrossEncoder

        try:
            with quiet_model_load():  # no "Loading weights" bar or library chatter on stderr
                self._model = CrossEncoder(str(local) if local.is_dir() else model, device=device)
        except Exception as exc:  # hub errors (offline and not cached), corrupt files
            first = first_line(exc)
            raise ModelError(
                f"cannot load reranker model {model!r} ({first}); connect to the network once to download it, or {_HOW}"
            ) from None
        labels = int(getattr(self._model, "num_labels", 1) or 1)
        if labels != 1:
            raise ModelError(f"{model} gives {labels} scores per pair, not one; it is not a reranker; {_HOW}")
        self.name = model_label("st-cross", model)

    def score(self, question: str, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        scores = self._model.predict([(question, t) for t in texts], show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float32).reshape(len(texts))


RERANKERS: Registry[Reranker] = Registry("reranker", _HOW)


def register_reranker(name: str, factory: Callable[..., Reranker], *, replace: bool = False) -> Callable[..., Reranker]:
    """Make ``factory`` the reranker called ``name`` (``Settings.reranker``, ``--rerank``); returns ``factory``.

    The factory is called with no arguments, or for a family name ending in
    ``:`` (like ``st-cross:``) with the text after the colon. Taking a name
    that is registered raises :class:`ConfigError` unless ``replace``.
    """
    return RERANKERS.register(name, factory, replace=replace)


def unregister_reranker(name: str) -> None:
    """Forget the reranker called ``name`` (as :func:`register_reranker` registered it)."""
    RERANKERS.unregister(name)


def make_reranker(settings: Settings) -> Reranker | None:
    """The reranker ``settings.reranker`` names (registered, or a local model directory), or None when off."""
    name = settings.reranker.strip()
    if name.lower() in ("", "none"):
        return None
    if name in RERANKERS:
        return RERANKERS.create(name)
    if Path(name).expanduser().is_dir():
        return CrossEncoderReranker(name)
    raise ModelError(f"reranker model not found at {name}; {_HOW}")


RERANKERS.register("st-cross:", CrossEncoderReranker)
