"""Bulk simulation mode (`sim.bulk`): the same results and cycles as the per-cycle bench,
bit-exact GEMMs under random idle / back-pressure, and hangs and extra results caught.

Seeds come from `sim.runner.test_seed` (``MACFORGE_SEED`` replays one).
"""

from __future__ import annotations

import numpy as np
import pytest

from macforge.host.compiler import Requant, compile_gemm
from macforge.host.program import cmd_status
from macforge.host.runtime import Segment, run_many
from macforge.hw.presets import preset
from macforge.sim import golden, runner
from macforge.sim.transport import SimTransport

CFG = preset("tiny")


def random_gemms(seed: int, count: int, cfg=CFG):
    """``count`` random GEMMs (every other one requantised) with their golden results."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        m, k, n = (int(v) for v in rng.integers(1, 12, size=3))
        a = rng.integers(-128, 128, (m, k), dtype=np.int8)
        b = rng.integers(-128, 128, (k, n), dtype=np.int8)
        if i % 2:
            bias = rng.integers(-5000, 5000, n, dtype=np.int32)
            rq = Requant(
                multiplier=rng.integers(2**29, 2**31 - 1, n, dtype=np.int64).astype(np.int32),
                shift=rng.integers(-12, 2, n, dtype=np.int32),
                zero_point=int(rng.integers(-20, 20)),
            )
            want = golden.requantize(
                golden.matmul(a, b, acc_bits=cfg.acc_width),
                bias,
                rq.multiplier,
                rq.shift,
                rq.zero_point,
                rq.act_min,
                rq.act_max,
            )
            cases.append((compile_gemm(cfg, a, b, bias=bias, requant=rq), want))
        else:
            cases.append((compile_gemm(cfg, a, b), golden.matmul(a, b, acc_bits=cfg.acc_width)))
    return cases


def test_bulk_equals_per_cycle_bench():
    """Without idle or back-pressure both benches see the same words in the same cycles:
    equal result words and equal measured cycles for every program."""
    cases = random_gemms(runner.test_seed("bulk-vs-per-cycle"), 6)
    programs = [p for p, _ in cases]
    bulk = run_many(programs, SimTransport(CFG, bulk=True))
    per_cycle = run_many(programs, SimTransport(CFG, bulk=False))
    for (_, want), rb, rp in zip(cases, bulk, per_cycle, strict=True):
        assert np.array_equal(rb.output, want)
        assert np.array_equal(rb.output, rp.output)
        assert rb.cycles == rp.cycles
        assert rb.counters == rp.counters


@pytest.mark.parametrize("prob", [0.1, 0.4])
def test_bulk_random_handshakes_bit_exact(prob):
    """The harness's own idle cycles and back-pressure change timing, never results;
    the run reports how many cycles it simulated."""
    seed = runner.test_seed(f"bulk-handshakes-{prob}")
    cases = random_gemms(seed, 8)
    transport = SimTransport(CFG, idle_prob=prob, stall_prob=prob, seed=seed)
    quiet = SimTransport(CFG, seed=seed)
    results = run_many([p for p, _ in cases], transport)
    baseline = run_many([p for p, _ in cases], quiet)
    for (_, want), res in zip(cases, results, strict=True):
        assert np.array_equal(res.output, want), f"seed {seed}"
    assert sum(r.cycles for r in results) > sum(r.cycles for r in baseline), "no stalls drawn"
    assert transport.sim_cycles >= sum(r.cycles for r in results)
    assert transport.sim_seconds > 0


def test_bulk_detects_hang():
    """A run that waits for a result the hardware never sends fails as a hang."""
    with pytest.raises(runner.SimulationError, match="hang"):
        SimTransport(CFG).execute([Segment([0], 1)])  # a NOP answers nothing


def test_bulk_detects_extra_result():
    """A result word beyond the expected count fails the run."""
    with pytest.raises(runner.SimulationError, match="extra result"):
        SimTransport(CFG).execute([Segment(cmd_status(), 0)])


@pytest.mark.parametrize("seed_index", range(3))
def test_amaranth_simulator_equals_verilator(seed_index):
    """`--sim amaranth` (Amaranth's simulator, never sees the Verilog) gives the same result
    words, the same measured cycles, counters and simulated cycles as Verilator, with
    the same random idle cycles and back-pressure."""
    seed = runner.test_seed(f"amaranth-vs-verilator-{seed_index}")
    cases = random_gemms(seed, 4)
    programs = [p for p, _ in cases]
    prob = (0.0, 0.2, 0.4)[seed_index]
    kw = dict(idle_prob=prob, stall_prob=prob, seed=seed)
    ver = SimTransport(CFG, simulator="verilator", **kw)
    ama = SimTransport(CFG, simulator="amaranth", **kw)
    rv, ra = run_many(programs, ver), run_many(programs, ama)
    for (_, want), a, v in zip(cases, ra, rv, strict=True):
        assert np.array_equal(a.output, want), f"seed {seed}"
        assert np.array_equal(a.output, v.output)
        assert (a.cycles, a.counters) == (v.cycles, v.counters), f"seed {seed}"
    assert ama.sim_cycles == ver.sim_cycles


def test_amaranth_simulator_refuses_vendor_cells():
    """Configs with hand-instantiated SB_MAC16 cells cannot run in Amaranth's simulator."""
    with pytest.raises(ValueError, match="SB_MAC16"):
        SimTransport(preset("icebreaker"), simulator="amaranth")
