"""Training-free proxies: one registry, one module per family.

Adding a proxy is one module with a :class:`Proxy` subclass decorated by :func:`register_proxy`,
and one import line below.
"""

# Importing a family's module registers its proxies.
from . import (
    activation,  # noqa: F401
    cost,  # noqa: F401
    diswot,  # noqa: F401
    gradient,  # noqa: F401
    jacobian,  # noqa: F401
    kd,  # noqa: F401
    oracle,  # noqa: F401
    transformer,  # noqa: F401
    weights,  # noqa: F401
)
from ._base import Proxy, ProxyError, ProxyInputs, StudentBatch
from ._init import INITS, initialise
from ._registry import PROXIES, get_proxy, list_proxies, parse_proxy_list, proxy_version, register_proxy

__all__ = [
    "INITS",
    "PROXIES",
    "Proxy",
    "ProxyError",
    "ProxyInputs",
    "StudentBatch",
    "get_proxy",
    "initialise",
    "list_proxies",
    "parse_proxy_list",
    "proxy_version",
    "register_proxy",
]
