"""macforge command-line application (``macforge ...`` / ``python -m macforge``).

The layers live in the repository's top-level folders ``hw/``, ``host/``, ``sim/``
and ``fpga/`` and are installed as ``macforge.hw``, ``macforge.host``,
``macforge.sim`` and ``macforge.fpga`` (``package-dir`` in pyproject.toml).
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

#: The repository root when this package is imported from a source checkout, else None.
#:
#: An installed macforge (``pip install .``) holds the layers inside its own folder
#: (``site-packages/macforge/hw``), so plain package lookup finds them. When this
#: ``macforge/`` folder is imported straight from a checkout instead (the checkout
#: is on ``sys.path``: pytest's rootdir insertion, ``python -m macforge`` or
#: ``PYTHONPATH=.`` from the repository root), ``macforge/hw`` does not exist: the
#: layers are its siblings. Adding the repository root to ``__path__`` makes
#: ``import macforge.hw`` find ``<root>/hw``, exactly the folder an editable
#: install maps it to. This only happens when every layer folder and the
#: pyproject.toml sit next to this folder, so an installed copy never looks outside
#: itself (its parent is site-packages). In a checkout the root's other folders
#: (``tests``, ``docs``) become reachable as ``macforge.*`` too; nothing imports them so.
_SOURCE_ROOT: _Path | None = _Path(__file__).resolve().parent.parent
if not (_SOURCE_ROOT / "pyproject.toml").is_file() or not all(
    (_SOURCE_ROOT / layer / "__init__.py").is_file() for layer in ("hw", "host", "sim", "fpga")
):
    _SOURCE_ROOT = None
elif str(_SOURCE_ROOT) not in __path__:
    __path__.append(str(_SOURCE_ROOT))
