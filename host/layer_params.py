"""Integer parameters of quantised layers (multipliers, shifts, clamps, folded biases),
derived from their float scales as TFLite does; an input to the golden contract."""

from __future__ import annotations

import numpy as np

from .kernels import add_params, quantize_multiplier
from .network import AddConst, QuantParams

__all__ = ["activation_range", "gemm_params", "add_layer_params"]


def activation_range(activation: str, out: QuantParams) -> tuple[int, int]:
    """The int8 clamp that implements ``activation`` on the quantised output."""
    if activation == "none":
        return -128, 127
    lo = max(-128, out.zero_point)
    if activation == "relu":
        return lo, 127
    if activation == "relu6":
        return lo, min(127, out.zero_point + int(round(6.0 / out.scale)))
    raise ValueError(f"unknown activation {activation!r}")


def gemm_params(layer, in_q: QuantParams):
    """Integer parameters of a Dense/Conv2D layer: (multiplier, shift, bias, zp, lo, hi)."""
    n = layer.weight.shape[0]
    if layer.bias.shape != (n,) or layer.bias.dtype != np.int32:
        raise ValueError(f"{layer.name}: bias must be int32 of shape ({n},)")
    if layer.weight.dtype != np.int8:
        raise ValueError(f"{layer.name}: weights must be int8")
    scales = np.broadcast_to(np.asarray(layer.w_scale, dtype=np.float64), (n,))
    pairs = [quantize_multiplier(in_q.scale * s / layer.out.scale) for s in scales]
    mult = np.array([p[0] for p in pairs], dtype=np.int64)
    shift = np.array([p[1] for p in pairs], dtype=np.int64)
    lo, hi = activation_range(layer.activation, layer.out)
    return mult, shift, layer.bias.astype(np.int64), layer.out.zero_point, lo, hi


def add_layer_params(layer: AddConst, in_q: QuantParams) -> dict:
    """TFLite integer parameters of an `AddConst` layer given its input quantisation."""
    lo, hi = activation_range(layer.activation, layer.out)
    return add_params(
        in_q.scale,
        in_q.zero_point,
        layer.const_q.scale,
        layer.const_q.zero_point,
        layer.out.scale,
        layer.out.zero_point,
        lo,
        hi,
    )
