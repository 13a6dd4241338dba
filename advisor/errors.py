"""The advisor's exceptions.

Every error a user can cause is an :class:`AdvisorError`. Its message is one
line that says what went wrong *and how to fix it*; its ``exit_code`` is what
the CLI exits with. Anything else escaping the CLI is a bug.
"""

from __future__ import annotations

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
    """Base class: a problem the user can fix. ``str(err)`` is a one-line message."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        # One line, always: a message is printed as ``error: <message>``.
        super().__init__(" ".join(message.split()))


class InputError(AdvisorError):
    """Bad question or bad command-line value (empty question, k < 1, ...)."""

    exit_code = 2


class DocumentError(AdvisorError):
    """A path to ingest does not exist, is unreadable or is not a document."""

    exit_code = 3


class ModelError(AdvisorError):
    """The language model or embedder is missing, unreadable or not what it claims."""

    exit_code = 4


class StoreError(AdvisorError):
    """The vector store cannot be opened or used."""

    exit_code = 5


class EmbedderMismatchError(StoreError):
    """The store was built with another embedder (or dimension)."""


class StoreLockedError(StoreError):
    """Another process is writing the store."""


class ConfigError(AdvisorError):
    """Invalid settings (environment, TOML file or arguments)."""

    exit_code = 6


class ScenarioError(AdvisorError):
    """A scenario file is malformed; the message names the line and field."""

    exit_code = 7


class GenerationError(AdvisorError):
    """The generator failed (timeout, unreachable endpoint, context overflow)."""

    exit_code = 8
