"""Score files as the analysis reads them, and the architecture filters of the correlation tables.

A score file is the CSV that ``bench score`` writes: one row per (architecture, proxy) with the columns
``index, arch, proxy, score, seconds, status, error`` (status ``ok``, ``failed`` or ``nonfinite``).
What made the scores (space, dataset, batch size, seed, teacher, initialisation) is read from
columns of that name where the file has them, else from a JSON file beside it (``<file>.json``),
else from the caller's defaults.

Reading a file checks it: architectures are put in the space's canonical form, a score must be a number,
an ``ok`` row whose score is not finite (NaN, inf) is a ``nonfinite`` row, rows that repeat an
(architecture, proxy) pair with the same outcome are kept once and counted, and rows that repeat one
with different outcomes are refused: which of them is right is not the analysis's to guess.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spaces import get_space

from ..scoring import FAILED, NONFINITE, OK

REQUIRED_COLUMNS = ("arch", "proxy", "score", "status")
STATUSES = (OK, FAILED, NONFINITE)
#: What determines a score besides the architecture and the proxy (see ``bench.scoring.ScoringConfig``), and
#: ``sample_seed``, which chose the architectures.
META_KEYS = (
    "space",
    "dataset",
    "batch_size",
    "seed",
    "sample_seed",
    "teacher",
    "teacher_weights",
    "init",
    "device",
    "precision",
    "config",
)


@dataclass
class ScoreRun:
    """One score file: its rows and what made them."""

    label: str
    path: Path
    frame: pd.DataFrame
    meta: dict[str, str] = field(default_factory=dict)
    #: Per proxy, how many rows repeated an (architecture, proxy) pair with the same outcome and were dropped.
    duplicates: dict[str, int] = field(default_factory=dict)

    def digest(self) -> str:
        """A digest of the scores themselves (not of their timings)."""
        return frame_digest(self.frame, ["index", "arch", "proxy", "score", "status"])

    @property
    def space(self) -> str:
        return self.meta.get("space", "nb201")

    @property
    def dataset(self) -> str:
        if "dataset" not in self.meta:
            raise ValueError(f"score file {self.path} does not say its dataset; pass it (e.g. --dataset cifar10)")
        return self.meta["dataset"]


def file_digest(path: Path) -> str:
    """A short sha256 of a file's bytes, to name an input in a table's provenance."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def frame_digest(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """A short sha256 of the columns of a table that the analysis reads.

    Inputs also hold timings and dates that differ from one run to the next; digesting only what the
    tables are computed from lets the same results give the same provenance, hence the same bytes.
    """
    used = frame[[c for c in columns if c in frame.columns]]
    return hashlib.sha256(used.to_csv(index=False, lineterminator="\n").encode()).hexdigest()[:16]


def read_commented_csv(path: Path) -> pd.DataFrame:
    """A CSV that may start with ``#`` comment lines (the provenance the suite writes).

    Only empty cells are missing values: text such as an error message reading "NA" stays text.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    with gzip.open(path, "rt") if path.suffix == ".gz" else path.open() as fh:
        skip = 0
        for line in fh:
            if not line.startswith("#"):
                break
            skip += 1
    # Only leading lines are comments: an error message inside the table may contain '#'.
    return pd.read_csv(path, skiprows=skip, keep_default_na=False, na_values=[""])


def read_table(path: Path) -> pd.DataFrame:
    """A results table: CSV (see :func:`read_commented_csv`) or Parquet."""
    path = Path(path)
    if path.suffix == ".parquet":
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        return pd.read_parquet(path)
    if path.suffix != ".csv":
        raise ValueError(f"{path} must end in .csv or .parquet")
    return read_commented_csv(path)


