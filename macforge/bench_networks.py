"""``macforge bench --networks``: the four MLPerf Tiny shapes (`host.mlperf_tiny`) end to end.

Per network: MACs and parameters; cycles per inference measured on the RTL for the
chosen config (bit-exact check against `sim.golden`, and `sim.perfmodel`'s prediction
beside it); then, per board, with that board's *own* preset (`fpga.boards.Board.config`):
cycles (measured on the RTL when the preset is the chosen config, else from the
cycle-exact `sim.perfmodel`), latency at the board's clock, the bytes the runtime moves
over the UART per inference and their wire time at the board's rate, inferences per
second end to end, and whether the weights fit on chip.

What the runtime does today (and so what the link figures count): every accelerator
layer is one session of GEMM programs that loads its A (activations, im2col patches),
its B (the layer's int8 weights) and its parameter records, so the weights cross the
link on every inference; with batch 1 nothing amortises them.

Weights on chip, two answers per board:

* ``weights_resident`` -- the B buffer of the board's preset holds every accelerator
  layer's weights at once, laid out as the compiler loads them (``K`` entries of ``cols``
  int8 per group of ``cols`` output channels; a depthwise layer ``C·KH·KW`` entries).
  Only then could a weight-stationary runtime skip re-sending them.
* ``weights_fit_device`` -- the int8 weights fit in the device's on-chip RAM
  (`hw.devices.Device.memory_bits`, block RAM + SPRAM) left beside the preset's own A, B
  and parameter buffers (`AccelConfig.buffer_bits`; the UART and row FIFOs not counted,
  so this is an upper bound): a design with a weight store could keep them.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["NetworkRun", "prepare_networks", "bench_networks", "weight_entries"]

#: Calibration samples and input seeds (as tests/test_mlperf_tiny.py uses them).
CALIBRATION_SAMPLES, CALIBRATION_SEED, INPUT_SEED, WEIGHT_SEED = 32, 1, 2, 0


@dataclass
class NetworkRun:
    """One quantised reference network, ready to run."""

    name: str
    network: object  #: host.network.QNetwork
    xq: np.ndarray  #: int8 input, batch 1
    quantize_seconds: float
    extra: dict = field(default_factory=dict)


def _accel_layers(network):
    from macforge.host.network import Conv2D, Dense, DepthwiseConv2D

    return [
        layer for layer in network.layers if isinstance(layer, Dense | Conv2D | DepthwiseConv2D)
    ]


def weight_entries(network, cols: int) -> int:
    """B-buffer entries (each ``cols`` int8) that hold every accelerator layer's weights
    as the compiler loads them: dense/conv ``K·ceil(N/cols)``, depthwise ``C·KH·KW``."""
    from macforge.host.network import DepthwiseConv2D

    total = 0
    for layer in _accel_layers(network):
        w = layer.weight
        if isinstance(layer, DepthwiseConv2D):
            total += w.shape[0] * w.shape[2] * w.shape[3]
        else:
            k = int(np.prod(w.shape[1:]))
            total += k * math.ceil(w.shape[0] / cols)
    return total


def prepare_networks(names, workdir: Path, progress=print) -> list[NetworkRun]:
    """Build each reference network, quantise it once with onnxruntime (into
    ``workdir``) and import it: the cache of one command run."""
    from macforge.host.mlperf_tiny import quantize_model, reference_network
    from macforge.host.onnx_import import import_onnx

    out = []
    for name in names:
        t0 = time.monotonic()
        ref = reference_network(name, seed=WEIGHT_SEED)
        path = quantize_model(
            ref.model,
            Path(workdir) / f"{name}.onnx",
            ref.inputs(CALIBRATION_SAMPLES, CALIBRATION_SEED),
        )
        net = import_onnx(path).network
        xq = net.input.quantize(ref.inputs(1, INPUT_SEED))
        seconds = time.monotonic() - t0
        progress(f"  quantised {name} with onnxruntime in {seconds:.1f} s")
        out.append(NetworkRun(name, net, xq, seconds))
    return out


def _layer_rows(stats, model_layers) -> list[dict]:
    rows = []
    for s, m in zip(stats, model_layers, strict=True):
        rows.append(
            {
                "name": s.name,
                "kind": s.kind,
                "where": s.where,
                "cycles": s.cycles,
                "model_cycles": m.cycles,
                "macs": s.macs,
                "utilization": s.utilization,
            }
        )
    return rows


def _board_row(run: NetworkRun, board, cfg, rtl: dict | None) -> dict:
    """Figures of ``run`` on ``board`` with the board's own preset."""
    from macforge.sim.perfmodel import estimate_network

    bcfg = board.default_config()
    baud = board.default_baud()
    net = run.network
    weights = sum(layer.weight.size for layer in _accel_layers(net))
    entries = weight_entries(net, bcfg.cols)
    ram_bits = bcfg.device.memory_bits
    free_bytes = None if ram_bits is None else (ram_bits - bcfg.buffer_bits) // 8
    row = {
        "board": board.name,
        "config": bcfg.name,
        "clock_mhz": board.clk_hz / 1e6,
        "baud": baud,
        "weight_bytes": int(weights),
        "b_buffer_entries": bcfg.b_depth,
        "weight_entries": entries,
        "weights_resident": entries <= bcfg.b_depth,
        "device_free_bytes": free_bytes,
        "weights_fit_device": None if free_bytes is None else weights <= free_bytes,
    }
    try:
        est = estimate_network(net, bcfg, batch=1, baud=baud)
    except ValueError as exc:
        row.update(runs=False, error=str(exc))
        return row
    measured = rtl is not None and rtl["config"] == bcfg.name
    cycles = rtl["cycles"] if measured else est.cycles
    latency = cycles / board.clk_hz
    links = [layer.link for layer in est.layers if layer.link]
    link = sum(lk.seconds for lk in links)
    row.update(
        runs=True,
        error=None,
        cycles=cycles,
        cycles_source="rtl" if measured else "model",
        model_cycles=est.cycles,
        macs=est.macs,
        utilization=bcfg.utilization(est.macs, cycles),
        layer_utilization={
            layer.name: layer.utilization for layer in est.layers if layer.where == "accelerator"
        },
        latency_us=1e6 * latency,
        link_bytes=sum(lk.bytes_sent + lk.bytes_received for lk in links),
        link_bytes_sent=sum(lk.bytes_sent for lk in links),
        link_bytes_received=sum(lk.bytes_received for lk in links),
        link_frames=sum(lk.frames for lk in links),
        link_seconds=link,
        inferences_per_second=1.0 / (latency + link),
        compute_inferences_per_second=1.0 / latency,
    )
    return row


