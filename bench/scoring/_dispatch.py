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

import time
from collections.abc import Iterator
from contextlib import contextmanager
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
_ACTIVE: list[DispatchCounter] = []


class DispatchCounter(TorchDispatchMode):
    """Counts launches and syncs while active (``with DispatchCounter() as counts: ...``)."""

    def __init__(self) -> None:
        super().__init__()
        self.launches = 0
        self.syncs = 0
        self.kernel_seconds = 0.0  # time inside operators: on a CPU, the kernels' own arithmetic
        self.by_op: dict[str, int] = {}
        self._explicit = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        if self._explicit == 0 and _is_sync(func, args, kwargs):
            self.syncs += 1
        if not func.is_view and func not in _NO_KERNEL:
            self.launches += 1
            name = str(func.overloadpacket)
            self.by_op[name] = self.by_op.get(name, 0) + 1
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            self.kernel_seconds += time.perf_counter() - start

    def __enter__(self) -> DispatchCounter:
        super().__enter__()
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _ACTIVE.remove(self)
        super().__exit__(*exc)


def _is_sync(func: Any, args: tuple, kwargs: dict) -> bool:
    if func in _SYNCING:
        return True
    if func in (_aten._to_copy.default, _aten.copy_.default):
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