def load_scores(path: str | Path, *, defaults: Mapping[str, object] | None = None) -> ScoreRun:
    """Read one score file; ``defaults`` fill the meta keys that neither the file nor its JSON give."""
    path = Path(path)
    frame = read_table(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"score file {path} lacks the column(s) {', '.join(missing)}; it has {', '.join(map(str, frame.columns))}"
        )
    meta: dict[str, str] = {}
    sidecar = path.with_suffix(path.suffix + ".json")
    if sidecar.is_file():
        data = json.loads(sidecar.read_text())
        meta.update({k: str(data[k]) for k in META_KEYS if data.get(k) is not None})
    for key in META_KEYS:
        if key in frame.columns:
            values = frame[key].dropna().astype(str).unique()
            if len(values) > 1:
                raise ValueError(
                    f"score file {path} mixes several {key} values ({', '.join(sorted(values))}); "
                    "split it into one file per scoring configuration"
                )
            if len(values) == 1:
                meta[key] = values[0]
    for key, value in (defaults or {}).items():
        if value is not None:
            meta.setdefault(key, str(value))
    label = f"seed {meta['seed']}" if "seed" in meta else path.stem
    frame, duplicates = _checked_rows(frame, path, meta.get("space", "nb201"))
    return ScoreRun(label=label, path=path, frame=frame, meta=meta, duplicates=duplicates)


def _numbers(frame: pd.DataFrame, path: Path) -> pd.Series:
    """The score column as floats: "nan" and "inf" written as text are numbers that are not finite; anything
    else that is not a number means a damaged file."""
    column = frame["score"]
    if pd.api.types.is_numeric_dtype(column):
        return column.astype(float)
    values = {}
    for row, text in enumerate(column):
        if text in values or pd.isna(text):
            continue
        try:
            values[text] = float(text)
        except ValueError:
            raise ValueError(
                f"score file {path} has a score that is not a number for proxy {frame['proxy'].iat[row]!r} on "
                f"architecture {frame['arch'].iat[row]}: {text!r}"
            ) from None
    return column.map(lambda v: values.get(v, np.nan)).astype(float)


