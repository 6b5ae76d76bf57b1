"""``macforge sweep``: results, plots, the Pareto front, bad input, and the same JSON on a
Dask cluster as on local processes (and ``verify soak --cluster`` likewise)."""

from __future__ import annotations

import csv
import json
import os

import pytest

from macforge.cli import main
from macforge.sweep import pareto_front

#: two small points on the iCE40 (Yosys synthesis ~15 s each) and one that the generator
#: refuses (3 lanes do not divide 2 columns); two GEMM shapes
SWEEP = [
    "sweep",
    "--config",
    "tiny",
    "--target",
    "ice40-up5k",
    "--array",
    "1x2,2x2",
    "--pp-lanes",
    "1,3",
    "--gemm",
    "8x16x8,1x32x4",
]


def _sweep(tmp_path, name, *extra):
    out = tmp_path / name
    assert main([*SWEEP, "--out", str(out), *extra]) == 0
    return out


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    return _sweep(tmp_path_factory.mktemp("sweep"), "local", "--jobs", "2")


def test_sweep_results(local_sweep):
    report = json.loads((local_sweep / "sweep.json").read_text())
    points = report["points"]
    assert [p["index"] for p in points] == list(range(4))
    valid = [p for p in points if p["valid"]]
    refused = [p for p in points if not p["valid"]]
    assert len(valid) == 2 and len(refused) == 2
    assert all("pp_lanes" in p["error"] for p in refused)
    small, big = sorted(valid, key=lambda p: p["rows"] * p["cols"])
    for p in valid:
        assert p["board"] == "icebreaker" and p["fits"] is True
        assert 0 < p["luts"] <= p["luts_total"] == 5280
        assert p["clock_source"] == "board" and p["clock_mhz"] == 31.5
        assert [w["name"] for w in p["workload"]] == ["8x16x8", "1x32x4"]
        assert p["macs"] == 8 * 16 * 8 + 32 * 4
        assert p["cycles"] == sum(w["cycles"] for w in p["workload"])
        assert 0 < p["utilization"] <= 1
        assert p["gmacs"] == pytest.approx(p["macs"] / p["cycles"] * 31.5 / 1000, rel=1e-4)
        assert all(w["link_seconds"] > 0 for w in p["workload"])
    # twice the MACs per cycle: fewer cycles, more logic
    assert big["cycles"] < small["cycles"] and big["luts"] > small["luts"]
    assert report["pareto"] == sorted(p["index"] for p in valid)
    with open(local_sweep / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {"luts", "gmacs", "fits", "error"} <= set(rows[0])
    with open(local_sweep / "sweep_workload.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    for name in ("pareto.png", "utilization.png", "roofline.png"):
        assert (local_sweep / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mask = os.umask(0o022)
    os.umask(mask)
    assert (local_sweep / "sweep.json").stat().st_mode & 0o777 == 0o666 & ~mask


def _point(index, luts, gmacs, fits=True):
    return {"index": index, "valid": True, "fits": fits, "luts": luts, "gmacs": gmacs}


def test_pareto_front():
    points = [
        _point(0, 100, 1.0),
        _point(1, 200, 2.0),
        _point(2, 300, 1.5),  # beaten by 1: more LUTs, slower
        _point(3, 50, 0.5),
        _point(4, 40, 9.0, fits=False),  # does not fit: never on the front
        {"index": 5, "valid": False},
    ]
    assert pareto_front(points) == [0, 1, 3]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--array", "2y2"], "--array '2y2' is not RxC"),
        (["--gemm", "8x0x8"], "--gemm '8x0x8' is not MxKxN"),
        (["--target", "ice41"], "--target 'ice41' is not one of"),
        (["--bus-bytes", "four"], "--bus-bytes must be comma-separated integers"),
        (["--seeds", "2"], "--seeds needs --pnr"),
        (["--freq", "-3"], "--freq must be in"),
        (["--config", "nope"], "unknown config 'nope'"),
        (["--model", "missing.onnx"], "file not found"),
        (["--cluster", "localhost:8786"], "is not of the form tcp://HOST:PORT"),
        (["--cluster", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
    ],
)
def test_sweep_bad_input(tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    assert main(["sweep", "--quick", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
    assert not out.exists()


def test_sweep_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep")
    assert main(["sweep", "--quick", "--out", str(f)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert f.read_text() == "keep"


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


def test_sweep_on_dask_gives_the_same_json(local_sweep, dask_cluster, tmp_path):
    out = _sweep(tmp_path, "dask", "--cluster", dask_cluster)
    assert (out / "sweep.json").read_text() == (local_sweep / "sweep.json").read_text()
    assert (out / "sweep.csv").read_text() == (local_sweep / "sweep.csv").read_text()


def test_soak_on_dask_gives_the_same_summary(dask_cluster, tmp_path):
    reports = []
    for where in (["--jobs", "1"], ["--cluster", dask_cluster]):
        path = tmp_path / f"soak{len(reports)}.json"
        args = ["verify", "soak", "--config", "tiny", "--seeds", "2", "--fuzz-words", "200"]
        assert main([*args, *where, "--report", str(path)]) == 0
        report = json.loads(path.read_text())
        report.pop("wall_seconds")
        reports.append(report)
    assert reports[0] == reports[1] and reports[0]["seeds"] == 2


def test_sweep_over_an_onnx_model(tmp_path):
    """``--model``: the workload is the model's accelerator layers, each estimated as
    ``macforge estimate`` does (`sim.perfmodel.estimate_network`)."""
    pytest.importorskip("onnxruntime")
    import numpy as np
    from onnxruntime.quantization import QuantFormat

    from macforge.host.onnx_import import import_onnx
    from macforge.hw.presets import preset
    from macforge.sim.perfmodel import estimate_network

    from .test_onnx import mlp_model, quantised

    rng = np.random.default_rng(11)
    q = quantised(
        tmp_path,
        mlp_model(rng),
        rng.normal(size=(16, 20)).astype(np.float32),
        QuantFormat.QDQ,
        True,
    )
    out = tmp_path / "model"
    args = ["sweep", "--config", "tiny", "--target", "ice40-up5k", "--model", str(q)]
    assert main([*args, "--out", str(out), "--jobs", "1"]) == 0
    (point,) = json.loads((out / "sweep.json").read_text())["points"]
    cfg = preset("tiny").replace(target="ice40-up5k")
    expected = estimate_network(import_onnx(q).network, cfg)
    layers = [x for x in expected.layers if x.where == "accelerator"]
    assert [w["name"] for w in point["workload"]] == [x.name for x in layers]
    assert [w["cycles"] for w in point["workload"]] == [x.cycles for x in layers]
    assert point["fits"] and point["macs"] == sum(x.macs for x in layers)
