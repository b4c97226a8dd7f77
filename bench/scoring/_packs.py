"""Score packs: scores computed once, shipped as a file, loaded into any score cache.

Scores are deterministic (same config, same device type, same proxy version), and scoring is the whole
cost of a search run; a pack carries them to machines that would otherwise compute them again. A pack is
a folder with two files:

- ``scores.csv.gz``: one row per score, with every setting that determines it in plain columns (space,
  dataset, images, batch size, seed, teacher and its weights' hash, initialisation, device type,
  precision), the proxy and its version, the architecture (index and string), the score, its status,
  its seconds, and the cache key of its config; rows sorted, the gzip stream without a timestamp, so the
  same scores make the same bytes;
- ``pack.json``: the format, the pack's name, its provenance (the command, package versions, the
  commit, the hosts that computed the scores), each config's fields by key, each proxy's version, the
  row counts and the SHA-256 of ``scores.csv.gz``.

Importing checks the file against its digest, recomputes every config's key from its fields with this
version of the suite (so a pack of another key format is refused), and refuses a proxy whose version
differs from the registered one, by name: its scores would not be this suite's. Scores already in the
cache are kept.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ._cache import ScoreCache
from ._records import ScoreRecord, config_key, known_version

PACK_FORMAT = 1
SCORES_FILE = "scores.csv.gz"
MANIFEST_FILE = "pack.json"
#: Settings columns, from each config's fields (absent fields are empty).
SETTINGS = ("space", "dataset", "images", "batch_size", "seed", "teacher", "teacher_weights", "init", "device",
            "precision")  # fmt: skip
COLUMNS = (*SETTINGS, "proxy", "version", "index", "arch", "score", "status", "error", "seconds", "config")
#: Text columns that are empty in most rows.
SPARSE_TEXT = ("images", "teacher", "teacher_weights", "error")


class PackError(ValueError):
    """A pack that cannot be imported as it is; the message says why and what to do."""


@dataclass(frozen=True)
class PackSummary:
    """What a pack holds: rows per proxy, configs, and where it is."""

    path: Path
    rows: int
    proxies: dict[str, int]
    configs: int
    imported: int = 0
    already_present: int = 0
    excluded: dict[str, int] = field(default_factory=dict)


def _rows(cache: ScoreCache, configs: dict[str, dict], proxies: set[str] | None) -> pd.DataFrame:
    records = [r for key in configs for r in cache.records(key) if proxies is None or r.proxy in proxies]
    rows = []
    for r in records:
        fields = configs[r.config]
        row = {name: fields.get(name) for name in SETTINGS}
        row.update(proxy=r.proxy, version=known_version(r.proxy), index=r.index, arch=r.arch, score=r.score,
                   status=r.status, error=r.error, seconds=r.seconds, config=r.config)  # fmt: skip
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.sort_values(["space", "dataset", "config", "proxy", "index", "arch"], kind="stable", ignore_index=True)


def _gzip_csv(frame: pd.DataFrame) -> bytes:
    text = frame.to_csv(index=False, lineterminator="\n")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as fh:  # no timestamp: same bytes
        fh.write(text.encode())
    return buffer.getvalue()


def export_pack(
    cache: ScoreCache,
    out: Path,
    *,
    space: str | None = None,
    dataset: str | None = None,
    proxies: Sequence[str] | None = None,
    name: str | None = None,
    command: str = "",
    versions: dict[str, str] | None = None,
    commit: str = "",
) -> PackSummary:
    """Write the cache's finished scores (optionally of one space, dataset and some proxies) as a pack in ``out``."""
    configs = {
        key: fields
        for key, fields in sorted(cache.configs().items())
        if (space is None or fields.get("space") == space) and (dataset is None or fields.get("dataset") == dataset)
    }
    frame = _rows(cache, configs, set(proxies) if proxies else None)
    if frame.empty:
        raise PackError(f"the cache {cache.url} holds no finished scores of the chosen settings: nothing to export")
    frame = frame.astype({"index": "Int64"})
    configs = {k: v for k, v in configs.items() if k in set(frame["config"])}
    data = _gzip_csv(frame)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": PACK_FORMAT,
        "name": name or out.name,
        "provenance": {
            "command": command,
            "versions": versions or {},
            "commit": commit,
            "computed_by": sorted(cache.owner_hosts([*configs])),
            "exported": datetime.now(UTC).isoformat(timespec="seconds"),
            "exported_on": f"{platform.node()} ({platform.machine()}, {platform.system()})",
        },
        "proxies": {p: known_version(p) for p in sorted(set(frame["proxy"]))},
        "configs": configs,
        "rows": len(frame),
        "rows_per_proxy": {p: int(n) for p, n in frame["proxy"].value_counts().sort_index().items()},
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    _write_atomically(out / SCORES_FILE, data)
    _write_atomically(out / MANIFEST_FILE, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return PackSummary(out, len(frame), manifest["rows_per_proxy"], len(configs))


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def read_pack(path: Path) -> tuple[dict, pd.DataFrame]:
    """A pack's manifest and rows, checked against the manifest's digest and format."""
    manifest_path, scores_path = path / MANIFEST_FILE, path / SCORES_FILE
    for needed in (manifest_path, scores_path):
        if not needed.is_file():
            raise PackError(f"{path} is not a score pack: {needed.name} is missing (a pack holds {MANIFEST_FILE} and "
                            f"{SCORES_FILE})")  # fmt: skip
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise PackError(f"{manifest_path} is not valid JSON ({err.msg} at line {err.lineno})") from None
    if manifest.get("format") != PACK_FORMAT:
        raise PackError(f"pack {path} has format {manifest.get('format')!r}; this suite reads format {PACK_FORMAT}")
    data = scores_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.get("sha256"):
        raise PackError(f"{scores_path} does not match the digest in {MANIFEST_FILE}: the file is damaged or edited")
    text = dict.fromkeys(SPARSE_TEXT, "str")  # mostly empty: read as text, never guessed chunk by chunk
    frame = pd.read_csv(io.BytesIO(gzip.decompress(data)), keep_default_na=False, na_values=[""], dtype=text)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise PackError(f"{scores_path} lacks the columns {', '.join(missing)}")
    return manifest, frame


def check_pack(manifest: dict, exclude: Iterable[str] = ()) -> None:
    """Refuse a pack whose configs or proxies are not this suite's (see the module docstring)."""
    from proxies import PROXIES

    for key, fields in manifest["configs"].items():
        if config_key(fields) != key:
            raise PackError(
                f"the pack's config {key} has another key under this version of the suite (its fields: "
                f"{json.dumps(fields, sort_keys=True)}): it was made by a version with other score keys"
            )
    skipped = set(exclude)
    unknown = [p for p in manifest["proxies"] if p not in PROXIES and p not in skipped]
    if unknown:
        raise PackError(f"the pack holds proxies this suite does not know: {', '.join(unknown)}; "
                        f"import the rest with --exclude {','.join(unknown)}")  # fmt: skip
    stale = {
        p: v for p, v in manifest["proxies"].items() if p not in skipped and p in PROXIES and v != known_version(p)
    }
    if stale:
        shown = ", ".join(f"{p} (pack version {v}, this suite's {known_version(p)})" for p, v in sorted(stale.items()))
        raise PackError(f"the pack's scores of {shown} were made by another version of the proxy and would differ; "
                        f"import the rest with --exclude {','.join(sorted(stale))}")  # fmt: skip


def _record(row) -> ScoreRecord:
    return ScoreRecord(
        arch=row.arch,
        proxy=row.proxy,
        score=None if pd.isna(row.score) else float(row.score),
        seconds=float(row.seconds),
        status=row.status,
        error="" if pd.isna(row.error) else str(row.error),
        config=row.config,
        index=None if pd.isna(row.index) else int(row.index),
    )


def import_pack(path: Path, cache: ScoreCache, *, exclude: Iterable[str] = ()) -> PackSummary:
    """Load a pack's scores into ``cache``; scores the cache already holds are kept."""
    manifest, frame = read_pack(path)
    excluded = set(exclude)
    check_pack(manifest, excluded)
    dropped = frame[frame["proxy"].isin(excluded)]
    frame = frame[~frame["proxy"].isin(excluded)]
    for key, fields in manifest["configs"].items():
        cache.register_config(key, fields)
    records = [_record(row) for row in frame.itertuples(index=False)]
    added = cache.add_many(records, owner=f"pack:{manifest.get('name', path.name)}")
    return PackSummary(
        path,
        rows=len(frame) + len(dropped),
        proxies=manifest["rows_per_proxy"],
        configs=len(manifest["configs"]),
        imported=added,
        already_present=len(records) - added,
        excluded={p: int(n) for p, n in dropped["proxy"].value_counts().sort_index().items()},
    )
