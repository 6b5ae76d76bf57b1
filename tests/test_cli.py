"""CLI behaviour: help, one-line errors with exit code 2, Verilog export and lint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from macforge.cli import COMMANDS, main
from macforge.fpga.boards import BOARDS
from macforge.sim import golden, runner


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "macforge", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.parametrize(
    "command",
    [[], *([m.__name__.rsplit("cmd_", 1)[1]] for m in COMMANDS), ["verify", "prove"]],
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
    assert rep["config"] == "icebreaker", "--board runs the board's own preset"
    assert rep["latency_us"] == pytest.approx(rep["cycles_per_inference"] / clk_mhz)
    assert rep["baud"] == BOARDS["icebreaker"].default_baud()
    wire = rep["link_bytes_per_batch"] * 10 / rep["baud"] / rep["images"]  # 8N1, no framing
    assert wire < rep["link_seconds_per_inference"] < 1.5 * wire
    assert "logits bit-exact with golden" in res.stdout


def test_demo_refuses_a_config_the_board_cannot_hold(tmp_path):
    """The 8x8 `default` needs 64 DSP blocks: it does not fit an iCEBreaker's UP5K."""
    res = _run("demo", "--config", "default", "--board", "icebreaker", "--quick")
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not fit board icebreaker" in lines[0], res.stderr
    res = _run("demo", "--config", "ulx3s", "--board", "icebreaker", "--quick")
    assert res.returncode == 2 and "is for target ecp5-85f" in res.stderr


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


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize(
    "kind, extra, env, needle",
    [
        ("output is an input", ["{a}", "{b}", "-o", "{a}"], {}, "is also an input"),
        (
            "report is the output",
            ["{a}", "{b}", "-o", "{dir}/c.npy", "--report", "{dir}/c.npy"],
            {},
            "is also an input",
        ),
        (
            "report folder missing",
            ["{a}", "{b}", "-o", "{dir}/c.npy", "--report", "{dir}/no/r.json"],
            {},
            "does not exist",
        ),
        (
            "report is a folder",
            ["{a}", "{b}", "-o", "{dir}/c.npy", "--report", "{dir}"],
            {},
            "is a folder",
        ),
        (
            "report unwritable",
            ["{a}", "{b}", "-o", "{dir}/c.npy", "--report", "/proc/r.json"],
            {},
            "cannot write report",
        ),
        ("output under a file", ["{a}", "{b}", "-o", "{a}/c.npy"], {}, "is not a folder"),
        ("output in /proc", ["{a}", "{b}", "-o", "/proc/c.npy"], {}, "cannot write output"),
        ("npz input", ["{npz}", "{b}", "-o", "{dir}/c.npy"], {}, ".npz archive"),
        (
            "baud without port",
            ["{a}", "{b}", "-o", "{dir}/c.npy", "--baud", "9600"],
            {},
            "--baud applies to a board",
        ),
        (
            "baud out of range",
            ["{a}", "{b}", "-o", "{dir}/c.npy", "--port", "loop://", "--baud", "0"],
            {},
            "--baud must be in",
        ),
        (
            "sim with port",
            ["{a}", "{b}", "-o", "{dir}/c.npy", "--port", "loop://", "--sim", "verilator"],
            {},
            "do not apply with --port",
        ),
        (
            "port cannot be opened",
            ["{a}", "{b}", "-o", "{dir}/c.npy", "--port", "/dev/null", "--config", "tiny"],
            {},
            "cannot open serial port",
        ),
        (
            "build dir unusable",
            ["{a}", "{b}", "-o", "{dir}/c.npy"],
            {"MACFORGE_BUILD_DIR": "{a}/sim"},
            "simulation build folder",
        ),
    ],
)
def test_matmul_bad_paths_and_options(operands, tmp_path, kind, extra, env, needle):
    """Every bad path or option: exit 2, one line, before any work; nothing written or
    changed in the folder."""
    np.savez(tmp_path / "in.npz", a=operands["arrays"][0])
    fmt = {k: v for k, v in operands.items() if isinstance(v, str)}
    fmt |= {"dir": str(tmp_path), "npz": str(tmp_path / "in.npz")}
    before = _snapshot(tmp_path)
    res = subprocess.run(
        [sys.executable, "-m", "macforge", "matmul", *[x.format(**fmt) for x in extra]],
        capture_output=True,
        text=True,
        env=os.environ | {k: v.format(**fmt) for k, v in env.items()},
    )
    assert res.returncode == 2, (kind, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], (kind, res.stderr)
    assert _snapshot(tmp_path) == before, f"{kind}: files written or changed"


def test_output_name_is_exact_and_atomic(operands, tmp_path):
    """``-o C`` writes exactly ``C`` (no ``.npy`` added) and says so; no temporary file
    is left beside it."""
    out = tmp_path / "Cnoext"
    res = _run("matmul", operands["a"], operands["b"], "-o", str(out), "--config", "tiny")
    assert res.returncode == 0, res.stderr
    assert out.is_file() and f"wrote {out} " in res.stdout
    assert not (tmp_path / "Cnoext.npy").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert np.array_equal(np.load(out), golden.matmul(*operands["arrays"]))


@pytest.mark.parametrize(
    "kind, array, needle",
    [
        ("NaN input", np.array([[np.nan, 1.0]], np.float32), "NaN or infinite"),
        ("inf input", np.array([[np.inf, 1.0]], np.float32), "NaN or infinite"),
        ("empty batch", np.zeros((0, 2), np.float32), "empty batch"),
    ],
)
def test_run_bad_input_arrays(tmp_path, kind, array, needle):
    """Inputs `run` cannot quantise faithfully are refused before the model is touched."""
    x = tmp_path / "x.npy"
    np.save(x, array)
    (tmp_path / "model.onnx").write_text("never parsed: the input is refused first")
    res = _run(
        "run", str(tmp_path / "model.onnx"), "--input", str(x), "--output", str(tmp_path / "y.npy")
    )
    assert res.returncode == 2, (kind, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], (kind, res.stderr)
    assert not (tmp_path / "y.npy").exists()


def test_symbolic_onnx_dimension_is_named(tmp_path):
    """A model whose input has a symbolic non-batch dimension is refused naming it."""
    import onnx
    from onnx import TensorProto, helper

    from macforge.host.onnx_import import import_onnx

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "H"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "H"])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    path = tmp_path / "sym.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(ValueError, match="dimension 1 is 'H', not a fixed size"):
        import_onnx(str(path))


def test_library_refuses_non_integer_numbers():
    """`AccelConfig` and `Requant` refuse floats instead of truncating them later."""
    from macforge.host.compiler import Requant
    from macforge.hw.config import AccelConfig

    with pytest.raises(ValueError, match="bus_bytes"):
        AccelConfig(rows=2, cols=2, acc_width=22, max_k=127, bus_bytes=8.0)
    with pytest.raises(ValueError, match="multiplier must be integers"):
        Requant([1.5e9], [0])
    with pytest.raises(ValueError, match="shift must be integers"):
        Requant([1 << 30], [-2.0])
    with pytest.raises(ValueError, match="zero_point must be integers"):
        Requant([1 << 30], [-2], zero_point=0.5)
