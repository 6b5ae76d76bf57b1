"""``macforge verilog``: write the generated accelerator (or the bare array) as Verilog.

``--target fpga`` (default) writes the config as it is built for its board: on iCE40 the
PEs instantiate ``SB_MAC16`` blocks. ``--target asic`` writes the same design as
vendor-neutral RTL (`fpga.asic.asic_config`: plain multipliers and memories, no FPGA
primitive), lint clean with ``verilator --lint-only -Wall`` and the waiver file
``sim/lint_waivers.vlt``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import UsageError, _atomic_write, check_output_path, config_by_name

TOPS = ("accelerator", "array")
TARGETS = ("fpga", "asic")


def add_parser(sub) -> None:
    p = sub.add_parser("verilog", help="write the generated hardware as Verilog")
    p.add_argument("--config", default="default", help="preset name (default: default)")
    p.add_argument(
        "--top",
        choices=TOPS,
        default="accelerator",
        help="accelerator core (default) or the bare systolic array",
    )
    p.add_argument(
        "--target",
        choices=TARGETS,
        default="fpga",
        help="fpga (default): as built for the config's device, DSP primitives included; "
        "asic: vendor-neutral RTL of the same design (plain multipliers and memories)",
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="Verilog file to write")
    p.add_argument("--name", default=None, help="top-level module name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_by_name(args.config)
    out = check_output_path(args.output)
    name = args.name or f"macforge_{args.top}"
    if not name.isidentifier():
        raise UsageError(f"--name {name!r} is not a valid Verilog identifier")

    from amaranth.back import verilog

    from macforge.fpga.asic import asic_config, fpga_primitives_in
    from macforge.hw.accelerator import Accelerator
    from macforge.hw.array import SystolicArray

    if args.target == "asic":
        cfg = asic_config(cfg)
    top = Accelerator(cfg) if args.top == "accelerator" else SystolicArray(cfg)
    text = verilog.convert(top, name=name, emit_src=False)
    if args.target == "asic":
        leaked = fpga_primitives_in(text)
        if leaked:  # a generator bug, not bad input
            raise RuntimeError(f"ASIC Verilog instantiates FPGA cells: {', '.join(leaked)}")
    _atomic_write(Path(out), lambda f: f.write(text.encode()))
    print(
        f"wrote {out}: {args.top} '{name}' for config {cfg.name} "
        f"({cfg.rows}x{cfg.cols}, target {args.target}, {len(text)} bytes)"
    )
    return 0
