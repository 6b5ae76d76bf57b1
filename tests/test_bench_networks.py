"""``macforge bench --networks`` (MLPerf Tiny shapes per board) and ``macforge run --trace``
(every layer's RTL and golden output, the first differing layer named).

Times on 2 shared cores with the Verilator models cached: the two-network bench ~20 s,
the icebreaker ds_cnn and autoencoder runs ~20 s, the trace tests ~5 s each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from macforge.cli import main  # noqa: E402
from macforge.fpga.boards import BOARDS  # noqa: E402


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "macforge", *args], capture_output=True, text=True, timeout=600
    )


def _one_line_exit_2(res, needle):
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr


# -- bench --networks -----------------------------------------------------------------------
def test_bench_networks_report(tmp_path):
    """Two networks on `default`: RTL cycles bit-exact runs, the perf model equal to the
    RTL, every board's row from its own preset, figures consistent with each other."""
    report = tmp_path / "r.json"
    res = _run(
        "bench", "--networks", "--network", "ds_cnn", "--network", "fc_autoencoder",
        "--report", str(report),
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    rep = json.loads(report.read_text())
    assert rep["config"] == "default" and rep["golden_match"] and rep["batch"] == 1
    nets = {n["network"]: n for n in rep["networks"]}
    assert list(nets) == ["ds_cnn", "fc_autoencoder"]
    for name, n in nets.items():
        assert n["runs"] and n["golden_match"], name
        assert n["cycles"] == n["model_cycles"], "the perf model is cycle-exact on the RTL"
        acc = [row for row in n["layers"] if row["where"] == "accelerator"]
        assert sum(row["cycles"] for row in acc) == n["cycles"]
        assert sum(row["macs"] for row in acc) == n["macs"]
        assert all(row["cycles"] == row["model_cycles"] for row in acc)
        assert n["utilization"] == pytest.approx(n["macs"] / n["cycles"] / 64)
        assert [b["board"] for b in n["boards"]] == list(BOARDS)
        for b in n["boards"]:
            board = BOARDS[b["board"]]
            assert b["config"] == board.config and b["baud"] == board.default_baud()
            assert b["weight_bytes"] == n["weight_bytes"] and not b["weights_resident"]
            if not b["runs"]:
                continue
            assert b["cycles_source"] == "model" and b["cycles"] == b["model_cycles"]
            assert b["macs"] == n["macs"]
            assert b["latency_us"] == pytest.approx(b["cycles"] / board.clk_hz * 1e6)
            assert b["inferences_per_second"] == pytest.approx(
                1 / (b["latency_us"] * 1e-6 + b["link_seconds"])
            )
            # the weights cross the link every inference; 8N1: 10 bits a byte
            assert b["link_bytes"] > b["weight_bytes"]
            assert b["link_seconds"] == pytest.approx(b["link_bytes"] * 10 / b["baud"])
    assert nets["ds_cnn"]["parameters"] == 22604 and nets["ds_cnn"]["macs"] == 2656768
    ae = {b["board"]: b for b in nets["fc_autoencoder"]["boards"]}
    # K = 640 > the icebreaker preset's max_k 511: split into K chunks, still runs
    assert ae["icebreaker"]["runs"] and ae["icebreaker"]["cycles"] > 0
    assert ae["ulx3s-85f"]["weights_fit_device"] and not ae["ulx3s-25f"]["weights_fit_device"]
    assert "does not run" not in res.stdout
    assert "fc_autoencoder    ulx3s-85f (ulx3s)" in res.stdout


def test_bench_networks_board_preset_measured_on_rtl(tmp_path):
    """With --config a board's preset, that board's row is measured on the RTL (the
    autoencoder's K = 640 layer split into K chunks: the preset's max_k is 511)."""
    report = tmp_path / "r.json"
    res = _run(
        "bench", "--networks", "--network", "fc_autoencoder", "--network", "ds_cnn",
        "--config", "icebreaker", "--report", str(report),
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    ae, n = json.loads(report.read_text())["networks"]
    for net in (ae, n):
        assert net["runs"] and net["golden_match"]
        rows = {b["board"]: b for b in net["boards"]}
        assert rows["icebreaker"]["cycles_source"] == "rtl"
        assert rows["icebreaker"]["cycles"] == net["cycles"] == rows["icebreaker"]["model_cycles"]
        assert rows["ulx3s-85f"]["cycles_source"] == "model"
    assert ae["macs"] == 264192


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--network", "ds_cnn"], "--network needs --networks"),
        (["--networks", "--quick"], "--quick applies to the GEMM bench"),
        (["--networks", "--bus", "8"], "--bus applies to the GEMM bench"),
        (["--networks", "--raw"], "--raw applies to the GEMM bench"),
        (["--networks", "--network", "lenet"], "invalid choice: 'lenet'"),
        (["--networks", "--config", "nope"], "unknown config 'nope'"),
        (["--networks", "--report", "/no/such/dir/r.json"], "does not exist"),
    ],
)
def test_bench_networks_bad_input(tmp_path, args, needle):
    res = _run("bench", *args)
    _one_line_exit_2(res, needle)


def test_bench_networks_report_is_a_folder(tmp_path):
    res = _run("bench", "--networks", "--report", str(tmp_path))
    _one_line_exit_2(res, "is a folder")
    assert list(tmp_path.iterdir()) == []


