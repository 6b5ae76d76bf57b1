"""Formal proofs (`sim.formal`, properties beside the `hw` modules): every property of the
``tiny`` config is proved, its cover reached and its broken variant rejected — one test
per property so the suite's workers share them out."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from macforge.hw.presets import preset
from macforge.sim.formal import KINDS, checks, missing_tools, run_job

CONFIG = preset("tiny")
NAMES = [c.name for c in checks(CONFIG)]

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"missing {missing_tools()}")


@pytest.mark.parametrize("name", NAMES)
def test_property(name, tmp_path):
    check = next(c for c in checks(CONFIG) if c.name == name)
    rows = {kind: run_job(check, kind, keep_dir=tmp_path) for kind in KINDS}
    assert rows["proof"]["status"] == "PASS", rows["proof"]
    assert rows["cover"]["status"] == "PASS", rows["cover"]
    assert rows["broken"]["status"] == "FAIL", f"the broken variant passed: {rows['broken']}"


def test_every_module_with_a_stream_has_a_property():
    """The properties cover the modules the issue names: every stream producer, the PE,
    the decoder, the requantiser and the serial receiver."""
    modules = {c.module for c in checks(CONFIG)}
    for mod in ("hw/pe.py", "hw/decoder.py", "hw/postproc.py", "hw/frame_rx.py"):
        assert mod in modules
    assert sum(c.name.endswith("_streams_held") for c in checks(CONFIG)) >= 10


def test_cli_prove_one_property(tmp_path):
    report = tmp_path / "r.json"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "macforge",
            "verify",
            "prove",
            "--property",
            "skid.SkidBuffer_streams_held",
            "--jobs",
            "1",
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    rep = json.loads(report.read_text())
    assert rep["proved"] == 1 and rep["failed"] == []
    assert {r["kind"] for r in rep["jobs"]} == set(KINDS)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--property", "no.such"], "unknown property"),
        (["--jobs", "0"], "--jobs"),
        (["--keep", "/nonexistent/folder"], "not a folder"),
        (["--config", "nosuch"], "nosuch"),
    ],
)
def test_cli_prove_bad_input(args, message, tmp_path):
    report = tmp_path / "r.json"
    res = subprocess.run(
        [sys.executable, "-m", "macforge", "verify", "prove", *args, "--report", str(report)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not report.exists()
