"""cocotb bench that runs a whole tiled matmul on the bare array (used by ``macforge demo``).

Inputs from the environment: ``MACFORGE_CONFIG`` (AccelConfig JSON) and
``MACFORGE_IO`` (a folder holding ``a.npy`` int8 M x K and ``b.npy`` int8 K x N).
The bench pads A and B to whole tiles, streams every (row-tile, col-tile) pair
as one matrix back to back, and writes ``c.npy`` (int64 M x N) and
``stats.json`` (``cycles`` from first slice accepted to last row delivered,
``slices``) to the same folder. Checking is the caller's job.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np

from sim.tb_array import Bench, Job


@cocotb.test()
async def run_tiled_matmul(dut):
    io = Path(os.environ["MACFORGE_IO"])
    a = np.load(io / "a.npy")
    b = np.load(io / "b.npy")
    bench = Bench(dut, "run_tiled_matmul")
    cfg = bench.cfg
    m, k = a.shape
    n = b.shape[1]
    mt, nt = -(-m // cfg.rows), -(-n // cfg.cols)
    a_pad = np.zeros((mt * cfg.rows, k), np.int8)
    a_pad[:m] = a
    b_pad = np.zeros((k, nt * cfg.cols), np.int8)
    b_pad[:, :n] = b
    await bench.start()
    order = [(i, j) for i in range(mt) for j in range(nt)]
    for i, j in order:
        bench.driver.add(
            Job(
                a_pad[i * cfg.rows : (i + 1) * cfg.rows],
                b_pad[:, j * cfg.cols : (j + 1) * cfg.cols],
            )
        )
    want_rows = cfg.rows * len(order)
    slices = len(bench.driver.pending)
    while not (bench.driver.done and len(bench.monitor.rows) >= want_rows):
        await bench.step()
        assert bench.cycle < 20 * (slices + want_rows) + 1000, "watchdog: array stopped"
    c = np.zeros((mt * cfg.rows, nt * cfg.cols), np.int64)
    for t, (i, j) in enumerate(order):
        tile = [row for row, _ in bench.monitor.rows[t * cfg.rows : (t + 1) * cfg.rows]]
        c[i * cfg.rows : (i + 1) * cfg.rows, j * cfg.cols : (j + 1) * cfg.cols] = tile
    np.save(io / "c.npy", c[:m, :n])
    cycles = bench.monitor.row_cycles[-1] - bench.driver.accept_cycles[0] + 1
    (io / "stats.json").write_text(json.dumps({"cycles": cycles, "slices": slices}))
