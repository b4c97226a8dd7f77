"""OptunaHub samplers: ``hub:PACKAGE[@REF][:CLASS]`` loaded from the registry or from a local registry folder.

``hub:samplers/auto_sampler`` loads the package ``samplers/auto_sampler`` of OptunaHub's registry through
``optunahub.load_module`` (git or GitHub's API, then optunahub's cache); with a local registry folder
(``--hub-registry DIR``, e.g. a clone's ``package`` folder) through ``optunahub.load_local_module``, with no
network. ``@REF`` pins a branch, tag or commit of the online registry. ``:CLASS`` names the sampler class where
the package exports several. The class gets the study's per-trial seed where its constructor takes ``seed``,
the space's distributions where it takes ``search_space``, and the run's ``--sampler-option`` values.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from optuna.samplers import BaseSampler

HUB_PREFIX = "hub:"
ONLINE_REGISTRY = "github.com/optuna/optunahub-registry"
_PACKAGE = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)+$")
#: Constructor parameters the suite fills in itself.
_GIVEN = ("seed", "search_space", "constraints_func")


def is_hub(name: str) -> bool:
    return name.startswith(HUB_PREFIX)


@dataclass(frozen=True)
class HubName:
    """A parsed ``hub:PACKAGE[@REF][:CLASS]``."""

    package: str
    ref: str | None = None
    cls: str | None = None

    @classmethod
    def parse(cls, name: str) -> HubName:
        body = name.removeprefix(HUB_PREFIX)
        package, _, class_name = body.partition(":")
        package, _, ref = package.partition("@")
        if not _PACKAGE.match(package) or (class_name and not class_name.isidentifier()) or "@" in ref:
            raise ValueError(
                f"sampler {name!r} is not an OptunaHub name: use hub:PACKAGE[@REF][:CLASS], "
                "e.g. hub:samplers/auto_sampler or hub:samplers/auto_sampler:AutoSampler"
            )
        return cls(package, ref or None, class_name or None)

    def slug(self) -> str:
        """The name in study names and folders: no ``/`` or ``:``."""
        parts = ["hub", *self.package.split("/")]
        return "-".join(parts + ([self.ref] if self.ref else []) + ([self.cls] if self.cls else []))


def _optunahub() -> ModuleType:
    try:
        import optunahub
    except ImportError as err:
        raise ImportError("OptunaHub samplers need optunahub: pip install 'diswot-bench[hub]'") from err
    return optunahub


def local_packages(registry: Path, category: str = "samplers") -> list[str]:
    """The packages of one category in a local registry folder, e.g. ``samplers/my_sampler``."""
    return sorted(f"{category}/{p.parent.name}" for p in (registry / category).glob("*/__init__.py"))


@functools.cache
def load_module(package: str, ref: str | None, registry: str | None) -> ModuleType:
    """The package's module (loaded once per process); an error of one line where it cannot be had."""
    optunahub = _optunahub()
    if registry is not None:
        root = Path(registry).expanduser().resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"--hub-registry {registry}: no such folder")
        if ref is not None:
            raise ValueError(f"@{ref} pins the online registry; a local registry ({root}) is read as it is")
        if not (root / package / "__init__.py").is_file():
            category = package.split("/")[0]
            known = ", ".join(local_packages(root, category)) or "none"
            raise ValueError(f"no OptunaHub package {package!r} under {root} ({category} there: {known})")
        return optunahub.load_local_module(package, registry_root=str(root))
    try:
        return optunahub.load_module(package, ref=ref or "main")
    except ImportError:
        raise
    except Exception as err:  # git, GitHub's API or the network: their errors are many
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(
            f"cannot load {package!r} from the OptunaHub registry ({first}); without internet, pass "
            "--hub-registry DIR, a folder holding the package as DIR/" + package
        ) from None


def sampler_classes(module: ModuleType) -> dict[str, type[BaseSampler]]:
    """The sampler classes a package defines (not those it imports from elsewhere), by name."""
    return {
        name: obj
        for name, obj in vars(module).items()
        if isinstance(obj, type) and issubclass(obj, BaseSampler) and obj.__module__.startswith(module.__name__)
    }


