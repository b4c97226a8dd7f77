"""The ``autodistil[:PATH]`` ground truth: the table :func:`~bench.lm.build_ground_truth` writes."""

from __future__ import annotations

from ..ground_truth import CSVGroundTruth
from ._ground_truth import default_table_path


# Registered as "autodistil" by bench.ground_truth, which imports it on first use.
class AutoDistilGroundTruth(CSVGroundTruth):
    """Students of one AutoDistil sub-space distilled and fine-tuned one by one: GLUE dev metrics (default
    ``glue_avg``), held-out relation loss, params and FLOPs. The default PATH is
    ``results/autodistil/<space>/ground_truth.csv`` (or under ``$BENCH_AUTODISTIL_DIR``)."""

    def __init__(self, *, arg: str | None = None, space: str = "autodistil-tiny", data_root=None) -> None:
        path = arg if arg is not None else str(default_table_path(space))
        super().__init__(arg=path, space=space, data_root=data_root)
        self.default_metric = (
            "glue_avg" if "glue_avg" in next(iter(self._tables.values())).columns else self.default_metric
        )
        self.name = "autodistil" if arg is None else f"autodistil:{self.path}"
