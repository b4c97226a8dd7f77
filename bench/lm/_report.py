"""Tables of fine-tuned models: mean ± std over seeds per GLUE metric, the GLUE average, and the flags."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ..analysis import Column, Provenance, Table
from ._glue import TASKS

_NAMES = {"sst2": "SST-2", "cola": "CoLA", "mrpc": "MRPC", "rte": "RTE"}


def average_label(tasks: Sequence[str]) -> str:
    """``GLUE avg`` over the four tasks; otherwise the tasks it averages (``SST-2 acc`` alone is no average)."""
    if set(tasks) == set(TASKS):
        return "GLUE avg"
    if len(tasks) == 1:
        task = tasks[0]
        return f"{_NAMES[task]} {TASKS[task].metrics[0]}"
    return f"avg ({', '.join(_NAMES[t] for t in tasks)})"


def metric_columns(tasks: Sequence[str]) -> list[Column]:
    columns = [
        Column(f"{t}_{m}", f"{_NAMES[t]} {m}", digits=1, spread=f"{t}_{m}_std", best="max")
        for t in tasks
        for m in TASKS[t].metrics
    ]
    if len(tasks) > 1:
        columns.append(Column("glue_avg", average_label(tasks), digits=1, spread="glue_avg_std", best="max"))
    return columns


def protocol_table(
    rows: Sequence[Mapping[str, object]],
    tasks: Sequence[str],
    *,
    name: str,
    caption: str,
    label: str,
    config: Mapping[str, object],
    leading: Sequence[Column] = (),
) -> Table:
    """A :class:`Table` of :func:`~bench.lm._protocol.summary_row` rows (plus ``model``, ``arch``,
    ``params_m``, ``gflops``), with the flags column last."""
    columns = [
        *leading,
        Column("model", "model", kind="text"),
        Column("arch", "arch", kind="text"),
        Column("params_m", "params (M)", digits=2),
        Column("gflops", "GFLOPs (128 tokens)", digits=2),
        *metric_columns(tasks),
        Column("flags", "one class predicted (task seeds)", kind="text"),
    ]
    return Table(
        name=name,
        frame=pd.DataFrame(list(rows)),
        columns=columns,
        caption=caption,
        label=label,
        provenance=Provenance.capture(dict(config)),
    )


def model_row(label: str, net, protocol, root) -> dict[str, object]:
    """One table row of a model: its arch, parameters (M), GFLOPs and the protocol's
    :func:`~bench.lm._protocol.summary_row`."""
    from spaces.autodistil import network_cost, to_arch_str

    from ._protocol import run_protocol, summary_row

    cost = network_cost(net.arch, 2)
    row: dict[str, object] = {"model": label, "arch": to_arch_str(net.arch), "params_m": cost.params / 1e6,
                              "gflops": cost.flops / 1e9}  # fmt: skip
    row.update(summary_row(run_protocol(net, protocol, root=root)))
    return row


def majority_model_row(protocol, root) -> dict[str, object]:
    from ._protocol import majority_outcomes, summary_row

    return {"model": "majority class", "arch": "-", **summary_row(majority_outcomes(protocol, root=root))}
