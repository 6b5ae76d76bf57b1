"""``macforge`` command line. Bad input: one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["main"]

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not a usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _config(name: str):
    from hw.config import preset

    try:
        return preset(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _write_report(path: str | None, report: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"report written to {path}")


def cmd_verilog(args: argparse.Namespace) -> int:
    from amaranth.back import verilog

    from hw.array import SystolicArray
    from sim.tiled import array_toplevel_name

    cfg = _config(args.config)
    out = Path(args.output)
    if out.parent and not out.parent.exists():
        raise UsageError(f"output folder {str(out.parent)!r} does not exist")
    text = verilog.convert(
        SystolicArray(cfg), name=args.name or array_toplevel_name(cfg), emit_src=False
    )
    out.write_text(text)
    print(f"wrote {out} ({cfg.rows}x{cfg.cols} array, config {cfg.name}, {len(text)} bytes)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import numpy as np

    from sim import golden
    from sim.tiled import run_tiled_matmul

    cfg = _config(args.config)
    m, k, n = args.m, args.k, args.n
    for label, v in (("--m", m), ("--k", k), ("--n", n)):
        if v < 1:
            raise UsageError(f"{label} must be >= 1, got {v}")
    if k > cfg.max_k:
        raise UsageError(f"--k {k} exceeds max_k = {cfg.max_k} of config {cfg.name}")
    rng = np.random.default_rng(args.seed)
    a = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
    b = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    print(
        f"macforge demo: C = A @ B with A {m}x{k}, B {k}x{n} (int8, seed {args.seed}) "
        f"on the {cfg.rows}x{cfg.cols} array of config '{cfg.name}'"
    )
    print("  building and simulating the RTL (first run compiles the model) ...", flush=True)
    t0 = time.monotonic()
    res = run_tiled_matmul(cfg, a, b, simulator=args.sim, waves=args.waves, seed=args.seed)
    want = golden.matmul(a, b, acc_bits=cfg.acc_width)
    exact = bool(np.array_equal(res.c, want))
    macs = m * k * n
    tiles = -(-m // cfg.rows) * -(-n // cfg.cols)
    util = macs / (res.cycles * cfg.peak_macs_per_cycle)
    print(
        f"  simulator        : {res.simulator} (build {res.build_seconds:.1f} s, "
        f"run {res.sim_seconds:.1f} s)"
    )
    print(f"  tiles            : {tiles} ({cfg.rows}x{cfg.cols} outputs each, K = {k})")
    print(f"  cycles           : {res.cycles} (first slice in .. last row out)")
    print(
        f"  MACs             : {macs} -> utilization {util:.3f} of {cfg.peak_macs_per_cycle}/cycle"
    )
    print(f"  C[0, :4]         : {res.c[0, :4].tolist()}  golden {want[0, :4].tolist()}")
    print(f"  result check     : {'PASS: bit-exact with sim.golden' if exact else 'FAIL'}")
    if res.waveform:
        print(f"  waveform         : {res.waveform}")
    _write_report(
        args.report,
        {
            "config": cfg.name,
            "simulator": res.simulator,
            "m": m,
            "k": k,
            "n": n,
            "cycles": res.cycles,
            "macs": macs,
            "peak_macs_per_cycle": cfg.peak_macs_per_cycle,
            "utilization": util,
            "bit_exact": exact,
            "wall_seconds": time.monotonic() - t0,
        },
    )
    return 0 if exact else 1


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="macforge", description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--version", action="version", version="macforge 0.1.0")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    d = sub.add_parser("demo", help="run the main demo: a random int8 matmul on the RTL")
    d.add_argument("--config", default="default", help="preset name (default: default)")
    d.add_argument(
        "--sim",
        choices=["verilator", "icarus"],
        default=None,
        help="simulator (default: $MACFORGE_SIM or verilator)",
    )
    d.add_argument("--m", type=int, default=32, help="rows of A (default 32)")
    d.add_argument("--k", type=int, default=64, help="inner dimension (default 64)")
    d.add_argument("--n", type=int, default=32, help="columns of B (default 32)")
    d.add_argument("--seed", type=int, default=2026, help="data seed (default 2026)")
    d.add_argument("--waves", action="store_true", help="record a VCD waveform")
    d.add_argument("--report", metavar="FILE", help="write figures as JSON")
    d.set_defaults(func=cmd_demo)

    v = sub.add_parser("verilog", help="write the generated array as Verilog")
    v.add_argument("--config", default="default", help="preset name (default: default)")
    v.add_argument("-o", "--output", required=True, metavar="FILE", help="Verilog file to write")
    v.add_argument("--name", default=None, help="top-level module name")
    v.set_defaults(func=cmd_verilog)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"macforge {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("macforge: interrupted", file=sys.stderr)
        return 130
