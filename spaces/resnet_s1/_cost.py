"""Parameters and FLOPs of a CIFAR ResNet, counted from its blocks per stage without building it."""

from __future__ import annotations

from collections.abc import Sequence

from spaces._base import Cost

WIDTHS = (16, 32, 64)
INPUT_SIZE = 32


def uniform_blocks(depth: int) -> tuple[int, int, int]:
    """The blocks per stage of the uniform CIFAR ResNet-``depth``: ``(n, n, n)`` for depth ``6n + 2``."""
    if isinstance(depth, bool) or not isinstance(depth, int) or (depth - 2) % 6 != 0 or depth < 8:
        raise ValueError(f"a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110, ...), got {depth!r}")
    n = (depth - 2) // 6
    return (n, n, n)


def _check_blocks(blocks: Sequence[int], widths: Sequence[int]) -> tuple[int, ...]:
    blocks = tuple(blocks)
    if len(blocks) != len(widths) or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in blocks):
        raise ValueError(f"blocks must be {len(widths)} positive integers, one per stage, got {blocks!r}")
    return blocks


def network_cost(blocks: Sequence[int], num_classes: int, widths: Sequence[int] = WIDTHS) -> Cost:
    """Exact parameter count and FLOPs of ``CifarResNet(blocks=blocks)`` for one 32x32 image, as torch's
    FlopCounterMode counts them: 2 per multiply-add of convolutions and the classifier; BatchNorm, ReLU,
    the residual sums and pooling are not counted."""
    blocks = _check_blocks(blocks, widths)
    hw = INPUT_SIZE * INPUT_SIZE
    c = widths[0]
    params = 27 * c + 2 * c
    flops = 2 * hw * 27 * c
    for stage, (width, count) in enumerate(zip(widths, blocks)):
        for b in range(count):
            c_in = c if b == 0 else width
            if stage > 0 and b == 0:
                hw //= 4  # the first block's stride-2 convolutions halve each side
            macs = 9 * c_in * width + 9 * width * width
            params += macs + 4 * width
            if c_in != width or (stage > 0 and b == 0):
                macs += c_in * width
                params += c_in * width + 2 * width
            flops += 2 * hw * macs
        c = width
    params += c * num_classes + num_classes
    flops += 2 * c * num_classes
    return Cost(params=params, flops=flops)
