"""Quantised networks: layer descriptions, lowering to GEMM programs, and execution.

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

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from macforge.hw.config import AccelConfig

from .compiler import Requant, compile_gemm
from .kernels import (
    add_int8,
    add_params,
    avg_pool_int8,
    im2col,
    max_pool_int8,
    quantize_multiplier,
)
from .runtime import Transport, run

__all__ = [
    "QuantParams",
    "Dense",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "Flatten",
    "AddConst",
    "add_layer_params",
    "QNetwork",
    "LayerStats",
    "gemm_params",
    "run_network",
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


@dataclass(frozen=True)
class LayerStats:
    name: str
    kind: str
    where: str  #: "accelerator" or "host"
    cycles: int | None
    macs: int
    utilization: float | None
    output_shape: tuple[int, ...]


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


def _check_bias_range(name: str, bias: np.ndarray) -> np.ndarray:
    if bias.min() < -(2**31) or bias.max() > 2**31 - 1:
        raise ValueError(f"{name}: folded bias exceeds int32")
    return bias.astype(np.int32)


def run_network(
    network: QNetwork,
    x: np.ndarray,
    config: AccelConfig,
    transport: Transport,
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, list[LayerStats]]:
    """Run int8 input ``x`` (batch first) through ``network``; GEMMs on the accelerator.

    ``transport`` runs one program per accelerator layer.
    Returns the int8 output and per-layer statistics.
    """
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"network input must be int8, got {x.dtype}")
    if tuple(x.shape[1:]) != tuple(network.input_shape):
        raise ValueError(
            f"network input must have shape (batch, {network.input_shape}), got {x.shape}"
        )
    q = network.input
    stats: list[LayerStats] = []
    for layer in network.layers:
        started = time.monotonic()
        if isinstance(layer, Dense | Conv2D):
            mult, shift, bias, zp, lo, hi = gemm_params(layer, q)
            if isinstance(layer, Dense):
                a = x.reshape(x.shape[0], -1)
                if a.shape[1] != layer.weight.shape[1]:
                    raise ValueError(
                        f"{layer.name}: expects {layer.weight.shape[1]} inputs, got {a.shape[1]}"
                    )
                w2 = layer.weight
            else:
                a, (ho, wo) = im2col(
                    x, layer.weight.shape[2:], layer.stride, layer.pads, q.zero_point
                )
                w2 = layer.weight.reshape(layer.weight.shape[0], -1)
            folded = _check_bias_range(
                layer.name, bias - q.zero_point * w2.astype(np.int64).sum(axis=1)
            )
            program = compile_gemm(
                config,
                a,
                np.ascontiguousarray(w2.T),
                bias=folded,
                requant=Requant(mult, shift, zp, lo, hi),
            )
            res = run(program, transport)
            out = res.output
            if isinstance(layer, Conv2D):
                out = out.reshape(x.shape[0], ho, wo, -1).transpose(0, 3, 1, 2)
            util = config.utilization(program.macs, res.cycles) if res.cycles else None
            stats.append(
                LayerStats(
                    layer.name,
                    layer.kind,
                    "accelerator",
                    res.cycles,
                    program.macs,
                    util,
                    tuple(out.shape[1:]),
                )
            )
            x, q = np.ascontiguousarray(out), layer.out
        else:
            if isinstance(layer, MaxPool2D):
                x = max_pool_int8(x, layer.kernel, layer.stride, layer.pads)
            elif isinstance(layer, AvgPool2D):
                x = avg_pool_int8(x, layer.kernel, layer.stride, layer.pads)
            elif isinstance(layer, Flatten):
                x = x.reshape(x.shape[0], -1)
            elif isinstance(layer, AddConst):
                x = add_int8(x, layer.const[None], add_layer_params(layer, q))
                q = layer.out
            else:
                raise ValueError(f"unsupported layer {layer!r}")
            stats.append(
                LayerStats(layer.name, layer.kind, "host", None, 0, None, tuple(x.shape[1:]))
            )
        if progress:
            progress(
                f"{layer.name} ({layer.kind}) -> {tuple(x.shape[1:])} "
                f"in {time.monotonic() - started:.1f} s"
            )
    return x, stats
