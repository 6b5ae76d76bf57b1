"""``macforge demo``: the main job — a quantised digit classifier on the RTL accelerator.

Fully offline: trains a small MLP on scikit-learn's bundled digits data
(seeded, deterministic), quantises it to int8 (per-channel weights, calibrated
activations), compiles it for the chosen config, runs the test split through
RTL simulation, and compares float, golden int8 and hardware results.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .common import (
    UsageError,
    add_sim_argument,
    check_fits_board,
    check_report_path,
    config_by_name,
    layer_rows,
    sim_figures,
    sim_transport,
    write_report,
)

HIDDEN = (64, 32)
SEED = 0


def add_parser(sub) -> None:
    from macforge.fpga.boards import BOARDS

    p = sub.add_parser("demo", help="run the main demo: int8 digit classifier on the RTL")
    p.add_argument(
        "--config",
        default=None,
        help="preset name (default: the --board's own preset, else 'default')",
    )
    add_sim_argument(p)
    p.add_argument(
        "--board",
        choices=list(BOARDS),
        default=None,
        help="run the board's own preset and give latency at its clock and link time "
        "at its serial rate",
    )
    p.add_argument("--quick", action="store_true", help="classify 64 test images only")
    p.add_argument("--waves", action="store_true", help="record VCD waveforms")
    p.add_argument("--report", metavar="FILE", help="write figures as JSON")
    p.set_defaults(func=run)


def train_digits_mlp():
    """Seeded MLP on sklearn's digits; returns float layers, data split and float accuracy."""
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from macforge.host.quantize import FloatDense

    digits = load_digits()
    x = digits.data / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.2, random_state=SEED, stratify=digits.target
    )
    clf = MLPClassifier(
        hidden_layer_sizes=HIDDEN, activation="relu", max_iter=400, random_state=SEED
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_train, y_train)
    layers = []
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_, strict=True)):
        last = i == len(clf.coefs_) - 1
        layers.append(FloatDense(f"fc{i + 1}", w.T.copy(), b.copy(), "none" if last else "relu"))
    return layers, (x_train, x_test, y_train, y_test), float(clf.score(x_test, y_test))


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = width * done // max(total, 1)
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total}"


