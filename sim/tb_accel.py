"""cocotb bench for `hw.accelerator.Accelerator`: replays command segments, records results.

Environment: ``MACFORGE_CONFIG`` (AccelConfig JSON), ``MACFORGE_IO`` (folder with
``words.bin`` + ``segments.json``, see `sim.bench_io`),
``MACFORGE_TEST_SEED``, ``MACFORGE_IDLE_PROB``, ``MACFORGE_STALL_PROB``.

The driver feeds all words in order, with a random idle cycle before a word
with probability ``IDLE_PROB``; the monitor holds ``res.ready`` low with
probability ``STALL_PROB``. A watchdog fails the run when neither side moves
for ``HANG_CYCLES`` cycles while work remains — the hardware must never hang.
Writes ``results.bin`` and ``results.json`` (per segment: result count and the
measured cycle span).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from macforge.hw.config import AccelConfig
from macforge.sim import bench_io

HANG_CYCLES = 20000


@cocotb.test()
async def run_segments(dut):
    cfg = AccelConfig.from_json(os.environ[bench_io.ENV_CONFIG])
    io = Path(os.environ[bench_io.ENV_IO])
    seed = int(os.environ.get(bench_io.ENV_TEST_SEED, "1"))
    idle_p = float(os.environ.get(bench_io.ENV_IDLE_PROB, "0"))
    stall_p = float(os.environ.get(bench_io.ENV_STALL_PROB, "0"))
    dut._log.info(
        "run_segments: seed %d idle %.2f stall %.2f (replay with MACFORGE_SEED=%d)",
        seed,
        idle_p,
        stall_p,
        seed,
    )
    rng = random.Random(seed)
    nb = cfg.bus_bytes
    words, segments = bench_io.read_segments(io, nb)

    # absolute word / result indices of each segment's measured span
    marks = bench_io.measure_marks(segments)
    total_results = sum(seg["results"] for seg in segments)

    dut.cmd__valid.value = 0
    dut.cmd__payload.value = 0
    dut.res__ready.value = 0
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    results: list[int] = []
    accept_cycle: dict[int, int] = {}
    deliver_cycle: dict[int, int] = {}
    wanted_words = {m[0] for m in marks if m}
    wanted_results = {m[1] for m in marks if m}
    wi = 0
    cycle = 0
    quiet = 0
    idle_now = False
    while wi < len(words) or len(results) < total_results:
        # drive phase
        if wi < len(words):
            if not idle_now and idle_p and rng.random() < idle_p:
                idle_now = True
            else:
                idle_now = False
            dut.cmd__valid.value = 0 if idle_now else 1
            dut.cmd__payload.value = words[wi]
        else:
            dut.cmd__valid.value = 0
        ready = 0 if (stall_p and rng.random() < stall_p) else 1
        dut.res__ready.value = ready
        await ReadOnly()
        moved = False
        if wi < len(words) and not idle_now and int(dut.cmd__ready.value):
            if wi in wanted_words:
                accept_cycle[wi] = cycle
            wi += 1
            moved = True
        if ready and int(dut.res__valid.value):
            if len(results) in wanted_results:
                deliver_cycle[len(results)] = cycle
            results.append(int(dut.res__payload.value))
            moved = True
            if len(results) > total_results:
                raise AssertionError(f"more result words than the {total_results} expected")
        await RisingEdge(dut.clk)
        cycle += 1
        quiet = 0 if moved else quiet + 1
        assert quiet < HANG_CYCLES, (
            f"hang: nothing moved for {HANG_CYCLES} cycles at cycle {cycle} "
            f"(word {wi}/{len(words)}, result {len(results)}/{total_results})"
        )
    # nothing more may come out
    dut.res__ready.value = 1
    for _ in range(50):
        await ReadOnly()
        assert not int(dut.res__valid.value), "extra result word after the last expected one"
        await RisingEdge(dut.clk)
        cycle += 1

    split = bench_io.split_results(segments, results, accept_cycle, deliver_cycle)
    meta = [{"results": len(r.results), "cycles": r.cycles} for r in split]
    bench_io.write_results(io, results, meta, nb)
    bench_io.write_run(io, cycle)
    dut._log.info("run_segments: %d words, %d results, %d cycles", len(words), len(results), cycle)
