"""Analytical performance model: the clock cycles of a compiled `Program`, without a simulator.

`estimate_program(program)` predicts what ``macforge matmul`` / ``run`` / ``bench`` report
as ``cycles`` for a program on the RTL (Verilator bulk harness, no injected idle or
back-pressure cycles): from the cycle the program's first command word is accepted to
the cycle its last result word is delivered, with the runtime's STATUS/COUNTERS bracket
around it (`host.runtime.run`). `estimate_network` does the same for every layer of a
quantised network, through `host.inference.run_network` with `ModelTransport` in place
of a simulator, so the layer programs are exactly the ones ``macforge run`` sends.

The model is structural, not fitted: it walks the command words once and follows each
block of `hw.accelerator.Accelerator` with the timing the RTL has (every constant below
is read from the hardware modules or named after the register stage it counts):

decoder (`hw.decoder`)
    one command word per cycle; a LOAD spends `LOAD_OVERHEAD_CYCLES` besides its data
    words (header, two arguments, RANGE, CHECK, WAIT), a MATMUL `MATMUL_CYCLES`. A LOAD
    waits in WAIT while an active or queued MATMUL still reads its buffer range; a
    LOAD_PARAM while a pending int8 store reads one of its groups (both flags are
    registered, so they clear one cycle after the range does); a MATMUL waits in PUSH
    for the engine's queue slot; STATUS/COUNTERS for the whole accelerator to be idle.
command stream
    the command skid buffer holds two words, so a word is accepted one cycle before the
    decoder takes it, or up to two words ahead while the decoder waits; the measured
    span starts at that acceptance (`host.runtime.Segment.measure`).
engine (`hw.engine`)
    one MATMUL active and one queued; the queued one becomes active on the cycle the
    active one issues its last slice, its first slice issues `START_CYCLES` after a push
    into an idle engine; one slice per cycle; a storing MATMUL's last slice issues only
    with its store descriptor into the `STORE_QUEUE_DEPTH`-entry store queue.
array (`hw.array`)
    a slice enters one cycle after its issue (read stage); a ``last`` slice waits until
    ``min_k`` cycles after the previous one (drains never collide); row ``r`` of a tile
    is drained `SystolicArray.latency` + r cycles after its last slice.
store unit (`hw.store`)
    rows enter a block-RAM FIFO (head readable two cycles after a write into an empty
    FIFO); int8 rows go through the requantiser in ``cols / pp_lanes`` transfers, one
    per `Requantizer.interval`, each out `Requantizer.latency` cycles later plus its
    output skid buffer; the serialiser sends ``int8_words_per_row`` (or
    ``raw_words_per_row``) words per row; a tile's descriptor leaves the store queue
    when its last row leaves the FIFO, and the next tile starts two cycles later
    (registered parameter and constant checks); the result skid buffer adds one cycle.

All times are integer clock cycles. Cost: a few Python operations per command and per
stored row, so milliseconds for programs of ten thousands of words.

Limits, stated: the model assumes the compiler's programs (well-formed commands, no
errors, one zero point and clamp per GEMM) and a host that never pauses the command
stream or the result stream (the bulk harness without ``idle_prob`` / ``stall_prob``,
as the CLI runs it). On a board the UART, not the accelerator, paces the stream: see
`link_seconds`.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from macforge.hw import isa
from macforge.hw.array import SystolicArray
from macforge.hw.config import AccelConfig
from macforge.hw.decoder import LOAD_OVERHEAD_CYCLES, MATMUL_CYCLES
from macforge.hw.engine import START_CYCLES, STORE_QUEUE_DEPTH
from macforge.hw.link_protocol import MAX_DATA_WORDS
from macforge.hw.skid import SkidBuffer
from macforge.hw.store import StoreUnit

__all__ = [
    "Timing",
    "ProgramEstimate",
    "LayerEstimate",
    "NetworkEstimate",
    "LinkEstimate",
    "ModelTransport",
    "estimate_program",
    "estimate_segments",
    "estimate_gemm",
    "gemm_program",
    "estimate_network",
    "link_seconds",
]


# -- timing constants -------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """Per-config timing of the blocks the model follows, in clock cycles.

    Attributes
    ----------
    load_overhead : int   decoder cycles of a LOAD besides its data words
    matmul_cycles : int   decoder cycles of a MATMUL whose queue slot is free
    engine_start : int    push of a MATMUL into an idle engine -> its first slice issues
    min_k : int           cycles between two ``last`` slices entering the array
    array_latency : int   last slice enters the array -> row 0 of its tile is drained
    fifo_latency : int    row written into the empty row FIFO -> readable at its head
    rq_interval : int     cycles between requantiser transfers (``pp_mul``: dsp 1, lut 8)
    rq_latency : int      requantiser transfer in -> its result valid at the output
    rq_sequential : bool  the ``lut`` requantiser (a multi-cycle multiplier behind two
                          input registers) rather than the one-per-cycle ``dsp`` one
    passes : int          requantiser transfers per row (``cols / pp_lanes``)
    int8_words, raw_words : int  result words per stored row (int8 / raw int32)
    skid : int            latency of one skid buffer (command, requantiser out, result)
    store_queue : int     store descriptors queued between the engine and the store unit
    """

    load_overhead: int
    matmul_cycles: int
    engine_start: int
    min_k: int
    array_latency: int
    fifo_latency: int
    rq_interval: int
    rq_latency: int
    rq_sequential: bool
    passes: int
    int8_words: int
    raw_words: int
    skid: int
    store_queue: int

    @classmethod
    def of(cls, config: AccelConfig) -> Timing:
        """The timing of ``config``'s accelerator, read from the hardware modules."""
        return _timing(config)

    @classmethod
    def _read(cls, config: AccelConfig) -> Timing:
        unit = StoreUnit(config)
        rq = unit.requantizer()
        skid = SkidBuffer(1)
        array = SystolicArray(config)
        for built in (unit, rq, skid, array):  # built only to read their figures
            built._MustUse__silence = True
        return cls(
            load_overhead=LOAD_OVERHEAD_CYCLES,
            matmul_cycles=MATMUL_CYCLES,
            engine_start=START_CYCLES,
            min_k=array.min_k,
            array_latency=array.latency,
            fifo_latency=2,  # `hw.block_fifo.BlockFIFO`: write, then its RAM read register
            rq_interval=rq.interval,
            rq_latency=rq.latency,
            rq_sequential=rq.mul == "lut",
            passes=config.cols // config.pp_lanes,
            int8_words=config.int8_words_per_row,
            raw_words=config.raw_words_per_row,
            skid=skid.latency,
            store_queue=STORE_QUEUE_DEPTH,
        )


