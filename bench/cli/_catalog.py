"""What ``bench proxies`` lists (name, needs, inputs, description), without importing the proxies and torch.

Reading the proxies' descriptions means importing their modules, and with them torch (seconds). The listing
is therefore kept in ``proxies.json`` beside this module together with a hash of the proxies' source files;
it is used only while that hash matches the installed sources, and built from the registry otherwise (always
correct, slower). After changing a proxy, ``python -m bench.cli._catalog`` writes it again; a test checks that
it is current.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import TypedDict

CATALOG = Path(__file__).with_name("proxies.json")


class ProxyEntry(TypedDict):
    name: str
    needs: list[str]
    inputs: list[str]
    description: str


def sources_hash() -> str:
    """A hash of every module of the ``proxies`` package, found without importing it."""
    spec = importlib.util.find_spec("proxies")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the proxies package is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def live_entries() -> list[ProxyEntry]:
    """The listing built from the registry (imports every proxy, and torch)."""
    from proxies import PROXIES, get_proxy

    entries: list[ProxyEntry] = []
    for name in PROXIES.names():
        proxy = get_proxy(name)
        needs = [what for what, flag in (("data", proxy.needs_data), ("labels", proxy.needs_labels)) if flag]
        if proxy.needs_teacher:
            needs.append("teacher")
        entries.append(
            {"name": name, "needs": needs, "inputs": list(proxy.input_kinds), "description": proxy.description}
        )
    return entries


def stored_entries() -> list[ProxyEntry] | None:
    """The stored listing, or None where it is missing or was made from other sources."""
    try:
        stored = json.loads(CATALOG.read_text())
    except (OSError, ValueError):
        return None
    return stored["proxies"] if stored.get("sources") == sources_hash() else None


def proxy_entries() -> list[ProxyEntry]:
    """Every registered proxy, sorted by name: from the stored listing where it is current."""
    stored = stored_entries()
    return stored if stored is not None else live_entries()


def write_catalog() -> Path:
    """Write the listing of the registry as it is now (one proxy a line, for readable diffs)."""
    lines = ",\n".join(f"  {json.dumps(entry)}" for entry in live_entries())
    CATALOG.write_text(f'{{"sources": "{sources_hash()}", "proxies": [\n{lines}\n]}}\n')
    return CATALOG


if __name__ == "__main__":
    print(f"wrote {write_catalog()}")
