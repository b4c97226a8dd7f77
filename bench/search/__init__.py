"""Search: one Optuna study per (space, proxy, sampler, seed), workers sharing a storage, comparison grids.

The objective is the proxy score, looked up in the score cache where it was computed before;
ground truth is stored on each trial for analysis and never shown to the sampler.
"""

from ._config import DEFAULT_CACHE, DEFAULT_N_TRIALS, OBJECTIVES, RunConfig, parse_objectives
from ._evolution import RegularizedEvolutionSampler
from ._objective import GroundTruthLookup, Objective, trial_result
from ._outputs import best_row, pareto_frame, trials_frame
from ._runner import COUNTED, Counts, LoopResult, run_trials
from ._samplers import SAMPLERS, SamplerOptions, SamplerSpec, make_sampler, sampler_spec
from ._session import Worker, join_worker, out_dir_for, start_worker
from ._storage import MEMORY, OpenedStorage, absolute_url, display_url, open_storage
from ._sweep import Cell, aggregate, grid, parse_samplers, parse_seeds, run_sweep

__all__ = [
    "COUNTED",
    "DEFAULT_CACHE",
    "DEFAULT_N_TRIALS",
    "MEMORY",
    "OBJECTIVES",
    "SAMPLERS",
    "Cell",
    "Counts",
    "GroundTruthLookup",
    "LoopResult",
    "Objective",
    "OpenedStorage",
    "RegularizedEvolutionSampler",
    "RunConfig",
    "SamplerOptions",
    "SamplerSpec",
    "Worker",
    "absolute_url",
    "aggregate",
    "best_row",
    "display_url",
    "grid",
    "join_worker",
    "make_sampler",
    "open_storage",
    "out_dir_for",
    "pareto_frame",
    "parse_objectives",
    "parse_samplers",
    "parse_seeds",
    "run_sweep",
    "run_trials",
    "sampler_spec",
    "start_worker",
    "trial_result",
    "trials_frame",
]