def local_sampler_names(registry: Path) -> list[str]:
    """``hub:`` names of the samplers of a local registry: one per package, one per class where it has several."""
    names = []
    for package in local_packages(registry):
        classes = sorted(sampler_classes(load_module(package, None, str(registry))))
        names += [f"hub:{package}:{c}" for c in classes] if len(classes) > 1 else [f"hub:{package}"]
    return names


def sampler_class(module: ModuleType, hub: HubName) -> type[BaseSampler]:
    """The sampler class ``hub.cls`` of the package, or its only one."""
    found = sampler_classes(module)
    if hub.cls is not None:
        if hub.cls not in found:
            raise ValueError(
                f"OptunaHub package {hub.package!r} has no sampler class {hub.cls!r}. "
                f"Valid choices: {', '.join(sorted(found)) or 'none'}"
            )
        return found[hub.cls]
    if len(found) != 1:
        listed = ", ".join(sorted(found)) or "none"
        raise ValueError(
            f"OptunaHub package {hub.package!r} exports {len(found)} sampler classes ({listed}); "
            f"name one: hub:{hub.package}:CLASS"
        )
    return next(iter(found.values()))


@dataclass(frozen=True)
class HubSampler:
    """A loaded hub sampler class and what its constructor takes."""

    name: str
    hub: HubName
    registry: str | None
    cls: type[BaseSampler]
    module: ModuleType

    @classmethod
    def load(cls, name: str, registry: str | None = None) -> HubSampler:
        hub = HubName.parse(name)
        module = load_module(hub.package, hub.ref, registry)
        return cls(name, hub, registry, sampler_class(module, hub), module)

    @property
    def parameters(self) -> Mapping[str, inspect.Parameter]:
        return inspect.signature(self.cls.__init__).parameters

    def takes(self, parameter: str) -> bool:
        return parameter in self.parameters

    def options(self) -> tuple[str, ...] | None:
        """The options ``--sampler-option`` may set; None where the constructor takes any keyword."""
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in self.parameters.values()):
            return None
        keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return tuple(n for n, p in self.parameters.items() if n != "self" and n not in _GIVEN and p.kind in keyword)

    def build(self, seed: int, search_space: Mapping[str, Any], options: Mapping[str, Any], constraints_func=None):
        """A sampler with ``options``, the seed and the space where the constructor takes them."""
        kwargs = dict(options)
        if self.takes("seed"):
            kwargs["seed"] = seed
        if self.takes("search_space"):
            kwargs.setdefault("search_space", dict(search_space))
        if constraints_func is not None and self.takes("constraints_func"):
            kwargs["constraints_func"] = constraints_func
        return self.cls(**kwargs)

    def description(self) -> str:
        doc = inspect.getdoc(self.cls) or ""
        first = doc.split("\n\n")[0].replace("\n", " ").strip()
        return f"OptunaHub package {self.hub.package} ({self.cls.__name__})" + (f": {first}" if first else "")

    def provenance(self) -> dict[str, Any]:
        """What the manifest records: the package, where it came from and the SHA-256 of its files."""
        folder = Path(self.module.__file__ or ".").parent
        source = (
            {"registry": str(Path(self.registry).expanduser().resolve())}
            if self.registry is not None
            else {"registry": ONLINE_REGISTRY, "ref": self.hub.ref or "main"}
        )
        return {
            "sampler": self.name,
            "package": self.hub.package,
            "class": self.cls.__name__,
            **source,
            "folder": str(folder),
            "sha256": folder_digest(folder),
            "optunahub": _optunahub().__version__,
            "seeded": self.takes("seed"),
        }


def folder_digest(folder: Path) -> str:
    """SHA-256 over a folder's files (relative paths and contents; compiled files left out)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def parse_sampler_options(items: list[str] | None) -> dict[str, Any]:
    """``["n_startup_trials=5", "name=x"]`` -> ``{"n_startup_trials": 5, "name": "x"}``: each value as JSON
    where it parses as JSON, else as a string."""
    options: dict[str, Any] = {}
    for item in items or ():
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise ValueError(f"--sampler-option {item!r} is not KEY=VALUE (e.g. n_startup_trials=5)")
        if key in _GIVEN:
            raise ValueError(f"--sampler-option {key} is set by the suite (seed: --seed; search_space and "
                             "constraints_func: the space and --max-params/--max-flops)")  # fmt: skip
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return options
