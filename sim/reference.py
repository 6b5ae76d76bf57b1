"""Golden forward pass of a `host.network.QNetwork`, layer by layer with `sim.golden` kernels.

The integer requantisation parameters of each layer come from
`host.layer_params.gemm_params` (they are an input to the contract); every
arithmetic step is `sim.golden`'s.
"""

from __future__ import annotations

import numpy as np

from macforge.host.layer_params import add_layer_params, gemm_params
from macforge.host.network import (
    AddConst,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    QNetwork,
)
from macforge.sim import golden

__all__ = ["golden_forward", "golden_add"]


def golden_forward(network: QNetwork, x: np.ndarray) -> np.ndarray:
    """int8 input (batch first) -> int8 output, per the TFLite int8 reference kernels."""
    q = network.input
    for layer in network.layers:
        if isinstance(layer, Dense | Conv2D):
            mult, shift, bias, zp, lo, hi = gemm_params(layer, q)
            if isinstance(layer, Dense):
                x = golden.fully_connected(
                    x.reshape(x.shape[0], -1),
                    layer.weight,
                    bias,
                    q.zero_point,
                    mult,
                    shift,
                    zp,
                    lo,
                    hi,
                )
            else:
                x = golden.conv2d(
                    x,
                    layer.weight,
                    bias,
                    q.zero_point,
                    mult,
                    shift,
                    zp,
                    lo,
                    hi,
                    stride=layer.stride,
                    pads=layer.pads,
                )
            q = layer.out
        elif isinstance(layer, MaxPool2D):
            x = golden.max_pool(x, layer.kernel, layer.stride, layer.pads)
        elif isinstance(layer, AvgPool2D):
            x = golden.avg_pool(x, layer.kernel, layer.stride, layer.pads)
        elif isinstance(layer, Flatten):
            x = x.reshape(x.shape[0], -1)
        elif isinstance(layer, AddConst):
            x = golden_add(x, layer.const[None], add_layer_params(layer, q))
            q = layer.out
        else:
            raise ValueError(f"unsupported layer {layer!r}")
    return x


def golden_add(x1: np.ndarray, x2: np.ndarray, p: dict) -> np.ndarray:
    """`sim.golden.add` with TFLite's integer parameters given as a dict (`host.kernels`)."""
    return golden.add(
        x1,
        x2,
        p["input1_offset"],
        p["input2_offset"],
        p["input1_multiplier"],
        p["input1_shift"],
        p["input2_multiplier"],
        p["input2_shift"],
        p["output_multiplier"],
        p["output_shift"],
        p["output_offset"],
        p["act_min"],
        p["act_max"],
        p["left_shift"],
    )
