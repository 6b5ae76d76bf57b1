"""BlockFIFO (hw/block_fifo.py) against a Python deque, with random writes and reads."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from amaranth.sim import Simulator

from macforge.hw.block_fifo import BlockFIFO
from macforge.sim import runner


@pytest.mark.parametrize("depth", [2, 3, 8])
def test_block_fifo_matches_a_queue(depth):
    seed = runner.test_seed(f"block_fifo:{depth}")
    rng = np.random.default_rng(seed)
    dut = BlockFIFO(width=13, depth=depth)
    model: deque[int] = deque()
    seen = {"max_level": 0, "out": 0}

    async def bench(ctx):
        for cycle in range(3000):
            busy_phase = (cycle // 200) % 2  # alternate write-heavy and read-heavy phases
            w_en = rng.random() < (0.8 if busy_phase else 0.3)
            r_en = rng.random() < (0.3 if busy_phase else 0.8)
            value = int(rng.integers(0, 2**13))
            ctx.set(dut.w_data, value)
            ctx.set(dut.w_en, w_en)
            ctx.set(dut.r_en, r_en)
            w_rdy, r_rdy, r_data, level = (
                ctx.get(dut.w_rdy),
                ctx.get(dut.r_rdy),
                ctx.get(dut.r_data),
                ctx.get(dut.level),
            )
            assert level <= depth + 1, f"seed {seed}"
            seen["max_level"] = max(seen["max_level"], level)
            if r_en and r_rdy:
                assert model, f"seed {seed}: read from an empty FIFO at cycle {cycle}"
                assert r_data == model.popleft(), f"seed {seed}: wrong entry at cycle {cycle}"
                seen["out"] += 1
            if w_en and w_rdy:
                model.append(value)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["max_level"] == depth + 1, "the FIFO never filled"
    assert seen["out"] > 500


def test_block_fifo_rejects_bad_parameters():
    with pytest.raises(ValueError, match="depth must be an int >= 2"):
        BlockFIFO(width=8, depth=1)
    with pytest.raises(ValueError, match="width must be a positive int"):
        BlockFIFO(width=0, depth=4)
