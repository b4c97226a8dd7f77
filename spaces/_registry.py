"""A name-to-factory registry with a decorator, shared by spaces and proxies (after timm's)."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(ValueError):
    """A name that is not registered; the message lists the valid choices."""


class Registry(Generic[T]):
    """Maps names to factories. ``kind`` names what is registered, for error messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str, factory: Callable[..., T] | None = None):
        """Register ``factory`` under ``name``; usable as ``@registry.register("name")``.

        Raises ValueError when the name is taken, so two modules cannot silently shadow each other.
        """

        def add(fn: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = fn
            return fn

        return add(factory) if factory is not None else add

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style wildcard pattern, sorted."""
        return sorted(n for n in self._factories if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._factories)

    def check(self, name: str) -> str:
        """Return ``name`` if registered, else raise an error naming the valid choices."""
        if name not in self._factories:
            close = difflib.get_close_matches(name, self._factories, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}.{hint} Valid choices: {', '.join(self.names())}")
        return name

    def factory(self, name: str) -> Callable[..., T]:
        return self._factories[self.check(name)]

    def create(self, name: str, /, **kwargs) -> T:
        return self.factory(name)(**kwargs)
