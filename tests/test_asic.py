"""ASIC export (issue 11): vendor-neutral Verilog, Verilator -Wall lint with the documented
waivers, and the technology-neutral area estimate (`macforge area`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.back import verilog

from macforge.cli import main
from macforge.fpga.area import TRANSISTORS_PER_GATE_EQUIVALENT, area_estimate
from macforge.fpga.asic import ASIC_TARGET, asic_config, fpga_primitives_in
from macforge.hw.accelerator import Accelerator
from macforge.hw.devices import DEVICES, FPGA_PRIMITIVES
from macforge.hw.presets import preset
from macforge.sim.lint import LINT_WAIVERS, lint_verilog

ROOT = Path(__file__).resolve().parents[1]


def _verilog(tmp_path, config, *extra, path=False):
    out = tmp_path / f"{config}-{len(list(tmp_path.iterdir()))}.v"
    assert main(["verilog", "--config", config, "-o", str(out), *extra]) == 0
    return out if path else out.read_text()


def test_primitive_list_comes_from_the_device_table():
    for d in DEVICES.values():
        assert d.primitives <= FPGA_PRIMITIVES
    assert {"SB_MAC16", "SB_PLL40_PAD", "EHXPLLL", "MULT18X18D", "DP16KD"} <= FPGA_PRIMITIVES


def test_asic_config_keeps_the_design_and_drops_fpga_choices():
    ice = preset("icebreaker")
    a = asic_config(ice)
    assert a.target == ASIC_TARGET and a.dsp_primitive is None and a.device.dsps is None
    assert a.dsp_pes == a.rows * a.cols  # every PE a plain `*`, none in lut_mul partial products
    same = ("rows", "cols", "acc_width", "max_k", "bus_bytes", "a_depth", "b_depth", "pp_lanes")
    assert all(getattr(a, f) == getattr(ice, f) for f in same) and a.pp_mul == ice.pp_mul
    assert a.name == ice.name


@pytest.mark.parametrize("config", ["icebreaker", "ulx3s-25f"])
def test_asic_verilog_has_no_fpga_primitive(tmp_path, config):
    fpga = _verilog(tmp_path, config)
    asic = _verilog(tmp_path, config, "--target", "asic")
    assert _verilog(tmp_path, config, "--target", "fpga") == fpga  # fpga is the default
    # --target fpga is what the generator always wrote for this config
    assert fpga == verilog.convert(
        Accelerator(preset(config)), name="macforge_accelerator", emit_src=False
    )
    assert fpga_primitives_in(asic) == []
    assert not [p for p in FPGA_PRIMITIVES if p in asic]
    if config == "icebreaker":  # the check sees a leak: the iCE40 build's SB_MAC16 pairs
        assert fpga_primitives_in(fpga) == ["SB_MAC16"]
    array = _verilog(tmp_path, config, "--target", "asic", "--top", "array")
    assert fpga_primitives_in(array) == []


@pytest.mark.parametrize("config", ["tiny", "default"])
def test_asic_verilog_lints_clean_with_the_waivers(tmp_path, config):
    path = _verilog(tmp_path, config, "--target", "asic", path=True)
    result = lint_verilog(path)
    assert result.clean, "\n".join(result.diagnostics[:20])
    if config == "tiny":  # the lint is live: without the waiver file -Wall complains
        assert not lint_verilog(path, waivers=None).clean


def test_waiver_file_documents_each_waiver_and_ships():
    text = LINT_WAIVERS.read_text()
    lines = text.splitlines()
    assert lines[0] == "`verilator_config"
    waivers = [i for i, line in enumerate(lines) if line.startswith("lint_off")]
    assert waivers
    for i in waivers:  # every waiver follows a comment saying why
        j = i - 1
        while lines[j].startswith("lint_off"):
            j -= 1
        assert lines[j].startswith("//"), lines[i]
    if sys.version_info >= (3, 11):
        import tomllib

        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        data = pyproject["tool"]["setuptools"]["package-data"]["macforge.sim"]
        assert "*.vlt" in data and LINT_WAIVERS.parent.name == "sim"


def _check_area(r: dict, config) -> None:
    """``config``: a preset name or an `AccelConfig`."""
    cfg = preset(config) if isinstance(config, str) else config
    keys = {"transistors", "gate_equivalents", "flip_flops", "memories", "memory_bits"}
    keys |= {"memory_transistors", "total_transistors", "blocks", "modules", "synth_seconds"}
    assert keys <= set(r) and r["config"] == cfg.name and r["target"] == "asic"
    mods = r["modules"].values()
    for key in ("transistors", "flip_flops", "memory_bits"):
        assert sum(m[key] * m["instances"] for m in mods) == r[key]
        assert sum(b[key] for b in r["blocks"].values()) == r[key]
    assert r["gate_equivalents"] == r["transistors"] / TRANSISTORS_PER_GATE_EQUIVALENT
    assert r["total_transistors"] == r["transistors"] + r["memory_transistors"]
    assert {"array", "decoder", "store"} <= set(r["blocks"])
    assert r["memory_bits"] >= cfg.buffer_bits  # A, B, parameters (+ the row FIFO)
    # each PE holds at least its accumulator, product and operand registers
    assert r["blocks"]["array"]["flip_flops"] >= cfg.rows * cfg.cols * (cfg.acc_width + 16)


@pytest.fixture(scope="module")
def tiny_area(tmp_path_factory):
    """``macforge area --config tiny --report r.json`` (one synthesis, ~15 s unloaded)."""
    rep = tmp_path_factory.mktemp("area") / "r.json"
    assert main(["area", "--config", "tiny", "--report", str(rep)]) == 0
    return json.loads(rep.read_text())


def test_area_report_tiny(tiny_area):
    _check_area(tiny_area, "tiny")
    assert 100_000 < tiny_area["transistors"] < 2_000_000


def test_area_grows_with_the_array(tiny_area):
    """tiny's 2x2 array against the same config at 4x4 (four times the PEs, twice the
    requantiser lanes): ~25 s of synthesis; `macforge area --config default` is the
    README's figure (~1 min)."""
    tiny = tiny_area
    cfg = preset("tiny").replace(rows=4, cols=4, name="tiny4x4")
    big = area_estimate(cfg).to_dict()
    _check_area(big, cfg)
    assert big["transistors"] > 1.5 * tiny["transistors"]
    assert big["blocks"]["array"]["transistors"] > 3 * tiny["blocks"]["array"]["transistors"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--config", "nope"], "unknown config 'nope'"),
        (["--report", "/no/such/dir/r.json"], "does not exist"),
        (["--report", "."], "is a folder"),
        (["--top", "pe"], "invalid choice"),
    ],
)
def test_area_bad_input_is_one_line_exit_2(tmp_path, args, needle):
    res = subprocess.run(
        [sys.executable, "-m", "macforge", "area", "--config", "tiny", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert res.returncode == 2, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert list(tmp_path.iterdir()) == []  # no report, no temporary file


def test_area_without_yosys_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("macforge.fpga.area._YOSYS", "no-such-yosys")
    rep = tmp_path / "r.json"
    assert main(["area", "--config", "tiny", "--report", str(rep)]) == 2
    assert "pip install 'macforge[fpga]'" in capsys.readouterr().err
    assert not rep.exists()


def test_verilog_bad_target_is_exit_2(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "macforge", "verilog", "--target", "gds", "-o", "x.v"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert res.returncode == 2 and "invalid choice" in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_names_the_asic_options(capsys):
    for argv, needle in ((["area", "--help"], "--report"), (["verilog", "--help"], "asic")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0 and needle in capsys.readouterr().out
