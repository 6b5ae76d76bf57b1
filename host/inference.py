"""Executes a `host.network.QNetwork`: Dense and Conv2D layers as GEMM programs on the
accelerator (conv by im2col on the host, input zero point folded into the bias), the
other layers in int8 on the host."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from macforge.hw.config import AccelConfig

from .compiler import Requant, compile_gemm
from .kernels import add_int8, avg_pool_int8, im2col, max_pool_int8
from .layer_params import add_layer_params, gemm_params
from .network import AddConst, AvgPool2D, Conv2D, Dense, Flatten, MaxPool2D, QNetwork
from .runtime import Transport, run

__all__ = ["LayerStats", "run_network"]


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
