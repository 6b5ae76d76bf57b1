"""CLI behaviour: help, one-line errors with exit code 2, Verilog export and lint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from macforge.cli import main
from sim import runner


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "macforge", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize("command", [[], ["demo"], ["verilog"]])
def test_help(command):
    res = _run(*command, "--help")
    assert res.returncode == 0 and "usage: macforge" in res.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["bogus"], "invalid choice"),
        (["verilog", "--config", "nope", "-o", "x.v"], "unknown config 'nope'"),
        (["verilog"], "required: -o/--output"),
        (["verilog", "-o", "/no/such/dir/x.v"], "does not exist"),
        (["demo", "--k", "0"], "--k must be >= 1"),
        (["demo", "--config", "tiny", "--k", "5000"], "exceeds max_k = 127"),
        (["demo", "--m", "x"], "invalid int value"),
        (["demo", "--sim", "modelsim"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle):
    res = _run(*args)
    assert res.returncode == 2, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr


def test_verilog_is_deterministic_and_lints(tmp_path):
    out1, out2 = tmp_path / "a.v", tmp_path / "b.v"
    assert main(["verilog", "--config", "default", "-o", str(out1)]) == 0
    assert main(["verilog", "--config", "default", "-o", str(out2)]) == 0
    text = out1.read_text()
    assert text == out2.read_text()
    assert str(Path.cwd()) not in text and "module array_8x8" in text
    runner._setup_verilator_env()
    lint = subprocess.run(
        ["verilator", "--lint-only", "-Wno-fatal", str(out1)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert lint.returncode == 0, lint.stderr
    assert "%Error" not in lint.stderr
