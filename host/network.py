"""Quantised networks: the layer descriptions (the intermediate representation).

Their integer parameters come from `host.layer_params`; `host.inference.run_network`
executes a network, `sim.reference.golden_forward` is its specification.

A network is a directed acyclic graph in topological order: every layer names the
layers it reads in ``inputs`` (`NETWORK_INPUT` for the network's input); an empty
``inputs`` means the layer before it (or the network input for the first layer), so
a chain needs no names. The last layer is the output. Branches that rejoin meet
in an `Add` of two activations (a residual connection).

Tensors are int8 NCHW (or (batch, features)) with a per-tensor scale and zero
point; weights are int8, symmetric, per output channel; biases int32.

On the accelerator: fully connected and conv2d layers. Conv2d is lowered with
im2col on the host (dilation 1, groups 1): the patches of the whole batch form
one tall A matrix (padding uses the input zero point), so one GEMM per layer
keeps the array busy, and the hardware stays a plain GEMM engine. The input zero
point is folded into the bias (``bias - zp_in * sum(w)``), which is exactly the
TFLite sum ``sum((x - zp_in) * w) + bias``. ReLU / ReLU6 are the requantiser's
clamp. Depthwise conv2d (depth multiplier 1) runs on the accelerator too, as
block-diagonal GEMMs over groups of ``cols`` channels (`host.inference`). Max/average
pooling, global average pooling, flatten, elementwise Add (TFLite's int8 Add, of a
constant or of two activations) and softmax run on the host in int8.
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
    "Add",
    "DepthwiseConv2D",
    "GlobalAvgPool2D",
    "Softmax",
    "QNetwork",
    "NETWORK_INPUT",
    "SOFTMAX_OUTPUT",
]

#: The name under which layers refer to the network's input.
NETWORK_INPUT = "<input>"


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
    inputs: tuple[str, ...] = ()
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
    inputs: tuple[str, ...] = ()
    kind = "conv2d"


@dataclass
class DepthwiseConv2D:
    """Depthwise convolution, depth multiplier 1: weight int8 (C, 1, KH, KW), bias int32
    (C,); output channel c is input channel c convolved with its own kernel."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    w_scale: np.ndarray
    out: QuantParams
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    activation: str = "none"
    inputs: tuple[str, ...] = ()
    kind = "depthwise"


@dataclass
class MaxPool2D:
    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    inputs: tuple[str, ...] = ()
    kind = "maxpool"


@dataclass
class AvgPool2D:
    """Average over the unpadded elements of each window. ``out`` None (or the input's
    quantisation): TFLite AVERAGE_POOL_2D, the same quantisation in and out; another
    ``out``: the mean is requantised (`sim.golden.avg_pool_requant`)."""

    name: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    out: QuantParams | None = None
    inputs: tuple[str, ...] = ()
    kind = "avgpool"


@dataclass
class GlobalAvgPool2D:
    """Mean over the whole H x W plane per channel: (B, C, H, W) -> (B, C, 1, 1), as
    `AvgPool2D` with the kernel the size of the input."""

    name: str
    out: QuantParams | None = None
    inputs: tuple[str, ...] = ()
    kind = "globalavgpool"


@dataclass
class Flatten:
    name: str
    inputs: tuple[str, ...] = ()
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
    inputs: tuple[str, ...] = ()
    kind = "add"


@dataclass
class Add:
    """Elementwise int8 Add (TFLite ADD) of two activations of the same shape, each with
    its own quantisation: the rejoin of a residual branch. ``inputs`` names both."""

    name: str
    inputs: tuple[str, ...]
    out: QuantParams
    activation: str = "none"
    kind = "add2"


#: Softmax output quantisation of TFLite int8 (probability p is -128 + 256 p).
SOFTMAX_OUTPUT = QuantParams(1.0 / 256.0, -128)


@dataclass
class Softmax:
    """int8 softmax over the last axis of a (batch, features) tensor (TFLite reference
    ``Softmax``, beta 1); only as the last layer. ``out`` is TFLite's `SOFTMAX_OUTPUT`
    or any other scale at least 2**-20 (the probability is then rescaled,
    `sim.golden.softmax`)."""

    name: str
    out: QuantParams = SOFTMAX_OUTPUT
    inputs: tuple[str, ...] = ()
    kind = "softmax"


#: Layers with their own output quantisation (``out``); the others keep their input's.
_REQUANTISING = (Dense, Conv2D, DepthwiseConv2D, AddConst, Add, Softmax)


def layer_output_quant(layer, in_q: QuantParams) -> QuantParams:
    """The quantisation of ``layer``'s output given its (first) input's."""
    if isinstance(layer, _REQUANTISING):
        return layer.out
    if isinstance(layer, AvgPool2D | GlobalAvgPool2D) and layer.out is not None:
        return layer.out
    return in_q


@dataclass
class QNetwork:
    """An int8 network: input quantisation, input shape (without batch), layers in
    topological order (the last one is the output; see the module docstring)."""

    input: QuantParams
    input_shape: tuple[int, ...]
    layers: list = field(default_factory=list)

    def resolved_inputs(self) -> list[tuple[str, ...]]:
        """Per layer, the names of the layers it reads (`NETWORK_INPUT` for the input).

        `ValueError` for a duplicate or reserved name, an input that is not an earlier
        layer, the wrong number of inputs (`Add` two, the others one), a softmax that is
        not the last layer, or a layer no later layer reads (other than the output).
        """
        seen, used, out = {NETWORK_INPUT}, set(), []
        prev = NETWORK_INPUT
        for i, layer in enumerate(self.layers):
            name = layer.name
            if name in seen:
                raise ValueError(f"layer name {name!r} is used twice (or is reserved)")
            ins = tuple(layer.inputs) or (prev,)
            want = 2 if isinstance(layer, Add) else 1
            if len(ins) != want:
                raise ValueError(f"layer {name!r} ({layer.kind}) needs {want} input(s), got {ins}")
            for src in ins:
                if src not in seen:
                    raise ValueError(f"layer {name!r} reads {src!r}, which is not an earlier layer")
            if isinstance(layer, Softmax) and i != len(self.layers) - 1:
                raise ValueError(f"layer {name!r} (softmax) must be the last layer")
            used.update(ins)
            seen.add(name)
            out.append(ins)
            prev = name
        for layer in self.layers[:-1]:
            if layer.name not in used:
                raise ValueError(f"the output of layer {layer.name!r} is never used")
        return out

    def quant_params(self) -> dict[str, QuantParams]:
        """Quantisation of every layer's output by layer name (and of `NETWORK_INPUT`)."""
        q = {NETWORK_INPUT: self.input}
        for layer, ins in zip(self.layers, self.resolved_inputs(), strict=True):
            q[layer.name] = layer_output_quant(layer, q[ins[0]])
        return q

    @property
    def output(self) -> QuantParams:
        if not self.layers:
            return self.input
        return self.quant_params()[self.layers[-1].name]
