"""``macforge demo``: the main job — a requantised int8 GEMM on the generated accelerator."""

from __future__ import annotations

import argparse
import time

import numpy as np

from .common import UsageError, config_by_name, write_report


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the main demo on the RTL accelerator")
    p.add_argument("--config", default="default", help="preset name (default: default)")
    p.add_argument(
        "--sim",
        choices=["verilator", "icarus"],
        default=None,
        help="simulator (default: $MACFORGE_SIM or verilator)",
    )
    p.add_argument("--size", type=int, default=None, help="M = K = N (default: 8x the array rows)")
    p.add_argument("--seed", type=int, default=2026, help="data seed (default 2026)")
    p.add_argument("--waves", action="store_true", help="record a VCD waveform")
    p.add_argument("--report", metavar="FILE", help="write figures as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from host.compiler import Requant, compile_gemm
    from host.kernels import quantize_multiplier
    from host.runtime import run as run_program
    from sim import golden
    from sim.transport import SimTransport

    cfg = config_by_name(args.config)
    size = args.size if args.size is not None else 8 * cfg.rows
    if not 1 <= size <= cfg.max_k:
        raise UsageError(f"--size must be in [1, {cfg.max_k}] for config {cfg.name}, got {size}")
    rng = np.random.default_rng(args.seed)
    a = rng.integers(-128, 128, size=(size, size), dtype=np.int8)
    b = rng.integers(-128, 128, size=(size, size), dtype=np.int8)
    bias = rng.integers(-(2**16), 2**16, size=size).astype(np.int32)
    mult, shift = zip(*(quantize_multiplier(s) for s in rng.uniform(2e-4, 1e-3, size)), strict=True)
    rq = Requant(mult, shift, zero_point=-3, act_min=-128, act_max=127)
    print(
        f"macforge demo: int8 GEMM {size}x{size}x{size} + bias, per-channel TFLite "
        f"requantisation (seed {args.seed})"
    )
    print(
        f"  hardware: config '{cfg.name}', {cfg.rows}x{cfg.cols} output-stationary array, "
        f"{cfg.bus_bytes}-byte command/result streams"
    )
    print(
        "  generating Verilog, compiling the simulator (first run ~1 min, then cached) ...",
        flush=True,
    )
    t0 = time.monotonic()
    program = compile_gemm(cfg, a, b, bias=bias, requant=rq)
    transport = SimTransport(cfg, simulator=args.sim, waves=args.waves)
    res = run_program(program, transport)
    want = golden.requantize(
        golden.matmul(a, b, acc_bits=cfg.acc_width),
        bias,
        rq.multiplier,
        rq.shift,
        rq.zero_point,
        rq.act_min,
        rq.act_max,
    )
    exact = bool(np.array_equal(res.output, want))
    util = program.macs / (res.cycles * cfg.peak_macs_per_cycle)
    c = res.counters
    print(
        f"  simulator        : {transport.simulator} (build {transport.build_seconds:.1f} s, "
        f"run {transport.sim_seconds:.1f} s)"
    )
    print(
        f"  program          : {len(program.words)} command words -> "
        f"{program.result_words} result words, {len(program.tiles)} tiles"
    )
    print(f"  cycles           : {res.cycles} (first command word in .. last result word out)")
    print(
        f"  utilization      : {util:.3f} ({program.macs} MACs / "
        f"{cfg.peak_macs_per_cycle} per cycle)"
    )
    print(f"  counters         : busy {c['busy']}, stalls {c['stalls']}, macs {c['macs']}")
    print(f"  C[0, :8]         : {res.output[0, :8].tolist()}")
    print(f"  golden[0, :8]    : {want[0, :8].tolist()}")
    print(
        f"  result check     : "
        f"{'PASS: bit-exact with sim.golden' if exact else 'FAIL: differs from sim.golden'}"
    )
    if transport.last_waveform:
        print(f"  waveform         : {transport.last_waveform}")
    write_report(
        args.report,
        {
            "config": cfg.name,
            "simulator": transport.simulator,
            "m": size,
            "k": size,
            "n": size,
            "cycles": res.cycles,
            "macs": program.macs,
            "peak_macs_per_cycle": cfg.peak_macs_per_cycle,
            "utilization": util,
            "bit_exact": exact,
            "counters": c,
            "wall_seconds": time.monotonic() - t0,
        },
    )
    return 0 if exact else 1