def bench_networks(runs: list[NetworkRun], cfg, transport_for, boards, progress=print) -> list:
    """Run every network on the RTL (``transport_for(network_name)`` gives the
    transport), check it against the golden model, estimate it with the perf model, and
    add a row per board. Returns one dict per network."""
    from macforge.host.inference import run_network
    from macforge.sim.perfmodel import estimate_network
    from macforge.sim.reference import golden_forward

    results = []
    for run in runs:
        net = run.network
        progress(f"  {run.name}: {len(net.layers)} layers on the RTL, config '{cfg.name}' ...")
        t0 = time.monotonic()
        params = sum(layer.weight.size + layer.bias.size for layer in _accel_layers(net))
        entry = {
            "network": run.name,
            "input_shape": list(net.input_shape),
            "parameters": int(params),
            "weight_bytes": int(sum(layer.weight.size for layer in _accel_layers(net))),
            "config": cfg.name,
            "quantize_seconds": run.quantize_seconds,
        }
        try:
            y, stats = run_network(net, run.xq, cfg, transport_for(run.name))
        except ValueError as exc:  # a layer the config cannot compile (e.g. K > max_k)
            from macforge.hw.presets import preset

            stats = estimate_network(net, preset("default")).layers  # MACs only
            entry.update(
                runs=False,
                error=str(exc),
                macs=sum(s.macs for s in stats),
                layers_accelerator=sum(1 for s in stats if s.where == "accelerator"),
                layers_host=sum(1 for s in stats if s.where == "host"),
                cycles=None,
                model_cycles=None,
                utilization=None,
                golden_match=None,
                layers=[],
                rtl_seconds=None,
                boards=[_board_row(run, b, cfg, None) for b in boards],
            )
            progress(f"  {run.name}: does not run on config '{cfg.name}': {exc}")
            results.append(entry)
            continue
        rtl_seconds = time.monotonic() - t0
        for s in stats:
            if s.where == "accelerator":
                progress(
                    f"    {s.name:<30} {s.kind:<9} {s.macs:>9} MACs {s.cycles:>8} cycles "
                    f"utilization {s.utilization:.3f}"
                )
        exact = bool(np.array_equal(y, golden_forward(net, run.xq)))
        model = estimate_network(net, cfg, batch=1)
        cycles = sum(s.cycles for s in stats if s.cycles)
        macs = sum(s.macs for s in stats)
        rtl = {"config": cfg.name, "cycles": cycles}
        entry.update(
            runs=True,
            error=None,
            macs=macs,
            layers_accelerator=sum(1 for s in stats if s.where == "accelerator"),
            layers_host=sum(1 for s in stats if s.where == "host"),
            cycles=cycles,
            model_cycles=model.cycles,
            utilization=cfg.utilization(macs, cycles),
            golden_match=exact,
            layers=_layer_rows(stats, model.layers),
            rtl_seconds=rtl_seconds,
            boards=[_board_row(run, b, cfg, rtl) for b in boards],
        )
        progress(
            f"  {run.name}: {cycles} cycles on the RTL (model {model.cycles}), utilization "
            f"{entry['utilization']:.3f}, {'bit-exact with golden' if exact else 'GOLDEN MISMATCH'}"
            f", {rtl_seconds:.1f} s"
        )
        results.append(entry)
    return results