@functools.lru_cache(maxsize=64)
def _timing(config: AccelConfig) -> Timing:
    return Timing._read(config)


# -- the event walk ---------------------------------------------------------------------
_NEVER = -(10**9)


@dataclass
class _Matmul:
    """One MATMUL's arguments and the cycles the walk gives it."""

    a_lo: int
    b_lo: int
    k: int
    store: bool
    raw: bool
    group: int
    consts: tuple[int, int, int]  # zero point, act_min, act_max (int8 stores)
    push: int = 0  # the decoder's PUSH handshake
    promote: int = 0  # becomes the engine's active MATMUL at the end of this cycle
    first: int = 0  # first slice issued (read from the buffers)
    last_issue: int = 0  # last slice issued
    last_in: int = 0  # last slice entered the array
    pop: int | None = None  # storing: its last row left the row FIFO (descriptor popped)
    word: int = 0  # index of its header word


class _StoreUnit:
    """Rows of stored tiles through the row FIFO, the requantiser and the serialiser,
    tile by tile in program order; appends each result word's delivery cycle."""

    def __init__(self, t: Timing, rows: int, deliver: list[int]) -> None:
        self.t, self.rows, self.deliver = t, rows, deliver
        self.take = _NEVER  # last row taken from the FIFO head
        self.rq_next = _NEVER  # earliest next requantiser transfer (its input stage free)
        self.rq_mul = _NEVER  # lut: cycle the multiplier finishes its item
        self.ser_free = _NEVER  # earliest cycle the serialiser may load a row
        self.pop = _NEVER  # the previous tile's descriptor pop
        self.rq_out: list[int] = []  # int8 rows: cycle each left the requantiser's skid
        self.consts: tuple[int, int, int] | None = None  # registered tile constants
        self.transfers = 0  # requantiser transfers
        # transfers the requantiser pipeline and its output skid buffer hold at most, and
        # the cycle each transfer left that skid buffer (the serialiser holds back only
        # a row's last pass, and everything behind it)
        self.cap = t.rq_latency + 2
        self.left: list[int] = []

    def _transfer(self, ready: int) -> tuple[int, int]:
        """One requantiser transfer offered from cycle ``ready``: (cycle accepted, cycle
        its result is valid at the requantiser's output).

        ``dsp``: a rigid pipeline, one transfer per cycle, out `Requantizer.latency`
        later. ``lut``: S1 takes a transfer when empty and passes it to S2, the
        multiplier's operand register, once the multiplier has finished the previous
        item (``interval`` cycles after that one entered S2); the result is out
        ``latency - 1`` cycles after entering S2 (``latency`` after acceptance when
        the requantiser was idle).
        """
        t = self.t
        accept = max(ready, self.rq_next)
        if len(self.left) >= self.cap:  # pipeline full: wait until one leaves
            accept = max(accept, self.left[-self.cap])
        if not t.rq_sequential:
            self.rq_next = accept + 1
            return accept, accept + t.rq_latency
        to_s2 = max(accept + 1, self.rq_mul)
        self.rq_mul = to_s2 + t.rq_interval  # the multiplier frees S2 in this cycle
        self.rq_next = to_s2 + 1
        return accept, to_s2 + t.rq_latency - 1

    def tile(self, mm: _Matmul) -> int:
        """Run tile ``mm`` through the store unit; return the cycle its descriptor pops."""
        t = self.t
        last_out = self.rq_out[-1] if self.rq_out else _NEVER
        # the descriptor is the queue's head from max(push, previous pop) + 1; the
        # parameter read and the tile constants are checked in registers: +1 more
        ok = max(mm.last_issue, self.pop) + 2
        if not mm.raw and mm.consts != self.consts:
            ok = max(ok, last_out + 2)  # other constants: wait for the requantiser to empty
            self.consts = mm.consts
        take = _NEVER
        for r in range(self.rows):
            written = mm.last_in + t.array_latency + r  # drained row enters the FIFO
            head = max(written + t.fifo_latency, self.take + 1)
            if mm.raw:
                # raw rows wait for the requantiser to empty and for the serialiser
                x = max(head, ok, self.ser_free, last_out + 1)
                take = x
                words = t.raw_words
            else:
                ready = max(head, ok)
                for p in range(t.passes):  # the head row stays until its last pass
                    take, out = self._transfer(ready)
                    # out of the requantiser's skid buffer in order; the last pass
                    # into the serialiser once that has sent the previous row
                    x = max(out + t.skid, self.left[-1] + 1 if self.left else _NEVER)
                    if p == t.passes - 1:
                        x = max(x, self.ser_free)
                    self.left.append(x)
                self.transfers += t.passes
                self.rq_out.append(x)
                last_out = x
                words = t.int8_words
            self.take = take
            self.ser_free = x + words
            # the serialiser sends at x+1 .. x+words; the result skid buffer adds one
            self.deliver.extend(x + w + t.skid for w in range(1, words + 1))
        self.pop = take
        return take

    def idle_from(self) -> int:
        """First cycle the store unit is idle (nothing in the FIFO, requantiser or
        serialiser)."""
        return max(self.ser_free + 1, self.take + 1)


