"""The systolic array in RTL simulation (Verilator; Icarus when installed) vs sim.golden."""

from __future__ import annotations

import functools

import pytest

from hw.array import SystolicArray
from sim import runner
from tests.configs import ARRAY_CONFIGS

BENCH_TESTS = [
    "test_k_sweep",
    "test_extremes",
    "test_back_to_back_full_rate",
    "test_short_matrices",
    "test_accumulate",
    "test_latency_and_drain",
    "test_reset_mid_matrix",
    "test_overflow_flag",
]


@functools.cache
def _build(sim: str, cfg_name: str) -> runner.SimBuild:
    """One Verilog conversion per (simulator, config) and worker process."""
    cfg = ARRAY_CONFIGS[cfg_name]
    return runner.build(
        SystolicArray(cfg), name=f"array_{cfg.key.replace('-', '_')}", simulator=sim
    )


def _run(sim: str, cfg_name: str, testcase: str) -> None:
    cfg = ARRAY_CONFIGS[cfg_name]
    build = _build(sim, cfg_name)
    seed = runner.test_seed(f"{sim}:{cfg_name}:{testcase}")
    runner.run(
        build,
        test_module="sim.tb_array",
        testcase=testcase,
        seed=seed,
        env={"MACFORGE_CONFIG": cfg.to_json(), "MACFORGE_TEST_SEED": str(seed)},
    )


@pytest.mark.parametrize("testcase", BENCH_TESTS)
@pytest.mark.parametrize("cfg_name", list(ARRAY_CONFIGS))
def test_array_verilator(cfg_name: str, testcase: str) -> None:
    _run("verilator", cfg_name, testcase)


@pytest.mark.skipif(not runner.icarus_available(), reason="iverilog/vvp not on PATH")
@pytest.mark.parametrize("testcase", ["test_k_sweep", "test_back_to_back_full_rate"])
def test_array_icarus(testcase: str) -> None:
    _run("icarus", "tiny", testcase)
