"""ProcessingElement on Amaranth's own simulator, against Python integers."""

import random

import pytest
from amaranth.sim import Simulator

from macforge.hw.pe import ProcessingElement


def _simulate(steps, acc_width=32, multiplier="dsp"):
    """Feed (a, b, valid, first, last) per cycle; after each edge record
    (finished sum or None, a_out, b_out, valid_out, last_out)."""
    dut = ProcessingElement(input_width=8, acc_width=acc_width, multiplier=multiplier)
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
                    ctx.get(dut.acc) if ctx.get(dut.done) else None,
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


_LAT = ProcessingElement.LATENCY
_IDLE = [(0, 0, 0, 0, 0)] * _LAT


@pytest.mark.parametrize("multiplier", ["dsp", "lut"])
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_mac_sequence_matches_model(seed, multiplier):
    """Random a, b, valid, first, last: each finished sum shows `latency` edges after ``last``."""
    rng = random.Random(seed)
    steps, sums, forwarded = [], [], []
    acc = 0
    for _ in range(200):
        a, b = rng.randint(-128, 127), rng.randint(-128, 127)
        valid, first, last = rng.random() < 0.8, rng.random() < 0.1, rng.random() < 0.2
        steps.append((a, b, valid, first, last))
        if valid:
            acc = (0 if first else acc) + a * b
        sums.append(acc if valid and last else None)
        forwarded.append((a, b, int(valid), int(last and valid)))
    seen = _simulate(steps + _IDLE, multiplier=multiplier)
    # after the edge of step t the sum finished at step t - (latency - 1) is shown
    assert [s for s, *_ in seen] == [None] * (_LAT - 1) + sums + [None]
    assert [tuple(rest) for _, *rest in seen[: len(steps)]] == forwarded


def test_extreme_products():
    steps = [(-128, -128, 1, 1, 0)] + [(-128, -128, 1, 0, 0)] * 8 + [(-128, -128, 1, 0, 1)]
    assert _simulate(steps + _IDLE)[len(steps) + _LAT - 2][0] == 10 * 16384
    steps = [(-128, 127, 1, 1, 0)] + [(-128, 127, 1, 0, 1)]
    assert _simulate(steps + _IDLE)[len(steps) + _LAT - 2][0] == -2 * 16256


def test_latency_and_back_to_back():
    """Sums of back-to-back dot products appear on consecutive cycles, `latency` after ``last``."""
    steps = [(3, 4, 1, 1, 1), (5, 6, 1, 1, 0), (7, 8, 1, 0, 1), (2, 2, 1, 1, 1)] + _IDLE
    got = [s for s, *_ in _simulate(steps)]
    assert got == [None] * (_LAT - 1) + [12, None, 30 + 56, 4] + [None] * (_LAT - 1)
    assert ProcessingElement().latency == _LAT == 2


def test_rejects_bad_widths():
    with pytest.raises(ValueError, match="acc_width"):
        ProcessingElement(input_width=8, acc_width=10)
    with pytest.raises(ValueError, match="input_width"):
        ProcessingElement(input_width=1)
    with pytest.raises(ValueError, match="multiplier"):
        ProcessingElement(multiplier="sb_mac16")


def test_external_product_port():
    """``external`` PEs take the registered product from outside (e.g. an SB_MAC16)."""
    assert "product" in ProcessingElement(multiplier="external").signature.members
    assert "product" not in ProcessingElement().signature.members


@pytest.mark.parametrize("multiplier", ["dsp", "lut"])
def test_multiplier_sweep(multiplier):
    """Every b against a spread of a (incl. -128, -1, 0, 127): DSP and LUT multipliers."""
    dut = ProcessingElement(input_width=8, acc_width=16, multiplier=multiplier)
    a_values = sorted(set(range(-128, 128, 7)) | {-128, -127, -1, 0, 1, 126, 127})
    bad = []
    pairs = [(a, b) for a in a_values for b in range(-128, 128)]

    async def bench(ctx):
        # one product per cycle, each its own dot product (first = last = 1)
        for t in range(len(pairs) + _LAT - 1):
            a, b = pairs[t] if t < len(pairs) else (0, 0)
            ctx.set(dut.a_in, a)
            ctx.set(dut.b_in, b)
            ctx.set(dut.valid_in, t < len(pairs))
            ctx.set(dut.first_in, 1)
            ctx.set(dut.last_in, 1)
            await ctx.tick()
            if t >= _LAT - 1:
                a0, b0 = pairs[t - (_LAT - 1)]
                if not ctx.get(dut.done) or ctx.get(dut.acc) != a0 * b0:
                    bad.append((a0, b0, ctx.get(dut.done), ctx.get(dut.acc)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]