@dataclass
class _Walk:
    """What `_walk` finds: per-word decoder cycles (compactly), result deliveries,
    MATMUL timings and the cycles spent waiting, by cause."""

    spans: list[tuple[int, int, int, int]]  # per command: first word, header, args, data
    deliver: list[int]  # delivery cycle of each result word, in order
    matmuls: list[_Matmul]
    load_words: int = 0  # data words of LOAD_A / LOAD_B / LOAD_PARAM
    hazard_wait: int = 0  # decoder cycles held in WAIT by a buffer or parameter hazard
    push_wait: int = 0  # decoder cycles held in PUSH by a full engine queue
    queue_wait: int = 0  # cycles last slices were held for a store-queue entry
    cooldown_wait: int = 0  # cycles last slices were held by the array's min_k gap
    rq_transfers: int = 0  # requantiser transfers

    def consumed(self, i: int) -> int:
        """Cycle the decoder takes word ``i``."""
        j = bisect_left(self.spans, (i + 1,)) - 1
        first, header, nargs, data = self.spans[j]
        if i - first <= nargs:
            return header + (i - first)
        return data + (i - first - 1 - nargs)

    def accepted(self, i: int) -> int:
        """Cycle word ``i`` is accepted: the harness offers every word as soon as it may
        (word 0 at cycle 0) and the command skid buffer takes one while it holds fewer
        than two, i.e. from the cycle after the decoder took the word two before. As
        the decoder takes at most one word per cycle, ``a[i] = max(a[i-1] + 1,
        d[i-2] + 1)`` unrolls to ``max(i, d[i-2] + 1)``."""
        return i if i < 2 else max(i, self.consumed(i - 2) + 1)


