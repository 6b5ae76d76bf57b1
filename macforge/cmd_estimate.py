"""``macforge estimate``: predicted cycles of a GEMM or an int8 ONNX model, no simulator.

The analytical model (`sim.perfmodel`) follows the compiled program through the
accelerator's blocks in milliseconds of Python; its cycles are what ``macforge matmul``
/ ``run`` measure on the RTL (README, "Performance model", gives the measured error).
"""

from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path

from .common import (
    UsageError,
    check_baud,
    check_fits_board,
    check_report_path,
    config_by_name,
    write_report,
)

#: Largest batch ``--batch`` accepts.
MAX_BATCH = 65536
#: Largest M x K x N ``--gemm`` compiles (the program's words are built in Python).
MAX_GEMM_MACS = 2**31


def add_parser(sub) -> None:
    from macforge.fpga.boards import BOARDS

    p = sub.add_parser(
        "estimate",
        help="predict cycles, utilization, latency and link time (analytical model, no sim)",
        description="Cycles per layer and in total of a GEMM (--gemm MxKxN) or an "
        "onnxruntime-quantised int8 ONNX model, from the compiled program and the config "
        "alone. With --board (or --freq) also the latency at that clock, and the wire "
        "time over the board's UART (or --baud).",
    )
    p.add_argument("model", nargs="?", metavar="MODEL.onnx", help="int8 ONNX model")
    p.add_argument("--gemm", metavar="MxKxN", help="one GEMM instead of a model, e.g. 64x64x64")
    p.add_argument("--raw", action="store_true", help="--gemm: raw int32 results (default: int8)")
    p.add_argument(
        "--batch", type=int, default=1, help="model: inputs per inference batch (default 1)"
    )
    p.add_argument(
        "--config",
        default=None,
        help="preset name (default: the --board's own preset, else 'default')",
    )
    p.add_argument(
        "--board",
        choices=list(BOARDS),
        default=None,
        help="give latency at the board's clock and link time at its serial rate",
    )
    p.add_argument("--freq", type=float, default=None, help="clock in MHz (default: the board's)")
    p.add_argument("--baud", type=int, default=None, help="serial rate (default: the board's)")
    p.add_argument("--report", metavar="FILE", help="write figures as JSON")
    p.set_defaults(func=run)


