"""``macforge build``: bitstream for a board with YoWASP tools, plus a JSON report."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from .common import UsageError, config_by_name, write_report


def add_parser(sub) -> None:
    from fpga.boards import BOARDS

    p = sub.add_parser("build", help="build a bitstream for a board (yosys/nextpnr via YoWASP)")
    p.add_argument("--board", required=True, choices=list(BOARDS), help="target board")
    p.add_argument("--config", default=None, help="preset name (default: the board's own)")
    p.add_argument(
        "--freq",
        type=float,
        default=None,
        metavar="MHZ",
        help="clock of the design (default: the board's; iCE40 boards make other rates "
        "with the PLL, ECP5 boards run at the oscillator)",
    )
    p.add_argument("--baud", type=int, default=None, help="serial rate (default 115200)")
    p.add_argument("--build-dir", default=None, help="output folder (default build/<board>)")
    p.add_argument("--report", metavar="FILE", help="write figures as JSON")
    p.add_argument("--program", action="store_true", help="load the bitstream onto the board")
    p.set_defaults(func=run)


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
    from fpga.boards import board_by_name
    from fpga.build import BuildError, build

    board = board_by_name(args.board)
    cfg = config_by_name(args.config) if args.config else board.default_config()
    clk_hz = round(args.freq * 1e6) if args.freq is not None else board.clk_hz
    if clk_hz != board.osc_hz:
        if board.family != "ice40":
            raise UsageError(
                f"--freq {clk_hz / 1e6:g} MHz: board {board.name} runs at its "
                f"{board.osc_hz / 1e6:g} MHz oscillator (ECP5 PLL not supported)"
            )
        from fpga.clocks import ice40_pll_params

        try:
            ice40_pll_params(board.osc_hz, clk_hz)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if cfg.target not in ("generic", board.target):
        raise UsageError(
            f"config {cfg.name} is for target {cfg.target}, board {board.name} is {board.target}"
        )
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
            baud=args.baud,
            clk_hz=clk_hz,
            progress=lambda msg: print(f"  {msg}", flush=True),
        )
    except BuildError as exc:
        write_report(args.report, {"board": board.name, "config": cfg.name, "error": str(exc)})
        print(f"macforge build: error: {exc}")
        return 1
    r = result.report
    print(f"  bitstream: {result.bitstream}")
    print(
        f"  LUTs {r['luts']}/{r['luts_total']}, DSPs {r['dsps']}/{r['dsps_total']}, "
        f"BRAMs {r['brams']}/{r['brams_total']}, Fmax {r.get('fmax_mhz', 0):.1f} MHz "
        f"(target {r['target_mhz']:g}), peak {r['peak_gmacs']} GMAC/s"
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
