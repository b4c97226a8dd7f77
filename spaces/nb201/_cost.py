"""Parameters and FLOPs of a NAS-Bench-201 network, counted from its genotype without building it."""

from __future__ import annotations

from spaces._base import Cost

from ._genotype import Genotype

C_STEM = 16
CELLS_PER_STAGE = 5
INPUT_SIZE = 32


def network_cost(
    genotype: Genotype,
    num_classes: int,
    channels: int = C_STEM,
    cells: int = CELLS_PER_STAGE,
    resolution: int = INPUT_SIZE,
) -> Cost:
    """Exact parameter count and FLOPs of one ``resolution`` x ``resolution`` image (as torch's FlopCounterMode
    counts them: 2 per multiply-add of convolutions and the classifier; BatchNorm, pooling and sums are not
    counted)."""
    hw = resolution * resolution
    params = 27 * channels + 2 * channels
    flops = 2 * 27 * channels * hw
    c = channels
    for stage in range(3):
        if stage > 0:
            c_in, c = c, 2 * c
            hw //= 4
            params += 9 * c_in * c + 2 * c + 9 * c * c + 2 * c + c_in * c
            flops += 2 * hw * (9 * c_in * c + 9 * c * c + c_in * c)
        for name in genotype.op_names:
            if name == "nor_conv_3x3":
                params += cells * (9 * c * c + 2 * c)
                flops += cells * 2 * hw * 9 * c * c
            elif name == "nor_conv_1x1":
                params += cells * (c * c + 2 * c)
                flops += cells * 2 * hw * c * c
    params += 2 * c + c * num_classes + num_classes
    flops += 2 * c * num_classes
    return Cost(params=params, flops=flops)
