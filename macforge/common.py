"""Helpers shared by the CLI commands: one-line usage errors, config lookup, reports, .npy I/O."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = [
    "UsageError",
    "config_by_name",
    "write_report",
    "write_bytes",
    "load_array",
    "check_output_path",
    "check_output_dir",
    "check_report_path",
    "save_array",
    "load_npy",
    "layer_rows",
    "add_sim_argument",
    "sim_figures",
    "sim_transport",
    "cluster_client",
    "check_fits_board",
    "check_baud",
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
    from macforge.sim.runner import build_root
    from macforge.sim.transport import SimTransport, accel_toplevel_name

    root = build_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=root, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(
            f"simulation build folder {str(root)!r} is not usable ({exc.strerror}); "
            "set MACFORGE_BUILD_DIR to a writable folder"
        ) from None
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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``:
    a failure never leaves a partial or stale file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a new file gets the umask's
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    """``data`` into ``path``, atomically."""
    _atomic_write(Path(path), lambda f: f.write(data))


def write_report(path: str | None, report: dict) -> None:
    """Write ``report`` as sorted, indented JSON when ``path`` is given (atomically)."""
    if path:
        text = json.dumps(report, indent=2, sort_keys=True) + "\n"
        _atomic_write(Path(path), lambda f: f.write(text.encode()))
        print(f"report written to {path}")


def save_array(path: Path, array: np.ndarray) -> None:
    """``array`` as .npy at exactly ``path`` (no suffix added), atomically."""
    _atomic_write(Path(path), lambda f: np.save(f, array, allow_pickle=False))


def check_output_path(path: str, what: str = "output", inputs=()) -> Path:
    """``path`` as a file this command may write, checked before any work: its folder
    exists and takes a new file, it is not a folder or special file, and it is not one
    of the ``inputs`` (paths the command reads)."""
    out = Path(path)
    parent = out.parent
    if not parent.exists():
        raise UsageError(f"{what} folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise UsageError(f"{what} folder {str(parent)!r} is not a folder")
    if out.is_dir():
        raise UsageError(f"{what} {path!r} is a folder")
    if out.exists() and not out.is_file():
        raise UsageError(f"{what} {path!r} is not a regular file")
    for other in inputs:
        if other and Path(other).resolve() == out.resolve():
            raise UsageError(f"{what} {path!r} is also an input or output of this command")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".macforge-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"cannot write {what} into {str(parent)!r} ({exc.strerror})") from None
    return out


def check_output_dir(path: str, what: str) -> Path:
    """``path`` as a folder this command may create or fill, checked before any work: not
    a file, its parent exists, and a file can be created in it (or in its parent when it
    does not exist yet). Nothing is created."""
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise UsageError(f"{what} {path!r} exists and is not a folder")
    if not d.exists() and not d.parent.is_dir():
        raise UsageError(f"{what}'s parent {str(d.parent)!r} does not exist")
    target = d if d.exists() else d.parent
    try:
        fd, probe = tempfile.mkstemp(dir=target, prefix=".macforge-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(
            f"cannot write {what} {path!r} into {str(target)!r} ({exc.strerror})"
        ) from None
    return d


def check_report_path(args, inputs=(), outputs=()) -> None:
    """``--report`` checked like an output, and distinct from the command's other files."""
    if getattr(args, "report", None):
        check_output_path(args.report, "report", inputs=(*inputs, *outputs))


def load_npy(path: str, what: str) -> np.ndarray:
    """A .npy file as an array; a missing file, a .npz archive or anything unreadable
    is a one-line UsageError."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{what} file {path!r} not found")
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UsageError(f"{what} file {path!r} is not a readable .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise UsageError(f"{what} file {path!r} is a .npz archive; give one .npy array")
    return arr


def load_array(path: str, what: str, *, dtype, ndim: int) -> np.ndarray:
    """Load a .npy file and check dtype and rank; any problem is a one-line UsageError."""
    arr = load_npy(path, what)
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


def cluster_client(address: str | None):
    """A Dask client on ``address`` (checked and connected before any work), or None."""
    if not address:
        return None
    from macforge.sim.parallel import ClusterError, connect

    try:
        return connect(address)
    except ClusterError as exc:
        raise UsageError(str(exc)) from None


def check_fits_board(cfg, board) -> None:
    """A config the board cannot hold is refused (one line): another target, or a
    generic config whose array, DSPs or buffers exceed the board's device."""
    import dataclasses

    if cfg.target == board.target:
        return
    if cfg.target != "generic":
        raise UsageError(
            f"config '{cfg.name}' is for target {cfg.target}, board {board.name} is {board.target}"
        )
    try:
        dataclasses.replace(cfg, target=board.target)
    except ValueError as exc:
        raise UsageError(f"config '{cfg.name}' does not fit board {board.name}: {exc}") from None


#: Serial rates a ``--baud`` option accepts (the UART bridges of the supported boards
#: top out at 12 Mbaud).
MIN_BAUD, MAX_BAUD = 300, 12_000_000


def check_baud(baud: int) -> int:
    """``baud`` if it is within [MIN_BAUD, MAX_BAUD], else a one-line `UsageError`."""
    if not MIN_BAUD <= baud <= MAX_BAUD:
        raise UsageError(f"--baud must be in [{MIN_BAUD}, {MAX_BAUD}], got {baud}")
    return baud
