"""``macforge`` command line. Bad input: one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import sys

from . import (
    __version__,
    cmd_area,
    cmd_bench,
    cmd_build,
    cmd_demo,
    cmd_estimate,
    cmd_matmul,
    cmd_run,
    cmd_sweep,
    cmd_verify,
    cmd_verilog,
)
from .common import UsageError

__all__ = ["main", "build_parser", "EXIT_USAGE"]

EXIT_USAGE = 2
COMMANDS = (
    cmd_demo,
    cmd_verilog,
    cmd_matmul,
    cmd_run,
    cmd_bench,
    cmd_estimate,
    cmd_build,
    cmd_area,
    cmd_sweep,
    cmd_verify,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not a usage dump
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="macforge", description="Open generator for small int8 AI accelerators.")
    p.add_argument("--version", action="version", version=f"macforge {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in COMMANDS:
        module.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"macforge {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("macforge: interrupted", file=sys.stderr)
        return 130
