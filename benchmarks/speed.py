"""Students per second: the one-at-a-time scorer against the batched engine, on the same cells in the same run.

    python benchmarks/speed.py --device cuda --students 1024 --chunk-size 128 --json

For each proxy (and all of them sharing one forward pass) it prints students/second of the loop and of
the engine on the same ``--students`` cells, their ratio, the peak memory, and what the engine asks of the
device, counted by :mod:`bench.scoring._dispatch` on ``--count-chunk`` more cells in one chunk: kernel
launches a student, host syncs a chunk and host milliseconds a student (time outside the operators). The
loop's launches a student are counted too. The counts do not depend on the device or on the batch size, so
they are taken on a batch of ``--count-batch`` images, which keeps them cheap on a CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import resource
import time

import torch
from rich.console import Console
from rich.table import Table

from bench.scoring import BatchedScorer, Scorer, ScoringConfig
from bench.scoring._dispatch import count
from proxies import parse_proxy_list
from spaces import get_space


def peak_memory_mb(device: torch.device) -> float:
    """The engine's peak allocation on a GPU; on a CPU the process's peak resident memory so far."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux reports KiB


def scored(scorer: Scorer, archs: list) -> None:
    failed = [r for r in scorer.score_many(archs) if not r.ok]
    if failed:
        raise SystemExit(f"{failed[0].proxy}: {len(failed)} failed scores, e.g. {failed[0].error}")


def prepared(scorer: Scorer) -> Scorer:
    for name in scorer.proxies:
        scorer.inputs_for(name)  # batch and teacher are one-off costs, outside every figure
    return scorer


def rate(scorer: Scorer, archs: list) -> float:
    prepared(scorer)
    if scorer.device.type == "cuda":
        torch.cuda.synchronize(scorer.device)
    start = time.perf_counter()
    scored(scorer, archs)
    if scorer.device.type == "cuda":
        torch.cuda.synchronize(scorer.device)
    return len(archs) / (time.perf_counter() - start)


def measure(proxies: list[str], timed: list, counted: list, args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    config = ScoringConfig(
        batch_size=args.batch_size, seed=args.seed, teacher=args.teacher, init=args.init, device=str(device)
    )
    loop_rate = rate(Scorer(config, proxies), timed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    engine_rate = rate(BatchedScorer(config, proxies, chunk_size=args.chunk_size), timed)
    peak = peak_memory_mb(device)
    small = dataclasses.replace(config, batch_size=args.count_batch)
    engine = prepared(BatchedScorer(small, proxies, chunk_size=len(counted)))
    engine.prefetch = False  # the counter sees this thread's operators only
    engine_counts = count(lambda: scored(engine, counted), len(counted), 1)
    loop = prepared(Scorer(small, proxies))
    few = counted[: args.loop_count]
    loop_counts = count(lambda: scored(loop, few), len(few), len(few))
    return {
        "loop_per_s": loop_rate,
        "engine_per_s": engine_rate,
        "ratio": engine_rate / loop_rate,
        "launches_per_student": engine_counts.launches_per_student,
        "syncs_per_chunk": engine_counts.syncs_per_chunk,
        "host_ms_per_student": engine_counts.host_ms_per_student,
        "loop_launches_per_student": loop_counts.launches_per_student,
        "loop_syncs_per_student": loop_counts.syncs_per_chunk,
        "peak_mb": peak,
        "all_cells_minutes": 15625 / engine_rate / 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--proxies", default="diswot,diswot_relation,kd,sp")
    parser.add_argument("--students", type=int, default=16, help="cells timed, by the loop and by the engine")
    parser.add_argument("--chunk-size", type=int, default=None, help="the engine's chunk (default: bench score's)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--count-chunk", type=int, default=128, help="students in the chunk whose launches are counted")
    parser.add_argument("--count-batch", type=int, default=4, help="images in the batch of the counted chunk")
    parser.add_argument("--loop-count", type=int, default=4, help="students the loop's launches are counted on")
    parser.add_argument("--teacher", default="resnet56")
    parser.add_argument("--init", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    if args.chunk_size is None:
        from bench.scoring import default_chunk_size

        args.chunk_size = default_chunk_size(args.device)

    device = torch.device(args.device)
    space = get_space("nb201")
    cells = random.Random(args.seed).sample(range(len(space)), args.students + args.count_chunk)
    timed = [space.arch_at(i) for i in cells[: args.students]]
    counted = [space.arch_at(i) for i in cells[args.students :]]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    groups = [[p] for p in parse_proxy_list(args.proxies)]
    if len(groups) > 1:
        groups.append([g[0] for g in groups])  # every proxy from one shared forward pass
    figures = {",".join(proxies): measure(proxies, timed, counted, args) for proxies in groups}
    setup = {
        "device": name,
        "torch": torch.__version__,
        "batch": args.batch_size,
        "students": args.students,
        "chunk": args.chunk_size,
        "count_chunk": args.count_chunk,
        "count_batch": args.count_batch,
    }
    if args.json:
        print(json.dumps({**setup, "proxies": figures}, indent=2))
        return
    console = Console()
    console.print(", ".join(f"{k} {v}" for k, v in setup.items()))
    table = Table("proxy", "loop /s", "engine /s", "ratio", "launches/student", "syncs/chunk", "host ms/student")
    table.add_column("loop launches/student")
    table.add_column("peak MB")
    for proxies, f in figures.items():
        table.add_row(
            proxies,
            f"{f['loop_per_s']:.2f}",
            f"{f['engine_per_s']:.2f}",
            f"{f['ratio']:.2f}x",
            f"{f['launches_per_student']:.1f}",
            f"{f['syncs_per_chunk']:.0f}",
            f"{f['host_ms_per_student']:.2f}",
            f"{f['loop_launches_per_student']:.0f}",
            f"{f['peak_mb']:,.0f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
