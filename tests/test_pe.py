"""ProcessingElement on Amaranth's own simulator, against Python integers."""

import random

import pytest
from amaranth.sim import Simulator

from hw.pe import ProcessingElement


def _simulate(steps, acc_width=32):
    """Feed (a, b, valid, first, last) per cycle; return (acc-visible results, outs)."""
    dut = ProcessingElement(input_width=8, acc_width=acc_width)
    seen = []

    async def bench(ctx):
        for a, b, valid, first, last in steps:
            ctx.set(dut.a_in, a)
            ctx.set(dut.b_in, b)
            ctx.set(dut.valid_in, valid)
            ctx.set(dut.first_in, first)
            ctx.set(dut.last_in, last)
            await ctx.tick()
            seen.append(
                (
                    ctx.get(dut.result),
                    ctx.get(dut.a_out),
                    ctx.get(dut.b_out),
                    ctx.get(dut.valid_out),
                    ctx.get(dut.last_out),
                )
            )

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_mac_sequence_matches_model(seed):
    rng = random.Random(seed)
    steps, expect = [], []
    acc = result = 0
    for _ in range(200):
        a, b = rng.randint(-128, 127), rng.randint(-128, 127)
        valid, first, last = rng.random() < 0.8, rng.random() < 0.1, rng.random() < 0.2
        steps.append((a, b, valid, first, last))
        if valid:
            acc = (0 if first else acc) + a * b
            if last:
                result = acc
        expect.append((result, a, b, int(valid), int(last and valid)))
    assert _simulate(steps) == expect


def test_extreme_products():
    steps = [(-128, -128, 1, 1, 0)] + [(-128, -128, 1, 0, 0)] * 8 + [(-128, -128, 1, 0, 1)]
    assert _simulate(steps)[-1][0] == 10 * 16384
    steps = [(-128, 127, 1, 1, 0)] + [(-128, 127, 1, 0, 1)]
    assert _simulate(steps)[-1][0] == -2 * 16256


def test_rejects_bad_widths():
    with pytest.raises(ValueError, match="acc_width"):
        ProcessingElement(input_width=8, acc_width=10)
    with pytest.raises(ValueError, match="input_width"):
        ProcessingElement(input_width=1)


@pytest.mark.parametrize("use_dsp", [True, False])
def test_multiplier_sweep(use_dsp):
    """Every b against a spread of a (incl. -128, -1, 0, 127): DSP and LUT multipliers."""
    dut = ProcessingElement(input_width=8, acc_width=16, use_dsp=use_dsp)
    a_values = sorted(set(range(-128, 128, 7)) | {-128, -127, -1, 0, 1, 126, 127})
    bad = []

    async def bench(ctx):
        for a in a_values:
            for b in range(-128, 128):
                ctx.set(dut.a_in, a)
                ctx.set(dut.b_in, b)
                ctx.set(dut.valid_in, 1)
                ctx.set(dut.first_in, 1)
                ctx.set(dut.last_in, 1)
                await ctx.tick()
                if ctx.get(dut.result) != a * b:
                    bad.append((a, b, ctx.get(dut.result)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]
