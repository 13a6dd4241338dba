"""Named factories for the swappable parts: embedders, generators, rerankers.

Each kind has one :class:`Registry`. A built-in part registers its factory in
its own module; a program that embeds advisor registers its own the same way,
and settings (or ``Advisor(embedder="name")``) then pick it by name::

    from advisor.embedders import register_embedder

    register_embedder("my-embedder", lambda threads=None: MyEmbedder())

A name ending in ``:`` is a family: ``st:`` stands for every ``st:<model>``,
and its factory gets the text after the colon as its first argument.

Registering only stores a callable: nothing heavy (a model library) is imported
until the factory is called.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from advisor.errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Factories of one kind of part, by name, in the order they were registered.

    ``kind`` names the part in messages (``unknown embedder 'x'; choose one of
    ...``); ``hint`` says where a user sets the name.
    """

    def __init__(self, kind: str, hint: str) -> None:
        self.kind = kind
        self.hint = hint
        self._factories: dict[str, Callable[..., T]] = {}
        self._shown: dict[str, str] = {}  # how a family is listed: "st:" as "st:<model>"
        self._lock = threading.Lock()

    def register(
        self, name: str, factory: Callable[..., T], *, replace: bool = False, placeholder: str = "<model>"
    ) -> Callable[..., T]:
        """Make ``factory`` the part called ``name`` (a family if ``name`` ends with ``:``); returns ``factory``.

        A name that is taken raises :class:`ConfigError` unless ``replace`` is true.
        """
        if not isinstance(name, str) or not name.strip() or name != name.strip() or name == ":":
            raise ConfigError(f"{self.kind} names must be text without surrounding spaces, not {name!r}")
        if not callable(factory):
            raise ConfigError(f"{self.kind} {name!r} needs a factory (a callable), not {type(factory).__name__}")
        with self._lock:
            if name in self._factories and not replace:
                raise ConfigError(
                    f"{self.kind} {name!r} is already registered; unregister it first or pass replace=True"
                )
            self._factories[name] = factory
            self._shown[name] = f"{name}{placeholder}" if name.endswith(":") else name
        return factory

    def unregister(self, name: str) -> None:
        """Forget the part called ``name`` (nothing happens if there is none)."""
        with self._lock:
            self._factories.pop(name, None)
            self._shown.pop(name, None)

    def names(self) -> list[str]:
        """The registered names as a user types them, families as ``prefix:<model>``."""
        with self._lock:
            return list(self._shown.values())

    def __contains__(self, name: object) -> bool:
        try:
            self.find(str(name))
        except ConfigError:
            return False
        return True

    def find(self, name: str) -> tuple[Callable[..., T], tuple[Any, ...]]:
        """The factory for ``name`` and the arguments it takes before the options (a family member's rest).

        An exact name wins over a family; an unknown name raises a one-line
        :class:`ConfigError` that lists the choices.
        """
        with self._lock:
            factory = self._factories.get(name)
            if factory is not None and not name.endswith(":"):
                return factory, ()
            for prefix, candidate in self._factories.items():
                if prefix.endswith(":") and name.startswith(prefix) and len(name) > len(prefix):
                    return candidate, (name[len(prefix) :],)
            choices = ", ".join(self._shown.values()) or "none registered"
        raise ConfigError(f"unknown {self.kind} {name!r}; choose one of {choices} ({self.hint})")

    def create(self, name: str, **options: Any) -> T:
        """Call the factory for ``name`` with ``options`` (see :meth:`find`)."""
        factory, args = self.find(name)
        return factory(*args, **options)
