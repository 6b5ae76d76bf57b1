"""Design-space sweep: configurations x a workload -> resources, fit, modelled speed.

A sweep is the grid of ``arrays x bus_bytes x pp_lanes x depths x targets`` around a
base config (`SweepSpec.points`; without a ``pp_lanes`` axis a point keeps the base's
requantiser lanes where they divide its columns, one lane per column otherwise).
Every point is evaluated on its own (`evaluate_point`, a module-level function so it
runs in a process pool or on a Dask worker alike):

* **config**: the base with the point's fields (`AccelConfig.replace`, so DSP use and the
  requantiser multiplier go back to automatic for the new shape); a point the generator
  refuses (e.g. ``pp_lanes`` not a divisor of ``cols``, buffers larger than the device)
  is kept in the results with ``valid: false`` and the generator's message;
* **resources**: FPGA targets are synthesised by Yosys for the first board of that target
  (`fpga.build.synthesize`: LUTs, DSPs, BRAMs against the device, ``fits``); with
  ``pnr`` also placed and routed on ``seeds`` nextpnr seeds (`fpga.build.build`:
  ``fmax_mhz`` = median over the seeds). ``generic`` targets (and every point with
  ``area``) get the technology-neutral ASIC area of `fpga.area.area_estimate`
  (``asic_gates``: NAND2 equivalents, ``asic_transistors``);
* **speed**: every workload item (a GEMM shape, or each accelerator layer of an ONNX
  model) through the analytical model `sim.perfmodel` — cycles, useful MACs,
  utilization — then at the point's clock: effective GMAC/s and latency. The clock is
  the measured Fmax with ``pnr`` (``clock_source: fmax``), else ``freq_mhz`` when given
  (``option``), else the board's design clock (``board``); generic points without
  either have cycles and MACs/cycle only. Link time: the board's UART at its default
  baud (`sim.perfmodel.link_seconds`).

Results hold no wall-clock times, so the same sweep gives the same JSON wherever it runs.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from macforge.hw.config import AccelConfig

__all__ = [
    "QUICK",
    "DEFAULT_GEMMS",
    "SweepSpec",
    "evaluate_point",
    "summary_rows",
    "workload_rows",
    "pareto_front",
]

#: GEMM shapes (M, K, N) of the default workload: a square GEMM, a tall-skinny conv-like
#: one (many output pixels, few channels), a deep reduction, and a batch-1 dense layer.
DEFAULT_GEMMS: tuple[tuple[int, int, int], ...] = (
    (64, 64, 64),
    (256, 27, 16),
    (16, 256, 16),
    (1, 256, 128),
)

#: ``--quick``: three array sizes on the iCE40 UP5K (the largest does not fit: the
#: sweep shows where the device ends), the default GEMMs.
QUICK = {"arrays": ((2, 2), (4, 4), (8, 8)), "targets": ("ice40-up5k",)}


@dataclass(frozen=True)
class SweepSpec:
    """The grid: a base config and the values each swept field takes.

    ``arrays``: (rows, cols) pairs; ``depths``: A and B buffer entries (``a_depth =
    b_depth``); ``targets``: `hw.devices.DEVICES` names; ``gemms``: workload shapes
    (ignored when ``model`` names an ONNX file). Empty tuples keep the base's value.
    """

    base: AccelConfig
    arrays: tuple[tuple[int, int], ...] = ()
    bus_bytes: tuple[int, ...] = ()
    pp_lanes: tuple[int, ...] = ()
    depths: tuple[int, ...] = ()
    targets: tuple[str, ...] = ()
    gemms: tuple[tuple[int, int, int], ...] = DEFAULT_GEMMS
    model: str | None = None
    pnr: bool = False
    seeds: int = 1
    area: bool = False
    freq_mhz: float | None = None

    def points(self) -> list[dict]:
        """One job per grid point: ``{"index", "fields", "spec"}`` (plain data, picklable)."""
        b = self.base
        grid = itertools.product(
            self.targets or (b.target,),
            self.arrays or ((b.rows, b.cols),),
            self.bus_bytes or (b.bus_bytes,),
            self.pp_lanes or (None,),
            self.depths or (None,),
        )
        jobs = []
        for i, (target, (rows, cols), bus, lanes, depth) in enumerate(grid):
            fields = {"target": target, "rows": rows, "cols": cols, "bus_bytes": bus}
            if lanes is None:  # the base's lanes where they divide the new cols, else cols
                lanes = b.pp_lanes if b.pp_lanes < b.cols and cols % b.pp_lanes == 0 else 0
            fields["pp_lanes"] = lanes
            if depth is not None:
                fields["a_depth"] = fields["b_depth"] = depth
            jobs.append({"index": i, "fields": fields, "spec": self._options()})
        return jobs

    def _options(self) -> dict:
        d = asdict(self)
        d["base"] = self.base.to_dict()
        return d


@dataclass
class _Point:
    index: int
    target: str
    rows: int
    cols: int
    bus_bytes: int
    pp_lanes: int | None
    a_depth: int
    b_depth: int
    name: str
    valid: bool = True
    error: str | None = None
    config: dict | None = None
    peak_macs_per_cycle: int = 0
    board: str | None = None
    fits: bool | None = None
    luts: int | None = None
    luts_total: int | None = None
    dsps: int | None = None
    dsps_total: int | None = None
    brams: int | None = None
    brams_total: int | None = None
    fmax_mhz: float | None = None
    fmax_mhz_by_seed: list[float] | None = None
    asic_transistors: int | None = None
    asic_gates: float | None = None
    clock_mhz: float | None = None
    clock_source: str | None = None
    baud: int | None = None
    cycles: int | None = None
    macs: int | None = None
    utilization: float | None = None
    macs_per_cycle: float | None = None
    gmacs: float | None = None
    peak_gmacs: float | None = None
    latency_us: float | None = None
    link_seconds: float | None = None
    workload: list[dict] = field(default_factory=list)


def _board_for(target: str):
    from macforge.fpga.boards import BOARDS

    return next((b for b in BOARDS.values() if b.target == target), None)


def _point_name(f: dict) -> str:
    name = f"{f['rows']}x{f['cols']}-b{f['bus_bytes']}-{f['target']}"
    if f.get("pp_lanes"):
        name += f"-l{f['pp_lanes']}"
    if "a_depth" in f:
        name += f"-d{f['a_depth']}"
    return name


def _resources(p: _Point, cfg: AccelConfig, spec: dict) -> None:
    """Resources and fit of the point's board; with ``pnr`` the place-and-route build
    (its own synthesis: not run twice) gives them, and Yosys alone only when the build
    fails, for the counts of a design that does not fit."""
    from macforge.fpga.build import BuildError, build

    board = _board_for(cfg.target)
    if board is None:
        return
    p.board = board.name
    with tempfile.TemporaryDirectory(prefix="macforge-sweep-") as tmp:
        if spec["pnr"]:
            try:
                res = build(
                    board,
                    cfg,
                    build_dir=Path(tmp) / "pnr",
                    seeds=spec["seeds"],
                    jobs=1,
                    progress=lambda s: None,
                )
            except BuildError as exc:
                if _synthesised(p, board, cfg, Path(tmp)) and p.fits:
                    p.fits, p.error = False, f"place and route failed: {exc}"
                return
            _counts(p, res.report)
            p.fits = True
            p.fmax_mhz = res.report["fmax_mhz_median"]
            p.fmax_mhz_by_seed = res.report["fmax_mhz_by_seed"]
        else:
            _synthesised(p, board, cfg, Path(tmp))


def _counts(p: _Point, report: dict) -> None:
    for key in ("luts", "dsps", "brams"):
        setattr(p, key, report.get(key))
        setattr(p, f"{key}_total", report.get(f"{key}_total"))


def _synthesised(p: _Point, board, cfg: AccelConfig, tmp: Path) -> bool:
    """Yosys counts and fit into ``p``; False (point invalid) when synthesis fails."""
    from macforge.fpga.build import BuildError, synthesize

    try:
        rep = synthesize(board, cfg, build_dir=tmp / "synth", progress=lambda s: None)
    except BuildError as exc:
        p.valid, p.error = False, f"synthesis failed: {exc}"
        return False
    _counts(p, rep)
    p.fits = bool(rep["fits"])
    return True


def _workload(cfg: AccelConfig, spec: dict) -> list[dict]:
    """Per workload item: name, m, k, n, macs, cycles and the program's stream traffic."""
    from macforge.sim import perfmodel

    items = []
    if spec["model"]:
        from macforge.host.onnx_import import import_onnx

        net = import_onnx(spec["model"]).network
        est = perfmodel.estimate_network(net, cfg)
        for layer in est.layers:
            if layer.where != "accelerator" or layer.estimate is None:
                continue
            e = layer.estimate
            items.append(_item(layer.name, layer.m, layer.k, layer.n, e))
        return items
    for m, k, n in spec["gemms"]:
        e = perfmodel.estimate_gemm(cfg, m, k, n)
        items.append(_item(f"{m}x{k}x{n}", m, k, n, e))
    return items


