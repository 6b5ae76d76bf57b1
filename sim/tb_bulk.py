"""cocotb side of the bulk harness (`sim.bulk`): clock, reset, wait for ``done``.

Everything per cycle happens inside the simulator: this bench only starts the
clock, holds reset for three cycles and waits for the harness's ``done``. It
fails when the harness saw a hang (nothing moved for `sim.bulk.HANG_CYCLES`
cycles while work remained) or a result word beyond the expected count. It
imports nothing of macforge, so the simulator's Python starts in a blink.
"""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge


@cocotb.test()
async def run_bulk(dut):
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.done)
    cycle, wi, ri = int(dut.cycle.value), int(dut.wi.value), int(dut.ri.value)
    dut._log.info("run_bulk: %d words, %d results, %d cycles", wi, ri, cycle)
    assert not int(dut.hang.value), (
        f"hang: nothing moved for the harness's hang limit at cycle {cycle} "
        f"(words accepted {wi}, results {ri})"
    )
    assert not int(dut.extra.value), "extra result word after the last expected one"
