"""``macforge area``: technology-neutral area of a config's ASIC export.

Yosys generic synthesis of ``macforge verilog --target asic`` (hierarchy kept), then
``stat -tech cmos``: transistors and NAND2 gate equivalents per module and block, flip-flops,
and the RAM bits kept as memories (see `fpga.area` and the README, "ASIC export").
"""

from __future__ import annotations

import argparse

from .common import UsageError, check_report_path, config_by_name, write_report

#: the designs `fpga.area.area_estimate` can measure
TOPS = ("accelerator", "array")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "area",
        help="technology-neutral area estimate of the ASIC export (Yosys generic synthesis)",
    )
    p.add_argument("--config", default="default", help="preset name (default: default)")
    p.add_argument(
        "--top",
        choices=TOPS,
        default="accelerator",
        help="accelerator core (default) or the bare systolic array",
    )
    p.add_argument("--report", metavar="FILE", help="write the figures as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config_by_name(args.config)
    check_report_path(args)
    from macforge.fpga.area import AreaError, area_estimate, check_area_tools

    try:
        check_area_tools()
    except AreaError as exc:
        raise UsageError(str(exc)) from None
    print(f"  synthesising the ASIC export of config '{cfg.name}' (yosys, generic gates) ...")
    try:
        report = area_estimate(cfg, top=args.top)
    except AreaError as exc:
        print(f"macforge area: error: {exc}")
        return 1
    r = report.to_dict()
    width = max(len(name) for name in r["blocks"])
    print(f"  {'block':<{width}}  {'NAND2 eq.':>10}  {'flip-flops':>10}  {'RAM bits':>9}")
    for name, b in r["blocks"].items():
        print(
            f"  {name:<{width}}  {b['gate_equivalents']:>10.0f}  {b['flip_flops']:>10}  "
            f"{b['memory_bits']:>9}"
        )
    print(
        f"  total: {r['transistors']} transistors = {r['gate_equivalents']:.0f} NAND2 "
        f"equivalents, {r['flip_flops']} flip-flops; RAM {r['memory_bits']} bits "
        f"({r['memories']} memories, ~{r['memory_transistors']} transistors as 6T SRAM); "
        f"synthesis {r['synth_seconds']:.1f} s"
    )
    write_report(args.report, r)
    return 0
