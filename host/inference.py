"""Executes a `host.network.QNetwork` (a DAG, walked in its topological order): Dense,
Conv2D and DepthwiseConv2D layers as GEMM programs on the accelerator (conv by im2col on
the host, input zero point folded into the bias), the other layers in int8 on the host.

Depthwise convolution (depth multiplier 1) is mapped onto the GEMM engine: channels
are taken in groups of ``cols`` (the array's width); a group's patches form an
M x (G·KH·KW) A matrix and its kernels a block-diagonal (G·KH·KW) x G B matrix (column
g holds channel g's taps in rows g·KH·KW.., zeros elsewhere), one requantised GEMM per
group, all groups of a layer in one transport session. Every column of the array is
busy but only 1 in G of the products is useful (the others multiply zeros), so the
layer's utilization is at most 1/cols of a dense conv's: the array shares each A
value along a row, while a depthwise output needs its own input channel per column.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from macforge.hw.config import AccelConfig

from .compiler import Requant, compile_gemm
from .kernels import (
    add_int8,
    avg_pool_int8,
    avg_pool_requant_int8,
    depthwise_im2col,
    im2col,
    max_pool_int8,
    requantize_int8,
    softmax_int8,
)
from .layer_params import (
    add2_layer_params,
    add_layer_params,
    avg_pool_params,
    gemm_params,
    softmax_params,
)
from .network import (
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
from .runtime import Transport, run, run_many

__all__ = ["LayerStats", "run_network", "k_chunks"]


@dataclass(frozen=True)
class LayerStats:
    name: str
    kind: str
    where: str  #: "accelerator" or "host"
    cycles: int | None
    macs: int
    utilization: float | None
    output_shape: tuple[int, ...]


def _check_bias_range(name: str, bias: np.ndarray) -> np.ndarray:
    if bias.min() < -(2**31) or bias.max() > 2**31 - 1:
        raise ValueError(f"{name}: folded bias exceeds int32")
    return bias.astype(np.int32)


def _gemm_layer(layer, x, q: QuantParams, config: AccelConfig, transport: Transport):
    """A Dense or Conv2D layer as one GEMM program: (int8 output, cycles, macs)."""
    mult, shift, bias, zp, lo, hi = gemm_params(layer, q)
    if isinstance(layer, Dense):
        a = x.reshape(x.shape[0], -1)
        if a.shape[1] != layer.weight.shape[1]:
            raise ValueError(
                f"{layer.name}: expects {layer.weight.shape[1]} inputs, got {a.shape[1]}"
            )
        w2 = layer.weight
    else:
        if x.ndim != 4 or x.shape[1] != layer.weight.shape[1]:
            raise ValueError(
                f"{layer.name}: expects (batch, {layer.weight.shape[1]}, H, W) input, got {x.shape}"
            )
        a, (ho, wo) = im2col(x, layer.weight.shape[2:], layer.stride, layer.pads, q.zero_point)
        w2 = layer.weight.reshape(layer.weight.shape[0], -1)
    folded = _check_bias_range(layer.name, bias - q.zero_point * w2.astype(np.int64).sum(axis=1))
    b = np.ascontiguousarray(w2.T)
    if a.shape[1] > config.max_k:
        out, cycles = _split_k_gemm(
            a, b, folded, Requant(mult, shift, zp, lo, hi), config, transport
        )
        macs = a.shape[0] * a.shape[1] * b.shape[1]
    else:
        program = compile_gemm(config, a, b, bias=folded, requant=Requant(mult, shift, zp, lo, hi))
        res = run(program, transport)
        out, cycles, macs = res.output, res.cycles, program.macs
    if isinstance(layer, Conv2D):
        out = out.reshape(x.shape[0], ho, wo, -1).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out), cycles, macs


def _session_cycles(results) -> int | None:
    """Cycles of a layer's programs run in one session (None when a transport has none)."""
    cycles = [r.cycles for r in results]
    return sum(cycles) if all(c is not None for c in cycles) else None


