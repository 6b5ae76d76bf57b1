"""Lint gate: ruff (configured in pyproject.toml) and the layering rules of DESIGN.md."""

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: folder -> top-level project packages it may import (DESIGN.md, "Layers")
ALLOWED = {
    "hw": {"hw"},
    "host": {"hw", "host"},
    "sim": {"hw", "host", "sim"},
    "fpga": {"hw", "fpga"},
}
PROJECT = {"hw", "host", "sim", "fpga", "macforge", "tests"}


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_ruff_clean():
    res = subprocess.run(["ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layering(layer):
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for name in _imports(path) & PROJECT:
            if name not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "; ".join(bad)


def test_golden_is_independent_of_hw():
    assert not _imports(ROOT / "sim" / "golden.py") & {"hw", "host", "fpga"}


def test_hw_imports_amaranth_only():
    for path in sorted((ROOT / "hw").rglob("*.py")):
        third_party = _imports(path) - PROJECT - {"__future__"}
        stdlib_ok = {
            "dataclasses",
            "hashlib",
            "json",
            "enum",
            "math",
            "typing",
            "collections",
            "functools",
        }
        assert third_party <= {"amaranth"} | stdlib_ok, f"{path.name}: {third_party}"
