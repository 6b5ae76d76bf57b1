"""Golden forward pass of a `host.network.QNetwork`, layer by layer with `sim.golden` kernels.

The integer requantisation parameters of each layer come from `host.layer_params`
(they are an input to the contract); every arithmetic step is `sim.golden`'s. The
network is walked as the DAG it is (`QNetwork.resolved_inputs`).
"""

from __future__ import annotations

import numpy as np

from macforge.host.layer_params import (
    add2_layer_params,
    add_layer_params,
    avg_pool_params,
    gemm_params,
    softmax_params,
)
from macforge.host.network import (
    NETWORK_INPUT,
    Add,
    AddConst,
    AvgPool2D,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Flatten,
    GlobalAvgPool2D,
    MaxPool2D,
    QNetwork,
    QuantParams,
    Softmax,
    layer_output_quant,
)
from macforge.sim import golden

__all__ = ["golden_forward", "golden_layer", "golden_add"]


def _avg(x, kernel, stride, pads, in_q: QuantParams, out_q: QuantParams | None):
    if out_q is None or out_q == in_q:
        return golden.avg_pool(x, kernel, stride, pads)
    mult, shift = avg_pool_params(in_q, out_q, kernel[0] * kernel[1])
    return golden.avg_pool_requant(
        x, kernel, stride, pads, in_q.zero_point, mult, shift, out_q.zero_point
    )


def golden_layer(layer, xs: list[np.ndarray], qs: list[QuantParams]) -> np.ndarray:
    """One layer on its int8 inputs ``xs`` (quantised ``qs``), per the golden kernels."""
    x, q = xs[0], qs[0]
    if isinstance(layer, Dense | Conv2D | DepthwiseConv2D):
        mult, shift, bias, zp, lo, hi = gemm_params(layer, q)
        if isinstance(layer, Dense):
            return golden.fully_connected(
                x.reshape(x.shape[0], -1), layer.weight, bias, q.zero_point, mult, shift, zp, lo, hi
            )
        conv = golden.conv2d if isinstance(layer, Conv2D) else golden.depthwise_conv2d
        return conv(
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
    if isinstance(layer, MaxPool2D):
        return golden.max_pool(x, layer.kernel, layer.stride, layer.pads)
    if isinstance(layer, AvgPool2D):
        return _avg(x, layer.kernel, layer.stride, layer.pads, q, layer.out)
    if isinstance(layer, GlobalAvgPool2D):
        return _avg(x, x.shape[2:], (1, 1), (0, 0, 0, 0), q, layer.out)
    if isinstance(layer, Flatten):
        return x.reshape(x.shape[0], -1)
    if isinstance(layer, AddConst):
        return golden_add(x, layer.const[None], add_layer_params(layer, q))
    if isinstance(layer, Add):
        if xs[0].shape != xs[1].shape:
            raise ValueError(f"{layer.name}: operand shapes differ: {xs[0].shape} {xs[1].shape}")
        return golden_add(xs[0], xs[1], add2_layer_params(layer, qs[0], qs[1]))
    if isinstance(layer, Softmax):
        if x.ndim != 2:
            raise ValueError(f"{layer.name}: softmax needs a (batch, features) input")
        p = softmax_params(q, layer.out)
        return golden.softmax(
            x,
            p["input_multiplier"],
            p["input_left_shift"],
            p["diff_min"],
            p["output_zp"],
            p["output_multiplier"],
            p["output_shift"],
        )
    raise ValueError(f"unsupported layer {layer!r}")


def golden_forward(
    network: QNetwork, x: np.ndarray, record: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """int8 input (batch first) -> int8 output, per the TFLite int8 reference kernels.

    ``record``, if given, receives every layer's int8 output by layer name.
    """
    values = {NETWORK_INPUT: (np.asarray(x), network.input)}
    for layer, ins in zip(network.layers, network.resolved_inputs(), strict=True):
        xs = [values[n][0] for n in ins]
        qs = [values[n][1] for n in ins]
        y = golden_layer(layer, xs, qs)
        values[layer.name] = (y, layer_output_quant(layer, qs[0]))
        if record is not None:
            record[layer.name] = y
    return values[network.layers[-1].name][0] if network.layers else np.asarray(x)


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
