"""Quantised networks: the layer descriptions (the intermediate representation).

Their integer parameters come from `host.layer_params`; `host.inference.run_network`
executes a network.

Tensors are int8 NCHW (or (batch, features)) with a per-tensor scale and zero
point; weights are int8, symmetric, per output channel; biases int32.

On the accelerator: fully connected and conv2d layers. Conv2d is lowered with
im2col on the host (dilation 1, groups 1): the patches of the whole batch form
one tall A matrix (padding uses the input zero point), so one GEMM per layer
keeps the array busy, and the hardware stays a plain GEMM engine. The input zero
point is folded into the bias (``bias - zp_in * sum(w)``), which is exactly the
TFLite sum ``sum((x - zp_in) * w) + bias``. ReLU / ReLU6 are the requantiser's
clamp. Max/average pooling, flatten and elementwise Add (TFLite's int8 Add with
a constant operand) run on the host in int8.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "QuantParams",
    "Dense",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "Flatten",
    "AddConst",
    "QNetwork",
]


@dataclass(frozen=True)
class QuantParams:
    """real = scale * (q - zero_point), q int8."""

    scale: float
    zero_point: int

    def __post_init__(self):
        if not self.scale > 0:
            raise ValueError(f"scale must be positive, got {self.scale}")
        if not -128 <= self.zero_point <= 127:
            raise ValueError(f"int8 zero point must be in [-128, 127], got {self.zero_point}")

    def quantize(self, x: np.ndarray) -> np.ndarray:
        q = np.round(np.asarray(x, dtype=np.float64) / self.scale) + self.zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (np.asarray(q, dtype=np.float64) - self.zero_point) * self.scale


@dataclass
class Dense:
    """Fully connected: weight int8 (N, K), bias int32 (N,), per-channel weight scales."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    w_scale: np.ndarray
    out: QuantParams
    activation: str = "none"  #: "none", "relu" or "relu6" (a clamp)
    kind = "dense"


@dataclass
class Conv2D:
    """Convolution: weight int8 (O, C, KH, KW), bias int32 (O,), pads (top, left, bottom, right)."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    w_scale: np.ndarray
    out: QuantParams
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    activation: str = "none"
    kind = "conv2d"


@dataclass
class MaxPool2D:
    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    kind = "maxpool"


@dataclass
class AvgPool2D:
    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    kind = "avgpool"


@dataclass
class Flatten:
    name: str
    kind = "flatten"


@dataclass
class AddConst:
    """Elementwise int8 Add (TFLite) of the activation and a constant int8 tensor
    broadcast over the batch (e.g. a per-feature bias), with its own quantisation."""

    name: str
    const: np.ndarray
    const_q: QuantParams
    out: QuantParams
    activation: str = "none"
    kind = "add"


@dataclass
class QNetwork:
    """An int8 network: input quantisation, input shape (without batch), layers."""

    input: QuantParams
    input_shape: tuple[int, ...]
    layers: list = field(default_factory=list)

    @property
    def output(self) -> QuantParams:
        q = self.input
        for layer in self.layers:
            if isinstance(layer, Dense | Conv2D | AddConst):
                q = layer.out
        return q
