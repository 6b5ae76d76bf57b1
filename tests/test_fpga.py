"""FPGA flow: board registry, report parsing, and real YoWASP builds (slow, run in CI)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fpga.boards import BOARDS, board_by_name
from fpga.build import DEVICE_CAPACITY, build, synthesize
from fpga.report import parse_nextpnr_report, resource_shortage
from hw.config import TARGET_DSPS


@pytest.mark.parametrize("name", list(BOARDS))
def test_board_defaults_fit_their_device(name):
    board = BOARDS[name]
    cfg = board.default_config()
    assert cfg.target == board.target
    assert cfg.dsps <= TARGET_DSPS[board.target]
    assert board.device in DEVICE_CAPACITY


def test_unknown_board():
    with pytest.raises(ValueError, match="known boards: icebreaker"):
        board_by_name("de10")


def test_parse_nextpnr_report(tmp_path):
    report = {
        "utilization": {
            "ICESTORM_LC": {"used": 4000, "available": 5280},
            "ICESTORM_DSP": {"used": 8, "available": 8},
            "ICESTORM_RAM": {"used": 17, "available": 30},
            "ICESTORM_SPRAM": {"used": 0, "available": 4},
        },
        "fmax": {
            "cd_sync.clk": {"achieved": 17.6, "constraint": 12.0},
            "$PACKER_GND_NET_$glb_clk": {"achieved": 5.0, "constraint": 12.0},
        },
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    out = parse_nextpnr_report(path, "ice40")
    assert out["luts"] == 4000 and out["luts_total"] == 5280 and out["dsps"] == 8
    assert out["fmax_mhz"] == 17.6  # the packer's constant net is not a clock
    assert list(out["clocks"]) == ["cd_sync.clk"]


def test_resource_shortage_message():
    log = "ERROR: Design uses 12 cells of type 'ICESTORM_DSP', but device only has 8"
    assert resource_shortage(log) == "design needs 12 ICESTORM_DSP cells but the device has only 8"
    assert resource_shortage("all good") is None
    # what nextpnr-ice40 prints when the DSPs run out (seen with config tiny on the UP5K)
    tim = """Info: Device utilisation:
Info: 	         ICESTORM_LC:    4000/   5280    75%
Info: 	        ICESTORM_DSP:      12/      8   150%
ERROR: Unable to place cell 'x_DSP', no BELs remaining to implement cell type 'ICESTORM_DSP'
"""
    assert resource_shortage(tim) == "design needs 12 ICESTORM_DSP cells but the device has only 8"
    assert resource_shortage(tim.splitlines()[-1]) == (
        "design needs more ICESTORM_DSP cells than the device has"
    )


def test_cli_build_rejects_mismatched_config():
    res = subprocess.run(
        [sys.executable, "-m", "macforge", "build", "--board", "icebreaker", "--config", "ulx3s"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    assert "config ulx3s is for target ecp5-85f" in res.stderr.strip()


@pytest.mark.slow
def test_icebreaker_bitstream(tmp_path):
    """Full build for the iCEBreaker default config: fits, meets timing, writes a .bin."""
    result = build(BOARDS["icebreaker"], build_dir=tmp_path / "icebreaker", progress=print)
    r = result.report
    assert result.bitstream.exists() and result.bitstream.stat().st_size > 100_000
    assert r["timing_met"], f"Fmax {r['fmax_mhz']} MHz < {r['target_mhz']} MHz"
    for key in ("luts", "dsps", "brams", "sprams"):
        assert r[key] <= r[f"{key}_total"], key
    assert r["dsps"] == BOARDS["icebreaker"].default_config().dsps


@pytest.mark.slow
def test_ulx3s_85f_synthesis(tmp_path):
    """Synthesis of the ULX3S-85F default config fits the device (no place and route)."""
    r = synthesize(BOARDS["ulx3s-85f"], build_dir=tmp_path / "ulx3s", progress=print)
    assert r["fits"], r
    assert r["dsps"] == BOARDS["ulx3s-85f"].default_config().dsps


def test_count_ice40_ffs():
    from fpga.report import count_ice40_ffs

    log = """=== macforge ===
       12   SB_DFF
=== design hierarchy ===
      165   SB_DFF
       93   SB_DFFE
     3276   SB_LUT4
      165   SB_DFF
"""
    assert count_ice40_ffs(log) == 258
    assert count_ice40_ffs("no stat here") is None


def test_ice40_pll_search():
    from fpga.clocks import ice40_pll_params

    p = ice40_pll_params(12e6, 48e6)  # icepll's answer: DIVR 0, DIVF 63, DIVQ 4
    assert (p.divr, p.divf, p.divq, p.filter_range) == (0, 63, 4, 1)
    p = ice40_pll_params(12e6, 15e6)
    assert p.f_out_hz == 15e6 and 533e6 <= 12e6 * (p.divf + 1) <= 1066e6
    with pytest.raises(ValueError, match="no iCE40 PLL setting"):
        ice40_pll_params(12e6, 2e6)


def test_parse_ecp5_report(tmp_path):
    report = {
        "utilization": {
            "TRELLIS_COMB": {"used": 21927, "available": 83640},
            "MULT18X18D": {"used": 96, "available": 156},
        },
        "fmax": {"$glbnet$cd_sync.clk": {"achieved": 53.31, "constraint": 25}},
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    out = parse_nextpnr_report(path, "ecp5")
    assert out["fmax_mhz"] == 53.31 and out["dsps"] == 96 and out["brams"] == 0
