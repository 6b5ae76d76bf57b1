"""Soak campaigns: many seeds of random GEMMs, programs and fuzzed command words on the RTL.

`fuzz_case` builds one seed's stream — junk commands of every error kind (each
followed by a STATUS with clear, whose whole word is checked), compiled GEMMs and
free-form programs (`sim.stimulus`), each of those in a `Batch` bracketed by COUNTERS
reads — and what each part must return (`sim.isa_model` for the junk, `sim.golden` for
the GEMMs and programs, `CounterModel` for COUNTERS). `run_seed` simulates it in bulk
mode with random idle cycles and back-pressure and lists every mismatch; a hang
(nothing moves for `sim.bulk.HANG_CYCLES` cycles) or any other simulation failure is
recorded, not raised. `soak` runs seeds on a local process pool and sums them up;
``macforge verify soak`` is its command line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from macforge.host.program import cmd_counters, cmd_status, decode_status
from macforge.host.runtime import Segment
from macforge.hw import isa
from macforge.hw.config import AccelConfig
from macforge.sim import runner
from macforge.sim.isa_model import IsaModel
from macforge.sim.parallel import map_jobs
from macforge.sim.stimulus import (
    JUNK_KINDS,
    GemmCase,
    junk_command,
    junk_shift_truncated,
    make_gemm,
    program_case,
    status_word,
)

__all__ = [
    "fuzz_case",
    "check_case",
    "run_seed",
    "soak",
    "SeedReport",
    "Batch",
    "CounterModel",
    "FuzzState",
    "LoadOverlapProbe",
    "junk_sweep",
]

#: Every how many steps of a fuzz stream a compiled GEMM goes in (step GEMM_EVERY - 1),
#: and a free-form program (step GEMM_EVERY // 2 - 1); the other steps are junk.
GEMM_EVERY = 8
_N_COUNTERS = len(isa.COUNTER_NAMES)


@dataclass
class CounterModel:
    """What the COUNTERS of ``cfg`` must hold since their last clear: ``slices``
    K-slices entered the array, and at least ``words`` command words were decoded (one
    per cycle at most, so ``cycles >= words``)."""

    cfg: AccelConfig
    slices: int = 0
    words: int = 0

    def problems(self, answer, what: str, max_cycles=None) -> list[str]:
        """Every way a COUNTERS ``answer`` (4 words) breaks `hw.isa`'s definitions:
        ``busy`` and ``macs`` exact, ``stalls`` >= 1 iff a MATMUL ran (the first buffer
        read of a MATMUL is a stall), ``busy + stalls <= cycles``, ``cycles`` at least
        the words decoded and below ``max_cycles`` (a measured span), no bits above 31."""
        if any(w >> 32 for w in answer):
            return [f"{what}: COUNTERS answer has bits above 31: {[hex(w) for w in answer]}"]
        cycles, busy, macs, stalls = answer
        cfg = self.cfg
        bad = []
        if busy != self.slices:
            bad.append(f"busy {busy} != {self.slices} slices")
        if macs != self.slices * cfg.peak_macs_per_cycle:
            bad.append(f"macs {macs} != {self.slices} x {cfg.peak_macs_per_cycle}")
        if (stalls >= 1) != (self.slices >= 1):
            bad.append(f"stalls {stalls} with {self.slices} slices")
        if busy + stalls > cycles or cycles < self.words:
            bad.append(f"cycles {cycles} < busy {busy} + stalls {stalls} or {self.words} words")
        if max_cycles is not None and cycles >= max_cycles:
            bad.append(f"cycles {cycles} >= measured span {max_cycles}")
        return [f"{what}: COUNTERS {'; '.join(bad)}"] if bad else []


@dataclass
class Batch:
    """Compiled GEMMs (`GemmCase`) and free-form programs (`ProgramCase`) sent back to
    back in one segment: COUNTERS (with clear) before, COUNTERS (clear: ``clear_after``)
    and STATUS (with clear) after; ``before`` is what the first COUNTERS must show.
    The segment's measured span (first word accepted .. second COUNTERS delivered)
    bounds the second COUNTERS' cycles."""

    cfg: AccelConfig
    cases: list
    before: CounterModel
    clear_after: bool = True

    @property
    def words(self) -> list[int]:
        out = list(cmd_counters(clear=True))
        for case in self.cases:
            out += case.prog.words if isinstance(case, GemmCase) else case.words
        return out + cmd_counters(clear=self.clear_after) + cmd_status(clear=True)

    @staticmethod
    def _result_words(case) -> int:
        return case.prog.result_words if isinstance(case, GemmCase) else case.result_words

    def segment(self) -> Segment:
        n = sum(self._result_words(c) for c in self.cases) + 2 * _N_COUNTERS
        return Segment(self.words, n + 1, measure=(0, n))

    def after(self) -> CounterModel:
        """COUNTERS model right after the batch's second COUNTERS."""
        slices = sum(c.slices for c in self.cases)
        words = sum(len(c.prog.words if isinstance(c, GemmCase) else c.words) for c in self.cases)
        if self.clear_after:
            return CounterModel(self.cfg)
        return CounterModel(self.cfg, slices, words + 2)

    def problems(self, results, cycles, idx: int) -> list[str]:
        mask = (1 << self.cfg.bus_bits) - 1
        res = [r & mask for r in results]
        bad = self.before.problems(res[:_N_COUNTERS], f"segment #{idx} (before)")
        pos = _N_COUNTERS
        saturated = truncated = False
        for n, case in enumerate(self.cases):
            got = res[pos : pos + self._result_words(case)]
            pos += self._result_words(case)
            if isinstance(case, GemmCase):
                saturated |= case.saturated
                if not np.array_equal(case.prog.decode(got), case.want):
                    bad.append(f"GEMM #{idx}.{n} differs from golden")
                continue
            saturated |= case.saturated
            truncated |= case.shift_truncated
            for t, (tile, (_, want)) in enumerate(zip(case.decode(got), case.tiles, strict=True)):
                if not np.array_equal(tile, want):
                    bad.append(f"program #{idx}.{n}: stored tile {t} differs from golden")
                    break
        inside = CounterModel(
            self.cfg,
            sum(c.slices for c in self.cases),
            len(self.words) - len(cmd_status(True)) - 2,
        )
        bad += inside.problems(res[pos : pos + _N_COUNTERS], f"segment #{idx} (after)", cycles)
        want = status_word(saturated=saturated, shift_truncated=truncated)
        if res[-1] != want:
            bad.append(
                f"segment #{idx}: STATUS {res[-1]:#x} after the programs, expected {want:#x}"
            )
        return bad


