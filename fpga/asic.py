"""ASIC export: any config as vendor-neutral RTL.

`asic_config` turns a config into the same design with every FPGA-specific choice
replaced by plain behaviour:

* the ``generic`` target (`ASIC_TARGET`): no hand-instantiated DSP block (the iCE40
  ``SB_MAC16`` pairs of `hw.dsp`), no device budget; the buffers are the same
  `amaranth.lib.memory.Memory` instances as on every target;
* every PE multiplies with a plain ``*`` (``dsp_pes`` = all PEs): the shift-add partial
  products of `hw.arith.lut_mul` only exist to spare an FPGA's DSP blocks. A PE's latency
  is the same with either multiplier.

The requantiser keeps the configured ``pp_lanes`` and ``pp_mul``: both styles are plain
logic (a ``*`` per lane, or a multi-cycle shift-add), and keeping them keeps latency and
throughput, so the ASIC RTL runs a program in the cycles the configured design takes.
Board tops (PLLs, I/O buffers) are never part of the export: it is the accelerator core
(or the bare array) that `macforge verilog --target asic` writes.

The Verilog is lint clean with ``verilator --lint-only -Wall`` and the documented waiver
file ``sim/lint_waivers.vlt`` (`sim.lint`); every waiver in it says why.
"""

from __future__ import annotations

import re

from macforge.hw.config import AccelConfig
from macforge.hw.devices import FPGA_PRIMITIVES

__all__ = [
    "ASIC_TARGET",
    "asic_config",
    "undefined_modules",
    "fpga_primitives_in",
]

#: `AccelConfig.target` of the ASIC export (`hw.devices`: no budget, no vendor cell)
ASIC_TARGET = "generic"

#: Verilog words that can start a line the way an instantiation does
_KEYWORDS = frozenset(
    "always assign begin case casez casex else end endcase function generate if initial "
    "input inout output reg wire localparam parameter signed integer module".split()
)
_IDENT = r"(?:\\\S+|[A-Za-z_][\w$]*)"  # plain or escaped Verilog identifier
#: ``TYPE #(`` or ``TYPE NAME (`` at the start of a line: a module instantiation
_INSTANCE = re.compile(rf"^\s*({_IDENT})\s+(?:#\s*\(|{_IDENT}\s*\()", re.M)
_MODULE = re.compile(rf"^\s*module\s+({_IDENT})", re.M)


def asic_config(config: AccelConfig) -> AccelConfig:
    """``config`` with every FPGA-specific choice replaced by plain behaviour (see the
    module docstring): ``target="generic"``, all PEs on a plain ``*``, the requantiser's
    lanes and multiplier style kept. The name is kept too."""
    return config.replace(
        target=ASIC_TARGET,
        pp_lanes=config.pp_lanes,
        pp_mul=config.pp_mul,
        dsp_pes=config.rows * config.cols,
    )


def undefined_modules(verilog_text: str) -> list[str]:
    """Names of the modules ``verilog_text`` instantiates but does not define (vendor
    primitives and other black boxes), sorted; ``[]`` for a self-contained design."""
    defined = set(_MODULE.findall(verilog_text))
    used = {name for name in _INSTANCE.findall(verilog_text) if name not in _KEYWORDS}
    return sorted(used - defined)


def fpga_primitives_in(verilog_text: str) -> list[str]:
    """FPGA cells in ``verilog_text``: every `hw.devices.FPGA_PRIMITIVES` name that occurs
    as a word anywhere (instances, attributes, comments) and every module instantiated
    but not defined; sorted, ``[]`` when the text is vendor-neutral."""
    named = {p for p in FPGA_PRIMITIVES if re.search(rf"\b{p}\b", verilog_text)}
    return sorted(named | set(undefined_modules(verilog_text)))
