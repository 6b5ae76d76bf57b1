"""``macforge verify soak`` (`sim.soak`): a small campaign end to end, and a checker that
does catch wrong results."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

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


def test_soak_campaign_small(tmp_path):
    rep = _verify(
        tmp_path, "soak", "--config", "tiny", "--seeds", "2", "--fuzz-words", "300", "--jobs", "1"
    )
    assert rep["seeds"] == 2 and rep["hangs"] == rep["mismatches"] == rep["errors"] == 0
    assert rep["fuzz_commands"] > 0 and rep["gemms"] > 0 and rep["first_failing_seed"] is None


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
    unmutated design passes the test set (checked inside), some mutants are killed, and
    every survivor is listed with its mutation."""
    rep = _verify(tmp_path, "mutants", "--config", "tiny", "--count", "20", "--jobs", "2")
    assert rep["mutants"] == 20 and rep["killed"] + len(rep["survivors"]) == 20
    assert rep["killed"] >= 1, "a flow that kills nothing is broken"
    assert all(sv["yosys"].startswith("mutate -ctrl mutsel") for sv in rep["survivors"])