def _walk(config: AccelConfig, words: Sequence[int]) -> _Walk:
    """Follow the command words through the accelerator (see the module docstring)."""
    t = Timing.of(config)
    c = config
    w = _Walk(spans=[], deliver=[], matmuls=[])
    unit = _StoreUnit(t, c.rows, w.deliver)
    stores: list[_Matmul] = []  # storing MATMULs, in order

    def pop(mm: _Matmul) -> int:
        """Pop cycle of storing MATMUL ``mm`` (earlier tiles go through first)."""
        for s in stores:
            if s.pop is None:
                s.pop = unit.tile(s)
            if s is mm:
                break
        return mm.pop

    pend_free = _NEVER  # earliest PUSH: the engine's queue slot is free
    prev: _Matmul | None = None
    last_store_in = _NEVER  # the previous ``last`` slice entering the array
    dec = 1  # the harness offers word 0 at cycle 0, the skid buffer passes it on
    i, n = 0, len(words)
    while i < n:
        hdr = int(words[i]) & 0xFFFFFFFF
        op, length = hdr & 0xFF, hdr >> 8
        if i + 1 + length > n:
            raise ValueError(f"command at word {i} runs past the end of the words")
        args = [int(x) & 0xFFFFFFFF for x in words[i + 1 : i + 1 + min(length, 3)]]
        h = dec  # the header is taken in this cycle
        if op == isa.Opcode.NOP:
            w.spans.append((i, h, 0, h + 1))
            dec = h + 1 + length
        elif op in (isa.Opcode.LOAD_A, isa.Opcode.LOAD_B, isa.Opcode.LOAD_PARAM):
            if length < 2:
                raise ValueError(f"LOAD at word {i} has no address and count")
            addr, count = args[0], args[1]
            free = _NEVER  # first cycle no pending reader overlaps the written range
            if op == isa.Opcode.LOAD_PARAM:
                # stores older than the last four popped before this header
                g_end = -(-(addr * c.cols + count) // c.cols)
                for mm in stores[-4:]:
                    if not mm.raw and addr <= mm.group < g_end:
                        free = max(free, pop(mm) + 1)
            else:
                is_a = op == isa.Opcode.LOAD_A
                lo, hi = addr, addr + count
                # MATMULs older than the last two left the engine before this header
                for mm in w.matmuls[-2:]:
                    base = mm.a_lo if is_a else mm.b_lo
                    if base < hi and lo < base + mm.k:
                        # free once the read pointer passes hi, or the MATMUL is done
                        end = mm.first + (hi - base) if hi < base + mm.k else mm.last_issue + 1
                        free = max(free, end)
            # WAIT sees the hazard flag registered: data from two cycles after `free`
            start = max(h + t.load_overhead, free + 2)
            w.hazard_wait += start - (h + t.load_overhead)
            w.spans.append((i, h, 2, start))
            w.load_words += length - 2
            dec = start + length - 2
        elif op == isa.Opcode.MATMUL:
            if length != 3:
                raise ValueError(f"MATMUL at word {i} has {length} argument words, not 3")
            w0, w1, w2 = args
            flags = (w1 >> 16) & 0xFF
            mm = _Matmul(
                a_lo=w0 & 0xFFFF,
                b_lo=w0 >> 16,
                k=w1 & 0xFFFF,
                store=bool(flags & isa.MatmulFlags.STORE),
                raw=bool(flags & isa.MatmulFlags.RAW),
                group=w1 >> 24,
                consts=(w2 & 0xFF, (w2 >> 8) & 0xFF, (w2 >> 16) & 0xFF),
                word=i,
            )
            if mm.k == 0:
                raise ValueError(f"MATMUL at word {i} has K = 0")
            ready = h + t.matmul_cycles - 1  # PUSH cycle when the queue slot is free
            mm.push = max(ready, pend_free)
            w.push_wait += mm.push - ready
            # queued from push + 1; active when the previous one issues its last slice
            prev_end = prev.last_issue if prev else _NEVER
            mm.promote = max(mm.push + 1, prev_end)
            pend_free = mm.promote + 1
            # first issue: engine_start after the push into an idle engine, and not
            # before the read stage has passed the previous last slice on
            mm.first = max(mm.push + t.engine_start, prev_end + 1, prev.last_in if prev else 0)
            mm.last_issue = mm.first + mm.k - 1
            if mm.store:
                older = len(stores) - t.store_queue
                if older >= 0:  # its descriptor needs a store-queue entry
                    room = pop(stores[older]) + 1
                    w.queue_wait += max(0, room - mm.last_issue)
                    mm.last_issue = max(mm.last_issue, room)
            mm.last_in = mm.last_issue + 1
            if mm.store:
                gap = last_store_in + t.min_k
                w.cooldown_wait += max(0, gap - mm.last_in)
                mm.last_in = last_store_in = max(mm.last_in, gap)
                stores.append(mm)
            w.matmuls.append(mm)
            prev = mm
            w.spans.append((i, h, 3, mm.push + 1))
            dec = mm.push + 1
        elif op in (isa.Opcode.STATUS, isa.Opcode.COUNTERS):
            if length > 1:
                raise ValueError(f"STATUS/COUNTERS at word {i} has {length} argument words")
            for mm in stores:
                pop(mm)
            idle = unit.idle_from()
            if prev:
                idle = max(idle, prev.last_in + 1)
            # HEADER, [ARGS, RANGE,] CHECK, then WAIT until the registered idle flag
            respond = max(h + 2 + 2 * length, idle + 1) + 1
            answers = 1 if op == isa.Opcode.STATUS else len(isa.COUNTER_NAMES)
            w.deliver.extend(respond + a + t.skid for a in range(answers))
            w.spans.append((i, h, length, respond))
            dec = respond + answers
        else:
            raise ValueError(f"unknown opcode {op:#x} at word {i}")
        i += 1 + length
    for mm in stores:
        pop(mm)
    w.rq_transfers = unit.transfers
    return w


# -- estimates --------------------------------------------------------------------------
@dataclass
class ProgramEstimate:
    """Predicted cycles of one program (one measured span), with where they go.

    Attributes
    ----------
    config : str                 preset name
    cycles : int                 first program word accepted .. last result word
                                 delivered, as ``macforge matmul`` / ``run`` report it
    macs : int                   useful MACs (padding excluded; 0 when unknown)
    peak_macs_per_cycle : int    rows x cols
    utilization : float          macs / (cycles x peak)
    busy : int                   cycles a slice entered the array (the ``busy`` counter)
    stalls : int                 cycles a MATMUL was active but no slice entered (the
                                 ``stalls`` counter)
    phases : dict[str, int]      ``cycles`` split in four consecutive parts: ``lead_in``
                                 (until the first slice enters the array: decoding and the
                                 first loads), ``compute`` (slices entering, = busy),
                                 ``array_idle`` (cycles between the first and the last
                                 slice with none entering: loads, hazards, the requantiser
                                 or output holding the store queue), ``tail`` (after the
                                 last slice: drain, requantisation, result words)
    waits : dict[str, int]       cycles held, by cause (they may overlap each other and
                                 compute): ``hazard`` (a LOAD waiting for a range still
                                 read), ``engine_queue`` (a MATMUL waiting for the
                                 engine's queue slot), ``store_queue`` (a last slice
                                 waiting for a store-queue entry: requantiser or result
                                 stream slower than the array), ``min_k`` (a last slice
                                 waiting for the array's drain gap)
    command_words, result_words : int   stream traffic of the program
    load_words : int             data words of its LOADs (one per decoder cycle)
    requant_transfers : int      requantiser transfers (``cols / pp_lanes`` per int8 row)
    tiles : int                  stored output tiles
    """

    config: str
    cycles: int
    macs: int
    peak_macs_per_cycle: int
    utilization: float
    busy: int
    stalls: int
    phases: dict[str, int]
    waits: dict[str, int]
    command_words: int
    result_words: int
    load_words: int
    requant_transfers: int
    tiles: int

    def to_dict(self) -> dict:
        return asdict(self)


def _union(intervals: list[tuple[int, int]]) -> int:
    """Cycles covered by closed intervals given in order of their start."""
    total, end = 0, _NEVER
    for lo, hi in sorted(intervals):
        lo = max(lo, end + 1)
        if hi >= lo:
            total += hi - lo + 1
            end = hi
    return total


def _measure(
    config: AccelConfig,
    walk: _Walk,
    words: tuple[int, int],
    measure: tuple[int, int],
    macs: int,
    result_words: int,
) -> ProgramEstimate:
    """The estimate of one span: from accepting word ``measure[0]`` to delivering result
    ``measure[1] - 1`` (indices into the walk), for the commands in ``words`` (range)."""
    start = walk.accepted(measure[0])
    end = walk.deliver[measure[1] - 1]
    cycles = end - start + 1
    mms = [mm for mm in walk.matmuls if words[0] <= mm.word < words[1]]
    busy = sum(mm.k for mm in mms)
    if mms:
        first_in = mms[0].first + 1
        last_in = max(mm.last_in for mm in mms)
        phases = {
            "lead_in": first_in - start,
            "compute": busy,
            "array_idle": last_in - first_in + 1 - busy,
            "tail": end - last_in,
        }
        # the engine is active (cur or read stage valid) from promotion to last slice in
        stalls = _union([(mm.promote + 1, mm.last_in) for mm in mms]) - busy
    else:
        phases = {"lead_in": cycles, "compute": 0, "array_idle": 0, "tail": 0}
        stalls = 0
    return ProgramEstimate(
        config=config.name,
        cycles=cycles,
        macs=macs,
        peak_macs_per_cycle=config.peak_macs_per_cycle,
        utilization=config.utilization(macs, cycles),
        busy=busy,
        stalls=stalls,
        phases=phases,
        waits={
            "hazard": walk.hazard_wait,
            "engine_queue": walk.push_wait,
            "store_queue": walk.queue_wait,
            "min_k": walk.cooldown_wait,
        },
        command_words=words[1] - words[0],
        result_words=result_words,
        load_words=walk.load_words,
        requant_transfers=walk.rq_transfers,
        tiles=sum(mm.store for mm in mms),
    )


def estimate_segments(config: AccelConfig, segments: Sequence) -> list[ProgramEstimate | None]:
    """Estimates of `host.runtime.Segment`s run back to back in one session (as
    `SimTransport.execute` runs them): one `ProgramEstimate` per segment with a
    ``measure`` span (None for the others). ``macs`` is 0 (segments do not carry it);
    the wait and traffic figures cover the whole session."""
    words: list[int] = []
    bounds = []
    results = 0
    for seg in segments:
        bounds.append((len(words), results))
        words.extend(seg.words)
        results += seg.results
    walk = _walk(config, words)
    if len(walk.deliver) != results:
        raise ValueError(
            f"the commands produce {len(walk.deliver)} result words, the segments expect {results}"
        )
    out: list[ProgramEstimate | None] = []
    for seg, (w0, r0) in zip(segments, bounds, strict=True):
        if seg.measure is None:
            out.append(None)
            continue
        span = (w0 + seg.measure[0], r0 + seg.measure[1])
        body = (w0, w0 + len(seg.words))
        out.append(_measure(config, walk, body, span, 0, seg.measure[1]))
    return out


def estimate_program(program, config: AccelConfig | None = None) -> ProgramEstimate:
    """Predicted cycles of ``program`` (a `host.program.Program`) as `host.runtime.run`
    measures it on the RTL: with its STATUS/COUNTERS bracket, from accepting the
    program's first word to delivering its last result word.

    ``config`` defaults to the program's own; another one must describe the same
    hardware (`host.runtime.check_same_hardware`).
    """
    from macforge.host.runtime import check_same_hardware, program_segment

    cfg = program.config if config is None else config
    check_same_hardware(program.config, cfg)
    seg = program_segment(program)
    walk = _walk(cfg, seg.words)
    first, last = seg.measure
    if len(walk.deliver) != seg.results:
        raise ValueError(
            f"the program produces {len(walk.deliver) - (seg.results - program.result_words)} "
            f"result words, it expects {program.result_words}"
        )
    est = _measure(cfg, walk, (first, first + len(program.words)), (first, last), program.macs, 0)
    est.command_words = len(program.words)
    est.result_words = program.result_words
    return est


def gemm_program(config: AccelConfig, m: int, k: int, n: int, *, raw: bool = False):
    """The `host.program.Program` `host.compiler.compile_gemm` makes of an M x K x N GEMM
    (requantised to int8, or raw int32 with ``raw``), on zero operands: the schedule and
    so the cycles depend on the shape only."""
    from macforge.host.compiler import Requant, compile_gemm

    for name, v in (("M", m), ("K", k), ("N", n)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    a = np.zeros((m, k), np.int8)
    b = np.zeros((k, n), np.int8)
    rq = None if raw else Requant(np.zeros(n, np.int64), np.zeros(n, np.int64))
    return compile_gemm(config, a, b, requant=rq)


def estimate_gemm(
    config: AccelConfig, m: int, k: int, n: int, *, raw: bool = False
) -> ProgramEstimate:
    """Predicted cycles of an M x K x N GEMM as `host.compiler.compile_gemm` tiles it
    (requantised to int8, or raw int32 with ``raw``)."""
    return estimate_program(gemm_program(config, m, k, n, raw=raw))


# -- the link -----------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkEstimate:
    """Wire time of one session over the board's UART (`host.serial.SerialTransport`).

    ``frames``: command frames (the session reset included), each answered by an ACK
    before the next is sent; ``bytes_sent`` / ``bytes_received``: on the wire, frame
    overhead, ACKs and DATA-frame overhead included; ``seconds``: both directions at
    ``baud`` with 8N1 framing (10 bits per byte), one after the other. USB latency (one
    round trip per frame, ~1 ms with the FTDI latency timer at 1 ms) is not included.
    """

    baud: int
    frames: int
    bytes_sent: int
    bytes_received: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def link_seconds(
    segment_words: Sequence[int],
    results: int,
    bus_bytes: int,
    baud: int,
    *,
    max_words: int = 64,
) -> LinkEstimate:
    """Wire time of a session that sends segments of ``segment_words`` command words
    (one count per segment, each split into frames of up to ``max_words`` words as
    `host.serial.SerialTransport` does) and receives ``results`` result words in DATA
    frames of up to `hw.link_protocol.MAX_DATA_WORDS` words."""
    from macforge.host.serial import ACK_BYTES, BITS_PER_BYTE, COMMAND_OVERHEAD, DATA_OVERHEAD

    if baud <= 0 or max_words < 1:
        raise ValueError(f"baud {baud} and max_words {max_words} must be positive")
    frames = 1  # the session reset: an empty frame
    sent = COMMAND_OVERHEAD + ACK_BYTES
    for count in segment_words:
        full, rest = divmod(count, max_words)
        for size in [max_words] * full + ([rest] if rest else []):
            frames += 1
            sent += COMMAND_OVERHEAD + size * bus_bytes + ACK_BYTES
    received = results * bus_bytes + math.ceil(results / MAX_DATA_WORDS) * DATA_OVERHEAD
    return LinkEstimate(
        baud=baud,
        frames=frames,
        bytes_sent=sent,
        bytes_received=received,
        seconds=(sent + received) * BITS_PER_BYTE / baud,
    )


# -- networks ---------------------------------------------------------------------------
class ModelTransport:
    """A `host.runtime.Transport` that runs nothing: it answers every segment with zero
    result words (STATUS 0: no error) and the cycles `estimate_segments` predicts, so
    `host.inference.run_network` and `host.runtime.run` report estimated cycles.

    ``sessions``: per `execute` call, the `ProgramEstimate` of each measured segment,
    the command words of each segment and the result words of the session (for link
    figures).
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = config
        self.sessions: list[tuple[list[ProgramEstimate], list[int], int]] = []

    def execute(self, segments: Sequence) -> list:
        from macforge.host.runtime import SegmentResult

        found = estimate_segments(self.config, segments)
        self.sessions.append(
            (
                [e for e in found if e is not None],
                [len(s.words) for s in segments],
                sum(s.results for s in segments),
            )
        )
        return [
            SegmentResult(results=[0] * seg.results, cycles=None if e is None else e.cycles)
            for seg, e in zip(segments, found, strict=True)
        ]


def _combine(config: AccelConfig, parts: list[ProgramEstimate], macs: int) -> ProgramEstimate:
    """One estimate for a layer that runs several programs (their figures summed)."""
    if len(parts) == 1:
        est = parts[0]
    else:
        total = {
            f: sum(getattr(p, f) for p in parts)
            for f in (
                "cycles",
                "busy",
                "stalls",
                "command_words",
                "result_words",
                "load_words",
                "requant_transfers",
                "tiles",
            )
        }
        est = ProgramEstimate(
            config=config.name,
            macs=0,
            peak_macs_per_cycle=config.peak_macs_per_cycle,
            utilization=0.0,
            phases={key: sum(p.phases[key] for p in parts) for key in parts[0].phases},
            waits={key: sum(p.waits[key] for p in parts) for key in parts[0].waits},
            **total,
        )
    est.macs, est.utilization = macs, config.utilization(macs, est.cycles)
    return est


@dataclass
class LayerEstimate:
    """One layer of a network: ``where`` it runs (``accelerator`` / ``host``); for
    accelerator layers its GEMM shape ``m`` x ``k`` x ``n``, cycles, useful MACs,
    utilization, the program's `ProgramEstimate` (``estimate``) and, with a baud rate,
    its link session (``link``)."""

    name: str
    kind: str
    where: str
    cycles: int | None
    macs: int
    utilization: float | None
    output_shape: tuple[int, ...]
    m: int | None = None
    k: int | None = None
    n: int | None = None
    estimate: ProgramEstimate | None = None
    link: LinkEstimate | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["output_shape"] = list(self.output_shape)
        return d


@dataclass
class NetworkEstimate:
    """Per-layer estimates of a network for a batch, and their totals (``cycles``,
    ``macs``, ``utilization`` of the accelerator layers; ``link_seconds`` with a baud)."""

    config: str
    batch: int
    layers: list[LayerEstimate] = field(default_factory=list)
    cycles: int = 0
    macs: int = 0
    peak_macs_per_cycle: int = 0
    utilization: float | None = None
    link_seconds: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = [layer.to_dict() for layer in self.layers]
        return d


def estimate_network(
    network, config: AccelConfig, *, batch: int = 1, baud: int | None = None
) -> NetworkEstimate:
    """Estimate every layer of ``network`` (a `host.network.QNetwork`) for ``batch``
    inputs, by running `host.inference.run_network` on a zero input with
    `ModelTransport`: the layer programs are the ones ``macforge run`` would send
    (compiled by `host.compiler`), the host layers run in numpy on zeros (cheap).
    ``baud``: add each layer's link session (`link_seconds`)."""
    from macforge.host.inference import run_network

    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    transport = ModelTransport(config)
    x = np.zeros((batch, *network.input_shape), np.int8)
    _, stats = run_network(network, x, config, transport)
    out = NetworkEstimate(
        config=config.name, batch=batch, peak_macs_per_cycle=config.peak_macs_per_cycle
    )
    on_acc = iter(transport.sessions)  # one session per accelerator layer
    for s in stats:
        layer = LayerEstimate(
            name=s.name,
            kind=s.kind,
            where=s.where,
            cycles=s.cycles,
            macs=s.macs,
            utilization=s.utilization,
            output_shape=tuple(s.output_shape),
        )
        if s.where == "accelerator":
            parts, seg_words, results = next(on_acc)
            est = layer.estimate = _combine(config, parts, s.macs)
            if len(parts) == 1:
                # the GEMM: every stored tile accumulates K slices; N = output channels
                k = est.busy // est.tiles if est.tiles else 0
                n = s.output_shape[0] if s.output_shape else 0
                if k and n and s.macs % (k * n) == 0:
                    layer.m, layer.k, layer.n = s.macs // (k * n), k, n
            if baud is not None:
                layer.link = link_seconds(seg_words, results, config.bus_bytes, baud)
            out.cycles += est.cycles
            out.macs += s.macs
        out.layers.append(layer)
    out.utilization = config.utilization(out.macs, out.cycles)
    if baud is not None:
        out.link_seconds = sum(layer.link.seconds for layer in out.layers if layer.link)
    return out
