"""Command decoder: parses the length-framed command stream of `hw.isa`.

It writes the A/B/parameter buffers, hands MATMUL descriptors to the engine,
answers STATUS and COUNTERS, and reports errors. A bad command (unknown
opcode, wrong length, address range outside a buffer, bad K or clamp) raises
``error_valid`` with its `ErrorCode` for one cycle and is consumed word by word
without writing anything, so the next command decodes normally.

Hazards: a LOAD_A/LOAD_B waits while the range it writes overlaps a range an
active or queued MATMUL reads; a LOAD_PARAM waits while a pending int8 store
will read one of the groups it writes; STATUS and COUNTERS wait until the
engine and the result path are idle. Timing: one command word per cycle in
every state that consumes words.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .arith import const_mul
from .config import AccelConfig
from .layouts import ADDR_W, group_use_layout, matmul_desc_layout, range_layout

__all__ = ["CommandDecoder"]


class _State:
    """Decoder FSM states (plain ints so they mix with `Mux`)."""

    HEADER = 0
    ARGS = 1
    CHECK = 2
    WAIT = 3
    LOAD = 4
    PARAM = 5
    PUSH = 6
    RESPOND = 7
    SKIP = 8


class CommandDecoder(wiring.Component):
    """Front end of the accelerator (see module docstring).

    Attributes
    ----------
    cmd : In(stream.Signature(bus_bits))
    a_wr_addr, a_wr_data, a_wr_en : Out   A buffer write port (entry = rows bytes)
    b_wr_addr, b_wr_data, b_wr_en : Out   B buffer write port (entry = cols bytes)
    p_wr_group, p_wr_lane, p_wr_field, p_wr_data, p_wr_en : Out
        Parameter write: ``field`` 0 bias, 1 multiplier, 2 shift (6-bit), lane in 0..cols-1.
    matmul : Out(stream.Signature(matmul_desc_layout()))
    busy_ranges : In(ArrayLayout(range_layout(), 2))  ranges read by active/queued MATMULs
    param_groups : In(ArrayLayout(group_use_layout(), 4))  groups pending int8 stores read
    idle : In(1)  engine, array and result path have no work
    status_word : In(32), counters : In(ArrayLayout(32, 4))
    response : Out(stream.Signature(bus_bits))  STATUS / COUNTERS answers
    clear_status, clear_counters : Out(1)  one-cycle pulses after an answer with bit 0 set
    error_valid : Out(1), error_code : Out(8)  one pulse per bad command
    shift_truncated : Out(1)  a shift word outside [-32, 31] was written truncated
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = config
        c = config
        super().__init__(
            {
                "cmd": In(stream.Signature(c.bus_bits)),
                "a_wr_addr": Out(range(c.a_depth)),
                "a_wr_data": Out(8 * c.rows),
                "a_wr_en": Out(1),
                "b_wr_addr": Out(range(c.b_depth)),
                "b_wr_data": Out(8 * c.cols),
                "b_wr_en": Out(1),
                "p_wr_group": Out(range(c.param_depth)),
                "p_wr_lane": Out(range(c.cols)),
                "p_wr_field": Out(2),
                "p_wr_data": Out(32),
                "p_wr_en": Out(1),
                "matmul": Out(stream.Signature(matmul_desc_layout())),
                "busy_ranges": In(data.ArrayLayout(range_layout(), 2)),
                "param_groups": In(data.ArrayLayout(group_use_layout(), 4)),
                "idle": In(1),
                "status_word": In(32),
                "counters": In(data.ArrayLayout(32, len(isa.COUNTER_NAMES))),
                "response": Out(stream.Signature(c.bus_bits)),
                "clear_status": Out(1),
                "clear_counters": Out(1),
                "error_valid": Out(1),
                "error_code": Out(8),
                "shift_truncated": Out(1),
            }
        )

    def elaborate(self, platform):
        c = self.config
        m = Module()
        word = self.cmd.payload
        low = word[:32]

        state = Signal(range(9))
        opcode = Signal(8)
        remaining = Signal(isa.LENGTH_BITS)  # words of this command not yet consumed
        args = [Signal(32, name=f"arg{i}") for i in range(3)]
        nargs = Signal(2)
        argi = Signal(2)
        error = Signal(8)  # error found by CHECK (0 = none)

        # -- LOAD state: entry assembly ---------------------------------------------
        is_a = Signal()
        wpe = Signal(range(max(c.a_words_per_entry, c.b_words_per_entry) + 1))
        word_in_entry = Signal.like(wpe)
        load_addr = Signal(ADDR_W)
        held = [
            Signal(c.bus_bits, name=f"held{i}")
            for i in range(max(c.a_words_per_entry, c.b_words_per_entry) - 1)
        ]
        # the words of one entry, first word in the least significant bits
        a_entry = Cat(*held[: c.a_words_per_entry - 1], word)
        b_entry = Cat(*held[: c.b_words_per_entry - 1], word)

        # -- PARAM state ------------------------------------------------------------
        p_group = Signal(range(c.param_depth + 1))
        p_lane = Signal(range(c.cols))
        p_field = Signal(2)

        # -- RESPOND state ------------------------------------------------------------
        resp_index = Signal(range(len(isa.COUNTER_NAMES) + 1))
        resp_count = Signal(range(len(isa.COUNTER_NAMES) + 1))
        resp_clear = Signal()
        resp_is_status = Signal()

        m.d.comb += [
            self.a_wr_data.eq(a_entry[: 8 * c.rows]),
            self.b_wr_data.eq(b_entry[: 8 * c.cols]),
            self.a_wr_addr.eq(load_addr),
            self.b_wr_addr.eq(load_addr),
            self.p_wr_group.eq(p_group),
            self.p_wr_lane.eq(p_lane),
            self.p_wr_field.eq(p_field),
            self.p_wr_data.eq(low),
        ]

        # -- argument decoding (valid in CHECK) -------------------------------------
        a0, a1, a2 = args
        mm = self.matmul.payload
        mm_flags = a1[16:24]
        m.d.comb += [
            mm.a_addr.eq(a0[:16]),
            mm.b_addr.eq(a0[16:32]),
            mm.k.eq(a1[:16]),
            mm.accumulate.eq(mm_flags[0]),
            mm.store.eq(mm_flags[1]),
            mm.raw.eq(mm_flags[2]),
            mm.group.eq(a1[24:32]),
            mm.zero_point.eq(a2[0:8]),
            mm.act_min.eq(a2[8:16]),
            mm.act_max.eq(a2[16:24]),
        ]
        load_count = a1  # entries (LOAD_A/B) or channels (LOAD_PARAM)
        a_end = Signal(34)
        b_end = Signal(34)
        m.d.comb += [
            a_end.eq(a0[:16] + a1[:16]),
            b_end.eq(a0[16:32] + a1[:16]),
        ]
        load_end = Signal(34)
        load_end_ch = Signal(48)  # LOAD_PARAM: one past the last channel written
        m.d.comb += [
            load_end.eq(a0 + load_count),
            load_end_ch.eq(const_mul(a0, c.cols) + load_count),
        ]

        # hazard: does the pending load range [a0, a0 + count) overlap a busy read range?
        overlap = Signal()
        hits = []
        for r in range(2):
            rng = self.busy_ranges[r]
            lo = Signal(ADDR_W, name=f"hz_lo{r}")
            hi = Signal(ADDR_W, name=f"hz_hi{r}")
            m.d.comb += [
                lo.eq(Mux(opcode == isa.Opcode.LOAD_A, rng.a_lo, rng.b_lo)),
                hi.eq(Mux(opcode == isa.Opcode.LOAD_A, rng.a_hi, rng.b_hi)),
            ]
            hits.append(rng.valid & (a0 < hi) & (lo < load_end))
        m.d.comb += overlap.eq(hits[0] | hits[1])

        # hazard: does LOAD_PARAM write a group a pending int8 store reads?
        param_hit = Signal()
        p_hits = []
        for g in self.param_groups:
            p_hits.append(g.valid & (g.group >= a0) & (const_mul(g.group, c.cols) < load_end_ch))
        m.d.comb += param_hit.eq(Cat(*p_hits).any())

        m.d.comb += self.error_code.eq(error)
        with m.Switch(state):
            with m.Case(_State.HEADER):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    op = low[:8]
                    length = low[8:32]
                    m.d.sync += [opcode.eq(op), remaining.eq(length), argi.eq(0), error.eq(0)]
                    with m.Switch(op):
                        with m.Case(isa.Opcode.NOP):
                            m.d.sync += state.eq(Mux(length == 0, _State.HEADER, _State.SKIP))
                        with m.Case(isa.Opcode.LOAD_A, isa.Opcode.LOAD_B, isa.Opcode.LOAD_PARAM):
                            m.d.sync += nargs.eq(2)
                            with m.If(length < 2):
                                m.d.sync += [
                                    error.eq(isa.ErrorCode.BAD_LENGTH),
                                    state.eq(_State.CHECK),
                                ]
                            with m.Else():
                                m.d.sync += state.eq(_State.ARGS)
                        with m.Case(isa.Opcode.MATMUL):
                            m.d.sync += nargs.eq(3)
                            with m.If(length != 3):
                                m.d.sync += [
                                    error.eq(isa.ErrorCode.BAD_LENGTH),
                                    state.eq(_State.CHECK),
                                ]
                            with m.Else():
                                m.d.sync += state.eq(_State.ARGS)
                        with m.Case(isa.Opcode.STATUS, isa.Opcode.COUNTERS):
                            m.d.sync += [nargs.eq(1), args[0].eq(0)]
                            with m.If(length > 1):
                                m.d.sync += [
                                    error.eq(isa.ErrorCode.BAD_LENGTH),
                                    state.eq(_State.CHECK),
                                ]
                            with m.Elif(length == 1):
                                m.d.sync += state.eq(_State.ARGS)
                            with m.Else():
                                m.d.sync += state.eq(_State.CHECK)
                        with m.Default():
                            m.d.sync += [
                                error.eq(isa.ErrorCode.UNKNOWN_OPCODE),
                                state.eq(_State.CHECK),
                            ]

            with m.Case(_State.ARGS):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    with m.Switch(argi):
                        for i in range(3):
                            with m.Case(i):
                                m.d.sync += args[i].eq(low)
                    m.d.sync += [argi.eq(argi + 1), remaining.eq(remaining - 1)]
                    with m.If(argi + 1 == nargs):
                        m.d.sync += state.eq(_State.CHECK)

            with m.Case(_State.CHECK):
                # `error` may already hold a framing error from HEADER.
                with m.If(error != 0):
                    m.d.comb += self.error_valid.eq(1)
                    m.d.sync += state.eq(Mux(remaining == 0, _State.HEADER, _State.SKIP))
                with m.Else():
                    bad = Signal(8)
                    with m.Switch(opcode):
                        with m.Case(isa.Opcode.LOAD_A, isa.Opcode.LOAD_B):
                            wpe_c = Mux(
                                opcode == isa.Opcode.LOAD_A,
                                c.a_words_per_entry,
                                c.b_words_per_entry,
                            )
                            depth = Mux(opcode == isa.Opcode.LOAD_A, c.a_depth, c.b_depth)
                            range_err = Mux(
                                opcode == isa.Opcode.LOAD_A,
                                isa.ErrorCode.A_RANGE,
                                isa.ErrorCode.B_RANGE,
                            )
                            need = Mux(
                                opcode == isa.Opcode.LOAD_A,
                                const_mul(load_count, c.a_words_per_entry),
                                const_mul(load_count, c.b_words_per_entry),
                            )
                            with m.If(remaining != need):
                                m.d.comb += bad.eq(isa.ErrorCode.BAD_LENGTH)
                            with m.Elif(load_end > depth):
                                m.d.comb += bad.eq(range_err)
                            m.d.sync += [
                                is_a.eq(opcode == isa.Opcode.LOAD_A),
                                wpe.eq(wpe_c),
                                word_in_entry.eq(0),
                                load_addr.eq(a0),
                            ]
                        with m.Case(isa.Opcode.LOAD_PARAM):
                            with m.If(remaining != const_mul(load_count, 3)):
                                m.d.comb += bad.eq(isa.ErrorCode.BAD_LENGTH)
                            with m.Elif(
                                (a0 >= c.param_depth)
                                | (const_mul(a0, c.cols) + load_count > c.param_depth * c.cols)
                            ):
                                m.d.comb += bad.eq(isa.ErrorCode.PARAM_RANGE)
                            m.d.sync += [p_group.eq(a0), p_lane.eq(0), p_field.eq(0)]
                        with m.Case(isa.Opcode.MATMUL):
                            with m.If(mm.k == 0):
                                m.d.comb += bad.eq(isa.ErrorCode.BAD_K)
                            with m.Elif(a_end > c.a_depth):
                                m.d.comb += bad.eq(isa.ErrorCode.A_RANGE)
                            with m.Elif(b_end > c.b_depth):
                                m.d.comb += bad.eq(isa.ErrorCode.B_RANGE)
                            with m.Elif(mm.store & ~mm.raw & (mm.group >= c.param_depth)):
                                m.d.comb += bad.eq(isa.ErrorCode.PARAM_RANGE)
                            with m.Elif(mm.store & ~mm.raw & (mm.act_min > mm.act_max)):
                                m.d.comb += bad.eq(isa.ErrorCode.BAD_CLAMP)
                        with m.Case(isa.Opcode.STATUS, isa.Opcode.COUNTERS):
                            m.d.sync += [
                                resp_index.eq(0),
                                resp_clear.eq(a0[0]),
                                resp_is_status.eq(opcode == isa.Opcode.STATUS),
                                resp_count.eq(
                                    Mux(opcode == isa.Opcode.STATUS, 1, len(isa.COUNTER_NAMES))
                                ),
                            ]
                    with m.If(bad != 0):
                        m.d.comb += [self.error_valid.eq(1), self.error_code.eq(bad)]
                        m.d.sync += state.eq(Mux(remaining == 0, _State.HEADER, _State.SKIP))
                    with m.Else():
                        m.d.sync += state.eq(_State.WAIT)

            with m.Case(_State.WAIT):
                with m.Switch(opcode):
                    with m.Case(isa.Opcode.LOAD_A, isa.Opcode.LOAD_B):
                        with m.If(~overlap):
                            m.d.sync += state.eq(Mux(remaining == 0, _State.HEADER, _State.LOAD))
                    with m.Case(isa.Opcode.LOAD_PARAM):
                        with m.If(~param_hit):
                            m.d.sync += state.eq(Mux(remaining == 0, _State.HEADER, _State.PARAM))
                    with m.Case(isa.Opcode.MATMUL):
                        m.d.sync += state.eq(_State.PUSH)
                    with m.Default():  # STATUS / COUNTERS
                        with m.If(self.idle):
                            m.d.sync += state.eq(_State.RESPOND)

            with m.Case(_State.LOAD):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(word_in_entry + 1 == wpe):
                        m.d.comb += [self.a_wr_en.eq(is_a), self.b_wr_en.eq(~is_a)]
                        m.d.sync += [word_in_entry.eq(0), load_addr.eq(load_addr + 1)]
                    with m.Else():
                        m.d.sync += word_in_entry.eq(word_in_entry + 1)
                        for i in range(len(held)):
                            with m.If(word_in_entry == i):
                                m.d.sync += held[i].eq(word)
                    with m.If(remaining == 1):
                        m.d.sync += state.eq(_State.HEADER)

            with m.Case(_State.PARAM):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.comb += self.p_wr_en.eq(1)
                    with m.If(p_field == 2):
                        # shift words must be a sign extension of 6 bits
                        top = low[5:32]
                        with m.If(~((top == 0) | (top == (1 << 27) - 1))):
                            m.d.comb += self.shift_truncated.eq(1)
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(p_field == 2):
                        m.d.sync += p_field.eq(0)
                        with m.If(p_lane == c.cols - 1):
                            m.d.sync += [p_lane.eq(0), p_group.eq(p_group + 1)]
                        with m.Else():
                            m.d.sync += p_lane.eq(p_lane + 1)
                    with m.Else():
                        m.d.sync += p_field.eq(p_field + 1)
                    with m.If(remaining == 1):
                        m.d.sync += state.eq(_State.HEADER)

            with m.Case(_State.PUSH):
                m.d.comb += self.matmul.valid.eq(1)
                with m.If(self.matmul.ready):
                    m.d.sync += state.eq(_State.HEADER)

            with m.Case(_State.RESPOND):
                m.d.comb += self.response.valid.eq(1)
                with m.If(resp_is_status):
                    m.d.comb += self.response.payload.eq(self.status_word)
                with m.Else():
                    with m.Switch(resp_index):
                        for i in range(len(isa.COUNTER_NAMES)):
                            with m.Case(i):
                                m.d.comb += self.response.payload.eq(self.counters[i])
                with m.If(self.response.ready):
                    m.d.sync += resp_index.eq(resp_index + 1)
                    with m.If(resp_index + 1 == resp_count):
                        m.d.sync += state.eq(_State.HEADER)
                        m.d.comb += [
                            self.clear_status.eq(resp_clear & resp_is_status),
                            self.clear_counters.eq(resp_clear & ~resp_is_status),
                        ]

            with m.Case(_State.SKIP):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.d.sync += state.eq(_State.HEADER)
        return m
