"""Integer parameters of quantised layers (multipliers, shifts, clamps, folded biases),
derived from their float scales as TFLite does; an input to the golden contract."""

from __future__ import annotations

import numpy as np

from .kernels import add_params, quantize_multiplier
from .network import SOFTMAX_OUTPUT, Add, AddConst, QuantParams

__all__ = [
    "activation_range",
    "gemm_params",
    "add_layer_params",
    "add2_layer_params",
    "avg_pool_params",
    "softmax_params",
]


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
    """Integer parameters of a Dense/Conv2D/DepthwiseConv2D layer:
    (multiplier, shift, bias, zp, lo, hi)."""
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


def add2_layer_params(layer: Add, q1: QuantParams, q2: QuantParams) -> dict:
    """TFLite integer parameters of an `Add` of two activations quantised ``q1``, ``q2``."""
    lo, hi = activation_range(layer.activation, layer.out)
    return add_params(
        q1.scale,
        q1.zero_point,
        q2.scale,
        q2.zero_point,
        layer.out.scale,
        layer.out.zero_point,
        lo,
        hi,
    )


def avg_pool_params(in_q: QuantParams, out_q: QuantParams, max_count: int):
    """Multipliers and shifts, indexed by the element count n = 0..max_count of a
    window, of ``in_q.scale / (out_q.scale * n)`` (index 0 unused)."""
    pairs = [(0, 0)] + [
        quantize_multiplier(in_q.scale / (out_q.scale * n)) for n in range(1, max_count + 1)
    ]
    return np.array([m for m, _ in pairs], np.int64), np.array([s for _, s in pairs], np.int64)


def softmax_params(in_q: QuantParams, out_q: QuantParams, beta: float = 1.0) -> dict:
    """TFLite's softmax parameters (PreprocessSoftmaxScaling with 5 integer bits,
    CalculateInputRadius) for an int8 input ``in_q``; the output multiplier is None for
    TFLite's 1/256 output scale, else that of ``1 / (256 * out_q.scale)``."""
    real = min(beta * in_q.scale * (1 << 26), (1 << 31) - 1.0)
    multiplier, shift = quantize_multiplier(real)
    if shift < 0:
        raise ValueError(f"softmax input scale {in_q.scale} is too small (TFLite needs >= 2**-26)")
    if out_q.scale < 2.0**-20:
        raise ValueError(f"softmax output scale {out_q.scale} is below 2**-20")
    if out_q.scale == SOFTMAX_OUTPUT.scale:
        out_m, out_s = None, 0
    else:
        out_m, out_s = quantize_multiplier(1.0 / (256.0 * out_q.scale))
    return {
        "input_multiplier": multiplier,
        "input_left_shift": shift,
        "diff_min": -int(np.floor(31.0 * (1 << 26) / (1 << shift))),
        "output_multiplier": out_m,
        "output_shift": out_s,
        "output_zp": out_q.zero_point,
    }
