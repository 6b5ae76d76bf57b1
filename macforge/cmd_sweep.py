"""``macforge sweep``: resources, fit and modelled speed over a grid of configurations.

See `macforge.sweep` for what each point measures and `macforge.sweep_plots` for the
plots. Points run on local processes (``--jobs``) or on a Dask scheduler
(``--cluster tcp://HOST:PORT``, `sim.parallel`); the JSON is the same either way.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import time
from pathlib import Path

from .common import UsageError, check_output_dir, cluster_client, config_by_name, write_bytes

OUTPUTS = ("sweep.json", "sweep.csv", "sweep_workload.csv")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="design-space sweep: resources, fit and modelled speed per configuration",
        description="Every point of the grid --array x --bus-bytes x --pp-lanes x --depth x "
        "--target around --config is synthesised (Yosys; with --pnr also placed and routed) "
        "and its cycles on the workload predicted by the performance model. Writes "
        "sweep.json, sweep.csv, sweep_workload.csv and PNG plots into --out.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results")
    p.add_argument(
        "--config", default=None, help="base preset (default: default; icebreaker with --quick)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="2x2, 4x4 and 8x8 arrays on the iCE40 UP5K, default GEMMs (a few minutes)",
    )
    p.add_argument("--array", metavar="RxC[,RxC...]", help="array shapes, e.g. 2x2,4x4,8x8")
    p.add_argument("--bus-bytes", metavar="B[,B...]", help="stream widths in bytes (4, 8, 16)")
    p.add_argument("--pp-lanes", metavar="L[,L...]", help="requantiser lanes (divisors of cols)")
    p.add_argument("--depth", metavar="D[,D...]", help="A and B buffer entries")
    p.add_argument(
        "--target",
        metavar="T[,T...]",
        help="devices: ice40-up5k, ecp5-25f, ecp5-45f, ecp5-85f, generic",
    )
    w = p.add_mutually_exclusive_group()
    w.add_argument(
        "--gemm",
        action="append",
        metavar="MxKxN",
        help="workload GEMM shape (repeatable; default: 64x64x64, 256x27x16, 16x256x16, 1x256x128)",
    )
    w.add_argument(
        "--model", metavar="MODEL.onnx", help="workload: the layers of an int8 ONNX model"
    )
    p.add_argument("--pnr", action="store_true", help="also place and route (Fmax; slow)")
    p.add_argument(
        "--seeds", type=int, default=1, metavar="N", help="nextpnr seeds with --pnr (median Fmax)"
    )
    p.add_argument(
        "--area",
        action="store_true",
        help="ASIC area (NAND2 equivalents) for FPGA points too (always for generic)",
    )
    p.add_argument(
        "--freq",
        type=float,
        metavar="MHZ",
        help="clock for points without a measured Fmax (default: the board's)",
    )
    p.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="local processes (default: all cores)"
    )
    p.add_argument(
        "--cluster", metavar="tcp://HOST:PORT", help="run the points on this Dask scheduler"
    )
    p.set_defaults(func=run)


def _ints(text: str | None, what: str) -> tuple[int, ...]:
    if text is None:
        return ()
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{what} must be comma-separated integers, got {text!r}") from None
    if any(v < 1 for v in values):
        raise UsageError(f"{what} values must be positive, got {text!r}")
    return values


def _shapes(texts, what: str, n: int) -> tuple[tuple[int, ...], ...]:
    shapes = []
    for text in texts:
        for part in text.split(","):
            dims = part.lower().split("x")
            try:
                shape = tuple(int(d) for d in dims)
            except ValueError:
                shape = ()
            if len(shape) != n or any(d < 1 for d in shape):
                form = "x".join("MKN"[:n] if n == 3 else "RC")
                raise UsageError(f"{what} {part!r} is not {form} with positive integers")
            shapes.append(shape)
    return tuple(shapes)


def spec_from_args(args: argparse.Namespace):
    """The `SweepSpec` the options ask for; every problem a `UsageError` (no work done)."""
    from macforge.hw.devices import DEVICES

    from .sweep import QUICK, SweepSpec

    base = config_by_name(args.config or ("icebreaker" if args.quick else "default"))
    arrays = _shapes([args.array], "--array", 2) if args.array else ()
    targets = tuple(args.target.split(",")) if args.target else ()
    for t in targets:
        if t not in DEVICES:
            raise UsageError(f"--target {t!r} is not one of {', '.join(sorted(DEVICES))}")
    if args.quick:
        arrays = arrays or QUICK["arrays"]
        targets = targets or QUICK["targets"]
    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    if args.seeds > 1 and not args.pnr:
        raise UsageError("--seeds needs --pnr")
    if args.freq is not None and not 0 < args.freq <= 2000:
        raise UsageError(f"--freq must be in (0, 2000] MHz, got {args.freq:g}")
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    model = None
    kwargs = {}
    if args.model:
        from macforge.host.onnx_import import import_onnx

        if not Path(args.model).is_file():
            raise UsageError(f"cannot read ONNX model {args.model!r}: file not found")
        try:
            import_onnx(args.model)
        except (ValueError, OSError) as exc:
            raise UsageError(str(exc)) from None
        model = str(Path(args.model).resolve())
    elif args.gemm:
        kwargs["gemms"] = _shapes(args.gemm, "--gemm", 3)
    return SweepSpec(
        base=base,
        arrays=arrays,
        bus_bytes=_ints(args.bus_bytes, "--bus-bytes"),
        pp_lanes=_ints(args.pp_lanes, "--pp-lanes"),
        depths=_ints(args.depth, "--depth"),
        targets=targets,
        model=model,
        pnr=args.pnr,
        seeds=args.seeds,
        area=args.area,
        freq_mhz=args.freq,
        **kwargs,
    )


def _progress_line(done: int, total: int, _index: int, p: dict) -> None:
    if not p["valid"]:
        what = f"not generated: {p['error']}"
    else:
        parts = []
        if p.get("luts") is not None:
            parts.append(f"{p['luts']}/{p['luts_total']} LUTs, {p['dsps']}/{p['dsps_total']} DSPs")
            parts.append("fits" if p["fits"] else "DOES NOT FIT")
        if p.get("fmax_mhz"):
            parts.append(f"Fmax {p['fmax_mhz']:.1f} MHz")
        if p.get("asic_gates") is not None:
            parts.append(f"{p['asic_gates'] / 1000:.1f} kGE")
        parts.append(f"{p['cycles']} cycles, utilization {p['utilization']:.3f}")
        if p.get("gmacs") is not None:
            parts.append(f"{p['gmacs']:.3f} GMAC/s at {p['clock_mhz']:g} MHz")
        what = ", ".join(parts)
    print(f"  [{done}/{total}] {p['name']}: {what}", flush=True)


def _csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue().encode()


def run(args: argparse.Namespace) -> int:
    from macforge.sim.parallel import map_jobs

    from .sweep import evaluate_point, pareto_front, summary_rows, workload_rows
    from .sweep_plots import render_plots

    out = check_output_dir(args.out, "--out")
    spec = spec_from_args(args)
    client = cluster_client(args.cluster)
    jobs = spec.points()
    where = (
        f"Dask scheduler {args.cluster}" if client else f"{min(args.jobs, len(jobs))} process(es)"
    )
    work = f"model {args.model}" if spec.model else f"{len(spec.gemms)} GEMM shape(s)"
    print(
        f"macforge sweep: {len(jobs)} point(s) around config '{spec.base.name}', workload "
        f"{work}, {'synthesis + place and route' if spec.pnr else 'synthesis'}, on {where}",
        flush=True,
    )
    started = time.monotonic()
    try:
        points = map_jobs(
            evaluate_point, jobs, jobs=args.jobs, client=client, progress=_progress_line
        )
    finally:
        if client is not None:
            client.close()
    front = pareto_front(points)
    report = {
        "base_config": spec.base.to_dict(),
        "spec": {k: v for k, v in jobs[0]["spec"].items() if k != "base"},
        "points": points,
        "pareto": front,
    }
    out.mkdir(exist_ok=True)
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    files = {
        "sweep.json": text.encode(),
        "sweep.csv": _csv(summary_rows(points)),
        "sweep_workload.csv": _csv(workload_rows(points)),
    }
    plots = render_plots(points, f"macforge sweep around '{spec.base.name}'")
    for name, data in {**files, **plots}.items():
        write_bytes(out / name, data)
    best = [p for p in points if p["index"] in front]
    print(f"  Pareto front: {', '.join(p['name'] for p in best) or 'none'}")
    print(
        f"wrote {', '.join(str(out / n) for n in files)} and {len(plots)} plots "
        f"({', '.join(plots)}) in {time.monotonic() - started:.0f} s"
    )
    return 0
