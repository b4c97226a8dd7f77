"""The ``bench`` group: each command's module is imported only when that command runs or shows its help.

``bench --help`` lists every command from :data:`COMMANDS` (its module and the first paragraph of its
docstring) without importing any of them, so the listing costs no torch, pandas or scipy. A command's module
registers it on :data:`bench.cli._app.app` as usual; the tests check that this table and the registered
commands agree.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

#: Command (or command group) -> (its module in ``bench.cli``, the first paragraph of its docstring), in the
#: order ``bench --help`` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "spaces": ("_info", "List the registered search spaces."),
    "arch": ("_info", "Describe one architecture: index, arch string, isomorphism class, cost and ground truth."),
    "data": ("_info", "Inspect the datasets."),
    "proxies": ("_info", "List the registered proxies: what each needs and what it measures."),
    "samplers": ("_search", "List the registered samplers and what they support."),
    "score": (
        "_score",
        "Score architectures with proxies: one row per (architecture, proxy) with its time and status.",
    ),
    "correlate": (
        "_report",
        "Rank correlation of each proxy with ground truth: Kendall, Spearman, Pearson, top-K % precision and the\n"
        "true percentile of the proxy's best, each with a bootstrap confidence interval (see bench.analysis).",
    ),
    "run": ("_search", "Search a space with a proxy and a sampler: one Optuna study, resumed where it stopped."),
    "worker": (
        "_search",
        "Join a study through its shared storage and run its trials until the study's budget is spent.",
    ),
    "sweep": (
        "_search",
        "Run a comparison grid: one study per (sampler, proxy, seed) cell, and one combined trials table.",
    ),
    "scores": ("_scores", "Score packs: export a cache's scores, import a pack into a cache."),
    "paper": (
        "_paper",
        "The paper's tables and figures from committed data alone: the proxies' correlation views over score packs\n"
        "and the search comparison at each budget; nothing is scored, and the same inputs write the same bytes.",
    ),
    "dashboard": (
        "_dashboard",
        "Serve optuna-dashboard on a run's storage, with each trial's arch, index and ground truth as user attributes.",
    ),
    "report": (
        "_report",
        "Search-comparison tables (LaTeX, Markdown, CSV) and figures over the trials of runs or a sweep.",
    ),
    "train-teacher": (
        "_distill",
        "Train a teacher (RepDistiller's CIFAR recipe by default: 240 epochs, batch 64, lr 0.05) and write the\n"
        "file that bench distill --teacher and bench kd-bench --teacher read.",
    ),
    "train": (
        "_distill",
        "Train students vanilla (cross-entropy only), NAS-Bench-201's recipe by default; resumes from --out.",
    ),
    "distill": (
        "_distill",
        "Train students distilled from a trained teacher: KD, or KD plus DisWOT's, SP's or ICKD's feature term.",
    ),
    "kd-bench": (
        "_distill",
        "Train students vanilla and distilled, sharded over every worker that runs this same command (one per\n"
        "GPU), resumable; writes a ground-truth table for bench correlate -g kd:PATH.",
    ),
    "distill-report": (
        "_distill",
        "The distillation result table: the student each proxy picks under a budget, its params, FLOPs,\n"
        "vanilla and KD accuracy and gain, against the best benchmark-vanilla student and a random one.",
    ),
    "superlm": (
        "_lm",
        "AutoDistil: SuperLM training, the distilled-student ground truth and GLUE comparisons.",
    ),
}


def import_all() -> None:
    """Import every command module (each registers its commands on the app)."""
    for module in dict.fromkeys(module for module, _ in COMMANDS.values()):
        importlib.import_module(f"bench.cli.{module}")


class LazyGroup(TyperGroup):
    """A typer group whose commands are built from their modules on first use (see the module docstring)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(dict.fromkeys([*COMMANDS, *self.commands]))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in COMMANDS:  # listed, not run: its name and summary are all that is needed
            return TyperCommand(cmd_name, help=COMMANDS[cmd_name][1], callback=None)
        return None

    def invoke(self, ctx: Any) -> Any:
        # Errors raised outside a command's body (importing its module, an option's callback) are reported
        # as the commands' own are: one line, no traceback (bench.cli._errors).
        try:
            return super().invoke(ctx)
        except Exception as err:
            from ._app import err_console, report_error

            # A command's bad option or argument (click's UsageError, whichever click typer runs on): one line too.
            usage = any(cls.__name__ == "UsageError" for cls in type(err).__mro__)
            sub = getattr(err, "ctx", None)
            if not usage:
                report_error(err)
            if sub is None or sub is ctx:
                raise
            message = f"error: {err.format_message()} (see {sub.command_path} --help)"
            err_console.print(message, highlight=False, soft_wrap=True, markup=False)
            raise typer.Exit(getattr(err, "exit_code", 2)) from None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands:
            self.load(args[0])
        return super().resolve_command(ctx, args)

    def load(self, name: str) -> None:
        """Import the module of command ``name`` and build the command it registered. A name not in
        :data:`COMMANDS` loads every module and builds every command: one registered but not listed still
        runs, and for a name that is nothing typer's error can suggest the closest."""
        if name in COMMANDS:
            importlib.import_module(f"bench.cli.{COMMANDS[name][0]}")
            self._build({name})
        else:
            import_all()
            self._build(None)

    def _build(self, names: set[str] | None) -> None:
        """Build the registered commands and groups called ``names`` (all when None) into this group."""
        from ._app import app

        options = {"pretty_exceptions_short": app.pretty_exceptions_short, "rich_markup_mode": app.rich_markup_mode}
        for info in app.registered_commands:
            name = info.name or typer.main.get_command_name(info.callback.__name__)
            if names is None or name in names:
                self.commands[name] = typer.main.get_command_from_info(info, **options)
        for group in app.registered_groups:
            if group.name and (names is None or group.name in names):
                self.commands[group.name] = typer.main.get_group_from_info(
                    group, suggest_commands=app.suggest_commands, **options
                )