def _item(name, m, k, n, e) -> dict:
    return {
        "name": name,
        "m": m,
        "k": k,
        "n": n,
        "macs": e.macs,
        "cycles": e.cycles,
        "utilization": round(e.utilization, 6),
        "command_words": e.command_words,
        "result_words": e.result_words,
    }


def evaluate_point(job: dict) -> dict:
    """Evaluate one grid point (see the module docstring); a plain dict, no timings."""
    spec = job["spec"]
    f = job["fields"]
    base = AccelConfig.from_dict(spec["base"])
    name = _point_name(f)
    p = _Point(
        index=job["index"],
        target=f["target"],
        rows=f["rows"],
        cols=f["cols"],
        bus_bytes=f["bus_bytes"],
        pp_lanes=f["pp_lanes"] or None,
        a_depth=f.get("a_depth", base.a_depth),
        b_depth=f.get("b_depth", base.b_depth),
        name=name,
    )
    try:
        cfg = base.replace(**f, name=name.replace(".", "_"))
    except ValueError as exc:
        p.valid, p.error = False, str(exc)
        return asdict(p)
    p.config = cfg.to_dict()
    p.pp_lanes = cfg.pp_lanes
    p.peak_macs_per_cycle = cfg.peak_macs_per_cycle
    try:
        p.workload = _workload(cfg, spec)
    except ValueError as exc:
        p.valid, p.error = False, f"workload: {exc}"
        return asdict(p)
    _resources(p, cfg, spec)
    if not p.valid:
        return asdict(p)
    if cfg.target == "generic" or spec["area"]:
        from macforge.fpga.area import area_estimate

        area = area_estimate(cfg)
        p.asic_transistors = area.transistors
        p.asic_gates = round(area.gate_equivalents, 1)
    _speed(p, cfg, spec)
    return asdict(p)


