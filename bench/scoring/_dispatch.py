"""What scoring asks of the device, counted the same way on any device: kernel launches and host syncs.

:class:`DispatchCounter` watches every ATen operator call below Python (a ``TorchDispatchMode``). An
operator that computes something launches one kernel on a GPU; views, reshapes and bare allocations launch
none and are not counted. A host sync is any point where the host waits for the device's values:

- an explicit read-back through :func:`read_back` (the engine reads each chunk's scores with one);
- a scalar read (``float(t)``, ``t.item()``, ``bool(t)``: ``_local_scalar_dense``), an operator whose output
  size depends on values (``nonzero``, boolean masks, ``unique``), a copy from a device to the host, and
  ``torch.cuda.synchronize``.

The counts are a property of the code, not of the machine: a CPU counts what a GPU would launch and wait
for, which is how the engine's targets are checked where no GPU is at hand.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten
#: Operators that allocate or relabel memory without running a kernel.
_NO_KERNEL = {
    _aten.empty.memory_format,
    _aten.empty_strided.default,
    _aten.empty_like.default,
    _aten.new_empty.default,
    _aten.new_empty_strided.default,
    _aten.lift_fresh.default,
    _aten.set_.source_Storage_storage_offset,
    _aten.resize_.default,
}
#: Operators whose result the host must wait for (a value read, or an output sized by values).
_SYNCING = {
    _aten._local_scalar_dense.default,
    _aten.nonzero.default,
    _aten.masked_select.default,
    _aten.is_nonzero.default,
    _aten.equal.default,
    _aten._unique2.default,
    _aten.unique_dim.default,
    _aten.unique_consecutive.default,
}
_COPIES = {_aten._to_copy.default, _aten.copy_.default}
#: Indexing operators that sync when an index is a boolean mask (its true entries are counted on the host).
_INDEXING = {_aten.index.Tensor, _aten.index_put_.default, _aten.index_put.default}
_MAYBE_SYNCING = _SYNCING | _COPIES | _INDEXING
_ACTIVE: list[DispatchCounter] = []


class DispatchCounter(TorchDispatchMode):
    """Counts launches and syncs while active (``with DispatchCounter() as counts: ...``)."""

    def __init__(self, *, hold: bool = False) -> None:
        """``hold`` keeps every operator's output alive until the counter exits, so that no buffer is freed
        while it counts: on a CPU, freeing the chunk's large buffers costs more than issuing its operators."""
        super().__init__()
        self._held: list[Any] | None = [] if hold else None
        self.calls = 0  # every operator, views included
        self.launches = 0
        self.syncs = 0
        # This thread's CPU time inside operators (on a CPU, the kernels' own arithmetic): CPU time, not wall
        # time, so that other jobs on the machine do not count.
        self.kernel_seconds = 0.0
        self._by_func: dict[Any, int] = {}
        self._explicit = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        self.calls += 1
        if self._explicit == 0 and func in _MAYBE_SYNCING and _is_sync(func, args, kwargs):
            self.syncs += 1
        if not func.is_view and func not in _NO_KERNEL:
            self.launches += 1
            self._by_func[func] = self._by_func.get(func, 0) + 1
        start = time.thread_time()
        out = func(*args, **kwargs)
        self.kernel_seconds += time.thread_time() - start
        if self._held is not None:
            self._held.append(out)
        return out

    @property
    def by_op(self) -> dict[str, int]:
        """Launches by operator name."""
        counts: dict[str, int] = {}
        for func, n in self._by_func.items():
            name = str(func.overloadpacket)
            counts[name] = counts.get(name, 0) + n
        return counts

    def __enter__(self) -> DispatchCounter:
        super().__enter__()
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _ACTIVE.remove(self)
        super().__exit__(*exc)
        self._held = None if self._held is None else []


def _is_sync(func: Any, args: tuple, kwargs: dict) -> bool:
    if func in _SYNCING:
        return True
    if func in _INDEXING:
        masks = [i for i in args[1] if isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)]
        return bool(masks)
    if func in _COPIES:
        source = args[1] if func is _aten.copy_.default else args[0]
        target = args[0].device if func is _aten.copy_.default else kwargs.get("device")
        return (
            isinstance(source, torch.Tensor)
            and source.device.type != "cpu"
            and target is not None
            and torch.device(target).type == "cpu"
        )
    return False


def read_back(values: torch.Tensor) -> list:
    """``values`` on the host as nested lists: the one place the engine waits for the device."""
    for counter in _ACTIVE:
        counter.syncs += 1
        counter._explicit += 1
    try:
        return values.cpu().tolist()
    finally:
        for counter in _ACTIVE:
            counter._explicit -= 1


@contextmanager
def counting_cuda_syncs() -> Iterator[None]:
    """Count every ``torch.cuda.synchronize`` as a sync of the active counters, while inside."""
    real = torch.cuda.synchronize

    def counted(device: Any = None) -> None:
        for counter in _ACTIVE:
            counter.syncs += 1
        real(device)

    torch.cuda.synchronize = counted
    try:
        yield
    finally:
        torch.cuda.synchronize = real


@dataclass(frozen=True)
class Counts:
    """What scoring ``students`` students in ``chunks`` chunks (or one at a time: a chunk each) asked for."""

    students: int
    chunks: int
    launches: int
    syncs: int
    host_seconds: float  # outside the operators and buffer frees: Python and bookkeeping, the counter's cost taken out

    @property
    def launches_per_student(self) -> float:
        return self.launches / self.students

    @property
    def syncs_per_chunk(self) -> float:
        return self.syncs / self.chunks

    @property
    def host_ms_per_student(self) -> float:
        return 1000 * self.host_seconds / self.students


def count(score: Callable[[], Any], students: int, chunks: int) -> Counts:
    """Run ``score`` (scoring ``students`` in ``chunks``) under a :class:`DispatchCounter` and report it."""
    overhead = _hook_seconds()
    with counting_cuda_syncs(), DispatchCounter(hold=True) as counter:
        start = time.thread_time()
        score()
        spent = time.thread_time() - start
    host = max(0.0, spent - counter.kernel_seconds - overhead * counter.calls)
    return Counts(students, chunks, counter.launches, counter.syncs, host)


@functools.cache
def _hook_seconds() -> float:
    """The counter's own cost for each operator it watches (its Python hook), measured on a tiny operator."""
    x, index = torch.zeros(4, 4), torch.tensor([0, 2])
    n = 500

    def run() -> float:
        start = time.thread_time()
        for _ in range(n):  # a mix of what scoring calls: arithmetic, a gather with an index, a view
            torch.add(x, 1.0)
            x.index_select(1, index)
            x.view(16)
        return time.thread_time() - start

    run()
    bare = min(run() for _ in range(3))
    with DispatchCounter():
        watched = min(run() for _ in range(3))
    return max(0.0, (watched - bare) / (3 * n))
