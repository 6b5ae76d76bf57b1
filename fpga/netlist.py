"""Gate-level netlists: the accelerator as the FPGA tools synthesise it.

`gate_netlist` runs the Yosys synthesis a board build runs (``synth_ice40`` /
``synth_ecp5`` with `fpga.build.SYNTH_OPTS`) on the accelerator alone and returns the
mapped netlist as Verilog: LUTs, carries, flip-flops, block RAMs and DSP cells
of the vendor library. `sim.runner.build` simulates it with the cell models that
ship with Yosys, so a gate-level run checks what synthesis made of the design.

ECP5 netlists use ``DP16KD`` block RAMs and ``MULT18X18D`` multipliers, which Yosys
ships only as blackboxes; `sim.ecp5_models` models the modes they are used in.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from amaranth.back import verilog

from macforge.hw.accelerator import Accelerator
from macforge.hw.config import AccelConfig

from .build import SYNTH_OPTS, BuildError, yowasp_env

__all__ = ["gate_netlist", "check_gate_level", "GATE_LEVEL_FAMILIES"]

#: families `gate_netlist` supports (their cells have simulation models: Yosys's, and
#: `sim.ecp5_models` for ECP5's DP16KD and MULT18X18D)
GATE_LEVEL_FAMILIES = ("ice40", "ecp5")


def check_gate_level(config: AccelConfig) -> str:
    """The config's family if it can run at gate level, else a `ValueError` saying why."""
    family = config.device.family
    if family not in GATE_LEVEL_FAMILIES:
        raise ValueError(
            f"--gate-level needs a config for an FPGA target of family "
            f"{', '.join(GATE_LEVEL_FAMILIES)}; config '{config.name}' targets "
            f"{config.target}"
        )
    return family


def gate_netlist(config: AccelConfig, *, name: str) -> str:
    """Verilog netlist of ``Accelerator(config)`` (module ``name``) after the board
    build's Yosys synthesis; ports as in the RTL (``cmd__valid``, ...)."""
    family = check_gate_level(config)
    env = yowasp_env(family)
    rtl = verilog.convert(Accelerator(config), name=name, emit_src=False)
    with tempfile.TemporaryDirectory(prefix="macforge-gates-") as tmp:
        work = Path(tmp)
        (work / "rtl.v").write_text(rtl)
        script = (
            f"read_verilog -sv rtl.v; synth_{family} {SYNTH_OPTS[family]} -top {name}; "
            "write_verilog -noattr netlist.v"
        )
        res = subprocess.run(
            [env["YOSYS"], "-q", "-p", script], cwd=work, capture_output=True, text=True
        )
        if res.returncode != 0:
            raise BuildError(f"gate-level synthesis failed: {(res.stderr or res.stdout)[-300:]}")
        return (work / "netlist.v").read_text()
