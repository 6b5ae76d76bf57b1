"""Run a whole int8 matmul on the bare array in RTL simulation (host-side tiling).

Used by ``macforge demo``; the accelerator core (command stream, buffers)
replaces this path for real programs.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.array import SystolicArray
from hw.config import AccelConfig
from sim import golden, runner

__all__ = ["TiledResult", "array_toplevel_name", "run_tiled_matmul"]


@dataclass(frozen=True)
class TiledResult:
    c: np.ndarray  #: int64 M x N, as read from the RTL
    cycles: int  #: first slice accepted .. last result row delivered
    slices: int  #: K-slices streamed (tiles x K)
    build_seconds: float  #: Verilator/Icarus build time of this call (0 if reused)
    sim_seconds: float  #: wall time of the simulation run
    simulator: str
    waveform: Path | None


def array_toplevel_name(cfg: AccelConfig) -> str:
    return "array_" + cfg.key.replace("-", "_")


def run_tiled_matmul(
    cfg: AccelConfig,
    a: np.ndarray,
    b: np.ndarray,
    *,
    simulator: str | None = None,
    waves: bool = False,
    seed: int = 1,
) -> TiledResult:
    """C = A @ B on the RTL array; A int8 (M, K), B int8 (K, N), K <= cfg.max_k."""
    a = golden.check_int8("A", a, 2)
    b = golden.check_int8("B", b, 2)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: A is {a.shape}, B is {b.shape}")
    if not 1 <= a.shape[1] <= cfg.max_k:
        raise ValueError(f"K = {a.shape[1]} is outside 1..max_k = {cfg.max_k} of config {cfg.name}")
    build = runner.build(
        SystolicArray(cfg), name=array_toplevel_name(cfg), simulator=simulator, waves=waves
    )
    with tempfile.TemporaryDirectory(prefix="macforge-io-") as tmp:
        io = Path(tmp)
        np.save(io / "a.npy", a)
        np.save(io / "b.npy", b)
        result = runner.run(
            build,
            test_module="sim.tb_tiled",
            seed=seed,
            env={
                "MACFORGE_CONFIG": cfg.to_json(),
                "MACFORGE_IO": str(io),
                "MACFORGE_TEST_SEED": str(seed),
            },
        )
        c = np.load(io / "c.npy")
        stats = json.loads((io / "stats.json").read_text())
    return TiledResult(
        c=c,
        cycles=stats["cycles"],
        slices=stats["slices"],
        build_seconds=build.seconds,
        sim_seconds=result.seconds,
        simulator=build.simulator,
        waveform=result.waveform,
    )
