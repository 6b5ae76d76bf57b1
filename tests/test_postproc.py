"""Requantizer on Amaranth's simulator vs sim.golden.requantize, with stalls and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.postproc import Requantizer
from sim import golden

I32 = (-(2**31), 2**31 - 1)


def _vectors(rng, count, lanes):
    acc = rng.integers(-(2**31), 2**31, size=(count, lanes), dtype=np.int64)
    acc[::3] = rng.integers(-20000, 20000, size=acc[::3].shape)
    acc[1::7] = I32[0]
    acc[2::7] = I32[1]
    bias = rng.integers(-(2**31), 2**31, size=(count, lanes), dtype=np.int64)
    bias[::2] = rng.integers(-3000, 3000, size=bias[::2].shape)
    mult = rng.integers(2**30, 2**31, size=(count, lanes), dtype=np.int64)
    mult[::5] = rng.integers(-(2**31), 2**31, size=mult[::5].shape)
    mult[3::11] = I32[0]
    shift = rng.integers(-31, 32, size=(count, lanes))
    shift[::2] = rng.integers(-12, 3, size=shift[::2].shape)
    zp = rng.integers(-128, 128, size=count)
    lo = rng.integers(-128, 10, size=count)
    hi = np.maximum(lo, rng.integers(-10, 128, size=count))
    # exact ties: multiplier 0.5 on odd x (SRDHM halves) and on even x whose half
    # is an exact half-step of the right shift (RoundingDivideByPOT ties), both signs
    ties = slice(5, 45)
    odd = rng.integers(-500, 500, size=acc[ties].shape) * 2 + 1
    e = rng.integers(1, 6, size=acc[ties].shape)
    halfway = (rng.integers(-50, 50, size=acc[ties].shape) * 2 + 1) << (e - 1)
    pick = rng.random(size=acc[ties].shape) < 0.5
    acc[ties] = np.where(pick, odd, 2 * halfway)
    shift[ties] = np.where(pick, 0, -e)
    bias[ties], mult[ties] = 0, 2**30
    # the single SRDHM saturation case: x == multiplier == INT32_MIN
    acc[4, 0], bias[4, 0], shift[4, 0], mult[4, 0] = I32[0], 0, 0, I32[0]
    return acc, bias, mult, shift, zp, lo, hi


@pytest.mark.parametrize("lanes, seed, stall", [(1, 1, 0.0), (4, 2, 0.3), (8, 3, 0.5)])
def test_requantizer_matches_golden(lanes, seed, stall):
    rng = np.random.default_rng(seed)
    count = 120
    acc, bias, mult, shift, zp, lo, hi = _vectors(rng, count, lanes)
    want = np.stack(
        [
            golden.requantize(acc[t], bias[t], mult[t], shift[t], zp[t], lo[t], hi[t])
            for t in range(count)
        ]
    )
    dut = Requantizer(lanes=lanes, acc_width=32, tag_bits=8)
    got, tags = [], []

    async def producer(ctx):
        for t in range(count):
            while rng.random() < stall:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            p = dut.i.payload
            for lane in range(lanes):
                ctx.set(p.acc[lane], int(acc[t, lane]))
                ctx.set(p.bias[lane], int(bias[t, lane]))
                ctx.set(p.mult[lane], int(mult[t, lane]))
                ctx.set(p.shift[lane], int(shift[t, lane]))
            ctx.set(p.zero_point, int(zp[t]))
            ctx.set(p.act_min, int(lo[t]))
            ctx.set(p.act_max, int(hi[t]))
            ctx.set(p.tag, t & 0xFF)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        while len(got) < count:
            ready = int(rng.random() >= stall)
            ctx.set(dut.o.ready, ready)
            _, _, valid, value, tag = await ctx.tick().sample(
                dut.o.valid, dut.o.payload.value, dut.o.payload.tag
            )
            if valid and ready:
                got.append([int(v) for v in value])
                tags.append(int(tag))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run_until(1e-8 * 20000)
    assert len(got) == count
    assert tags == [t & 0xFF for t in range(count)]
    bad = [(t, got[t], want[t].tolist()) for t in range(count) if got[t] != want[t].tolist()]
    assert not bad, f"seed {seed}: first mismatches {bad[:3]}"


def test_latency_property():
    assert Requantizer(lanes=2).latency == 6
