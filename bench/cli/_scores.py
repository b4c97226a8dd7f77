"""``bench scores export`` and ``bench scores import``: score packs (see ``bench.scoring``'s packs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, command, console

scores_app = typer.Typer(help="Score packs: export a cache's scores, import a pack into a cache.", no_args_is_help=True)
app.add_typer(scores_app, name="scores")

CacheUrlOption = Annotated[
    str | None, typer.Option("--cache", help="Score cache database URL (default: the searches' default cache).")
]


def _cache(url: str | None):
    from ..scoring import ScoreCache
    from ..search import DEFAULT_CACHE

    return ScoreCache(url or DEFAULT_CACHE)


@command(scores_app, name="export")
def export_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="The pack's folder (created).")],
    cache: CacheUrlOption = None,
    space: Annotated[str | None, typer.Option(help="Only this space's scores.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset's scores.")] = None,
    proxy: Annotated[str | None, typer.Option(help="Only these proxies (comma-separated, wildcards).")] = None,
    name: Annotated[str | None, typer.Option(help="The pack's name (default: the folder's).")] = None,
) -> None:
    """Write the finished scores of a cache as a portable, versioned pack (scores.csv.gz and pack.json)."""
    from proxies import parse_proxy_list

    from ..analysis._provenance import command_line, git_commit, package_versions
    from ..files import check_writable_dir
    from ..scoring import export_pack

    check_writable_dir(out, "pack folder")
    summary = export_pack(
        _cache(cache), out, space=space, dataset=dataset, proxies=parse_proxy_list(proxy) if proxy else None,
        name=name, command=command_line(), versions=package_versions(), commit=git_commit(),
    )  # fmt: skip
    size = sum(p.stat().st_size for p in out.iterdir())
    console.print(
        f"wrote {summary.rows:,} scores of {len(summary.proxies)} proxies in {summary.configs} configs to {out} "
        f"({size / 1e6:.1f} MB)",
        highlight=False,
    )


@command(scores_app, name="import")
def import_command(
    pack: Annotated[Path, typer.Argument(help="A pack's folder, as bench scores export wrote it.")],
    cache: CacheUrlOption = None,
    exclude: Annotated[
        str | None, typer.Option(help="Proxies to leave out (comma-separated), e.g. those of another version.")
    ] = None,
) -> None:
    """Load a pack into a score cache: runs, sweeps and reports over its settings then compute nothing."""
    from ..scoring import import_pack

    skipped = [p.strip() for p in (exclude or "").split(",") if p.strip()]
    score_cache = _cache(cache)
    summary = import_pack(pack, score_cache, exclude=skipped)
    left_out = f"; left out {sum(summary.excluded.values()):,} of {', '.join(summary.excluded)}" if skipped else ""
    console.print(
        f"imported {summary.imported:,} scores into {score_cache.url} ({summary.already_present:,} were there "
        f"already){left_out}",
        highlight=False,
    )


@command(scores_app, name="info")
def info_command(pack: Annotated[Path, typer.Argument(help="A pack's folder.")]) -> None:
    """What a pack holds: proxies and versions, configs, rows, provenance; checked against its digest."""
    import json

    from ..scoring import read_pack

    manifest, frame = read_pack(pack)
    console.print(f"pack {manifest['name']} (format {manifest['format']}): {len(frame):,} scores", highlight=False)
    for proxy, version in manifest["proxies"].items():
        console.print(f"  {proxy} v{version}: {manifest['rows_per_proxy'][proxy]:,}", highlight=False)
    for key, fields in manifest["configs"].items():
        console.print(f"  config {key}: {json.dumps(fields, sort_keys=True)}", highlight=False, soft_wrap=True)
    console.print(
        f"  provenance: {json.dumps(manifest['provenance'], sort_keys=True)}", highlight=False, soft_wrap=True
    )