def run(args: argparse.Namespace) -> int:
    from macforge.fpga.boards import board_by_name
    from macforge.host.inference import run_network
    from macforge.host.quantize import quantize_network
    from macforge.sim.reference import golden_forward

    board = board_by_name(args.board) if args.board else None
    if args.config is None:
        cfg = board.default_config() if board else config_by_name("default")
    else:
        cfg = config_by_name(args.config)
    if board:
        check_fits_board(cfg, board)
    check_report_path(args)
    transport = _Counting(sim_transport(args, cfg, waves=args.waves))
    t0 = time.monotonic()
    print("macforge demo: int8 digit classifier (scikit-learn digits, 8x8 images, offline)")
    print(
        f"  hardware : config '{cfg.name}', {cfg.rows}x{cfg.cols} output-stationary array, "
        f"{cfg.pp_lanes} requantiser lane(s), {cfg.bus_bytes}-byte streams"
    )
    print("  1/4 training a float MLP 64-64-32-10 (seed 0) ...", flush=True)
    float_layers, (x_train, x_test, _, y_test), _ = train_digits_mlp()
    if args.quick:
        x_test, y_test = x_test[:64], y_test[:64]
    float_acc = _float_acc(float_layers, x_test, y_test)
    print("  2/4 quantising to int8 (per-channel weights, calibrated activations) ...", flush=True)
    net = quantize_network(float_layers, x_train[:256])
    xq = net.input.quantize(x_test)
    golden_logits = golden_forward(net, xq)
    golden_acc = float((golden_logits.argmax(axis=1) == y_test).mean())
    print(
        f"  3/4 running {len(x_test)} test images through the RTL ({transport.simulator}; the "
        f"first run compiles the model, ~1 min) ...",
        flush=True,
    )
    accel_layers = sum(1 for layer in net.layers if hasattr(layer, "weight"))
    done = [0]

    def progress(msg: str) -> None:
        done[0] += 1
        print(f"      {_bar(done[0], len(net.layers))} {msg}", flush=True)

    try:
        hw_logits, stats = run_network(net, xq, cfg, transport, progress=progress)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    hw_acc = float((hw_logits.argmax(axis=1) == y_test).mean())
    exact = bool(np.array_equal(hw_logits, golden_logits))
    total_cycles = sum(s.cycles for s in stats if s.cycles)
    per_image = total_cycles / len(x_test)
    print("  4/4 results")
    print(f"      float accuracy        : {100 * float_acc:.2f} % ({len(y_test)} test images)")
    print(f"      int8 golden accuracy  : {100 * golden_acc:.2f} %")
    print(
        f"      hardware accuracy     : {100 * hw_acc:.2f} %  "
        f"({'logits bit-exact with golden' if exact else 'LOGITS DIFFER FROM GOLDEN'})"
    )
    print(
        f"      cycles per inference  : {per_image:.1f} ({total_cycles} cycles for "
        f"{len(x_test)} images, batched)"
    )
    for s in stats:
        if s.where == "accelerator":
            print(
                f"      {s.name:<6} {s.kind:<7} {s.macs:>9} MACs {s.cycles:>8} cycles  "
                f"utilization {s.utilization:.3f}"
            )
    latency = link = None
    baud = None
    if board:
        from macforge.host.serial import link_estimate

        latency = per_image / board.clk_hz * 1e6
        baud = board.default_baud()
        rates = link_estimate(cfg, baud=baud)
        bb = cfg.bus_bytes
        link = (
            transport.words * bb / rates["link_bytes_per_s"]
            + transport.results * bb / rates["link_result_bytes_per_s"]
        ) / len(x_test)
        print(
            f"      on {board.name} (config '{cfg.name}') at {board.clk_hz / 1e6:g} MHz: "
            f"{latency:.1f} us compute per image; over the {baud / 1e6:g} Mbaud UART "
            f"{1e3 * link:.2f} ms per image on the wire (batch of {len(x_test)}, weights "
            "sent once per batch; USB latency excluded)"
        )
    sim = sim_figures(transport.inner)
    sim_s, build_s = sim["sim_seconds"], sim["build_seconds"]
    print(
        f"      simulation {sim['sim_cycles']} cycles in {sim_s:.1f} s "
        f"({sim['sim_cycles_per_second'] or 0:.0f} cycles/s), model build {build_s:.1f} s, "
        f"{accel_layers} accelerator layers, total {time.monotonic() - t0:.1f} s"
    )
    write_report(
        args.report,
        {
            "config": cfg.name,
            "images": len(x_test),
            "float_accuracy": float_acc,
            "golden_accuracy": golden_acc,
            "hardware_accuracy": hw_acc,
            "golden_match": exact,
            "cycles": total_cycles,
            "cycles_per_inference": per_image,
            "macs": sum(s.macs for s in stats),
            "layers": layer_rows(stats),
            "board": args.board,
            "latency_us": latency,
            "baud": baud,
            "link_seconds_per_inference": link,
            "link_bytes_per_batch": (transport.words + transport.results) * cfg.bus_bytes,
            "wall_seconds": time.monotonic() - t0,
            **sim,
        },
    )
    return 0 if exact else 1


class _Counting:
    """A transport that counts the command and result words it carries (link figures)."""

    def __init__(self, inner) -> None:
        self.inner, self.config = inner, inner.config
        self.words = self.results = 0

    def execute(self, segments):
        self.words += sum(len(seg.words) for seg in segments)
        self.results += sum(seg.results for seg in segments)
        return self.inner.execute(segments)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _float_acc(layers, x, y) -> float:
    from macforge.host.quantize import float_forward

    return float((float_forward(layers, x).argmax(axis=1) == y).mean())
