"""Students per second: the one-at-a-time scorer against the batched engine, in the same run on the same device.

    python benchmarks/speed.py --device cuda --students 2048 --loop-students 128 --chunk-size 128

prints, per proxy, students/second of both, their ratio, the engine's peak memory, the device, and the
projected wall time for all 15,625 NAS-Bench-201 architectures (measured rates, extrapolated linearly).
"""

from __future__ import annotations

import argparse
import random
import resource
import time

import torch
from rich.console import Console
from rich.table import Table

from bench.scoring import BatchedScorer, Scorer, ScoringConfig
from proxies import parse_proxy_list
from spaces import get_space


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux reports KiB


def rate(scorer: Scorer, archs: list, proxy: str) -> float:
    scorer.inputs_for(proxy)  # batch and teacher are one-off costs, outside the timing
    if scorer.device.type == "cuda":
        torch.cuda.synchronize(scorer.device)
    start = time.perf_counter()
    records = scorer.score_many(archs)
    if scorer.device.type == "cuda":
        torch.cuda.synchronize(scorer.device)
    failed = [r for r in records if not r.ok]
    if failed:
        raise SystemExit(f"{proxy}: {len(failed)} failed scores, e.g. {failed[0].error}")
    return len(archs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--proxies", default="diswot,diswot_relation,kd,sp")
    parser.add_argument("--students", type=int, default=64, help="students scored by the engine")
    parser.add_argument("--loop-students", type=int, default=8, help="students scored one at a time")
    parser.add_argument("--chunk-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--teacher", default="resnet56")
    parser.add_argument("--init", default="default")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    device = torch.device(args.device)
    space = get_space("nb201")
    rng = random.Random(args.seed)
    archs = [space.arch_at(i) for i in rng.sample(range(len(space)), args.students)]
    config = ScoringConfig(
        batch_size=args.batch_size, seed=args.seed, teacher=args.teacher, init=args.init, device=str(device)
    )
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    console = Console()
    console.print(f"device: {name}; batch {args.batch_size}; torch {torch.__version__}")

    table = Table("proxy", "loop /s", "engine /s", "ratio", "peak MB", "all 15,625 (engine)")
    groups = [[p] for p in parse_proxy_list(args.proxies)]
    if len(groups) > 1:
        groups.append([g[0] for g in groups])  # every proxy from one shared forward pass
    for proxies in groups:
        loop_scorer = Scorer(config, proxies)
        engine = BatchedScorer(config, proxies, chunk_size=args.chunk_size)
        loop_rate = rate(loop_scorer, archs[: args.loop_students], proxies[0])
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        engine_rate = rate(engine, archs, proxies[0])
        minutes = len(space) / engine_rate / 60
        table.add_row(
            ",".join(proxies),
            f"{loop_rate:.2f}",
            f"{engine_rate:.2f}",
            f"{engine_rate / loop_rate:.2f}x",
            f"{peak_memory_mb(device):,.0f}",
            f"{minutes:.1f} min" if minutes >= 1 else f"{minutes * 60:.0f} s",
        )
    console.print(table)


if __name__ == "__main__":
    main()
