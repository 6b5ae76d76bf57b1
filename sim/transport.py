"""`SimTransport`: runs command segments on the RTL `Accelerator` in cocotb.

Each `execute` call is one simulation: the words of every segment go in a
file, ``sim/tb_accel.py`` drives them into ``cmd`` (with optional random idle
cycles) while pulling ``res`` (with optional random back-pressure) and writes
the result words and measured cycles back.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from macforge.host.runtime import Segment, SegmentResult
from macforge.hw.accelerator import Accelerator
from macforge.hw.config import AccelConfig
from macforge.sim import bench_io, runner

__all__ = ["SimTransport", "accel_toplevel_name"]

#: (config, simulator, waves) -> build, for this process
_BUILDS: dict[tuple[AccelConfig, str, bool], runner.SimBuild] = {}


def accel_toplevel_name(cfg: AccelConfig) -> str:
    return "accel_" + cfg.key.replace("-", "_")


class SimTransport:
    """Transport to the generated RTL in Verilator or Icarus.

    Parameters
    ----------
    config : AccelConfig
    simulator : str | None      ``verilator`` / ``icarus`` (default ``$MACFORGE_SIM``)
    idle_prob : float           chance of an idle cycle before each command word
    stall_prob : float          chance of ``res.ready`` low in a cycle
    seed : int                  seed of those random choices
    waves : bool                record a VCD (``last_waveform`` after a run)
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
    ) -> None:
        for name, p in (("idle_prob", idle_prob), ("stall_prob", stall_prob)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        self.config = config
        self.bus_bytes = config.bus_bytes
        self.simulator = runner.choose_simulator(simulator)
        self.idle_prob, self.stall_prob, self.seed, self.waves = idle_prob, stall_prob, seed, waves
        self.last_waveform: Path | None = None
        self.build_seconds = 0.0
        self.sim_seconds = 0.0

    def build(self) -> runner.SimBuild:
        """The compiled model; converted and built once per process and configuration.

        The Accelerator is fully determined by its config, so the Verilog conversion
        (~2 s for the 8x8 default) is not repeated for every program or layer.
        """
        key = (self.config, self.simulator, self.waves)
        b = _BUILDS.get(key)
        if b is None or not (b.build_dir / "BUILD_OK").exists():
            b = runner.build(
                Accelerator(self.config),
                name=accel_toplevel_name(self.config),
                simulator=self.simulator,
                waves=self.waves,
            )
            self.build_seconds += b.seconds
            _BUILDS[key] = b
        return b

    def execute(self, segments: Sequence[Segment]) -> list[SegmentResult]:
        b = self.build()
        with tempfile.TemporaryDirectory(prefix="macforge-io-") as tmp:
            io = Path(tmp)
            bench_io.write_segments(io, segments, self.bus_bytes)
            res = runner.run(
                b,
                test_module="macforge.sim.tb_accel",
                testcase="run_segments",
                seed=self.seed,
                env={
                    bench_io.ENV_CONFIG: self.config.to_json(),
                    bench_io.ENV_IO: str(io),
                    bench_io.ENV_TEST_SEED: str(self.seed),
                    bench_io.ENV_IDLE_PROB: repr(self.idle_prob),
                    bench_io.ENV_STALL_PROB: repr(self.stall_prob),
                },
            )
            self.sim_seconds += res.seconds
            self.last_waveform = res.waveform
            return bench_io.read_results(io, self.bus_bytes)
