"""``macforge bench``: GEMM cycles and utilization across shapes and stream widths (RTL sim);
``--networks``: the MLPerf Tiny shapes end to end, per board (`macforge.bench_networks`)."""

from __future__ import annotations

import argparse
import time

import numpy as np

from .common import (
    UsageError,
    add_sim_argument,
    check_report_path,
    config_by_name,
    sim_figures,
    write_report,
)


def add_parser(sub) -> None:
    from macforge.host.mlperf_tiny import NETWORKS

    p = sub.add_parser(
        "bench",
        help="measure GEMM utilization vs shape and stream width; --networks: MLPerf Tiny",
        description="Without --networks: cycles and utilization of GEMMs over shapes and "
        "stream widths. With --networks: the four MLPerf Tiny shapes quantised by "
        "onnxruntime, cycles per inference on the RTL for --config, and per board (its own "
        "preset) latency, link bytes and time at its baud, inferences/s and weights on chip.",
    )
    p.add_argument("--config", default="default", help="preset name (default: default)")
    p.add_argument(
        "--bus",
        default=None,
        metavar="B[,B...]",
        help="stream widths in bytes to compare (default: 4,8,16; --quick: config's)",
    )
    p.add_argument("--quick", action="store_true", help="few small shapes, config's bus only")
    p.add_argument(
        "--networks",
        action="store_true",
        help="benchmark the MLPerf Tiny networks (all four unless --network is given)",
    )
    p.add_argument(
        "--network",
        action="append",
        choices=list(NETWORKS),
        metavar="NAME",
        help=f"with --networks: only this network (repeatable; one of {', '.join(NETWORKS)})",
    )
    p.add_argument(
        "--raw", action="store_true", help="store raw int32 accumulators (no requantisation)"
    )
    add_sim_argument(p, gate_level=False)
    p.add_argument("--report", metavar="FILE", help="write figures as JSON")
    p.set_defaults(func=run)


def _shapes(cfg, quick: bool) -> list[tuple[int, int, int]]:
    r, c = cfg.rows, cfg.cols
    if quick:
        return [(1, 1, 1), (r, 2 * r, c), (2 * r, 4 * r, 2 * c)]
    out = [(1, 1, 1), (r, 1, c), (r, r, c), (r, 8 * r, c)]
    out += [(s * r, s * r, s * c) for s in (2, 4, 8)]
    out += [(8 * r + 3, 8 * r - 5, 8 * c + 1)]
    return out


def run(args: argparse.Namespace) -> int:
    from macforge.host.compiler import Requant, compile_gemm
    from macforge.host.runtime import run_many
    from macforge.sim.transport import SimTransport

    if args.networks or args.network:
        return run_networks(args)
    base = config_by_name(args.config)
    check_report_path(args)
    if args.bus is None:
        buses = [base.bus_bytes] if args.quick else [4, 8, 16]
    else:
        try:
            buses = [int(x) for x in args.bus.split(",")]
        except ValueError:
            raise UsageError(f"--bus must be comma-separated integers, got {args.bus!r}") from None
    rng = np.random.default_rng(0)
    shapes = _shapes(base, args.quick)
    rows = []
    t0 = time.monotonic()
    print(
        f"macforge bench: config '{base.name}' ({base.rows}x{base.cols}), "
        f"stream widths {buses} bytes"
    )
    print(
        f"  {'bus':>4} {'M':>5} {'K':>5} {'N':>5} {'cycles':>8} {'MACs':>9} {'util':>6} "
        f"{'busy':>6} {'stalls':>6}"
    )
    for bus in buses:
        try:
            cfg = base.replace(bus_bytes=bus, name=f"{base.name}-w{bus}")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        programs = []
        for m, k, n in shapes:
            if k > cfg.max_k:
                continue
            a = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
            b = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
            if args.raw:
                programs.append(compile_gemm(cfg, a, b))
            else:
                rq = Requant(np.full(n, 1 << 30), np.full(n, -8))
                programs.append(compile_gemm(cfg, a, b, bias=np.zeros(n, np.int32), requant=rq))
        results = run_many(programs, SimTransport(cfg, simulator=args.sim))
        for prog, res in zip(programs, results, strict=True):
            util = cfg.utilization(prog.macs, res.cycles)
            k = prog.macs // (prog.m * prog.n)
            rows.append(
                {
                    "bus_bytes": bus,
                    "m": prog.m,
                    "k": k,
                    "n": prog.n,
                    "cycles": res.cycles,
                    "macs": prog.macs,
                    "utilization": util,
                    "busy_cycles": res.counters["busy"],
                    "stall_cycles": res.counters["stalls"],
                }
            )
            print(
                f"  {bus:>4} {prog.m:>5} {k:>5} {prog.n:>5} {res.cycles:>8} "
                f"{prog.macs:>9} {util:>6.3f} {res.counters['busy']:>6} "
                f"{res.counters['stalls']:>6}",
                flush=True,
            )
    write_report(
        args.report,
        {
            "config": base.name,
            "rows": base.rows,
            "cols": base.cols,
            "peak_macs_per_cycle": base.peak_macs_per_cycle,
            "output": "int32" if args.raw else "int8",
            "results": rows,
            "wall_seconds": time.monotonic() - t0,
        },
    )
    return 0


def run_networks(args: argparse.Namespace) -> int:
    """``--networks``: `macforge.bench_networks` on the RTL and on every board's preset."""
    from macforge.fpga.boards import BOARDS
    from macforge.host.mlperf_tiny import NETWORKS

    from . import bench_networks as bn
    from .common import sim_transport

    if not args.networks:
        raise UsageError("--network needs --networks")
    for opt, given in (("--bus", args.bus), ("--quick", args.quick), ("--raw", args.raw)):
        if given:
            raise UsageError(f"{opt} applies to the GEMM bench, not to --networks")
    cfg = config_by_name(args.config)
    check_report_path(args)
    names = list(dict.fromkeys(args.network)) if args.network else list(NETWORKS)
    transport = sim_transport(args, cfg)
    t0 = time.monotonic()
    print(
        f"macforge bench --networks: {', '.join(names)} on config '{cfg.name}' "
        f"({cfg.rows}x{cfg.cols}) in RTL simulation ({transport.simulator}), batch 1; "
        f"boards {', '.join(BOARDS)} with their own presets",
        flush=True,
    )
    with bn.workdir() as tmp:
        try:
            runs = bn.prepare_networks(names, tmp, progress=lambda m: print(m, flush=True))
            results = bn.bench_networks(
                runs,
                cfg,
                lambda name: transport,
                list(BOARDS.values()),
                progress=lambda m: print(m, flush=True),
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    print()
    for line in bn.format_table(results, cfg):
        print(line)
    for note in bn.NOTES:
        print(f"  {note}")
    exact = all(r["golden_match"] is not False for r in results)
    write_report(
        args.report,
        {
            "config": cfg.name,
            "rows": cfg.rows,
            "cols": cfg.cols,
            "peak_macs_per_cycle": cfg.peak_macs_per_cycle,
            "simulator": transport.simulator,
            "batch": 1,
            "networks": results,
            "golden_match": exact,
            "wall_seconds": time.monotonic() - t0,
            **sim_figures(transport),
        },
    )
    return 0 if exact else 1