def _speed(p: _Point, cfg: AccelConfig, spec: dict) -> None:
    from macforge.sim.perfmodel import link_seconds

    board = _board_for(cfg.target)
    if p.fmax_mhz:
        p.clock_mhz, p.clock_source = p.fmax_mhz, "fmax"
    elif spec["freq_mhz"]:
        p.clock_mhz, p.clock_source = float(spec["freq_mhz"]), "option"
    elif board is not None:
        p.clock_mhz, p.clock_source = board.clk_hz / 1e6, "board"
    if board is not None:
        p.baud = board.default_baud(int(p.clock_mhz * 1e6) if p.clock_mhz else None)
    p.cycles = sum(w["cycles"] for w in p.workload)
    p.macs = sum(w["macs"] for w in p.workload)
    p.utilization = round(cfg.utilization(p.macs, p.cycles), 6) if p.cycles else None
    p.macs_per_cycle = round(p.macs / p.cycles, 4) if p.cycles else None
    link_total = 0.0
    for w in p.workload:
        w["macs_per_stream_byte"] = round(
            w["macs"] / max(1, (w["command_words"] + w["result_words"]) * cfg.bus_bytes), 4
        )
        if p.clock_mhz:
            w["latency_us"] = round(w["cycles"] / p.clock_mhz, 4)
            w["gmacs"] = round(w["macs"] / w["cycles"] * p.clock_mhz / 1000, 6)
        if p.baud:
            link = link_seconds([w["command_words"]], w["result_words"], cfg.bus_bytes, p.baud)
            w["link_seconds"] = round(link.seconds, 9)
            link_total += link.seconds
            if p.clock_mhz:
                end_to_end = w["cycles"] / (p.clock_mhz * 1e6) + link.seconds
                w["gmacs_end_to_end"] = round(w["macs"] / end_to_end / 1e9, 6)
    if p.baud:
        p.link_seconds = round(link_total, 9)
    if p.clock_mhz:
        p.peak_gmacs = round(cfg.peak_macs_per_cycle * p.clock_mhz / 1000, 6)
        p.latency_us = round(p.cycles / p.clock_mhz, 4)
        p.gmacs = round(p.macs / p.cycles * p.clock_mhz / 1000, 6) if p.cycles else None


