"""The bulk harness of `sim.bulk`, replayed in Amaranth's own simulator.

`run_program_words` drives the `Accelerator` exactly as the Verilog harness
does — the same xorshift sequence, the same idle / back-pressure decisions,
the same hang and extra-result checks, the same cycle stamps — but in
``amaranth.sim``, which never sees the generated Verilog. Equal inputs must
give equal result words and equal cycle counts in both simulators; the tests
check that. The Python simulator is slow (a few thousand cycles per second on
small configs): it is a second opinion, not the workhorse.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from amaranth.sim import Simulator

from macforge.hw.accelerator import Accelerator
from macforge.hw.config import AccelConfig
from macforge.sim.bulk import HANG_CYCLES, PROB_ONE, TAIL_CYCLES

__all__ = ["AmaranthRun", "run_program_words", "xorshift32"]

MASK32 = 0xFFFFFFFF


def xorshift32(x: int) -> int:
    """One step of the harness's generator (13, 17, 5)."""
    x ^= (x << 13) & MASK32
    x ^= x >> 17
    x ^= (x << 5) & MASK32
    return x


@dataclass
class AmaranthRun:
    """What a harness run returns: the result words with their delivery cycles, the
    acceptance cycle of every command word, and the cycles simulated."""

    results: list[int]
    deliver: list[int]
    accept: list[int]
    sim_cycles: int
    seconds: float


class SimulationHang(RuntimeError):
    """Nothing moved for `HANG_CYCLES` cycles while work remained, or an extra result."""


def run_program_words(
    config: AccelConfig,
    words: Sequence[int],
    n_results: int,
    *,
    seed: int = 1,
    idle: int = 0,
    stall: int = 0,
    vcd: Path | None = None,
) -> AmaranthRun:
    """Feed ``words`` and collect ``n_results`` result words as `sim.bulk`'s harness does
    (``idle`` / ``stall`` in 1/`PROB_ONE` units); ``vcd`` records a waveform there."""
    if not (0 <= idle < PROB_ONE and 0 <= stall < PROB_ONE):
        raise ValueError(f"idle and stall must be in [0, {PROB_ONE})")
    dut = Accelerator(config)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    out = AmaranthRun([], [], [], 0, 0.0)
    problem: list[str] = []

    async def bench(ctx):
        n_words = len(words)
        wi = ri = cycle = quiet = tail = 0
        idle_now = stall_now = False
        rnd = (seed & MASK32) or 1
        while True:
            all_moved = wi >= n_words and ri >= n_results
            if problem:  # an extra result ends the run at once, as in the harness
                break
            if (tail == TAIL_CYCLES) if all_moved else (quiet == HANG_CYCLES):
                if not all_moved:
                    problem.append(f"hang at cycle {cycle} (words accepted {wi}, results {ri})")
                break
            cmd_valid = wi < n_words and not idle_now
            res_ready = (not stall_now) or ri >= n_results
            ctx.set(dut.cmd.valid, cmd_valid)
            ctx.set(dut.cmd.payload, words[wi] if wi < n_words else 0)
            ctx.set(dut.res.ready, res_ready)
            _, _, cmd_ready, res_valid, payload = await ctx.tick().sample(
                dut.cmd.ready, dut.res.valid, dut.res.payload
            )
            cmd_fire = cmd_valid and cmd_ready
            res_fire = res_valid and res_ready
            if not cmd_valid or cmd_ready:
                idle_now = wi + int(cmd_fire) < n_words and not idle_now and (rnd >> 16) < idle
            stall_now = (rnd & 0xFFFF) < stall
            rnd = xorshift32(rnd)
            if cmd_fire:
                out.accept.append(cycle)
                wi += 1
            if res_fire:
                if ri < n_results:
                    out.results.append(int(payload))
                    out.deliver.append(cycle)
                    ri += 1
                else:
                    problem.append(f"extra result word after the last expected one ({cycle})")
            quiet = 0 if (cmd_fire or res_fire) else quiet + 1
            tail = tail + 1 if all_moved else 0
            cycle += 1
        out.sim_cycles = cycle

    sim.add_testbench(bench)
    started = time.monotonic()
    if vcd is not None:
        with sim.write_vcd(str(vcd)):
            sim.run()
    else:
        sim.run()
    out.seconds = time.monotonic() - started
    if problem:
        raise SimulationHang(problem[0])
    return out