#: Printed under the table: what each column means.
NOTES = (
    "cycles per inference (batch 1); src: rtl = measured on the RTL, model = sim.perfmodel "
    "(cycle-exact against the RTL)",
    "link: bytes over the UART per inference (commands, activations, weights and parameters, "
    "the weights re-sent every inference; frames, ACKs and results included), link time: "
    "at the board's baud, USB latency excluded",
    "inf/s = 1 / (latency + link time); weights resident: every layer's weights fit in the "
    "preset's B buffer at once / RAM: in the device RAM beside the preset's buffers",
)


def format_table(results: list[dict], cfg) -> list[str]:
    """The summary printed at the end (and shown in the README)."""
    lines = [
        f"  {'network':<17} {'MACs':>10} {'params':>8} {cfg.name + ' cycles':>16} {'util':>5}",
    ]
    for r in results:
        if not r["runs"]:
            lines.append(
                f"  {r['network']:<17} {r['macs']:>10} {r['parameters']:>8}  does not run: "
                f"{r['error']}"
            )
            continue
        lines.append(
            f"  {r['network']:<17} {r['macs']:>10} {r['parameters']:>8} {r['cycles']:>16} "
            f"{r['utilization']:>5.3f}"
        )
    lines.append("")
    lines.append(
        f"  {'network':<17} {'board (preset)':<24} {'cycles':>9} {'src':<5} {'util':>5} "
        f"{'latency':>10} {'link':>10} {'link time':>10} {'inf/s':>7} {'resident / RAM':<14}"
    )
    for r in results:
        for b in r["boards"]:
            where = f"{b['board']} ({b['config']})"
            fit = (
                f"{'yes' if b['weights_resident'] else 'no'} / "
                f"{'yes' if b['weights_fit_device'] else 'no'}"
            )
            if not b["runs"]:
                lines.append(f"  {r['network']:<17} {where:<24} does not run: {b['error']}")
                continue
            lines.append(
                f"  {r['network']:<17} {where:<24} {b['cycles']:>9} {b['cycles_source']:<5} "
                f"{b['utilization']:>5.3f} {b['latency_us']:>7.0f} us {b['link_bytes']:>8} B "
                f"{b['link_seconds']:>8.2f} s {b['inferences_per_second']:>7.3f} {fit}"
            )
    return lines


def workdir():
    """A temporary folder for the quantised models (removed when the command ends)."""
    return tempfile.TemporaryDirectory(prefix="macforge-bench-")
