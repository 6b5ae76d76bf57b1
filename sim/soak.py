"""Soak campaigns: many seeds of random GEMMs and fuzzed command words on the RTL.

`fuzz_case` builds one seed's stream — junk commands of every error kind (each
followed by a STATUS with clear) interleaved with random raw and requantised GEMMs —
and what each part must return (`sim.isa_model` for the junk, `sim.golden` for the
GEMMs). `run_seed` simulates it in bulk mode with random idle cycles and
back-pressure and lists every mismatch; a hang (nothing moves for
`sim.bulk.HANG_CYCLES` cycles) or any other simulation failure is recorded, not
raised. `soak` runs seeds on a local process pool and sums them up; ``macforge
verify soak`` is its command line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from macforge.host.program import cmd_status, decode_status
from macforge.host.runtime import Segment
from macforge.hw.config import AccelConfig
from macforge.sim import runner
from macforge.sim.isa_model import IsaModel
from macforge.sim.stimulus import gemm_case, junk_command

__all__ = ["fuzz_case", "check_case", "run_seed", "soak", "SeedReport"]

#: Every how many steps of a fuzz stream a GEMM goes in.
GEMM_EVERY = 8


def fuzz_case(cfg: AccelConfig, rng, steps: int) -> tuple[list[Segment], list]:
    """(segments, checks) of one fuzz stream of ``steps`` commands and GEMMs."""
    model = IsaModel(cfg)
    segments, checks = [Segment(cmd_status(clear=True), 1)], [None]
    for step in range(steps):
        if step % GEMM_EVERY == GEMM_EVERY - 1:
            k = int(rng.integers(1, min(20, cfg.max_k) + 1))
            m = int(rng.integers(1, 3 * cfg.rows))
            n = int(rng.integers(1, 3 * cfg.cols))
            prog, want = gemm_case(cfg, rng, m, k, n, requant=bool(rng.random() < 0.5))
            segments.append(Segment(prog.words, prog.result_words))
            checks.append(("gemm", prog, want))
            model.acc_k = k  # the array's K counter after the GEMM's last tile
            continue
        junk = junk_command(cfg, rng)
        code, n_results = model.step(junk)
        segments.append(Segment(junk + cmd_status(clear=True), n_results + 1))
        checks.append(("junk", junk, code))
    return segments, checks


def check_case(checks: Sequence, results: Sequence) -> list[str]:
    """Every way ``results`` differ from what ``checks`` expect (empty: all right)."""
    problems = []
    for idx, (check, res) in enumerate(zip(checks, results, strict=True)):
        if check is None:
            continue
        if check[0] == "gemm":
            _, prog, want = check
            if not np.array_equal(prog.decode(res.results), want):
                problems.append(f"GEMM #{idx} differs from golden")
            continue
        _, junk, code = check
        status = decode_status(res.results[-1] & 0xFFFFFFFF)
        if status["error"] != code or status["error_count"] != (1 if code else 0):
            problems.append(
                f"command #{idx} {[hex(w) for w in junk[:4]]}: error {status['error']} "
                f"(count {status['error_count']}), expected {int(code)} ({code.name})"
            )
    return problems


@dataclass
class SeedReport:
    """One seed's outcome."""

    seed: int
    words: int = 0  #: command words simulated
    fuzz_commands: int = 0
    gemms: int = 0
    sim_cycles: int = 0
    hang: bool = False
    mismatches: list[str] = field(default_factory=list)
    error: str | None = None  #: a simulation failure other than a hang
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.hang or self.mismatches or self.error)


def run_seed(
    cfg: AccelConfig, seed: int, fuzz_words: int, *, idle: float = 0.15, stall: float = 0.15
) -> SeedReport:
    """One seed: a fuzz stream of about ``fuzz_words`` junk-command words with GEMMs."""
    from macforge.sim.transport import SimTransport

    started = time.monotonic()
    rng = np.random.default_rng(seed)
    segments: list[Segment] = []
    checks: list = []
    junk_words = 0
    while junk_words < max(fuzz_words, 1):
        seg, chk = fuzz_case(cfg, rng, 4 * GEMM_EVERY)
        segments += seg
        checks += chk
        junk_words += sum(len(c[1]) for c in chk if c and c[0] == "junk")
    rep = SeedReport(seed=seed)
    rep.words = sum(len(s.words) for s in segments)
    rep.fuzz_commands = sum(1 for c in checks if c and c[0] == "junk")
    rep.gemms = sum(1 for c in checks if c and c[0] == "gemm")
    transport = SimTransport(cfg, idle_prob=idle, stall_prob=stall, seed=seed)
    try:
        results = transport.execute(segments)
        rep.mismatches = check_case(checks, results)
    except runner.SimulationError as exc:
        text = str(exc)
        rep.hang = "hang" in text
        rep.error = None if rep.hang else text.splitlines()[0]
    rep.sim_cycles = transport.sim_cycles
    rep.seconds = time.monotonic() - started
    return rep


def _run_seed_args(args) -> SeedReport:
    return run_seed(*args)


def soak(
    cfg: AccelConfig,
    seeds: Sequence[int],
    fuzz_words: int,
    *,
    jobs: int = 2,
    progress: Callable[[SeedReport, int, int], None] | None = None,
) -> dict:
    """Run ``seeds`` (``fuzz_words`` junk words in all, split between them) on ``jobs``
    local processes; the summary names the first failing seed."""
    started = time.monotonic()
    per_seed = -(-fuzz_words // max(len(seeds), 1))
    reports: list[SeedReport] = []
    work = [(cfg, s, per_seed) for s in seeds]
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for rep in pool.map(_run_seed_args, work):
            reports.append(rep)
            if progress:
                progress(rep, len(reports), len(work))
    failing = [r for r in reports if not r.ok]
    return {
        "config": cfg.name,
        "seeds": len(reports),
        "command_words": sum(r.words for r in reports),
        "fuzz_commands": sum(r.fuzz_commands for r in reports),
        "gemms": sum(r.gemms for r in reports),
        "sim_cycles": sum(r.sim_cycles for r in reports),
        "hangs": sum(r.hang for r in reports),
        "mismatches": sum(len(r.mismatches) for r in reports),
        "errors": sum(r.error is not None for r in reports),
        "first_failing_seed": failing[0].seed if failing else None,
        "failing_seeds": [asdict(r) for r in failing],
        "wall_seconds": time.monotonic() - started,
    }
