"""The advisor's exceptions.

Every error a user can cause is an :class:`AdvisorError`. Its message is one
line that says what went wrong *and how to fix it*; its ``exit_code`` is what
the CLI exits with. Anything else escaping the CLI is a bug.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AdvisorError",
    "ConfigError",
    "DocumentError",
    "EmbedderMismatchError",
    "GenerationError",
    "InputError",
    "ModelError",
    "ScenarioError",
    "StoreError",
    "StoreLockedError",
]


def first_line(exc: BaseException) -> str:  # a helper, not exported: this module exports the errors
    """The first line of a library's exception message (its type's name when it has none), for one-line errors."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class AdvisorError(Exception):
    """Base class: a problem the user can fix. ``str(err)`` is a one-line message.

    A subclass with its own exit code names it in its header: ``class InputError(AdvisorError, exit_code=2)``.
    """

    exit_code = 1

    def __init_subclass__(cls, exit_code: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code

    def __init__(self, message: str) -> None:
        # One line, always: a message is printed as ``error: <message>``.
        super().__init__(" ".join(message.split()))


class InputError(AdvisorError, exit_code=2):
    """Bad question or bad command-line value (empty question, k < 1, ...)."""


class DocumentError(AdvisorError, exit_code=3):
    """A path to ingest does not exist, is unreadable or is not a document."""


class ModelError(AdvisorError, exit_code=4):
    """The language model or embedder is missing, unreadable or not what it claims."""


class StoreError(AdvisorError, exit_code=5):
    """The vector store cannot be opened or used."""


class EmbedderMismatchError(StoreError):
    """The store was built with another embedder (or dimension)."""


class StoreLockedError(StoreError):
    """Another process is writing the store."""


class ConfigError(AdvisorError, exit_code=6):
    """Invalid settings (environment, TOML file or arguments)."""


class ScenarioError(AdvisorError, exit_code=7):
    """A scenario file is malformed; the message names the line and field."""


class GenerationError(AdvisorError, exit_code=8):
    """The generator failed (timeout, unreachable endpoint, context overflow)."""
