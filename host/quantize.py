"""Post-training int8 quantisation of a float network (numpy weights).

* Weights: symmetric, per output channel, int8 in [-127, 127]
  (``scale[n] = max|w[n]| / 127``).
* Activations: asymmetric int8 from the min/max seen on calibration data
  (the range always includes 0, so 0.0 is exactly representable).
* Biases: int32, ``round(b / (input_scale * weight_scale[n]))``.
* Max/avg pooling and flatten keep their input's quantisation.

The requantiser multipliers and shifts follow from these scales when the
network is lowered (`host.layer_params.gemm_params`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernels import out_size
from .network import (
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    QNetwork,
    QuantParams,
)

__all__ = ["FloatDense", "FloatConv2D", "float_forward", "activation_params", "quantize_network"]


@dataclass
class FloatDense:
    name: str
    weight: np.ndarray  #: (N, K)
    bias: np.ndarray  #: (N,)
    activation: str = "none"


@dataclass
class FloatConv2D:
    name: str
    weight: np.ndarray  #: (O, C, KH, KW)
    bias: np.ndarray  #: (O,)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    activation: str = "none"


def _act(x, activation):
    if activation == "relu":
        return np.maximum(x, 0)
    if activation == "relu6":
        return np.clip(x, 0, 6)
    return x


def _pool(x, kernel, stride, pads, op):
    b, c, h, w = x.shape
    ho = out_size(h, kernel[0], stride[0], pads[0], pads[2])
    wo = out_size(w, kernel[1], stride[1], pads[1], pads[3])
    fill = -np.inf if op == "max" else np.nan
    xp = np.full((b, c, h + pads[0] + pads[2], w + pads[1] + pads[3]), fill)
    xp[:, :, pads[0] : pads[0] + h, pads[1] : pads[1] + w] = x
    wins = np.stack(
        [
            xp[
                :,
                :,
                i : i + stride[0] * (ho - 1) + 1 : stride[0],
                j : j + stride[1] * (wo - 1) + 1 : stride[1],
            ]
            for i in range(kernel[0])
            for j in range(kernel[1])
        ]
    )
    return wins.max(axis=0) if op == "max" else np.nanmean(wins, axis=0)


def float_forward(layers, x: np.ndarray, record: list | None = None) -> np.ndarray:
    """Float reference forward pass; appends every layer's output to ``record``."""
    x = np.asarray(x, dtype=np.float64)
    for layer in layers:
        if isinstance(layer, FloatDense):
            x = _act(x.reshape(x.shape[0], -1) @ layer.weight.T + layer.bias, layer.activation)
        elif isinstance(layer, FloatConv2D):
            o, c, kh, kw = layer.weight.shape
            b, _, h, w = x.shape
            t, le, bo, r = layer.pads
            xp = np.zeros((b, c, h + t + bo, w + le + r))
            xp[:, :, t : t + h, le : le + w] = x
            sh, sw = layer.stride
            ho, wo = out_size(h, kh, sh, t, bo), out_size(w, kw, sw, le, r)
            y = np.zeros((b, o, ho, wo))
            for i in range(kh):
                for j in range(kw):
                    patch = xp[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
                    y += np.einsum("bchw,oc->bohw", patch, layer.weight[:, :, i, j])
            x = _act(y + layer.bias[None, :, None, None], layer.activation)
        elif isinstance(layer, MaxPool2D):
            x = _pool(x, layer.kernel, layer.stride, layer.pads, "max")
        elif isinstance(layer, AvgPool2D):
            x = _pool(x, layer.kernel, layer.stride, layer.pads, "avg")
        elif isinstance(layer, Flatten):
            x = x.reshape(x.shape[0], -1)
        else:
            raise ValueError(f"unsupported float layer {layer!r}")
        if record is not None:
            record.append(x)
    return x


def activation_params(lo: float, hi: float) -> QuantParams:
    """Asymmetric int8 parameters covering [lo, hi] (widened to include 0)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-12:
        hi = lo + 1e-6
    scale = (hi - lo) / 255.0
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return QuantParams(scale, zp)


def _weights(w: np.ndarray):
    flat = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    scale = np.where(flat > 0, flat / 127.0, 1.0)
    shape = (-1,) + (1,) * (w.ndim - 1)
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def quantize_network(layers, calibration: np.ndarray) -> QNetwork:
    """Post-training quantisation; ``calibration`` is float input data (batch first)."""
    calibration = np.asarray(calibration, dtype=np.float64)
    record: list = []
    float_forward(layers, calibration, record)
    in_q = activation_params(calibration.min(), calibration.max())
    q = in_q
    out_layers = []
    for layer, y in zip(layers, record, strict=True):
        if isinstance(layer, FloatDense | FloatConv2D):
            wq, ws = _weights(layer.weight)
            out_q = activation_params(y.min(), y.max())
            bias = np.round(layer.bias / (q.scale * ws))
            bias = np.clip(bias, -(2**31), 2**31 - 1).astype(np.int32)
            if isinstance(layer, FloatDense):
                out_layers.append(Dense(layer.name, wq, bias, ws, out_q, layer.activation))
            else:
                out_layers.append(
                    Conv2D(
                        layer.name, wq, bias, ws, out_q, layer.stride, layer.pads, layer.activation
                    )
                )
            q = out_q
        else:
            out_layers.append(layer)
    return QNetwork(input=in_q, input_shape=tuple(calibration.shape[1:]), layers=out_layers)