def _checked_rows(frame: pd.DataFrame, path: Path, space: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows of a score file, checked (see the module docstring), and the identical repeats dropped per proxy."""
    if frame.empty:
        raise ValueError(
            f"score file {path} has a header but no rows: it holds no scores (bench score wrote none; "
            "see its summary for why)"
        )
    status = frame["status"].astype(str)
    unknown = sorted(set(status) - set(STATUSES))
    if unknown:
        raise ValueError(f"score file {path} has status {unknown[0]!r}. Valid choices: {', '.join(STATUSES)}")
    score = _numbers(frame, path)
    try:
        arch = canonical_archs(frame["arch"], space)
    except ValueError as err:
        raise ValueError(f"score file {path}: {err}") from None
    status = status.where(~((status == OK) & ~np.isfinite(score.to_numpy(float))), NONFINITE)
    frame = frame.assign(arch=arch, score=score, status=status)
    repeated = frame.duplicated(["arch", "proxy"], keep=False)
    if not repeated.any():
        return frame, {}
    outcome = frame.loc[repeated, ["arch", "proxy", "status", "score"]]
    # Same status and the same score (NaN equal to NaN): the same outcome; different error texts do not matter.
    distinct = outcome.assign(score=outcome["score"].fillna(np.inf)).drop_duplicates()
    conflicts = distinct[distinct.duplicated(["arch", "proxy"], keep=False)]
    if not conflicts.empty:
        arch, proxy = conflicts.iloc[0][["arch", "proxy"]]
        clash = conflicts[(conflicts["arch"] == arch) & (conflicts["proxy"] == proxy)]
        seen = ", ".join(f"{s} {v!r}" if s == OK else s for s, v in zip(clash["status"], clash["score"]))
        pairs = conflicts[["arch", "proxy"]].drop_duplicates()
        more = f" (and {len(pairs) - 1} more pair(s))" if len(pairs) > 1 else ""
        raise ValueError(
            f"score file {path} has conflicting rows for proxy {proxy!r} on architecture {arch} ({seen}){more}; "
            "keep one row per architecture and proxy (identical repeats are allowed)"
        )
    dropped = frame.duplicated(["arch", "proxy"], keep="first")
    duplicates = {str(k): int(v) for k, v in frame.loc[dropped, "proxy"].value_counts(sort=False).items()}
    return frame[~dropped].reset_index(drop=True), duplicates


def load_score_runs(paths: Sequence[str | Path], *, defaults: Mapping[str, object] | None = None) -> list[ScoreRun]:
    """Read several score files (e.g. one per seed) with labels that tell them apart."""
    if not paths:
        raise ValueError("no score file given")
    runs = [load_scores(p, defaults=defaults) for p in paths]
    labels = [r.label for r in runs]
    for run in runs:
        if labels.count(run.label) > 1:
            run.label = f"{run.label} ({run.path.stem})"
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two score files share a name: {', '.join(sorted(labels))}")
    return runs


def canonical_archs(archs: pd.Series, space: str) -> pd.Series:
    """Each architecture's canonical string (parsing each distinct value once)."""
    sp = get_space(space)
    mapping = {}
    for text in archs.astype(str).unique():
        try:
            mapping[text] = sp.to_str(sp.parse(text))
        except ValueError as err:
            raise ValueError(f"the space {space!r} cannot read the architecture {text!r}: {err}") from err
    return archs.astype(str).map(mapping)


def select_archs(archs: Sequence[str], *, space: str, connected_only: bool = False, unique: bool = False) -> list[str]:
    """The architectures a correlation uses, in the space's canonical order.

    ``connected_only`` drops cells whose input does not reach their output. ``unique`` keeps one
    architecture per isomorphism class: the one with the lowest index in the space's enumeration
    (or the first in sorted order where the space has no index), so every proxy and every run sees
    the same representatives.
    """
    sp = get_space(space)
    parsed = {a: sp.parse(a) for a in dict.fromkeys(archs)}

    def order(item: tuple[str, object]):
        try:
            return (sp.index(item[1]), item[0])
        except TypeError:
            return (0, item[0])

    items = sorted(parsed.items(), key=order)
    if connected_only:
        items = [(a, g) for a, g in items if sp.invalid_reason(g) is None]
    if unique:
        seen: set[str] = set()
        kept = []
        for arch, genotype in items:
            key = sp.unique(genotype)
            if key is None:
                raise ValueError(f"space {space!r} has no isomorphism classes; --unique does not apply")
            if key not in seen:
                seen.add(key)
                kept.append((arch, genotype))
        items = kept
    return [a for a, _ in items]


@dataclass(frozen=True)
class Pairing:
    """How several score files (e.g. one per scoring seed) are paired: by architecture, never by row position.

    ``common`` are the architectures every file scored, in the space's order; statistics over files use these
    only, so a spread over seeds measures the seeds and not which architectures each file happens to hold.
    """

    common: list[str]
    per_file: dict[str, int]

    @property
    def full(self) -> bool:
        return all(n == len(self.common) for n in self.per_file.values())

    def warning(self) -> str | None:
        """One line when the files do not hold the same architectures, else None."""
        if self.full:
            return None
        counts = ", ".join(f"{label}: {n}" for label, n in self.per_file.items())
        return (
            f"the {len(self.per_file)} score files do not hold the same architectures ({counts}); "
            f"only the {len(self.common)} common to all are compared"
        )


def pair_runs(runs: Sequence[ScoreRun]) -> Pairing:
    """The architectures common to every score file (see :class:`Pairing`)."""
    if not runs:
        raise ValueError("no score file given")
    spaces = sorted({r.space for r in runs})
    if len(spaces) > 1:
        raise ValueError(f"the score files are of different spaces ({', '.join(spaces)}); correlate one space at once")
    sets = [set(r.frame["arch"]) for r in runs]
    common = set.intersection(*sets)
    if not common:
        counts = ", ".join(f"{r.label}: {len(s)}" for r, s in zip(runs, sets))
        raise ValueError(
            f"the score files have no architecture in common ({counts}); score the same architectures with each "
            "seed (the sample seed chooses them, the seed only the batch and initialisation)"
        )
    return Pairing(
        common=select_archs(sorted(common), space=spaces[0]),
        per_file={r.label: len(s) for r, s in zip(runs, sets)},
    )