def k_chunks(k: int, max_k: int) -> list[slice]:
    """``ceil(k / max_k)`` slices of 0..k, as equal as possible, none longer than max_k."""
    n = -(-k // max_k)
    edges = [round(i * k / n) for i in range(n + 1)]
    return [slice(lo, hi) for lo, hi in zip(edges, edges[1:], strict=False)]


def _split_k_gemm(a, b, bias, rq: Requant, config: AccelConfig, transport: Transport):
    """A GEMM whose K exceeds the config's ``max_k`` (the reduction its accumulator is
    proven for): raw int32 GEMMs over K chunks of at most ``max_k`` in one session, their
    partial sums added exactly on the host, then bias and the TFLite output stage on the
    host (`kernels.requantize_int8`). Returns (int8 output, cycles of the session)."""
    programs = [compile_gemm(config, a[:, s], b[s]) for s in k_chunks(a.shape[1], config.max_k)]
    results = run_many(programs, transport)
    acc = sum(r.output.astype(np.int64) for r in results)
    out = requantize_int8(acc, bias, rq.multiplier, rq.shift, rq.zero_point, rq.act_min, rq.act_max)
    return out, _session_cycles(results)


def _depthwise_layer(layer, x, q: QuantParams, config: AccelConfig, transport: Transport):
    """A DepthwiseConv2D as block-diagonal GEMMs over groups of ``cols`` channels (module
    docstring): (int8 output, cycles, useful macs)."""
    c = layer.weight.shape[0]
    if x.ndim != 4 or x.shape[1] != c or layer.weight.shape[1] != 1:
        raise ValueError(
            f"{layer.name}: depthwise weights {layer.weight.shape} do not fit input {x.shape}"
        )
    mult, shift, bias, zp, lo, hi = gemm_params(layer, q)
    taps = layer.weight.shape[2] * layer.weight.shape[3]
    w = layer.weight.reshape(c, taps)
    folded = _check_bias_range(layer.name, bias - q.zero_point * w.astype(np.int64).sum(axis=1))
    programs, groups = [], []
    for c0 in range(0, c, config.cols):
        g = min(config.cols, c - c0)
        a, (ho, wo) = depthwise_im2col(
            x, layer.weight.shape[2:], layer.stride, layer.pads, q.zero_point, slice(c0, c0 + g)
        )
        b = np.zeros((g * taps, g), np.int8)
        for j in range(g):
            b[j * taps : (j + 1) * taps, j] = w[c0 + j]
        sl = slice(c0, c0 + g)
        programs.append(
            compile_gemm(
                config, a, b, bias=folded[sl], requant=Requant(mult[sl], shift[sl], zp, lo, hi)
            )
        )
        groups.append(sl)
    results = run_many(programs, transport)
    out = np.empty((x.shape[0], c, ho, wo), np.int8)
    for sl, res in zip(groups, results, strict=True):
        out[:, sl] = res.output.reshape(x.shape[0], ho, wo, -1).transpose(0, 3, 1, 2)
    return out, _session_cycles(results), x.shape[0] * ho * wo * c * taps


def _avg(x, kernel, stride, pads, q: QuantParams, out: QuantParams | None) -> np.ndarray:
    if out is None or out == q:
        return avg_pool_int8(x, kernel, stride, pads)
    mult, shift = avg_pool_params(q, out, kernel[0] * kernel[1])
    return avg_pool_requant_int8(x, kernel, stride, pads, q.zero_point, mult, shift, out.zero_point)


def _host_layer(layer, xs: list[np.ndarray], qs: list[QuantParams]) -> np.ndarray:
    x, q = xs[0], qs[0]
    if isinstance(layer, MaxPool2D):
        return max_pool_int8(x, layer.kernel, layer.stride, layer.pads)
    if isinstance(layer, AvgPool2D):
        return _avg(x, layer.kernel, layer.stride, layer.pads, q, layer.out)
    if isinstance(layer, GlobalAvgPool2D):
        if x.ndim != 4:
            raise ValueError(
                f"{layer.name}: global average pooling needs (B, C, H, W), got {x.shape}"
            )
        return _avg(x, x.shape[2:], (1, 1), (0, 0, 0, 0), q, layer.out)
    if isinstance(layer, Flatten):
        return x.reshape(x.shape[0], -1)
    if isinstance(layer, AddConst):
        return add_int8(x, layer.const[None], add_layer_params(layer, q))
    if isinstance(layer, Add):
        if xs[0].shape != xs[1].shape:
            raise ValueError(f"{layer.name}: operand shapes differ: {xs[0].shape} {xs[1].shape}")
        return add_int8(xs[0], xs[1], add2_layer_params(layer, qs[0], qs[1]))
    if isinstance(layer, Softmax):
        if x.ndim != 2:
            raise ValueError(
                f"{layer.name}: softmax needs a (batch, features) input, got {x.shape}"
            )
        return softmax_int8(x, softmax_params(q, layer.out))
    raise ValueError(f"unsupported layer {layer!r}")


def run_network(
    network: QNetwork,
    x: np.ndarray,
    config: AccelConfig,
    transport: Transport,
    *,
    progress: Callable[[str], None] | None = None,
    record: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[LayerStats]]:
    """Run int8 input ``x`` (batch first) through ``network``; GEMMs on the accelerator.

    ``transport`` runs the programs of each accelerator layer (one session per layer).
    Returns the int8 output and per-layer statistics; ``record``, if given, receives
    every layer's int8 output by layer name.
    """
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"network input must be int8, got {x.dtype}")
    if tuple(x.shape[1:]) != tuple(network.input_shape):
        raise ValueError(
            f"network input must have shape (batch, {network.input_shape}), got {x.shape}"
        )
    graph = network.resolved_inputs()
    last_use = {}
    for i, ins in enumerate(graph):
        for name in ins:
            last_use[name] = i
    values: dict[str, tuple[np.ndarray, QuantParams]] = {NETWORK_INPUT: (x, network.input)}
    stats: list[LayerStats] = []
    for i, (layer, ins) in enumerate(zip(network.layers, graph, strict=True)):
        started = time.monotonic()
        xs = [values[n][0] for n in ins]
        qs = [values[n][1] for n in ins]
        if isinstance(layer, Dense | Conv2D | DepthwiseConv2D):
            run_layer = _depthwise_layer if isinstance(layer, DepthwiseConv2D) else _gemm_layer
            y, cycles, macs = run_layer(layer, xs[0], qs[0], config, transport)
            util = config.utilization(macs, cycles) if cycles else None
            stats.append(
                LayerStats(
                    layer.name, layer.kind, "accelerator", cycles, macs, util, tuple(y.shape[1:])
                )
            )
        else:
            y = _host_layer(layer, xs, qs)
            stats.append(
                LayerStats(layer.name, layer.kind, "host", None, 0, None, tuple(y.shape[1:]))
            )
        values[layer.name] = (y, layer_output_quant(layer, qs[0]))
        if record is not None:
            record[layer.name] = y
        for name in ins:  # free what no later layer reads
            if last_use[name] == i:
                del values[name]
        if progress:
            progress(
                f"{layer.name} ({layer.kind}) -> {tuple(y.shape[1:])} "
                f"in {time.monotonic() - started:.1f} s"
            )
    return (values[network.layers[-1].name][0] if network.layers else x), stats
