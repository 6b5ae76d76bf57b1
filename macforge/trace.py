"""``macforge run --trace DIR``: every layer's int8 output from the RTL and from the golden
model, side by side on disk, and the first layer (in the network's topological order)
where they differ.

Layout of ``DIR``: per layer ``NNN_<name>.rtl.npy`` and ``NNN_<name>.golden.npy`` (NNN
the layer's index in `QNetwork.layers`, zero-padded; characters other than letters,
digits, ``_ . -`` in the name replaced by ``_``), batch first, int8, the layout the layer
hands to the next one (conv outputs NCHW); and ``trace.json`` (`TRACE_FILE`): per layer
``index``, ``name``, ``kind``, ``where``, ``shape``, ``match``, ``mismatches`` (values that
differ), ``max_abs_diff``, ``rtl`` and ``golden`` (file names), plus ``first_mismatch``
(the first differing layer's name, or null).

``DIR`` is checked before any work: a file, an unwritable folder, or a folder that holds
files but no ``trace.json`` (not a trace: nothing of a user's is overwritten) is refused.
It is created only once the run has finished; a previous trace in it is replaced (the
files its ``trace.json`` lists are removed first). Every file is written atomically and
``trace.json`` last, so a ``trace.json`` always describes complete files.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import numpy as np

from .common import UsageError, check_output_dir, save_array, write_bytes

__all__ = ["TRACE_FILE", "check_trace_dir", "compare_layers", "write_trace"]

#: The summary file of a trace folder.
TRACE_FILE = "trace.json"


def check_trace_dir(path: str, others=()) -> Path:
    """``path`` as a trace folder this command may fill (module docstring), checked
    before any work; ``others``: the command's input and output files, which it must not
    be."""
    d = Path(path)
    for other in others:
        if other and Path(other).resolve() == d.resolve():
            raise UsageError(f"trace folder {path!r} is also an input or output of this command")
    check_output_dir(path, "trace folder")
    if d.is_dir() and any(d.iterdir()) and not (d / TRACE_FILE).is_file():
        raise UsageError(
            f"trace folder {path!r} holds files but no {TRACE_FILE}; give a new or "
            "empty folder (or a previous trace)"
        )
    return d


def _file_stem(index: int, name: str) -> str:
    return f"{index:03d}_{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}"


def compare_layers(network, rtl: dict, golden: dict, stats=None) -> list[dict]:
    """Per layer of ``network`` (in order): does the RTL output equal the golden one?
    ``rtl`` / ``golden``: layer name -> int8 output (``record=`` of `run_network` /
    `golden_forward`); ``stats``: `LayerStats` for ``where``."""
    where = {s.name: s.where for s in stats} if stats else {}
    rows = []
    for i, layer in enumerate(network.layers):
        a, b = np.asarray(rtl[layer.name]), np.asarray(golden[layer.name])
        same_shape = a.shape == b.shape
        diff = np.abs(a.astype(np.int64) - b.astype(np.int64)) if same_shape else None
        stem = _file_stem(i, layer.name)
        rows.append(
            {
                "index": i,
                "name": layer.name,
                "kind": layer.kind,
                "where": where.get(layer.name),
                "shape": list(a.shape),
                "golden_shape": list(b.shape),
                "match": bool(same_shape and not diff.any()),
                "mismatches": int(np.count_nonzero(diff)) if same_shape else int(a.size),
                "max_abs_diff": int(diff.max()) if same_shape and diff.size else None,
                "rtl": f"{stem}.rtl.npy",
                "golden": f"{stem}.golden.npy",
            }
        )
    return rows


def write_trace(folder: Path, rows: list[dict], rtl: dict, golden: dict, meta: dict) -> dict:
    """Write the trace of ``rows`` (`compare_layers`) into ``folder``; returns the summary."""
    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    old = folder / TRACE_FILE
    if old.is_file():  # a previous trace: remove the files it lists (only those)
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError, AttributeError):
            for row in json.loads(old.read_text())["layers"]:
                for key in ("rtl", "golden"):
                    f = folder / Path(row[key]).name
                    if f.is_file():
                        f.unlink()
    for row in rows:
        save_array(folder / row["rtl"], np.asarray(rtl[row["name"]]))
        save_array(folder / row["golden"], np.asarray(golden[row["name"]]))
    first = next((row for row in rows if not row["match"]), None)
    summary = {**meta, "first_mismatch": first["name"] if first else None, "layers": rows}
    write_bytes(old, (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode())
    return summary


def describe(summary: dict) -> str:
    """One line: the first layer that differs, or that all match."""
    rows = summary["layers"]
    first = next((row for row in rows if not row["match"]), None)
    if first is None:
        return f"all {len(rows)} layers match the golden model"
    size = int(np.prod(first["shape"])) if first["shape"] else 0
    diff = f", max |diff| {first['max_abs_diff']}" if first["max_abs_diff"] is not None else ""
    return (
        f"first layer that differs: {first['name']} ({first['kind']}, layer {first['index']} "
        f"of {len(rows)}, {first['mismatches']} of {size} values{diff})"
    )