# -- run --trace ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """A small CNN (conv, maxpool, conv, flatten, dense) quantised by onnxruntime."""
    from macforge.host.mlperf_tiny import quantize_model
    from macforge.host.onnx_import import import_onnx
    from tests.test_onnx import cnn_model

    d = tmp_path_factory.mktemp("cnn")
    rng = np.random.default_rng(5)
    path = quantize_model(
        cnn_model(rng),
        d / "cnn.onnx",
        rng.uniform(-1, 1, (16, 2, 10, 10)).astype(np.float32),
        preprocess=False,
    )
    x = d / "x.npy"
    np.save(x, rng.uniform(-1, 1, (3, 2, 10, 10)).astype(np.float32))
    return path, x, import_onnx(path).network


def _run_args(cnn, tmp_path, *extra):
    path, x, _ = cnn
    return ["run", str(path), "--input", str(x), "--output", str(tmp_path / "y.npy"), *extra]


def test_trace_all_layers_match(cnn, tmp_path, capsys):
    trace = tmp_path / "trace"
    assert main(_run_args(cnn, tmp_path, "--trace", str(trace))) == 0
    assert "all 5 layers match the golden model" in capsys.readouterr().out
    summary = json.loads((trace / "trace.json").read_text())
    net = cnn[2]
    assert summary["first_mismatch"] is None and summary["batch"] == 3
    assert [row["name"] for row in summary["layers"]] == [layer.name for layer in net.layers]
    for row in summary["layers"]:
        rtl, gold = np.load(trace / row["rtl"]), np.load(trace / row["golden"])
        assert row["match"] and rtl.dtype == np.int8 and np.array_equal(rtl, gold)
        assert list(rtl.shape) == row["shape"] and row["rtl"].startswith(f"{row['index']:03d}_")
    assert sorted(p.name for p in trace.iterdir()) == sorted(
        [r["rtl"] for r in summary["layers"]] + [r["golden"] for r in summary["layers"]]
        + ["trace.json"]
    )  # fmt: skip


class _Corrupting:
    """A transport that flips the lowest bit of the first output word of the
    ``victim``-th session (one accelerator layer): one int8 value off by one."""

    def __init__(self, inner, victim: int) -> None:
        self.inner, self.config, self.victim, self.sessions = inner, inner.config, victim, 0

    def execute(self, segments):
        from macforge.host.runtime import _PRE_RESULTS

        out = self.inner.execute(segments)
        if self.sessions == self.victim:
            out[0].results[_PRE_RESULTS] ^= 1
        self.sessions += 1
        return out

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_trace_names_the_faulty_layer(cnn, tmp_path, capsys, monkeypatch):
    """A fault injected into the second accelerator layer's RTL output: the trace names
    that layer (not the earlier ones that match, nor the later ones it corrupts)."""
    from macforge import cmd_run

    real = cmd_run.sim_transport
    monkeypatch.setattr(cmd_run, "sim_transport", lambda *a, **k: _Corrupting(real(*a, **k), 1))
    trace, report = tmp_path / "trace", tmp_path / "r.json"
    code = main(_run_args(cnn, tmp_path, "--trace", str(trace), "--report", str(report)))
    assert code == 1, "the network output differs from golden"
    net = cnn[2]
    victim = [layer for layer in net.layers if layer.kind in ("conv2d", "dense")][1]
    out = capsys.readouterr().out
    assert f"first layer that differs: {victim.name} (" in out, out
    summary = json.loads((trace / "trace.json").read_text())
    assert summary["first_mismatch"] == victim.name
    assert json.loads(report.read_text())["first_mismatch"] == victim.name
    rows = {row["name"]: row for row in summary["layers"]}
    index = rows[victim.name]["index"]
    assert all(row["match"] for row in summary["layers"][:index])
    assert rows[victim.name]["mismatches"] == 1 and rows[victim.name]["max_abs_diff"] == 1
    rtl = np.load(trace / rows[victim.name]["rtl"])
    gold = np.load(trace / rows[victim.name]["golden"])
    assert np.count_nonzero(rtl != gold) == 1

    # a second trace into the same folder replaces the first one's files
    monkeypatch.setattr(cmd_run, "sim_transport", real)
    assert main(_run_args(cnn, tmp_path, "--trace", str(trace))) == 0
    assert json.loads((trace / "trace.json").read_text())["first_mismatch"] is None
    assert len(list(trace.iterdir())) == 2 * len(net.layers) + 1


@pytest.mark.parametrize("case", ["file", "not a trace", "unwritable", "no parent", "is output"])
def test_trace_bad_folder(cnn, tmp_path, capsys, case):
    """A bad --trace DIR: one line, exit 2, before any work, nothing written."""
    trace = tmp_path / "trace"
    needle = {
        "file": "exists and is not a folder",
        "not a trace": "holds files but no trace.json",
        "unwritable": "cannot write trace folder",
        "no parent": "does not exist",
        "is output": "also an input or output",
    }[case]
    if case == "file":
        trace.write_text("mine")
    elif case == "not a trace":
        trace.mkdir()
        (trace / "notes.txt").write_text("mine")
    elif case == "unwritable":
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        # root writes into read-only folders; nobody creates files in /proc
        trace = Path("/proc/macforge-trace") if os.geteuid() == 0 else locked / "trace"
    elif case == "no parent":
        trace = tmp_path / "missing" / "trace"
    elif case == "is output":
        trace = tmp_path / "y.npy"
    before = sorted(p.name for p in tmp_path.rglob("*"))
    try:
        assert main(_run_args(cnn, tmp_path, "--trace", str(trace))) == 2
    finally:
        if case == "unwritable":
            (tmp_path / "locked").chmod(0o700)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "y.npy").exists()
