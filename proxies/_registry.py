"""The proxy registry: ``@register_proxy("name")`` on a :class:`Proxy` subclass, variants with bound arguments."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from spaces import Registry

from ._base import Proxy

PROXIES: Registry[Proxy] = Registry("proxy")


def register_proxy(name: str, **bound: Any) -> Callable[[type[Proxy]], type[Proxy]]:
    """Register a proxy class under ``name``; keyword arguments are bound to its constructor.

    Registering one class several times with different arguments makes variants, e.g.
    ``register_proxy("diswot_semantic", relation_weight=0.0)``. Stack decorators for several names.
    """

    def add(cls: type[Proxy]) -> type[Proxy]:
        def factory() -> Proxy:
            proxy = cls(**bound)
            proxy.name = name  # the registered name, also for variants sharing one class
            return proxy

        functools.update_wrapper(factory, cls, updated=())
        factory.proxy_class = cls  # type: ignore[attr-defined]
        PROXIES.register(name, factory)
        return cls

    return add


def get_proxy(name: str) -> Proxy:
    """A fresh instance of the proxy registered as ``name``."""
    return PROXIES.create(name)


def proxy_version(name: str) -> int:
    """The version of the proxy registered as ``name`` (its class's ``version``), without building it."""
    return int(PROXIES.factory(name).proxy_class.version)


def list_proxies(pattern: str = "*") -> list[str]:
    return PROXIES.names(pattern)


def parse_proxy_list(text: str | list[str], input_kind: str | None = None) -> list[str]:
    """Comma-separated names (wildcards allowed, e.g. ``diswot*``) to registered names, in order, unique.

    With ``input_kind`` (a space's: ``image`` or ``tokens``), a wildcard matches only the proxies that score
    networks of such inputs; a name given in full is kept, for the scorer to refuse by name."""
    items = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    names: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        wildcard = any(c in item for c in "*?[")
        matched = PROXIES.names(item) if wildcard else [PROXIES.check(item)]
        if input_kind is not None and wildcard:
            matched = [n for n in matched if input_kind in PROXIES.factory(n).proxy_class.input_kinds]
        if not matched:
            raise ValueError(f"proxy pattern {item!r} matches nothing. Valid choices: {', '.join(PROXIES.names())}")
        names.extend(n for n in matched if n not in names)
    if not names:
        raise ValueError(f"no proxy given. Valid choices: {', '.join(PROXIES.names())}")
    return names