def _parse_gemm(text: str) -> tuple[int, int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise UsageError(f"--gemm must be MxKxN with positive integers, got {text!r}")
    m, k, n = (int(g) for g in match.groups())
    if min(m, k, n) < 1:
        raise UsageError(f"--gemm dimensions must be positive, got {text!r}")
    if m * k * n > MAX_GEMM_MACS:
        raise UsageError(f"--gemm {m}x{k}x{n} is larger than this command estimates (2**31 MACs)")
    return m, k, n


def _clock_and_baud(args, cfg, board) -> tuple[float | None, int | None]:
    """The clock (Hz) for latency and the serial rate for link time, or None each."""
    if args.freq is not None and not (math.isfinite(args.freq) and 1 <= args.freq <= 500):
        raise UsageError(f"--freq must be a clock in MHz between 1 and 500, got {args.freq:g}")
    if args.baud is not None:
        check_baud(args.baud)
    clk = args.freq * 1e6 if args.freq is not None else (board.clk_hz if board else None)
    baud = args.baud
    if baud is None and board:
        try:
            baud = board.default_baud(round(clk))
        except ValueError as exc:
            raise UsageError(f"--freq: {exc} (give --baud)") from None
    return clk, baud


def _check_inputs(args):
    """Every option checked before any work; returns (config, board, clock, baud)."""
    from macforge.fpga.boards import board_by_name

    if (args.model is None) == (args.gemm is None):
        raise UsageError("give either MODEL.onnx or --gemm MxKxN")
    board = board_by_name(args.board) if args.board else None
    if args.config is None:
        cfg = board.default_config() if board else config_by_name("default")
    else:
        cfg = config_by_name(args.config)
    if board:
        check_fits_board(cfg, board)
    if args.gemm is not None:
        args.shape = _parse_gemm(args.gemm)
        if args.shape[1] > cfg.max_k:
            raise UsageError(
                f"K = {args.shape[1]} exceeds max_k = {cfg.max_k} of config {cfg.name}"
            )
        if args.batch != 1:
            raise UsageError("--batch applies to a model, not to --gemm")
    else:
        if args.raw:
            raise UsageError("--raw applies to --gemm only")
        if not 1 <= args.batch <= MAX_BATCH:
            raise UsageError(f"--batch must be in [1, {MAX_BATCH}], got {args.batch}")
        if not Path(args.model).is_file():
            raise UsageError(f"cannot read ONNX model {args.model!r}: file not found")
    check_report_path(args, inputs=(args.model,) if args.model else ())
    clk, baud = _clock_and_baud(args, cfg, board)
    return cfg, board, clk, baud


def _seconds(cycles: int | None, clk: float | None) -> float | None:
    return None if cycles is None or clk is None else cycles / clk


def run(args: argparse.Namespace) -> int:
    from macforge.sim import perfmodel

    cfg, board, clk, baud = _check_inputs(args)
    t0 = time.monotonic()
    if args.gemm is not None:
        m, k, n = args.shape
        try:
            program = perfmodel.gemm_program(cfg, m, k, n, raw=args.raw)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        est = perfmodel.estimate_program(program)
        layer = perfmodel.LayerEstimate(
            name="gemm",
            kind="gemm",
            where="accelerator",
            cycles=est.cycles,
            macs=est.macs,
            utilization=est.utilization,
            output_shape=(m, n),
            m=m,
            k=k,
            n=n,
            estimate=est,
        )
        if baud is not None:
            from macforge.host.runtime import program_segment

            seg = program_segment(program)
            layer.link = perfmodel.link_seconds([len(seg.words)], seg.results, cfg.bus_bytes, baud)
        net = perfmodel.NetworkEstimate(
            config=cfg.name,
            batch=1,
            layers=[layer],
            cycles=est.cycles,
            macs=est.macs,
            peak_macs_per_cycle=cfg.peak_macs_per_cycle,
            utilization=est.utilization,
            link_seconds=layer.link.seconds if layer.link else None,
        )
        what = f"GEMM {m}x{k}x{n} ({'int32' if args.raw else 'int8'} out)"
    else:
        from macforge.host.onnx_import import import_onnx

        try:
            network = import_onnx(args.model).network
            net = perfmodel.estimate_network(network, cfg, batch=args.batch, baud=baud)
        except (ValueError, OSError) as exc:
            raise UsageError(str(exc)) from None
        what = f"{args.model}, batch {args.batch}"
    model_seconds = time.monotonic() - t0
    _print(cfg, board, clk, baud, what, net)
    report = {
        "config": cfg.name,
        "board": board.name if board else None,
        "clock_mhz": clk / 1e6 if clk else None,
        "baud": baud,
        "model": str(args.model) if args.model else None,
        "batch": net.batch,
        "cycles": net.cycles,
        "macs": net.macs,
        "peak_macs_per_cycle": net.peak_macs_per_cycle,
        "utilization": net.utilization,
        "latency_us": None if clk is None else 1e6 * net.cycles / clk,
        "link_seconds": net.link_seconds,
        "layers": [_layer_row(layer, clk) for layer in net.layers],
        "model_seconds": model_seconds,
    }
    if args.gemm is not None:
        est = net.layers[0].estimate
        report.update(m=m, k=k, n=n, output_dtype="int32" if args.raw else "int8")
        report["estimate"] = est.to_dict()
    write_report(args.report, report)
    return 0


def _layer_row(layer, clk) -> dict:
    """Report row of one layer (`sim.perfmodel.LayerEstimate` plus its latency)."""
    row = {
        "name": layer.name,
        "kind": layer.kind,
        "where": layer.where,
        "m": layer.m,
        "k": layer.k,
        "n": layer.n,
        "cycles": layer.cycles,
        "macs": layer.macs,
        "utilization": layer.utilization,
        "latency_us": None if _seconds(layer.cycles, clk) is None else 1e6 * layer.cycles / clk,
        "link_seconds": layer.link.seconds if layer.link else None,
        "link_bytes": layer.link.bytes_sent + layer.link.bytes_received if layer.link else None,
    }
    if layer.estimate is not None:
        row["phases"] = layer.estimate.phases
        row["waits"] = layer.estimate.waits
        row["busy"] = layer.estimate.busy
        row["stalls"] = layer.estimate.stalls
    return row


def _print(cfg, board, clk, baud, what, net) -> None:
    print(
        f"macforge estimate: {what} on config '{cfg.name}' ({cfg.rows}x{cfg.cols}, "
        f"{cfg.bus_bytes}-byte streams, {cfg.pp_lanes} {cfg.pp_mul} requantiser lane(s))"
    )
    clock = f" at {clk / 1e6:g} MHz" + (f" ({board.name})" if board else "") if clk else ""
    print(
        f"  {'layer':<10} {'kind':<8} {'M x K x N':>16} {'cycles':>9} {'MACs':>10} "
        f"{'util':>6} {'latency':>11} {'link':>10}"
    )
    for layer in net.layers:
        if layer.where != "accelerator":
            print(f"  {layer.name:<10} {layer.kind:<8} {'(host)':>16}")
            continue
        shape = f"{layer.m}x{layer.k}x{layer.n}" if layer.m else "?"
        lat = f"{1e6 * layer.cycles / clk:.1f} us" if clk else "-"
        link = f"{1e3 * layer.link.seconds:.2f} ms" if layer.link else "-"
        print(
            f"  {layer.name:<10} {layer.kind:<8} {shape:>16} {layer.cycles:>9} {layer.macs:>10} "
            f"{layer.utilization:>6.3f} {lat:>11} {link:>10}"
        )
    print(
        f"  total: {net.cycles} cycles, {net.macs} MACs, utilization "
        f"{net.utilization:.3f} of {cfg.peak_macs_per_cycle} MACs/cycle"
    )
    if clk:
        print(f"  latency{clock}: {1e6 * net.cycles / clk:.1f} us of compute")
    else:
        print("  latency: needs a clock (--board NAME or --freq MHZ)")
    if baud:
        print(
            f"  link at {baud / 1e6:g} Mbaud: {1e3 * net.link_seconds:.2f} ms on the wire "
            "(frames, ACKs and result frames; USB latency excluded)"
        )
    else:
        print("  link time: needs a serial rate (--board NAME or --baud B)")
