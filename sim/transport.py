"""`SimTransport`: runs command segments on the RTL `Accelerator`.

Each `execute` call is one simulation: the words of every segment go in a
file; by default the bulk harness of `sim.bulk` feeds them into ``cmd`` (with
optional random idle cycles) and collects ``res`` (with optional random
back-pressure) inside the simulator, with no Python per cycle. With
``bulk=False`` the per-cycle cocotb bench ``sim/tb_accel.py`` does the same
from Python (the protocol tests use it for cycle-level control). Either way
the result words, measured cycles and the number of cycles simulated come back.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from macforge.host.runtime import Segment, SegmentResult
from macforge.hw.accelerator import Accelerator
from macforge.hw.config import AccelConfig
from macforge.sim import bench_io, bulk, runner

__all__ = ["SimTransport", "accel_toplevel_name"]

#: (config, simulator, waves, bulk, netlist) -> build, for this process
_BUILDS: dict[tuple, runner.SimBuild] = {}


def accel_toplevel_name(cfg: AccelConfig) -> str:
    return "accel_" + cfg.key.replace("-", "_")


class SimTransport:
    """Transport to the generated RTL in Verilator or Icarus.

    Parameters
    ----------
    config : AccelConfig
    simulator : str | None      ``verilator`` / ``icarus`` / ``amaranth`` (default
                                ``$MACFORGE_SIM``); ``amaranth`` runs the harness of
                                `sim.bulk` in Amaranth's simulator (`sim.amaranth_sim`)
    idle_prob : float           chance of an idle cycle before each command word
    stall_prob : float          chance of ``res.ready`` low in a cycle
    seed : int                  seed of those random choices
    waves : bool                record a VCD (``last_waveform`` after a run)
    bulk : bool                 run in the bulk harness (default) rather than the
                                per-cycle cocotb bench
    mutsel_bits : int           ``netlist`` has a mutation selector input ``mutsel`` this
                                wide (`sim.mutants`); ``mutant`` picks the mutation
    netlist : str | None        gate-level run: this Yosys netlist of the accelerator
                                (`fpga.netlist.gate_netlist`, module
                                `accel_toplevel_name`) instead of the RTL, its cells
                                simulated with the Yosys models of the config's family

    After runs: ``sim_cycles`` (clock cycles simulated), ``sim_seconds`` (wall time
    of the simulations, model builds excluded), ``build_seconds``.
    """

    def __init__(
        self,
        config: AccelConfig,
        *,
        simulator: str | None = None,
        idle_prob: float = 0.0,
        stall_prob: float = 0.0,
        seed: int = 1,
        waves: bool = False,
        bulk: bool = True,
        netlist: str | None = None,
        mutsel_bits: int = 0,
    ) -> None:
        for name, p in (("idle_prob", idle_prob), ("stall_prob", stall_prob)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        self.config = config
        self.bus_bytes = config.bus_bytes
        self.simulator = runner.choose_simulator(simulator)
        if self.simulator == "amaranth" and config.dsp_primitive and config.dsp_pes:
            raise ValueError(
                f"--sim amaranth cannot simulate config '{config.name}': its "
                f"{config.dsp_primitive} cells are hand-instantiated and Amaranth's "
                "simulator has no vendor cell models; use --sim verilator"
            )
        self.idle_prob, self.stall_prob, self.seed, self.waves = idle_prob, stall_prob, seed, waves
        self.bulk = bulk
        self.netlist = netlist
        self.mutsel_bits = mutsel_bits
        self.mutant = 0  # with a mutated netlist: the mutation ``+mutsel`` selects
        if netlist is not None and self.simulator == "amaranth":
            raise ValueError("a gate-level netlist runs in a Verilog simulator, not amaranth")
        self.last_waveform: Path | None = None
        self.build_seconds = 0.0
        self.sim_seconds = 0.0
        self.sim_cycles = 0

    def build(self, in_harness: bool | None = None) -> runner.SimBuild:
        """The compiled model; converted and built once per process and configuration.

        The Accelerator is fully determined by its config, so the Verilog conversion
        (~2 s for the 8x8 default) is not repeated for every program or layer.
        """
        in_harness = self.bulk if in_harness is None else in_harness
        key = (self.config, self.simulator, self.waves, in_harness, self.netlist)
        b = _BUILDS.get(key)
        if b is None or not (b.build_dir / "BUILD_OK").exists():
            name = accel_toplevel_name(self.config)
            harness = (
                bulk.HARNESS_NAME,
                bulk.harness_verilog(name, self.config.bus_bits, self.mutsel_bits),
            )
            b = runner.build(
                Accelerator(self.config) if self.netlist is None else self.netlist,
                name=name,
                simulator=self.simulator,
                waves=self.waves,
                harness=harness if in_harness else None,
                family=self.config.device.family,
            )
            self.build_seconds += b.seconds
            _BUILDS[key] = b
        return b

    def execute(self, segments: Sequence[Segment]) -> list[SegmentResult]:
        if self.simulator == "amaranth":
            return self._execute_amaranth(segments)
        if self.bulk:
            return self._execute_bulk(segments)
        return self._execute_per_cycle(segments)

    def _env(self, io: Path) -> dict[str, str]:
        return {
            bench_io.ENV_CONFIG: self.config.to_json(),
            bench_io.ENV_IO: str(io),
            bench_io.ENV_TEST_SEED: str(self.seed),
            bench_io.ENV_IDLE_PROB: repr(self.idle_prob),
            bench_io.ENV_STALL_PROB: repr(self.stall_prob),
        }

    def _finish(self, res: runner.BenchRun, io: Path) -> None:
        self.sim_seconds += res.seconds
        self.sim_cycles += bench_io.read_run(io)["sim_cycles"]
        self.last_waveform = res.waveform

    def _execute_bulk(self, segments: Sequence[Segment]) -> list[SegmentResult]:
        b = self.build(in_harness=True)
        meta = bench_io.segment_meta(segments)
        words = [w for seg in segments for w in seg.words]
        n_results = sum(seg.results for seg in segments)
        with tempfile.TemporaryDirectory(prefix="macforge-io-") as tmp:
            io = Path(tmp)
            bench_io.write_hex(io / bench_io.WORDS_HEX, words)
            files = {
                "words": bench_io.WORDS_HEX,
                "results": bench_io.RESULTS_HEX,
                "accept": bench_io.ACCEPT_HEX,
                "run": bench_io.RUN,
            }
            res = runner.run(
                b,
                test_module="macforge.sim.tb_bulk",
                testcase="run_bulk",
                seed=self.seed,
                env=self._env(io),
                plusargs=[f"+{k}={io / v}" for k, v in files.items()]
                + [
                    f"+n_words={len(words)}",
                    f"+n_results={n_results}",
                    f"+seed={self.seed & 0xFFFFFFFF}",
                    f"+idle={round(self.idle_prob * bulk.PROB_ONE)}",
                    f"+stall={round(self.stall_prob * bulk.PROB_ONE)}",
                    f"+mutsel={self.mutant}",
                ],
            )
            self._finish(res, io)
            results, deliver = bench_io.read_result_lines(io / bench_io.RESULTS_HEX)
            accept = bench_io.read_numbers(io / bench_io.ACCEPT_HEX)
        return bench_io.split_results(
            meta, results, dict(enumerate(accept)), dict(enumerate(deliver))
        )

    def _execute_amaranth(self, segments: Sequence[Segment]) -> list[SegmentResult]:
        from macforge.sim.amaranth_sim import SimulationHang, run_program_words

        meta = bench_io.segment_meta(segments)
        vcd = None
        if self.waves:
            runs = runner.build_root() / "amaranth-runs"
            runs.mkdir(parents=True, exist_ok=True)
            vcd = Path(tempfile.mkdtemp(prefix="run-", dir=runs)) / "dump.vcd"
        try:
            out = run_program_words(
                self.config,
                [w for seg in segments for w in seg.words],
                sum(seg.results for seg in segments),
                seed=self.seed & 0xFFFFFFFF,
                idle=round(self.idle_prob * bulk.PROB_ONE),
                stall=round(self.stall_prob * bulk.PROB_ONE),
                vcd=vcd,
            )
        except SimulationHang as exc:
            raise runner.SimulationError(f"amaranth simulation (seed {self.seed}): {exc}") from None
        self.sim_seconds += out.seconds
        self.sim_cycles += out.sim_cycles
        self.last_waveform = vcd
        return bench_io.split_results(
            meta, out.results, dict(enumerate(out.accept)), dict(enumerate(out.deliver))
        )

    def _execute_per_cycle(self, segments: Sequence[Segment]) -> list[SegmentResult]:
        b = self.build(in_harness=False)
        with tempfile.TemporaryDirectory(prefix="macforge-io-") as tmp:
            io = Path(tmp)
            bench_io.write_segments(io, segments, self.bus_bytes)
            res = runner.run(
                b,
                test_module="macforge.sim.tb_accel",
                testcase="run_segments",
                seed=self.seed,
                env=self._env(io),
            )
            self._finish(res, io)
            return bench_io.read_results(io, self.bus_bytes)
