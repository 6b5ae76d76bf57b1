"""``macforge run``: an int8 ONNX model on the accelerator (RTL simulation)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from .common import (
    UsageError,
    add_sim_argument,
    check_output_path,
    check_report_path,
    config_by_name,
    layer_rows,
    load_npy,
    save_array,
    sim_figures,
    sim_transport,
    write_report,
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run an int8 ONNX model (onnxruntime-quantised) on the RTL",
        description="Float input is quantised with the model's input scale and "
        "zero point and the output dequantised; --raw keeps int8 in and out.",
    )
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--input", required=True, metavar="X.npy", help="batch-first input")
    p.add_argument("--output", required=True, metavar="Y.npy", help="output file")
    p.add_argument("--raw", action="store_true", help="int8 input and output")
    p.add_argument("--config", default="default", help="preset name (default: default)")
    add_sim_argument(p)
    p.add_argument(
        "--trace",
        metavar="DIR",
        help="write every layer's int8 output from the RTL and from the golden model into "
        "DIR (NNN_<layer>.rtl.npy / .golden.npy, trace.json) and name the first layer "
        "that differs",
    )
    p.add_argument("--report", metavar="FILE", help="write figures as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from macforge.host.inference import run_network
    from macforge.host.onnx_import import import_onnx
    from macforge.sim.reference import golden_forward

    cfg = config_by_name(args.config)
    inputs = (args.model, args.input)
    out_path = check_output_path(args.output, inputs=inputs)
    check_report_path(args, inputs=inputs, outputs=(args.output,))
    trace_dir = None
    if args.trace:
        from .trace import check_trace_dir

        trace_dir = check_trace_dir(args.trace, others=(*inputs, args.output, args.report))
    transport = sim_transport(args, cfg)
    if not Path(args.model).is_file():
        raise UsageError(f"cannot read ONNX model {args.model!r}: file not found")
    x = load_npy(args.input, "input")
    if x.ndim == 0 or x.shape[0] == 0:
        raise UsageError(f"input {args.input!r} holds an empty batch (shape {x.shape})")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise UsageError(f"input {args.input!r} holds NaN or infinite values")
    try:
        model = import_onnx(args.model)
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from None
    net = model.network
    if tuple(x.shape[1:]) != tuple(net.input_shape):
        raise UsageError(
            f"input must have shape (batch, {', '.join(map(str, net.input_shape))}), got {x.shape}"
        )
    if args.raw:
        if x.dtype != np.int8:
            raise UsageError(f"--raw input must be int8, got {x.dtype}")
        xq = x
    else:
        if not np.issubdtype(x.dtype, np.floating):
            raise UsageError(f"input must be float (or use --raw with int8), got {x.dtype}")
        xq = net.input.quantize(x)
    print(
        f"macforge run: {args.model} ({len(net.layers)} layers) on config '{cfg.name}', "
        f"batch {x.shape[0]}",
        flush=True,
    )
    t0 = time.monotonic()
    rtl_layers: dict | None = {} if trace_dir else None
    golden_layers: dict | None = {} if trace_dir else None
    try:
        y, stats = run_network(
            net,
            xq,
            cfg,
            transport,
            progress=lambda msg: print(f"  {msg}", flush=True),
            record=rtl_layers,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    exact = bool(np.array_equal(y, golden_forward(net, xq, record=golden_layers)))
    save_array(out_path, y if args.raw else net.output.dequantize(y).astype(np.float32))
    total = sum(s.cycles for s in stats if s.cycles)
    macs = sum(s.macs for s in stats)
    util = cfg.utilization(macs, total)
    print(
        f"  wrote {out_path}; golden check: {'bit-exact' if exact else 'MISMATCH'}; "
        f"{total} cycles, utilization {util:.3f}"
    )
    first_mismatch = None
    if trace_dir:
        from .trace import compare_layers, describe, write_trace

        rows = compare_layers(net, rtl_layers, golden_layers, stats)
        summary = write_trace(
            trace_dir,
            rows,
            rtl_layers,
            golden_layers,
            {"model": str(args.model), "config": cfg.name, "batch": int(x.shape[0])},
        )
        first_mismatch = summary["first_mismatch"]
        print(f"  trace of {len(rows)} layers written to {trace_dir}: {describe(summary)}")
    write_report(
        args.report,
        {
            "model": str(args.model),
            "trace": str(trace_dir) if trace_dir else None,
            "first_mismatch": first_mismatch,
            "config": cfg.name,
            "batch": int(x.shape[0]),
            "cycles": total,
            "macs": macs,
            "utilization": util,
            "golden_match": exact,
            "layers": layer_rows(stats),
            "wall_seconds": time.monotonic() - t0,
            **sim_figures(transport),
        },
    )
    return 0 if exact else 1
