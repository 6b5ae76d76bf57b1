"""``macforge verify soak`` and ``verify mutants`` (`sim.soak`, `sim.mutants`): CI's
20-seed soaks of the fast presets through the CLI, a checker that does catch wrong
results, and a small mutation campaign."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from macforge.host.runtime import SegmentResult
from macforge.hw.presets import preset
from macforge.sim import runner
from macforge.sim.soak import check_case, fuzz_case


def _verify(tmp_path, *args: str) -> dict:
    """Run ``macforge verify ARGS --report``; exit 0 expected; the report."""
    report = tmp_path / "report.json"
    res = subprocess.run(
        [sys.executable, "-m", "macforge", "verify", *args, "--report", str(report)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(report.read_text())


#: Fast presets CI soaks: the 2x2 (DSP requantiser) and the iCEBreaker's 4x4 (LUT
#: requantiser, PEs on SB_MAC16 cell models). ~11 s and ~15 s of simulation on one core.
SOAK_CONFIGS = ("tiny", "icebreaker")


@pytest.mark.parametrize("config", SOAK_CONFIGS)
def test_soak_20_seeds(tmp_path, config):
    """CI's share of issue 10's soak: `macforge verify soak` over 20 seeds (from
    `sim.runner.test_seed`, so MACFORGE_SEEDS=N runs N x 20 others) of 100 fuzzed command
    words each, with compiled GEMMs, free-form programs and COUNTERS/STATUS checks
    (`sim.soak`), on one process: no hang, no mismatch, no other failure."""
    first = runner.test_seed(f"soak:{config}") % 1_000_000_000
    rep = _verify(
        tmp_path,
        "soak",
        "--config",
        config,
        "--seeds",
        "20",
        "--first-seed",
        str(first),
        "--fuzz-words",
        "2000",
        "--jobs",
        "1",
    )
    failing = rep["failing_seeds"][:1]
    assert rep["seeds"] == 20, rep
    assert rep["hangs"] == rep["mismatches"] == rep["errors"] == 0, f"seeds {first}..: {failing}"
    assert rep["first_failing_seed"] is None
    assert rep["fuzz_commands"] >= 20 * 20 and rep["gemms"] >= 20 and rep["programs"] >= 20


def test_check_case_reports_wrong_results():
    """Zeroed results fail every GEMM with a non-zero golden result and every junk
    command that should have raised an error."""
    seed = runner.test_seed("soak-checker")
    segments, checks = fuzz_case(preset("tiny"), np.random.default_rng(seed), 16)
    zeros = [SegmentResult(results=[0] * seg.results, cycles=None) for seg in segments]
    problems = check_case(checks, zeros)
    assert any("GEMM" in p for p in problems) and any("expected" in p for p in problems)


def test_mutation_campaign_small(tmp_path):
    """`verify mutants`: one design with 20 Yosys mutations behind a selector, the
    unmutated design passes the test set (checked inside), at least three quarters of
    the mutants are killed, and every survivor is listed with its mutation."""
    rep = _verify(tmp_path, "mutants", "--config", "tiny", "--count", "20", "--jobs", "2")
    assert rep["mutants"] == 20 and rep["killed"] + len(rep["survivors"]) == 20
    # measured 20 of 20 (seed 1); up to ~15 % of a sample can be equivalent mutants
    assert rep["killed"] >= 15, f"the fast test set regressed: {rep['survivors']}"
    assert all(sv["yosys"].startswith("mutate -ctrl mutsel") for sv in rep["survivors"])
