"""cocotb checks of the ECP5 cell models (`sim.ecp5_models`) against plain arithmetic.

The top level (`tests/test_gate_level.py` builds it) wraps one ``MULT18X18D`` with
vector ports ``a``, ``b``, ``sa``, ``sb`` -> ``p`` and one ``DP16KD`` in the 36-bit
pseudo-dual-port mode with ``waddr``, ``be``, ``we``, ``wdata``, ``raddr``, ``re`` ->
``rdata``. ``MACFORGE_TEST_SEED`` seeds the random vectors.
"""

from __future__ import annotations

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


@cocotb.test()
async def mult18x18d_equals_multiplication(dut):
    rng = random.Random(int(os.environ.get("MACFORGE_TEST_SEED", "1")))
    edges = [0, 1, 0x1FFFF, 0x20000, 0x3FFFF, 0x7F, 0x80]
    cases = [(a, b, sa, sb) for a in edges for b in edges for sa in (0, 1) for sb in (0, 1)]
    cases += [
        (rng.getrandbits(18), rng.getrandbits(18), rng.getrandbits(1), rng.getrandbits(1))
        for _ in range(2000)
    ]
    for a, b, sa, sb in cases:
        dut.a.value, dut.b.value, dut.sa.value, dut.sb.value = a, b, sa, sb
        await Timer(1, unit="ns")
        x = _signed(a, 18) if sa else a
        y = _signed(b, 18) if sb else b
        want = (x * y) & ((1 << 36) - 1)
        got = int(dut.p.value)
        assert got == want, f"a={a:#x} b={b:#x} signed {sa}{sb}: {got:#x} != {want:#x}"


@cocotb.test()
async def dp16kd_equals_memory(dut):
    rng = random.Random(int(os.environ.get("MACFORGE_TEST_SEED", "1")) + 1)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    mem = [0] * 512
    dut.we.value = 0
    dut.re.value = 0
    await RisingEdge(dut.clk)
    expect = None
    for _ in range(3000):
        waddr = rng.randrange(512)
        raddr = waddr if rng.random() < 0.2 else rng.randrange(512)
        we, re_, be = rng.getrandbits(1), rng.getrandbits(1), rng.getrandbits(4)
        wdata = rng.getrandbits(36)
        dut.waddr.value, dut.raddr.value, dut.we.value, dut.re.value = waddr, raddr, we, re_
        dut.be.value, dut.wdata.value = be, wdata
        await RisingEdge(dut.clk)
        await ReadOnly()
        new_expect = mem[raddr] if re_ else expect  # read of the old contents
        if we:
            for i in range(4):
                if be >> i & 1:
                    field = ((1 << 9) - 1) << (9 * i)
                    mem[waddr] = (mem[waddr] & ~field) | (wdata & field)
        expect = new_expect
        if expect is not None:
            got = int(dut.rdata.value)
            assert got == expect, f"read {raddr}: {got:#x} != {expect:#x}"
        await Timer(1, unit="ns")
