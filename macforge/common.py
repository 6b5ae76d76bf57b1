"""Helpers shared by the CLI commands: one-line usage errors, config lookup, reports, .npy I/O."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = [
    "UsageError",
    "config_by_name",
    "write_report",
    "load_array",
    "check_output_path",
    "layer_rows",
    "add_sim_argument",
    "sim_figures",
    "sim_transport",
]


def sim_figures(transport) -> dict:
    """Report keys of a simulated run: ``sim_cycles`` (clock cycles simulated),
    ``sim_seconds`` (wall time of the simulations, model builds excluded),
    ``sim_cycles_per_second``, ``build_seconds``; ``{}`` for a board."""
    if not hasattr(transport, "sim_cycles"):
        return {}
    cycles, seconds = transport.sim_cycles, transport.sim_seconds
    return {
        "sim_cycles": cycles,
        "sim_seconds": seconds,
        "sim_cycles_per_second": cycles / seconds if seconds > 0 else None,
        "build_seconds": transport.build_seconds,
    }


def add_sim_argument(parser, gate_level: bool = True) -> None:
    """``--sim``: the simulator a command runs (`sim.runner.SIMULATORS`); with
    ``gate_level``, also ``--gate-level``."""
    from macforge.sim.runner import SIMULATORS

    parser.add_argument(
        "--sim",
        choices=list(SIMULATORS),
        default=None,
        help="simulator (default: $MACFORGE_SIM or verilator; amaranth: Amaranth's own)",
    )
    if gate_level:
        parser.add_argument(
            "--gate-level",
            action="store_true",
            help="simulate the Yosys netlist of the config's FPGA target (as the board "
            "build synthesises it) with the Yosys cell models, instead of the RTL",
        )


def sim_transport(args, cfg, **kwargs):
    """The `SimTransport` a command's ``--sim`` / ``--gate-level`` ask for; bad choices
    are a `UsageError` before any work starts."""
    from macforge.sim.transport import SimTransport, accel_toplevel_name

    netlist = None
    try:
        if getattr(args, "gate_level", False):
            from macforge.fpga.netlist import check_gate_level, gate_netlist

            check_gate_level(cfg)
            SimTransport(cfg, simulator=args.sim, netlist="", **kwargs)  # validates --sim
            print(f"  synthesising the gate-level netlist of config '{cfg.name}' (yosys) ...")
            netlist = gate_netlist(cfg, name=accel_toplevel_name(cfg))
        return SimTransport(cfg, simulator=args.sim, netlist=netlist, **kwargs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def config_by_name(name: str):
    from macforge.hw.presets import preset

    try:
        return preset(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def write_report(path: str | None, report: dict) -> None:
    """Write ``report`` as sorted, indented JSON when ``path`` is given."""
    if path:
        Path(path).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"report written to {path}")


def check_output_path(path: str, what: str = "output") -> Path:
    out = Path(path)
    if not out.parent.exists():
        raise UsageError(f"{what} folder {str(out.parent)!r} does not exist")
    if out.is_dir():
        raise UsageError(f"{what} {path!r} is a folder")
    return out


def load_array(path: str, what: str, *, dtype, ndim: int) -> np.ndarray:
    """Load a .npy file and check dtype and rank; any problem is a one-line UsageError."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{what} file {path!r} not found")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UsageError(f"{what} file {path!r} is not a readable .npy array ({exc})") from None
    if arr.dtype != np.dtype(dtype):
        raise UsageError(f"{what} must be {np.dtype(dtype).name}, {path!r} holds {arr.dtype}")
    if arr.ndim != ndim:
        raise UsageError(f"{what} must be {ndim}-D, {path!r} has shape {arr.shape}")
    return arr


def layer_rows(stats) -> list[dict]:
    """Per-layer report rows from `host.inference.LayerStats`."""
    return [
        {
            "name": s.name,
            "kind": s.kind,
            "where": s.where,
            "cycles": s.cycles,
            "macs": s.macs,
            "utilization": s.utilization,
        }
        for s in stats
    ]
