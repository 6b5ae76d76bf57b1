"""``macforge verilog``: write the generated accelerator (or the bare array) as Verilog."""

from __future__ import annotations

import argparse

from .common import check_output_path, config_by_name

TOPS = ("accelerator", "array")


def add_parser(sub) -> None:
    p = sub.add_parser("verilog", help="write the generated hardware as Verilog")
    p.add_argument("--config", default="default", help="preset name (default: default)")
    p.add_argument(
        "--top",
        choices=TOPS,
        default="accelerator",
        help="accelerator core (default) or the bare systolic array",
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="Verilog file to write")
    p.add_argument("--name", default=None, help="top-level module name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from amaranth.back import verilog

    from macforge.hw.accelerator import Accelerator
    from macforge.hw.array import SystolicArray

    cfg = config_by_name(args.config)
    out = check_output_path(args.output)
    top = Accelerator(cfg) if args.top == "accelerator" else SystolicArray(cfg)
    name = args.name or f"macforge_{args.top}"
    if not name.isidentifier():
        from .common import UsageError

        raise UsageError(f"--name {name!r} is not a valid Verilog identifier")
    text = verilog.convert(top, name=name, emit_src=False)
    out.write_text(text)
    print(
        f"wrote {out}: {args.top} '{name}' for config {cfg.name} "
        f"({cfg.rows}x{cfg.cols}, {len(text)} bytes)"
    )
    return 0
