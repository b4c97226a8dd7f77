"""Analysis of stored results: rank-correlation and search-comparison tables, with provenance, and figures.

The analysis reads score files (``bench score``) and trials tables (``bench run`` / ``bench sweep``)
only, and writes LaTeX (booktabs, siunitx), Markdown and CSV tables and PNG/PDF figures.
"""

from ._correlation import (
    CI_METHODS,
    DEFAULT_TOP,
    BootstrapSettings,
    MetricResult,
    Pair,
    TruthSource,
    aggregate_runs,
    correlation_metrics,
    correlation_statistics,
    correlation_table,
    iter_pairs,
    metric_names,
)
from ._plots import PLOT_FORMATS, plot_anytime, plot_box, plot_pareto, plot_scatter
from ._provenance import Provenance, command_line, git_commit, package_versions
from ._reports import describe_scoring, metric_header, write_correlation_report, write_search_report
from ._scores import ScoreRun, load_score_runs, load_scores, select_archs
from ._search import DEFAULT_CHECKPOINTS, TESTS, SearchReport, SpaceTruth, search_report, space_truth
from ._stats import holm, hypervolume_2d, pareto_mask
from ._tables import FORMATS, Column, Table, check_formats, escape_latex
from ._trials import METHOD_KEYS, RUN_KEYS, Trials, load_trials

__all__ = [
    "CI_METHODS",
    "DEFAULT_CHECKPOINTS",
    "DEFAULT_TOP",
    "FORMATS",
    "METHOD_KEYS",
    "PLOT_FORMATS",
    "RUN_KEYS",
    "TESTS",
    "BootstrapSettings",
    "Column",
    "MetricResult",
    "Pair",
    "Provenance",
    "ScoreRun",
    "SearchReport",
    "SpaceTruth",
    "Table",
    "Trials",
    "TruthSource",
    "aggregate_runs",
    "check_formats",
    "command_line",
    "correlation_metrics",
    "correlation_statistics",
    "correlation_table",
    "describe_scoring",
    "escape_latex",
    "git_commit",
    "holm",
    "hypervolume_2d",
    "iter_pairs",
    "load_score_runs",
    "load_scores",
    "load_trials",
    "metric_header",
    "metric_names",
    "package_versions",
    "pareto_mask",
    "plot_anytime",
    "plot_box",
    "plot_pareto",
    "plot_scatter",
    "search_report",
    "select_archs",
    "space_truth",
    "write_correlation_report",
    "write_search_report",
]
