"""Lint gate: ruff (configured in pyproject.toml) and the layering rules of DESIGN.md."""

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: folder -> project layers it may import (DESIGN.md, "Layers"); folder ``X`` is the
#: package ``macforge.X`` (pyproject.toml ``package-dir``)
ALLOWED = {
    "hw": {"hw"},
    "host": {"hw", "host"},
    "sim": {"hw", "host", "sim"},
    "fpga": {"hw", "fpga"},
}
LAYERS = set(ALLOWED)
#: what `_imports` reports for project code: a layer, ``macforge`` (the CLI) or ``tests``
PROJECT = LAYERS | {"macforge", "tests"}


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed")
def test_ruff_clean():
    res = subprocess.run(["ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def _package(path: Path) -> list[str]:
    """Dotted package of the module at ``path``: ``hw/x.py`` is in ``macforge.hw``."""
    parts = list(path.relative_to(ROOT).parent.parts)
    if parts and parts[0] in LAYERS:
        return ["macforge", *parts]
    return parts


def _imported_modules(path: Path) -> set[str]:
    """Absolute dotted names of the modules ``path`` imports (relative imports resolved).

    ``from P import n`` yields ``P.n`` too, as ``n`` may be a module
    (``from macforge import hw``, ``from .. import host``).
    """
    tree = ast.parse(path.read_text())
    package = _package(path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                assert len(base) == len(package) - node.level + 1 and base, (
                    f"{path}: relative import beyond the top-level package"
                )
            else:
                base = []
            module = ".".join(base + ([node.module] if node.module else []))
            if module != "macforge" or not all(a.name in LAYERS for a in node.names):
                names.add(module)  # `from macforge import hw` imports just the layer
            names |= {f"{module}.{a.name}" for a in node.names if a.name != "*"}
    return names


def _unit(module: str) -> str:
    """``macforge.hw.isa`` -> ``hw``, ``macforge.cli`` -> ``macforge``, ``numpy.x`` -> ``numpy``."""
    parts = module.split(".")
    if parts[0] == "macforge" and len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return parts[0]


def _imports(path: Path) -> set[str]:
    """Project units (`PROJECT`) and third-party top-level modules ``path`` imports."""
    return {_unit(m) for m in _imported_modules(path)}


def _python_files():
    for folder in sorted(PROJECT):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_layers_imported_as_macforge_subpackages():
    """``import hw`` works only from a checkout; installed, the layers are ``macforge.hw`` etc."""
    bad = [
        f"{path.relative_to(ROOT)} imports {m}"
        for path in _python_files()
        for m in sorted(_imported_modules(path))
        if m.split(".")[0] in LAYERS
    ]
    assert not bad, "; ".join(bad)


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
            "types",
        }
        assert third_party <= {"amaranth"} | stdlib_ok, f"{path.name}: {third_party}"
