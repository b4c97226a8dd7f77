"""``bench spaces``, ``bench proxies``, ``bench arch`` and ``bench data check``: what the suite knows, at a
glance. Nothing here needs torch: these commands answer in a fraction of a second."""

from __future__ import annotations

import contextlib
import fnmatch
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from spaces import SPACES, get_space

from ..data import DATASETS, resolve_data_root, verify_dataset
from ._app import DataRootOption, app, command, console

if TYPE_CHECKING:
    from ..ground_truth import GroundTruth

data_app = typer.Typer(help="Inspect the datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@command(name="spaces")
def spaces_command(pattern: Annotated[str, typer.Argument(help="Wildcard filter.")] = "*") -> None:
    """List the registered search spaces."""
    table = Table("space", "architectures", "datasets")
    for name in SPACES.names(pattern):
        try:
            space = get_space(name)
        except ImportError as err:  # an optional part that is not installed: say what it takes
            table.add_row(name, "-", f"[yellow]{escape(str(err))}[/]")
            continue
        try:
            size = str(len(space))
        except TypeError:
            size = "infinite"
        table.add_row(name, size, ", ".join(space.num_classes))
    console.print(table)


@command(name="proxies")
def proxies_command(pattern: Annotated[str, typer.Argument(help="Wildcard filter, e.g. 'diswot*'.")] = "*") -> None:
    """List the registered proxies: what each needs and what it measures."""
    from ._catalog import proxy_entries

    entries = proxy_entries()
    chosen = [e for e in entries if fnmatch.fnmatchcase(e["name"], pattern)]
    if not chosen:
        raise ValueError(f"no proxy matches {pattern!r}. Valid choices: {', '.join(e['name'] for e in entries)}")
    table = Table("proxy", "needs", "inputs", "description")
    for entry in chosen:
        table.add_row(entry["name"], ", ".join(entry["needs"]) or "-", ", ".join(entry["inputs"]), entry["description"])
    console.print(table)


def _default_ground_truths(space: str, data_root: Path | None) -> list[GroundTruth]:
    from ..ground_truth import DEFAULT_GROUND_TRUTHS, load_ground_truth

    sources: list[GroundTruth] = []
    # A source whose file is absent is left out (NAS-Bench-201's built-in one always answers).
    for spec in DEFAULT_GROUND_TRUTHS.get(space, ()):
        with contextlib.suppress(FileNotFoundError):
            sources.append(load_ground_truth(spec, space=space, data_root=data_root))
    return sources


@command(name="arch")
def arch_command(
    arch: Annotated[str, typer.Argument(help="An index or an arch string.")],
    space: Annotated[str, typer.Option(help="Search space.")] = "nb201",
    ground_truth: Annotated[
        list[str] | None,
        typer.Option("--ground-truth", "-g", help="Ground-truth spec(s); default: every built-in one found."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    data_root: DataRootOption = None,
) -> None:
    """Describe one architecture: index, arch string, isomorphism class, cost and ground truth."""
    from ..ground_truth import load_ground_truth

    sp = get_space(space)
    genotype = sp.parse(arch)
    info = sp.info(genotype)
    sources = (
        [load_ground_truth(g, space=space, data_root=data_root) for g in ground_truth]
        if ground_truth
        else _default_ground_truths(space, data_root)
    )
    accuracy: dict[str, dict[str, float]] = {}
    for source in sources:
        for dataset in source.datasets():
            try:
                metrics = source.query(info.arch, dataset)
            except KeyError:
                continue
            accuracy.setdefault(dataset, {}).update({k: v for k, v in metrics.items() if k.endswith("acc")})
    record = {
        "index": info.index,
        "arch": info.arch,
        "unique": info.unique,
        "connected": info.connected,
        "params": {ds: c.params for ds, c in info.cost.items()},
        "flops": {ds: c.flops for ds, c in info.cost.items()},
        "accuracy": accuracy,
    }
    if as_json:
        typer.echo(json.dumps(record))
        return
    console.print(f"[bold]{space}[/] index {info.index}: {info.arch}")
    console.print(f"isomorphism class: {info.unique}")
    console.print(f"connected: {'yes' if info.connected else 'no (the input never reaches the output)'}")
    table = Table("dataset", "params", "FLOPs", *sorted({m for d in accuracy.values() for m in d}))
    metric_names = table.columns[3:]
    for ds, cost in info.cost.items():
        metrics = accuracy.get(ds, {})
        table.add_row(
            ds,
            f"{cost.params:,}",
            f"{cost.flops / 1e6:,.2f} M",
            *(f"{metrics[str(c.header)]:.2f}" if str(c.header) in metrics else "-" for c in metric_names),
        )
    console.print(table)


@command(data_app, "check")
def data_check_command(
    data_root: DataRootOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show which datasets are found under the data root and usable: each is opened, its image counts per
    split checked and a few images decoded. Exits with 1 when a dataset is there but unusable."""
    root = resolve_data_root(data_root)
    checks = {name: verify_dataset(name, root) for name in DATASETS}
    csv_path = root / "nb201" / "nats_bench_test_acc.csv"
    damaged = [c for c in checks.values() if c.where is not None and not c.ok]
    if as_json:
        record = {name: str(c.where) if c.ok else None for name, c in checks.items()}
        record["nb201 test accuracies"] = str(csv_path) if csv_path.is_file() else None
        problems = {c.name: f"{c.where}: {c.detail}" for c in damaged}
        images = {name: c.images for name, c in checks.items() if c.ok}
        typer.echo(json.dumps({"data_root": str(root), "found": record, "images": images, "problems": problems}))
    else:
        console.print(f"data root: {root}{'' if root.is_dir() else '  [red](missing)[/]'}")
        table = Table("dataset", "usable")
        # Paths wrap instead of being cut short: the location is what a user copies.
        table.add_column("location", overflow="fold")
        for name, check in checks.items():
            if check.ok:
                usable = f"[green]yes[/] ({check.detail})"
            elif check.where is None:
                usable = "[red]no[/] (not found)"
            else:
                usable = f"[red]no[/] ({escape(check.detail)})"
            location = str(check.where) if check.where else DATASETS[name].how_to_get
            table.add_row(name, usable, location)
        found = csv_path.is_file()
        table.add_row("nb201 test accuracies", "[green]yes[/]" if found else "[red]no[/] (not found)", str(csv_path))
        console.print(table)
    if damaged:
        raise typer.Exit(1)
