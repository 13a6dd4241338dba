"""advisor: a local, offline career advisor that answers with the passages it rests on.

>>> from advisor import Advisor        # doctest: +SKIP
>>> Advisor().ask("My contact knows the hiring manager, when should I ask?")  # doctest: +SKIP

Importing this package is cheap: heavy libraries (chromadb, llama_cpp, torch,
sentence_transformers) load only when a component that needs them is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Advisor",
    "AdvisorError",
    "Answer",
    "EvalReport",
    "IngestReport",
    "Passage",
    "Settings",
    "__version__",
]

if TYPE_CHECKING:
    from advisor.api import Advisor
    from advisor.errors import AdvisorError
    from advisor.evaluation import EvalReport
    from advisor.settings import Settings
    from advisor.types import Answer, IngestReport, Passage

_LAZY = {
    "Advisor": "advisor.api",
    "AdvisorError": "advisor.errors",
    "EvalReport": "advisor.evaluation",
    "Settings": "advisor.settings",
    "Answer": "advisor.types",
    "IngestReport": "advisor.types",
    "Passage": "advisor.types",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'advisor' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