@dataclass
class LoadOverlapProbe:
    """A LOAD that no queued MATMUL reads must not wait for them (`hw.decoder`: a LOAD
    waits only *while* its range overlaps one a MATMUL still reads).

    Segment: COUNTERS (clear), two MATMULs (raw, no store) of ``k1`` and ``k2`` slices,
    a LOAD of ``count`` entries into a range neither reads, COUNTERS. The LOAD's words
    then stream while the MATMULs run, so the second COUNTERS' ``cycles`` stay below
    1.3 x the longer of the two plus 40 cycles (decoder overheads, idle input cycles);
    a LOAD held until the MATMULs finish takes their sum."""

    cfg: AccelConfig
    words: list[int]
    k1: int
    k2: int
    count: int

    @classmethod
    def make(cls, cfg: AccelConfig, rng) -> LoadOverlapProbe:
        """Random ranges: the LOAD (A or B) lands in a gap of that buffer; the MATMULs'
        ranges in the other buffer are anywhere (possibly where the LOAD's addresses
        would be)."""
        depth = min(cfg.a_depth, cfg.b_depth)
        span = min(120, depth // 2)
        k1 = int(rng.integers(span // 4, span + 1))
        k2 = int(rng.integers(1, max(1, span - k1) + 1))
        count = int(rng.integers(span // 2, span + 1))
        which = int(rng.integers(2))  # 0: LOAD_A, 1: LOAD_B
        # the three blocks in a random order with random gaps (in the loaded buffer)
        sizes = [k1, k2, count]
        order = rng.permutation(3)
        free = depth - sum(sizes)
        cuts = np.sort(rng.integers(0, free + 1, size=3))
        if rng.random() < 0.5:  # blocks next to each other: the hazard test's edges
            cuts = np.minimum(np.cumsum(rng.integers(0, 3, size=3)), free)
        starts, pos = [0, 0, 0], 0
        for n, blk in enumerate(order):
            pos += int(cuts[n] - (cuts[n - 1] if n else 0))
            starts[blk] = pos
            pos += sizes[blk]
        other = [int(rng.integers(0, depth - k + 1)) for k in (k1, k2)]
        mm = []
        for i, k in enumerate((k1, k2)):
            a, b = (starts[i], other[i]) if which == 0 else (other[i], starts[i])
            mm += [isa.header(isa.Opcode.MATMUL, 3), a | b << 16, k | 4 << 16, 0]
        opcode = isa.Opcode.LOAD_A if which == 0 else isa.Opcode.LOAD_B
        wpe = cfg.a_words_per_entry if which == 0 else cfg.b_words_per_entry
        data = [int(w) for w in rng.integers(0, 2**31, size=count * wpe)]
        load = [isa.header(opcode, 2 + count * wpe), starts[2], count, *data]
        words = cmd_counters(clear=True) + mm + load + cmd_counters()
        return cls(cfg, words, k1, k2, count)

    def segment(self) -> Segment:
        return Segment(self.words, 2 * _N_COUNTERS)

    def problems(self, results, cycles, idx: int) -> list[str]:
        answer = [w & 0xFFFFFFFF for w in results[_N_COUNTERS:]]
        bad = CounterModel(self.cfg, self.k1 + self.k2, len(self.words) - 2).problems(
            answer, f"probe #{idx}"
        )
        bound = 1.3 * max(self.k1 + self.k2, self.count) + 40
        if answer[0] > bound:
            bad.append(
                f"probe #{idx}: a LOAD no MATMUL reads took {answer[0]} cycles with MATMULs "
                f"of {self.k1} + {self.k2} slices and {self.count} entries (bound {bound:.0f})"
            )
        return bad


def _junk_counters(words, code) -> tuple[bool, bool]:
    """(answers COUNTERS, clears them) for a junk command that got error ``code``."""
    hdr = words[0] & 0xFFFFFFFF
    if hdr & 0xFF != isa.Opcode.COUNTERS or code != isa.ErrorCode.NONE:
        return False, False
    return True, len(words) == 2 and bool(words[1] & 1)


@dataclass
class FuzzState:
    """The state a fuzz stream's expectations depend on, carried from one `fuzz_case`
    to the next when several go into one simulation: the ISA model (its K count) and
    the COUNTERS model."""

    model: IsaModel
    counters: CounterModel

    @classmethod
    def reset(cls, cfg: AccelConfig) -> FuzzState:
        """The state right after reset."""
        return cls(IsaModel(cfg), CounterModel(cfg))


def _junk_step(cfg: AccelConfig, rng, state: FuzzState, kind: int | None = None):
    """(segment, check) of one junk command (`sim.stimulus.junk_command`, of ``kind``)
    followed by STATUS with clear, the models in ``state`` updated."""
    model = state.model
    junk = junk_command(cfg, rng, acc_k=model.acc_k, kind=kind)
    code, n_results = model.step(junk)
    executed = junk[0] & 0xFF == isa.Opcode.MATMUL and code in (
        isa.ErrorCode.NONE,
        isa.ErrorCode.ACC_OVERFLOW,
    )
    counters = state.counters
    counters.slices += (junk[2] & 0xFFFF) if executed else 0
    counters.words += len(junk)
    answer = None
    reads, clears = _junk_counters(junk, code)
    if reads:
        answer = CounterModel(cfg, counters.slices, counters.words)
        if clears:
            state.counters = counters = CounterModel(cfg)
    expect = status_word(
        code,
        1 if code else 0,
        acc_overflow=code == isa.ErrorCode.ACC_OVERFLOW,
        shift_truncated=junk_shift_truncated(cfg, junk, code),
    )
    # an executed int8 store of junk data requantises whatever group 0 holds
    int8_store = executed and (junk[2] >> 16) & 6 == isa.MatmulFlags.STORE
    care = ~status_word(saturated=True) if int8_store else -1
    counters.words += len(cmd_status(True))
    segment = Segment(junk + cmd_status(clear=True), n_results + 1)
    return segment, ("junk", junk, code, (expect, care), answer)


def junk_sweep(
    cfg: AccelConfig, rng, repeats: int, *, state: FuzzState
) -> tuple[list[Segment], list]:
    """(segments, checks): every kind of `sim.stimulus.junk_command` ``repeats`` times,
    in random order, each followed by STATUS with clear (see `fuzz_case`)."""
    kinds = rng.permutation(np.repeat(np.arange(JUNK_KINDS), repeats))
    pairs = [_junk_step(cfg, rng, state, int(k)) for k in kinds]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def fuzz_case(
    cfg: AccelConfig, rng, steps: int, *, state: FuzzState | None = None
) -> tuple[list[Segment], list]:
    """(segments, checks) of one fuzz stream of ``steps`` junk commands, compiled GEMMs
    (every `GEMM_EVERY` steps) and free-form programs (`sim.stimulus.program_case`),
    starting from ``state`` (default: reset; updated in place).

    Each junk command is followed by STATUS (with clear), whose whole word is checked
    (error, count, overflow, saturation and shift-truncation flags); a valid junk STATUS
    or COUNTERS answer is checked too. GEMMs and programs go in `Batch` segments.
    """
    state = state or FuzzState.reset(cfg)
    model = state.model
    segments, checks = [Segment(cmd_status(clear=True), 1)], [None]
    state.counters.words += len(cmd_status(True))
    for step in range(steps):
        phase = step % GEMM_EVERY
        if phase in (GEMM_EVERY - 1, GEMM_EVERY // 2 - 1):
            if phase == GEMM_EVERY - 1:
                k = int(rng.integers(1, min(20, cfg.max_k) + 1))
                m = int(rng.integers(1, 3 * cfg.rows))
                n = int(rng.integers(1, 3 * cfg.cols))
                case = make_gemm(cfg, rng, m, k, n, requant=bool(rng.random() < 0.6))
                kind, model.acc_k = "gemm", k  # the array's K counter after the last tile
            else:
                case = program_case(cfg, rng, tiles=int(rng.integers(1, 4)))
                kind, model.acc_k = "program", case.acc_k
            batch = Batch(cfg, [case], state.counters, clear_after=bool(rng.random() < 0.5))
            state.counters = batch.after()
            state.counters.words += len(cmd_status(True))
            segments.append(batch.segment())
            checks.append((kind, batch))
            continue
        segment, check = _junk_step(cfg, rng, state)
        segments.append(segment)
        checks.append(check)
    return segments, checks


def check_case(checks: Sequence, results: Sequence) -> list[str]:
    """Every way ``results`` differ from what ``checks`` expect (empty: all right)."""
    problems = []
    for idx, (check, res) in enumerate(zip(checks, results, strict=True)):
        if check is None:
            continue
        if check[0] in ("gemm", "program", "probe"):
            problems += check[1].problems(res.results, res.cycles, idx)
            continue
        _, junk, code, (expect, care), counters = check
        word = res.results[-1]
        status = decode_status(word & 0xFFFFFFFF)
        if word & care != expect & care:
            problems.append(
                f"command #{idx} {[hex(w) for w in junk[:4]]}: STATUS {word:#x}, error "
                f"{status['error']} (count {status['error_count']}), expected {expect:#x} "
                f"(error {int(code)}, {code.name})"
            )
        op = junk[0] & 0xFF
        if op == isa.Opcode.STATUS and code == isa.ErrorCode.NONE and res.results[0] != 0:
            problems.append(f"command #{idx}: STATUS answered {res.results[0]:#x}, expected 0")
        if counters is not None:
            problems += counters.problems(res.results[:_N_COUNTERS], f"command #{idx}")
    return problems


@dataclass
class SeedReport:
    """One seed's outcome."""

    seed: int
    words: int = 0  #: command words simulated
    fuzz_commands: int = 0
    gemms: int = 0  #: compiled GEMMs
    programs: int = 0  #: free-form programs (`sim.stimulus.program_case`)
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
    state = FuzzState.reset(cfg)
    while junk_words < max(fuzz_words, 1):
        seg, chk = fuzz_case(cfg, rng, 4 * GEMM_EVERY, state=state)
        segments += seg
        checks += chk
        junk_words += sum(len(c[1]) for c in chk if c and c[0] == "junk")
    rep = SeedReport(seed=seed)
    rep.words = sum(len(s.words) for s in segments)
    rep.fuzz_commands = sum(1 for c in checks if c and c[0] == "junk")
    rep.gemms = sum(1 for c in checks if c and c[0] == "gemm")
    rep.programs = sum(1 for c in checks if c and c[0] == "program")
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
    client=None,
    progress: Callable[[SeedReport, int, int], None] | None = None,
) -> dict:
    """Run ``seeds`` (``fuzz_words`` junk words in all, split between them) on ``jobs``
    local processes, or on the Dask cluster of ``client`` (`sim.parallel.map_jobs`); the
    summary (seeds in order) names the first failing seed."""
    started = time.monotonic()
    per_seed = -(-fuzz_words // max(len(seeds), 1))
    work = [(cfg, s, per_seed) for s in seeds]
    reports: list[SeedReport] = map_jobs(
        _run_seed_args,
        work,
        jobs=jobs,
        client=client,
        progress=(lambda done, total, _i, rep: progress(rep, done, total)) if progress else None,
    )
    failing = [r for r in reports if not r.ok]
    return {
        "config": cfg.name,
        "seeds": len(reports),
        "command_words": sum(r.words for r in reports),
        "fuzz_commands": sum(r.fuzz_commands for r in reports),
        "gemms": sum(r.gemms for r in reports),
        "programs": sum(r.programs for r in reports),
        "sim_cycles": sum(r.sim_cycles for r in reports),
        "hangs": sum(r.hang for r in reports),
        "mismatches": sum(len(r.mismatches) for r in reports),
        "errors": sum(r.error is not None for r in reports),
        "first_failing_seed": failing[0].seed if failing else None,
        "failing_seeds": [asdict(r) for r in failing],
        "wall_seconds": time.monotonic() - started,
    }
