"""Requantizer on Amaranth's simulator vs sim.golden.requantize, with stalls and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from macforge.hw.postproc import Requantizer
from macforge.sim import golden

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


CASES = [
    # mul, mul_bits, lanes, seed, stall
    ("dsp", 4, 1, 1, 0.0),
    ("dsp", 4, 4, 2, 0.3),
    ("dsp", 4, 8, 3, 0.5),
    ("lut", 4, 1, 4, 0.0),
    ("lut", 4, 2, 5, 0.4),
    ("lut", 8, 1, 6, 0.3),
    ("lut", 2, 3, 7, 0.2),
    ("lut", 1, 1, 8, 0.5),
]


@pytest.mark.parametrize("mul, mul_bits, lanes, seed, stall", CASES)
def test_requantizer_matches_golden(mul, mul_bits, lanes, seed, stall):
    rng = np.random.default_rng(seed)
    count = 120 if mul_bits >= 2 else 60
    acc, bias, mult, shift, zp, lo, hi = _vectors(rng, count, lanes)
    # per-tile constants: the producer changes them only while nothing is in flight
    tile = rng.integers(1, 9, size=count).cumsum()
    first_of_tile = np.r_[True, tile[1:] != tile[:-1]]
    for t in range(1, count):
        if not first_of_tile[t]:
            zp[t], lo[t], hi[t] = zp[t - 1], lo[t - 1], hi[t - 1]
    want = np.stack(
        [
            golden.requantize(acc[t], bias[t], mult[t], shift[t], zp[t], lo[t], hi[t])
            for t in range(count)
        ]
    )
    dut = Requantizer(lanes=lanes, acc_width=32, tag_bits=8, mul=mul, mul_bits=mul_bits)
    got, tags, accepted = [], [], []

    async def producer(ctx):
        for t in range(count):
            while rng.random() < stall:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            if first_of_tile[t]:
                ctx.set(dut.i.valid, 0)
                while len(got) < t:
                    await ctx.tick()
                ctx.set(dut.zero_point, int(zp[t]))
                ctx.set(dut.act_min, int(lo[t]))
                ctx.set(dut.act_max, int(hi[t]))
            p = dut.i.payload
            for lane in range(lanes):
                ctx.set(p.acc[lane], int(acc[t, lane]))
                ctx.set(p.bias[lane], int(bias[t, lane]))
                ctx.set(p.mult[lane], int(mult[t, lane]))
                ctx.set(p.shift[lane], int(shift[t, lane]))
            ctx.set(p.tag, t & 0xFF)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            accepted.append(t)
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
    sim.run_until(1e-8 * (count * (dut.interval + 2) * 4 + 2000))
    assert len(got) == count
    assert tags == [t & 0xFF for t in range(count)]
    bad = [(t, got[t], want[t].tolist()) for t in range(count) if got[t] != want[t].tolist()]
    assert not bad, f"{mul}/{mul_bits} seed {seed}: first mismatches {bad[:3]}"


@pytest.mark.parametrize("mul, mul_bits", [("dsp", 4), ("lut", 4), ("lut", 8)])
def test_interval_and_latency(mul, mul_bits):
    """Back-to-back inputs with the output always ready: the first result `latency`
    cycles after its input, then one every `interval` cycles."""
    dut = Requantizer(lanes=1, mul=mul, mul_bits=mul_bits)
    accept_at, valid_at = [], []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.act_min, -128)
        ctx.set(dut.act_max, 127)
        for cycle in range(8 * dut.interval + dut.latency + 4):
            _, _, ready, valid = await ctx.tick().sample(dut.i.ready, dut.o.valid)
            if ready:
                accept_at.append(cycle)
            if valid:
                valid_at.append(cycle)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert valid_at[0] - accept_at[0] == dut.latency
    # S1 and S2 fill first, then the multiplier paces the input
    assert np.all(np.diff(accept_at[3:7]) == dut.interval)
    assert np.all(np.diff(valid_at[:5]) == dut.interval)


def test_properties_and_checks():
    assert Requantizer(lanes=2).latency == 7
    assert Requantizer(lanes=2).interval == 1
    lut = Requantizer(lanes=1, mul="lut", mul_bits=4)
    assert (lut.interval, lut.latency) == (8, 15)
    with pytest.raises(ValueError, match="mul_bits"):
        Requantizer(lanes=1, mul="lut", mul_bits=3)
    with pytest.raises(ValueError, match="mul must"):
        Requantizer(lanes=1, mul="booth")


def test_lut_mode_has_no_multiplier_cell():
    """No $mul between signals in the lut style (Yosys would map it onto SB_MAC16)."""
    from amaranth.back import rtlil

    text = rtlil.convert(Requantizer(lanes=2, mul="lut"), name="top")
    assert "cell $mul" not in text
    assert "cell $mul" in rtlil.convert(Requantizer(lanes=1, mul="dsp"), name="top")
