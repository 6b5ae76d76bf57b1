"""cocotb bench for `hw.array.SystolicArray`: driver, monitor, scoreboard on `sim.golden`.

The bench reads its config from ``$MACFORGE_CONFIG`` (JSON of `AccelConfig`) and
its seed from ``$MACFORGE_TEST_SEED``; every test logs the seed it used.

Structure (one clocked loop per test keeps drive and sample phases exact):

* `SliceDriver` turns *jobs* (an A tile, a B tile, accumulate-or-not) into
  K-slices, with random idle cycles between them ("pause generator").
* `ResultMonitor` applies random back-pressure on ``results.ready`` and
  collects the rows delivered.
* `Scoreboard` predicts every drained tile with `sim.golden.matmul` and
  compares bit for bit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from macforge.hw.array import SystolicArray
from macforge.hw.config import AccelConfig
from macforge.sim import bench_io, golden
from macforge.sim.packing import pack_slice, unpack_result

CLOCK_NS = 10


def bench_config() -> AccelConfig:
    return AccelConfig.from_json(os.environ[bench_io.ENV_CONFIG])


def bench_rng(dut, test: str) -> np.random.Generator:
    seed = int(os.environ.get(bench_io.ENV_TEST_SEED, "1"))
    dut._log.info("%s: seed %d (replay with MACFORGE_SEED=%d)", test, seed, seed)
    return np.random.default_rng([seed, sum(map(ord, test))])


@dataclass
class Job:
    """One tile product: ``a`` is rows x K, ``b`` is K x cols (int8)."""

    a: np.ndarray
    b: np.ndarray
    accumulate: bool = False  #: keep the previous job's accumulators (no ``first``)


def random_job(cfg: AccelConfig, rng: np.random.Generator, k: int, accumulate=False) -> Job:
    a = rng.integers(-128, 128, size=(cfg.rows, k), dtype=np.int8)
    b = rng.integers(-128, 128, size=(k, cfg.cols), dtype=np.int8)
    return Job(a, b, accumulate)


class SliceDriver:
    """Drives ``slices``: one slice per accepted transfer, random idle cycles."""

    def __init__(self, dut, cfg: AccelConfig, rng, idle_prob: float = 0.0):
        self.dut, self.cfg, self.rng, self.idle_prob = dut, cfg, rng, idle_prob
        self.pending: list[tuple[int, bool]] = []  # (packed word, last)
        self.accepted = 0
        self.accept_cycles: list[int] = []
        self.last_accept_cycles: list[int] = []

    def add(self, job: Job) -> None:
        k = job.a.shape[1]
        for kk in range(k):
            first = kk == 0 and not job.accumulate
            last = kk == k - 1
            word = pack_slice(self.cfg, job.a[:, kk], job.b[kk, :], first, last)
            self.pending.append((word, last))

    def drive(self) -> None:
        """Drive phase: present the next slice unless this cycle is idle."""
        busy = bool(self.pending) and not (self.idle_prob and self.rng.random() < self.idle_prob)
        self.dut.slices__valid.value = int(busy)
        self.dut.slices__payload.value = self.pending[0][0] if busy else 0

    def sample(self, cycle: int) -> None:
        """Sample phase (ReadOnly): a transfer happens at the coming edge."""
        if int(self.dut.slices__valid.value) and int(self.dut.slices__ready.value):
            _, last = self.pending.pop(0)
            self.accepted += 1
            self.accept_cycles.append(cycle)
            if last:
                self.last_accept_cycles.append(cycle)

    @property
    def done(self) -> bool:
        return not self.pending


class ResultMonitor:
    """Collects result rows; random back-pressure on ``results.ready``."""

    def __init__(self, dut, cfg: AccelConfig, rng, stall_prob: float = 0.0):
        self.dut, self.cfg, self.rng, self.stall_prob = dut, cfg, rng, stall_prob
        self.rows: list[tuple[list[int], bool]] = []
        self.row_cycles: list[int] = []
        self.first_valid_cycles: list[int] = []
        self._was_valid = False

    def drive(self) -> None:
        stall = self.stall_prob and self.rng.random() < self.stall_prob
        self.dut.results__ready.value = int(not stall)

    def sample(self, cycle: int) -> None:
        valid = int(self.dut.results__valid.value)
        if valid and not self._was_valid:
            self.first_valid_cycles.append(cycle)
        self._was_valid = bool(valid)
        if valid and int(self.dut.results__ready.value):
            self.rows.append(unpack_result(self.cfg, int(self.dut.results__payload.value)))
            self.row_cycles.append(cycle)


@dataclass
class Scoreboard:
    """Expected tiles from the golden model, in order, compared bit for bit."""

    cfg: AccelConfig
    expected: list[np.ndarray] = field(default_factory=list)
    _a_parts: list[np.ndarray] = field(default_factory=list)
    _b_parts: list[np.ndarray] = field(default_factory=list)

    def add(self, job: Job) -> None:
        if not job.accumulate:
            self._a_parts, self._b_parts = [], []
        self._a_parts.append(job.a)
        self._b_parts.append(job.b)
        a = np.concatenate(self._a_parts, axis=1)
        b = np.concatenate(self._b_parts, axis=0)
        self.expected.append(golden.matmul(a, b, acc_bits=self.cfg.acc_width))

    def check(self, rows: list[tuple[list[int], bool]]) -> None:
        r = self.cfg.rows
        assert len(rows) == r * len(self.expected), (
            f"got {len(rows)} result rows, expected {r * len(self.expected)}"
        )
        for t, want in enumerate(self.expected):
            tile = rows[t * r : (t + 1) * r]
            got = np.array([row for row, _ in tile], dtype=np.int64)
            lasts = [last for _, last in tile]
            assert lasts == [False] * (r - 1) + [True], f"tile {t}: bad last flags {lasts}"
            if not np.array_equal(got, want):
                bad = np.argwhere(got != want)[0]
                raise AssertionError(
                    f"tile {t}: C{tuple(bad)} = {got[tuple(bad)]}, golden {want[tuple(bad)]}"
                )


class Bench:
    """Clock, reset and the per-cycle loop shared by every test."""

    def __init__(self, dut, test: str, *, idle_prob=0.0, stall_prob=0.0):
        self.dut = dut
        self.cfg = bench_config()
        self.rng = bench_rng(dut, test)
        self.driver = SliceDriver(dut, self.cfg, self.rng, idle_prob)
        self.monitor = ResultMonitor(dut, self.cfg, self.rng, stall_prob)
        self.scoreboard = Scoreboard(self.cfg)
        self.cycle = 0
        self.latency = SystolicArray(self.cfg).latency

    async def start(self) -> None:
        self.dut.slices__valid.value = 0
        self.dut.slices__payload.value = 0
        self.dut.results__ready.value = 1
        self.dut.overflow_clear.value = 0
        self.dut.rst.value = 1
        cocotb.start_soon(Clock(self.dut.clk, CLOCK_NS, unit="ns").start())
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    def add(self, job: Job) -> None:
        self.driver.add(job)
        self.scoreboard.add(job)

    async def step(self) -> None:
        self.driver.drive()
        self.monitor.drive()
        await ReadOnly()
        self.driver.sample(self.cycle)
        self.monitor.sample(self.cycle)
        await RisingEdge(self.dut.clk)
        self.cycle += 1

    async def run(self, *, extra_cycles: int | None = None) -> None:
        """Step until every slice is sent and every expected row arrived (watchdog)."""
        total_slices = len(self.driver.pending)
        budget = 50 * (total_slices + 10 * self.cfg.rows * len(self.scoreboard.expected) + 200)
        want_rows = self.cfg.rows * len(self.scoreboard.expected)
        while not (self.driver.done and len(self.monitor.rows) >= want_rows):
            await self.step()
            assert self.cycle < budget, (
                f"watchdog: no progress after {self.cycle} cycles "
                f"({len(self.driver.pending)} slices unsent, "
                f"{len(self.monitor.rows)}/{want_rows} rows)"
            )
        for _ in range(extra_cycles if extra_cycles is not None else self.latency + 4):
            await self.step()  # nothing more may arrive

    def check(self) -> None:
        self.scoreboard.check(self.monitor.rows)
        assert int(self.dut.overflow.value) == 0, "overflow flag set for legal K"


def _k_values(cfg: AccelConfig) -> list[int]:
    return sorted({1, 2, max(cfg.rows - 1, 1), min(100, cfg.max_k), cfg.max_k} - {0})


@cocotb.test()
async def test_k_sweep(dut):
    """Random matrices for K = 1, 2, rows-1, 100 and max_k, with idle gaps and stalls."""
    bench = Bench(dut, "test_k_sweep", idle_prob=0.25, stall_prob=0.25)
    await bench.start()
    for k in _k_values(bench.cfg):
        bench.add(random_job(bench.cfg, bench.rng, k))
    await bench.run()
    bench.check()


@cocotb.test()
async def test_extremes(dut):
    """-128 x -128, +127 x +127 and -128 x +127 at the largest K; edge-value mixes."""
    bench = Bench(dut, "test_extremes", stall_prob=0.1)
    await bench.start()
    cfg, k = bench.cfg, bench.cfg.max_k

    def full(value, shape):
        return np.full(shape, value, dtype=np.int8)

    bench.add(Job(full(-128, (cfg.rows, k)), full(-128, (k, cfg.cols))))
    bench.add(Job(full(127, (cfg.rows, k)), full(127, (k, cfg.cols))))
    bench.add(Job(full(-128, (cfg.rows, k)), full(127, (k, cfg.cols))))
    edge = np.array([-128, -127, -1, 0, 1, 126, 127], dtype=np.int8)
    kk = min(k, 64)
    bench.add(Job(bench.rng.choice(edge, (cfg.rows, kk)), bench.rng.choice(edge, (kk, cfg.cols))))
    await bench.run()
    bench.check()


@cocotb.test()
async def test_back_to_back_full_rate(dut):
    """Matrices of K >= min_k stream with no idle cycle between them."""
    bench = Bench(dut, "test_back_to_back_full_rate")
    await bench.start()
    min_k = SystolicArray(bench.cfg).min_k
    for _ in range(6):
        k = int(bench.rng.integers(min_k, max(3 * min_k, min_k + 2)))
        bench.add(random_job(bench.cfg, bench.rng, min(k, bench.cfg.max_k)))
    total = len(bench.driver.pending)
    await bench.run()
    bench.check()
    cycles = bench.driver.accept_cycles
    assert cycles[-1] - cycles[0] + 1 == total, (
        f"bubbles: {total} slices took {cycles[-1] - cycles[0] + 1} cycles"
    )


@cocotb.test()
async def test_short_matrices(dut):
    """Back-to-back matrices shorter than min_k (K = 1, 2, ...) are throttled, not lost."""
    bench = Bench(dut, "test_short_matrices", idle_prob=0.1, stall_prob=0.2)
    await bench.start()
    for k in [1, 1, 2, 1, 3, 1, 2, 2, 1]:
        bench.add(random_job(bench.cfg, bench.rng, min(k, bench.cfg.max_k)))
    await bench.run()
    bench.check()


@cocotb.test()
async def test_accumulate(dut):
    """Jobs without ``first`` continue the sum; each ``last`` drains the running total."""
    bench = Bench(dut, "test_accumulate", idle_prob=0.2, stall_prob=0.2)
    await bench.start()
    per = max(1, bench.cfg.max_k // 4)
    bench.add(random_job(bench.cfg, bench.rng, per))
    bench.add(random_job(bench.cfg, bench.rng, per, accumulate=True))
    bench.add(random_job(bench.cfg, bench.rng, per, accumulate=True))
    bench.add(random_job(bench.cfg, bench.rng, 3))  # fresh matrix again
    await bench.run()
    bench.check()


@cocotb.test()
async def test_latency_and_drain(dut):
    """First row `latency` cycles after the last slice; rows on consecutive cycles."""
    bench = Bench(dut, "test_latency_and_drain")
    await bench.start()
    bench.add(random_job(bench.cfg, bench.rng, 5))
    await bench.run()
    bench.check()
    last = bench.driver.last_accept_cycles[0]
    first_row = bench.monitor.row_cycles[0]
    assert first_row - last == bench.latency, (
        f"first row {first_row - last} cycles after last slice, latency says {bench.latency}"
    )
    assert bench.monitor.row_cycles == list(range(first_row, first_row + bench.cfg.rows))


@cocotb.test()
async def test_reset_mid_matrix(dut):
    """Reset in the middle of a matrix drops it; the next matrix is exact."""
    bench = Bench(dut, "test_reset_mid_matrix")
    await bench.start()
    k = max(4, min(bench.cfg.max_k, 20))
    half = random_job(bench.cfg, bench.rng, k)
    bench.driver.add(half)  # not on the scoreboard: it must never drain
    for _ in range(k // 2):
        await bench.step()
    dut.rst.value = 1
    bench.driver.pending.clear()
    await bench.step()
    await bench.step()
    dut.rst.value = 0
    bench.add(random_job(bench.cfg, bench.rng, k))
    await bench.run(extra_cycles=bench.latency + bench.cfg.rows + k + 4)
    bench.check()


@cocotb.test()
async def test_overflow_flag(dut):
    """A matrix of max_k slices is legal; max_k + 1 sets the sticky overflow flag."""
    bench = Bench(dut, "test_overflow_flag")
    await bench.start()
    bench.add(random_job(bench.cfg, bench.rng, bench.cfg.max_k))
    await bench.run()
    bench.check()
    long_job = random_job(bench.cfg, bench.rng, bench.cfg.max_k + 1)
    bench.driver.add(long_job)
    while not bench.driver.done:
        await bench.step()
    await bench.step()
    assert int(dut.overflow.value) == 1, "overflow flag not set for K = max_k + 1"
    for _ in range(bench.latency + bench.cfg.rows + 2):
        await bench.step()
    assert int(dut.overflow.value) == 1, "overflow flag is not sticky"
    dut.overflow_clear.value = 1
    await bench.step()
    dut.overflow_clear.value = 0
    await bench.step()
    assert int(dut.overflow.value) == 0, "overflow_clear did not clear the flag"
