"""``macforge matmul``: one int8 GEMM on the accelerator (RTL simulation), checked and reported."""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from macforge.host.serial import DEFAULT_BAUD

from .common import (
    UsageError,
    add_sim_argument,
    check_baud,
    check_output_path,
    check_report_path,
    config_by_name,
    load_array,
    save_array,
    sim_figures,
    sim_transport,
    write_report,
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "matmul",
        help="C = A @ B (+ bias, requantised) on the accelerator in RTL simulation",
        description="A int8 (M x K), B int8 (K x N); with --multiplier/--shift the output is "
        "requantised to int8 (TFLite), else it is the raw int32 accumulator.",
    )
    p.add_argument("a", metavar="A.npy", help="int8 M x K")
    p.add_argument("b", metavar="B.npy", help="int8 K x N")
    p.add_argument("-o", "--output", required=True, metavar="C.npy", help="result file")
    p.add_argument("--bias", metavar="BIAS.npy", help="int32 (N,), needs requantisation")
    p.add_argument("--multiplier", metavar="M.npy", help="int32 (N,) Q31 multipliers")
    p.add_argument("--shift", metavar="S.npy", help="int32 (N,) shifts, positive = left")
    p.add_argument("--zero-point", type=int, default=0, help="output zero point (default 0)")
    p.add_argument("--act-min", type=int, default=-128, help="clamp low (default -128)")
    p.add_argument("--act-max", type=int, default=127, help="clamp high (default 127)")
    p.add_argument("--config", default="default", help="preset name (default: default)")
    add_sim_argument(p)
    p.add_argument("--waves", action="store_true", help="record a VCD waveform")
    p.add_argument(
        "--port",
        default=None,
        help="run on a board at this serial port instead "
        "of simulating (e.g. /dev/ttyUSB1); --config must match its bitstream",
    )
    p.add_argument(
        "--baud",
        type=int,
        default=None,
        help=f"serial rate with --port (the build report's baud; default {DEFAULT_BAUD})",
    )
    p.add_argument("--report", metavar="FILE", help="write figures as JSON")
    p.set_defaults(func=run)


def _check_link_options(args) -> None:
    """``--baud`` only with ``--port`` and within range; simulator options not with it."""
    if not args.port:
        if args.baud is not None:
            raise UsageError("--baud applies to a board (--port) only")
        return
    sim_opts = [
        o
        for o, on in (
            ("--sim", args.sim),
            ("--waves", args.waves),
            ("--gate-level", args.gate_level),
        )
        if on
    ]
    if sim_opts:
        raise UsageError(f"{'/'.join(sim_opts)} select a simulation; they do not apply with --port")
    if args.baud is None:
        args.baud = DEFAULT_BAUD
    check_baud(args.baud)


def _load_operands(args):
    """Operands and flags as the compiler takes them; shapes and value ranges are checked
    by `host.compiler.compile_gemm` (its `ValueError` becomes the one-line usage error)."""
    a = load_array(args.a, "A", dtype=np.int8, ndim=2)
    b = load_array(args.b, "B", dtype=np.int8, ndim=2)
    requant = None
    bias = None
    if (args.multiplier is None) != (args.shift is None):
        raise UsageError("--multiplier and --shift go together")
    if args.multiplier is not None:
        from macforge.host.compiler import Requant

        mult = load_array(args.multiplier, "multiplier", dtype=np.int32, ndim=1)
        shift = load_array(args.shift, "shift", dtype=np.int32, ndim=1)
        requant = Requant(mult, shift, args.zero_point, args.act_min, args.act_max)
        if args.bias is not None:
            bias = load_array(args.bias, "bias", dtype=np.int32, ndim=1)
    elif args.bias is not None:
        raise UsageError("--bias needs --multiplier and --shift (raw int32 output has no bias)")
    elif (args.zero_point, args.act_min, args.act_max) != (0, -128, 127):
        raise UsageError("--zero-point/--act-min/--act-max need --multiplier and --shift")
    return a, b, bias, requant


