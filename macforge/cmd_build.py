"""``macforge build``: bitstream for a board with YoWASP tools, plus a JSON report."""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
from pathlib import Path

from .common import UsageError, check_report_path, config_by_name, write_report

#: upper bound of ``--seeds`` (each run is a full nextpnr place and route)
MAX_SEEDS = 64


def add_parser(sub) -> None:
    from macforge.fpga.boards import BOARDS

    p = sub.add_parser("build", help="build a bitstream for a board (yosys/nextpnr via YoWASP)")
    p.add_argument("--board", required=True, choices=list(BOARDS), help="target board")
    p.add_argument("--config", default=None, help="preset name (default: the board's own)")
    p.add_argument(
        "--freq",
        type=float,
        default=None,
        metavar="MHZ",
        help="clock of the design (default: the board's); rates other than the board "
        "oscillator come from the PLL (SB_PLL40 on iCE40, EHXPLLL on ECP5)",
    )
    p.add_argument(
        "--baud",
        type=int,
        default=None,
        help="serial rate (default: the fastest the board's USB-UART takes and the clock "
        "makes within 2 %%: 3000000 at multiples of 3 MHz)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="place and route N times with different nextpnr seeds (one synthesis); the "
        "bitstream comes from the fastest, the report gives min/median/max Fmax",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        metavar="S",
        help="first nextpnr seed (default: the board's, the one its default clock was "
        "measured with)",
    )
    p.add_argument(
        "--jobs", type=int, default=2, metavar="J", help="nextpnr runs at a time (default 2)"
    )
    p.add_argument("--build-dir", default=None, help="output folder (default build/<board>)")
    p.add_argument("--report", metavar="FILE", help="write figures as JSON")
    p.add_argument("--program", action="store_true", help="load the bitstream onto the board")
    p.set_defaults(func=run)


def _check_numbers(args: argparse.Namespace) -> None:
    """One-line errors for values argparse accepts but a build cannot use."""
    if args.freq is not None and not (math.isfinite(args.freq) and 1 <= args.freq <= 500):
        raise UsageError(f"--freq must be a clock in MHz between 1 and 500, got {args.freq:g}")
    if args.baud is not None and args.baud <= 0:
        raise UsageError(f"--baud must be a positive rate, got {args.baud}")
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UsageError(f"--seeds must be in 1..{MAX_SEEDS}, got {args.seeds}")
    if args.seed is not None and not 0 <= args.seed < 2**31:
        raise UsageError(f"--seed must be in 0..{2**31 - 1}, got {args.seed}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")


def link_figures(cfg, report: dict) -> dict:
    """Link limits next to the compute peak (see `host.serial.link_estimate`)."""
    from macforge.host.serial import link_estimate

    out = link_estimate(cfg, baud=report["baud"], max_words=report["max_words"])
    macs_per_s = cfg.peak_macs_per_cycle * report["target_mhz"] * 1e6
    out["gemm64_compute_seconds"] = round(64**3 / macs_per_s, 7)
    return out


def _program(board, bitstream: Path) -> None:
    tool = shutil.which(board.programmer)
    if board.programmer == "iceprog":
        cmd = [board.programmer, str(bitstream)]
    else:
        cmd = [board.programmer, "--board", "ulx3s", str(bitstream)]
    if tool is None:
        print(f"  {board.programmer} is not installed; program the board with: {' '.join(cmd)}")
        return
    print(f"  programming: {' '.join(cmd)}")
    res = subprocess.run(cmd)
    if res.returncode:
        raise UsageError(f"{board.programmer} failed with exit code {res.returncode}")


def run(args: argparse.Namespace) -> int:
    from macforge.fpga.boards import board_by_name
    from macforge.fpga.build import BuildError, build

    board = board_by_name(args.board)
    cfg = config_by_name(args.config) if args.config else board.default_config()
    check_report_path(args)
    _check_numbers(args)
    clk_hz = round(args.freq * 1e6) if args.freq is not None else board.clk_hz
    if clk_hz != board.osc_hz:
        from macforge.fpga.clocks import ecp5_pll_params, ice40_pll_params

        search = {"ice40": ice40_pll_params, "ecp5": ecp5_pll_params}[board.family]
        try:
            clk_hz = round(search(board.osc_hz, clk_hz).f_out_hz)
        except ValueError as exc:
            raise UsageError(f"--freq: {exc}") from None
    if cfg.target not in ("generic", board.target):
        raise UsageError(
            f"config {cfg.name} is for target {cfg.target}, board {board.name} is {board.target}"
        )
    from macforge.hw.uart import divisor_for

    try:
        baud = args.baud or board.default_baud(clk_hz)
        divisor_for(clk_hz, baud)
    except ValueError as exc:
        which = "--baud" if args.baud else f"--freq {clk_hz / 1e6:g} (board default baud)"
        raise UsageError(
            f"{which}: {exc} (choose --freq a multiple of the rate, or a slower --baud)"
        ) from None
    build_dir = Path(args.build_dir or Path("build") / board.name)
    print(
        f"macforge build: board {board.name} ({board.device}), config {cfg.name} "
        f"({cfg.rows}x{cfg.cols}, {cfg.dsps} DSPs), {clk_hz / 1e6:g} MHz -> {build_dir}"
    )
    try:
        result = build(
            board,
            cfg,
            build_dir=build_dir,
            baud=baud,
            clk_hz=clk_hz,
            seeds=args.seeds,
            seed=args.seed,
            jobs=args.jobs,
            progress=lambda msg: print(f"  {msg}", flush=True),
        )
    except BuildError as exc:
        write_report(args.report, {"board": board.name, "config": cfg.name, "error": str(exc)})
        print(f"macforge build: error: {exc}")
        return 1
    r = result.report
    r.update(link_figures(cfg, r))
    print(f"  bitstream: {result.bitstream} (clock: {r['clock_source']})")
    print(
        f"  LUTs {r['luts']}/{r['luts_total']}, DSPs {r['dsps']}/{r['dsps_total']}, "
        f"BRAMs {r['brams']}/{r['brams_total']}, Fmax {r.get('fmax_mhz', 0):.1f} MHz "
        f"(target {r['target_mhz']:g}), peak {r['peak_gmacs']} GMAC/s"
    )
    if len(r["seeds"]) > 1:
        print(
            f"  Fmax over seeds {r['seeds']}: min {r['fmax_mhz_min']:.1f}, median "
            f"{r['fmax_mhz_median']:.1f}, max {r['fmax_mhz_max']:.1f} MHz "
            f"(bitstream from seed {r['seed']})"
        )
    if r.get("link_gemm64_seconds") is not None:
        print(
            f"  link {r['baud']} baud: {r['link_bytes_per_s'] / 1000:.0f} KB/s payload; "
            f"a 64x64x64 GEMM needs {r['link_gemm64_seconds']:.3g} s on the wire "
            f"({r['link_gemm64_frames']} frames) vs {r['gemm64_compute_seconds']:.2g} s "
            f"of compute at peak"
        )
    write_report(args.report, r)
    if not r["timing_met"]:
        print(
            f"macforge build: error: timing not met: clock reaches {r.get('fmax_mhz')} MHz, "
            f"needs {r['target_mhz']:g} MHz"
        )
        return 1
    if args.program:
        _program(board, result.bitstream)
    return 0
