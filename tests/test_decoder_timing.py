"""The decoder's per-command cycle counts that the compiler plans with (`hw.decoder`'s
`LOAD_OVERHEAD_CYCLES`, `MATMUL_CYCLES`), measured in Amaranth simulation."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from macforge.host.program import cmd_load, cmd_load_params, cmd_matmul
from macforge.hw import isa
from macforge.hw.decoder import LOAD_OVERHEAD_CYCLES, MATMUL_CYCLES, CommandDecoder
from macforge.hw.presets import preset


def _cycles_per_command(cfg, commands):
    """Feed ``commands`` back to back (cmd always valid, engine always ready) and return
    the cycles between consecutive header words being taken."""
    dut = CommandDecoder(cfg)
    words = [w for cmd in commands for w in cmd] + [isa.header(isa.Opcode.NOP, 0)]
    starts = {sum(len(c) for c in commands[:i]) for i in range(len(commands) + 1)}
    taken = []

    async def bench(ctx):
        ctx.set(dut.matmul.ready, 1)
        i, cycle = 0, 0
        while i < len(words) and cycle < 10_000:
            ctx.set(dut.cmd.valid, 1)
            ctx.set(dut.cmd.payload, words[i])
            await ctx.delay(1e-9)
            if ctx.get(dut.cmd.ready):
                if i in starts:
                    taken.append(cycle)
                i += 1
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return [b - a for a, b in zip(taken, taken[1:], strict=False)]


@pytest.mark.parametrize("cfg_name", ["tiny", "default", "icebreaker"])
def test_command_cycles_match_the_planning_constants(cfg_name):
    cfg = preset(cfg_name)
    n = 5
    entries = np.zeros((n, cfg.rows), np.int8)
    load = cmd_load(isa.Opcode.LOAD_A, 0, entries, cfg.bus_bytes)
    params = cmd_load_params(0, [0] * cfg.cols, [0] * cfg.cols, [0] * cfg.cols, cfg.bus_bytes)
    mm = cmd_matmul(isa.MatmulArgs(a_addr=0, b_addr=0, k=4, flags=0))
    got = _cycles_per_command(cfg, [load, params, mm])
    assert got == [
        LOAD_OVERHEAD_CYCLES + len(load) - 3,
        LOAD_OVERHEAD_CYCLES + len(params) - 3,
        MATMUL_CYCLES,
    ]