def run(args: argparse.Namespace) -> int:
    from macforge.host.compiler import compile_gemm
    from macforge.host.runtime import run as run_program
    from macforge.sim import golden

    cfg = config_by_name(args.config)
    inputs = (args.a, args.b, args.bias, args.multiplier, args.shift)
    out = check_output_path(args.output, inputs=inputs)
    check_report_path(args, inputs=inputs, outputs=(args.output,))
    _check_link_options(args)
    a, b, bias, requant = _load_operands(args)
    m, k = a.shape
    n = b.shape[1]
    try:
        program = compile_gemm(cfg, a, b, bias=bias, requant=requant)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        if args.port:
            from macforge.host.serial import SerialTransport

            if "://" not in args.port and not os.path.exists(args.port):
                raise UsageError(f"serial port {args.port!r} not found")
            try:
                transport = SerialTransport(args.port, config=cfg, baud=args.baud)
                transport.check_open()
            except RuntimeError as exc:  # LinkError: the port cannot be opened
                raise UsageError(str(exc)) from None
            where = f"board at {args.port}"
        else:
            transport = sim_transport(args, cfg, waves=args.waves)
            where = transport.simulator + (" gate-level" if transport.netlist else "")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(
        f"macforge matmul: {m}x{k} @ {k}x{n} on config '{cfg.name}' "
        f"({cfg.rows}x{cfg.cols}, {where}) ...",
        flush=True,
    )
    t0 = time.monotonic()
    try:
        result = run_program(program, transport)
    except RuntimeError as exc:  # LinkError, AcceleratorError: one line, not a traceback
        print(f"macforge matmul: error: {exc}", file=sys.stderr)
        return 1
    if result.cycles is None:  # a board: use the hardware's own cycle counter
        result.cycles = result.counters["cycles"]
    acc = golden.matmul(a, b, acc_bits=cfg.acc_width)
    want = (
        acc
        if requant is None
        else golden.requantize(
            acc,
            bias if bias is not None else np.zeros(n, np.int32),
            requant.multiplier,
            requant.shift,
            requant.zero_point,
            requant.act_min,
            requant.act_max,
        )
    )
    exact = bool(np.array_equal(result.output, want))
    save_array(out, result.output)
    if result.status and result.status.get("saturated"):
        print(
            "  note: the requantiser saturated some values to int32 (acc + bias, or a left "
            "shift; STATUS saturated) — outputs follow TFLite's saturating arithmetic"
        )
    util = cfg.utilization(program.macs, result.cycles)
    print(
        f"  wrote {out} ({result.output.dtype}, {m}x{n}); golden check: "
        f"{'bit-exact' if exact else 'MISMATCH'}"
    )
    print(
        f"  cycles {result.cycles}, MACs {program.macs}, utilization {util:.3f} "
        f"of {cfg.peak_macs_per_cycle} MACs/cycle"
    )
    sim = sim_figures(transport)
    if sim:
        print(
            f"  simulated {sim['sim_cycles']} cycles in {sim['sim_seconds']:.2f} s "
            f"({sim['sim_cycles_per_second'] or 0:.0f} cycles/s)"
        )
    waveform = getattr(transport, "last_waveform", None)
    if waveform:
        print(f"  waveform: {waveform}")
    write_report(
        args.report,
        {
            "config": cfg.name,
            "simulator": where,
            "m": m,
            "k": k,
            "n": n,
            "output_dtype": str(result.output.dtype),
            "cycles": result.cycles,
            "macs": program.macs,
            "peak_macs_per_cycle": cfg.peak_macs_per_cycle,
            "utilization": util,
            "bus_bytes": cfg.bus_bytes,
            "golden_match": exact,
            "counters": result.counters,
            "status": result.status,
            "command_words": len(program.words),
            "result_words": program.result_words,
            "wall_seconds": time.monotonic() - t0,
            **sim,
        },
    )
    return 0 if exact else 1