#: columns of the per-point CSV, in order
SUMMARY_COLUMNS = (
    "index",
    "name",
    "target",
    "rows",
    "cols",
    "bus_bytes",
    "pp_lanes",
    "a_depth",
    "b_depth",
    "valid",
    "fits",
    "board",
    "luts",
    "luts_total",
    "dsps",
    "dsps_total",
    "brams",
    "brams_total",
    "fmax_mhz",
    "asic_gates",
    "asic_transistors",
    "clock_mhz",
    "clock_source",
    "cycles",
    "macs",
    "utilization",
    "macs_per_cycle",
    "gmacs",
    "peak_gmacs",
    "latency_us",
    "link_seconds",
    "error",
)
WORKLOAD_COLUMNS = (
    "index",
    "point",
    "name",
    "m",
    "k",
    "n",
    "macs",
    "cycles",
    "utilization",
    "latency_us",
    "gmacs",
    "link_seconds",
    "gmacs_end_to_end",
    "macs_per_stream_byte",
)


def summary_rows(points: list[dict]) -> list[dict]:
    return [{c: p.get(c) for c in SUMMARY_COLUMNS} for p in points]


def workload_rows(points: list[dict]) -> list[dict]:
    rows = []
    for p in points:
        for w in p["workload"]:
            rows.append({"index": p["index"], "point": p["name"], **w})
    return [{c: r.get(c) for c in WORKLOAD_COLUMNS} for r in rows]


def resource_of(p: dict) -> tuple[str, float] | None:
    """The resource a point is judged by: LUTs on an FPGA, NAND2 equivalents otherwise."""
    if p.get("luts") is not None:
        return "LUTs", p["luts"]
    if p.get("asic_gates") is not None:
        return "NAND2 eq.", p["asic_gates"]
    return None


def speed_of(p: dict) -> tuple[str, float] | None:
    if p.get("gmacs") is not None:
        return "effective GMAC/s", p["gmacs"]
    if p.get("macs_per_cycle") is not None:
        return "effective MACs/cycle", p["macs_per_cycle"]
    return None


def pareto_front(points: list[dict]) -> list[int]:
    """Indices of the valid, fitting points no other point beats on both resource (less)
    and speed (more), among points judged in the same units."""
    usable = [
        p
        for p in points
        if p.get("valid") and p.get("fits") is not False and resource_of(p) and speed_of(p)
    ]
    front = []
    for p in usable:
        (ru, r), (su, s) = resource_of(p), speed_of(p)
        beaten = any(
            resource_of(q)[0] == ru
            and speed_of(q)[0] == su
            and resource_of(q)[1] <= r
            and speed_of(q)[1] >= s
            and (resource_of(q)[1] < r or speed_of(q)[1] > s)
            for q in usable
        )
        if not beaten:
            front.append(p["index"])
    return sorted(front)
