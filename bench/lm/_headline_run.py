"""Running the headline experiment of :mod:`._headline` end to end and writing its two tables."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..analysis import Column, Provenance, Table
from ._corpus import load_corpus
from ._headline import (
    K1_SPACE,
    K3_SPACES,
    HeadlineSettings,
    baselines,
    distil_baseline,
    picked_network,
    relation_loss_of,
    score_ids,
    select,
    train_superlms,
)
from ._report import average_label, majority_model_row, model_row, protocol_table
from ._teacher import teacher_network
from ._training import resolve_device

SELECTORS = {"K=3": K3_SPACES, "K=1": (K1_SPACE,)}


def run_headline(
    settings: HeadlineSettings,
    folder: Path,
    *,
    device: str = "auto",
    root: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, object]]:
    """Every row of the headline table (see :mod:`._headline`): the majority class, the teacher, then per
    budget the K=3 and K=1 picks and the baselines, with their held-out relation loss."""
    settings.check()
    dev = resolve_device(device)
    s = settings.superlm
    corpus = load_corpus(root, seq_len=s.seq_len, glue=s.glue_sentences)
    teacher = teacher_network().to(dev)
    log(f"SuperLMs: {s.steps} steps each for {', '.join(K3_SPACES)}, {s.steps * len(K3_SPACES)} for {K1_SPACE}; "
        f"corpus {' + '.join(corpus.sources)}")  # fmt: skip
    paths = train_superlms(settings, folder / "superlm", corpus, str(dev))
    ids = score_ids(corpus, settings)
    protocol = settings.protocol
    rows = [{**majority_model_row(protocol, root), "budget_m": float("nan"), "kind": "majority class"}]
    rows.append({**model_row("teacher", teacher, protocol, root), "budget_m": float("nan"), "kind": "teacher",
                 "loss": relation_loss_of(teacher, teacher, ids)})  # fmt: skip
    done: dict[tuple[str, str], dict[str, object]] = {}
    for budget in settings.budgets:
        for kind, spaces in SELECTORS.items():
            pick = select(spaces, paths, budget, ids, teacher)
            if pick is None:
                log(f"{budget / 1e6:g} M: no {kind} student fits")
                continue
            net = picked_network(pick, paths).to(dev)
            key = (pick.space, str(net.arch))
            if key not in done:
                done[key] = model_row(f"{kind} pick ({pick.space})", net, protocol, root)
            rows.append({**done[key], "budget_m": budget / 1e6, "kind": kind, "space": pick.space, "loss": pick.loss,
                         "candidates": pick.candidates, "tied": pick.tied})  # fmt: skip
            log(f"{budget / 1e6:g} M {kind}: {net.arch} from {pick.space} ({pick.candidates} within the budget, "
                f"{pick.tied} tied), GLUE {rows[-1]['glue_avg']:.1f} {rows[-1]['flags']}")  # fmt: skip
        for label, net in baselines(budget):
            key = (label, str(net.arch))
            if key not in done:
                net = distil_baseline(net, teacher, corpus, settings)
                done[key] = {**model_row(label, net, protocol, root), "loss": relation_loss_of(net, teacher, ids)}
            rows.append({**done[key], "budget_m": budget / 1e6, "kind": "baseline"})
            log(f"{budget / 1e6:g} M {label}: {rows[-1]['arch']}, GLUE {rows[-1]['glue_avg']:.1f} {rows[-1]['flags']}")
    return rows


def _config(settings: HeadlineSettings) -> dict[str, object]:
    return {"headline": asdict(settings)}


def headline_tables(rows: list[dict[str, object]], settings: HeadlineSettings, caption: str) -> list[Table]:
    """The headline table (every model) and the K=1 against K=3 table (the picks, with their losses)."""
    tasks = settings.protocol.tasks
    s = settings.superlm
    budget = (f"SuperLMs: {s.steps} steps of {s.batch_size} sequences of {s.seq_len} tokens for each K=3 "
              f"sub-space, {s.steps * len(K3_SPACES)} for the K=1 union; baselines distilled alone for "
              f"{s.steps} steps")  # fmt: skip
    headline = protocol_table(
        rows, tasks, name="autodistil_headline", label="tab:autodistil-headline",
        caption=(f"Students selected under parameter budgets by K=3 SuperLMs and by one K=1 SuperLM, against the "
                 f"teacher, baselines and the majority class. {budget}. {caption}."),
        config=_config(settings),
        leading=[Column("budget_m", "budget (M params)", digits=0)],
    )  # fmt: skip
    picks = [r for r in rows if r.get("kind") in SELECTORS]
    columns = [
        Column("budget_m", "budget (M params)", digits=0),
        Column("kind", "SuperLMs", kind="text"),
        Column("space", "picked from", kind="text"),
        Column("arch", "arch", kind="text"),
        Column("params_m", "params (M)", digits=2),
        Column("gflops", "GFLOPs (128 tokens)", digits=2),
        Column("candidates", "students within budget", kind="int"),
        Column("tied", "ties broken", kind="int"),
        Column("loss", "held-out relation loss", digits=3),
        Column("glue_avg", average_label(tasks), digits=1, spread="glue_avg_std"),
        Column("flags", "one class predicted (task seeds)", kind="text"),
    ]  # fmt: skip
    k_table = Table(
        name="autodistil_k1_vs_k3", frame=pd.DataFrame(picks), columns=columns,
        caption=(f"The K=1 ablation: students picked at equal budgets by three sub-space SuperLMs (K=3) and by one "
                 f"SuperLM over their union (K=1) with the same total steps. {budget}. Held-out relation loss with "
                 f"the inherited weights (lower is better). {caption}."),
        label="tab:autodistil-k1-vs-k3", provenance=Provenance.capture(_config(settings)),
    )  # fmt: skip
    return [headline, k_table]
