"""`SimTransport`: runs command segments on the RTL `Accelerator` in cocotb.

Each `execute` call is one simulation: the words of every segment go in a
file, ``sim/tb_accel.py`` drives them into ``cmd`` (with optional random idle
cycles) while pulling ``res`` (with optional random back-pressure) and writes
the result words and measured cycles back.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from macforge.host.runtime import Segment, SegmentResult
from macforge.hw.accelerator import Accelerator
from macforge.hw.config import AccelConfig
from macforge.sim import runner

__all__ = ["SimTransport", "accel_toplevel_name", "write_segments", "read_results"]

#: (config, simulator, waves) -> build, for this process
_BUILDS: dict[tuple[AccelConfig, str, bool], runner.SimBuild] = {}


def accel_toplevel_name(cfg: AccelConfig) -> str:
    return "accel_" + cfg.key.replace("-", "_")


def write_segments(path: Path, segments: Sequence[Segment], bus_bytes: int) -> None:
    meta = []
    with open(path / "words.bin", "wb") as f:
        for seg in segments:
            for word in seg.words:
                f.write(int(word).to_bytes(bus_bytes, "little"))
            meta.append(
                {
                    "words": len(seg.words),
                    "results": seg.results,
                    "measure": list(seg.measure) if seg.measure else None,
                }
            )
    (path / "segments.json").write_text(json.dumps(meta))


def read_results(path: Path, bus_bytes: int) -> list[SegmentResult]:
    meta = json.loads((path / "results.json").read_text())
    blob = (path / "results.bin").read_bytes()
    words = [
        int.from_bytes(blob[i : i + bus_bytes], "little") for i in range(0, len(blob), bus_bytes)
    ]
    out, pos = [], 0
    for seg in meta:
        out.append(SegmentResult(results=words[pos : pos + seg["results"]], cycles=seg["cycles"]))
        pos += seg["results"]
    return out


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
            write_segments(io, segments, self.bus_bytes)
            res = runner.run(
                b,
                test_module="macforge.sim.tb_accel",
                testcase="run_segments",
                seed=self.seed,
                env={
                    "MACFORGE_CONFIG": self.config.to_json(),
                    "MACFORGE_IO": str(io),
                    "MACFORGE_TEST_SEED": str(self.seed),
                    "MACFORGE_IDLE_PROB": repr(self.idle_prob),
                    "MACFORGE_STALL_PROB": repr(self.stall_prob),
                },
            )
            self.sim_seconds += res.seconds
            self.last_waveform = res.waveform
            return read_results(io, self.bus_bytes)
