"""Collect sweep folders into the compact trials table the paper's search comparison reads.

    python experiments/collect_trials.py results/paper/sweep-* --out packs/nb201-cifar10-search/trials.csv.gz

Keeps the columns the analysis reads (and the architecture's index and ground truth for readers), sorted by
run and trial number; gzip without a timestamp, so the same trials give the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

from bench.analysis._trials import RUN_KEYS, load_trials

COLUMNS = [*RUN_KEYS, "number", "state", "index", "arch", "score", "feasible", "score_status", "val_acc", "test_acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep or run folders, or trials files")
    parser.add_argument("--out", type=Path, required=True, help="the compact table (.csv.gz)")
    args = parser.parse_args()
    frame = load_trials(args.sweeps).frame
    frame = frame[[c for c in COLUMNS if c in frame.columns]].sort_values([*RUN_KEYS, "number"], kind="stable")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = frame.to_csv(index=False, lineterminator="\n").encode()
    args.out.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    runs = frame.groupby(RUN_KEYS).ngroups
    print(f"wrote {len(frame):,} trials of {runs} runs to {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
