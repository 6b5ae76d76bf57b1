"""Command decoder: parses the length-framed command stream of `hw.isa`.

It writes the A/B/parameter buffers, hands MATMUL descriptors to the engine,
answers STATUS and COUNTERS, and reports errors. A bad command (unknown
opcode, wrong length, address range outside a buffer, bad K or clamp) raises
``error_valid`` with its `ErrorCode` for one cycle and is consumed word by word
without writing anything, so the next command decodes normally.

Hazards: a LOAD_A/LOAD_B waits while the range it writes overlaps a range an
active or queued MATMUL reads; a LOAD_PARAM waits while a pending int8 store
will read one of the groups it writes; STATUS and COUNTERS wait until the
engine and the result path are idle.

Timing: one command word per cycle in every state that consumes words. After
the last argument word the decoder spends one cycle in ``RANGE`` (every
argument check settles into its own flag register) and one in ``CHECK`` (the
opcode's flags in priority order: error or go); the hazard and idle
inputs are registered (the busy ranges only shrink until the decoder itself
pushes a MATMUL, so a one-cycle-old "no hazard" is still true). Arithmetic is
only as wide as the buffers: a 16/32-bit address or count that cannot fit is
caught by an OR over its high bits, and sums are ``end_bits + 1`` wide.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .arith import const_mul
from .config import AccelConfig
from .layouts import addr_bits, end_bits, group_use_layout, matmul_desc_layout, range_layout
from .ports import ParamWriteSignature, buffer_write_signature

__all__ = ["CommandDecoder", "LOAD_OVERHEAD_CYCLES", "MATMUL_CYCLES"]

#: Cycles a LOAD_A / LOAD_B / LOAD_PARAM spends besides its data words when nothing
#: blocks it: HEADER, two argument words, RANGE, CHECK, WAIT (one word per cycle).
LOAD_OVERHEAD_CYCLES = 6
#: Cycles of a MATMUL whose descriptor the engine takes at once: HEADER, three
#: argument words, RANGE, CHECK, PUSH.
MATMUL_CYCLES = 7


class Op(enum.Enum, shape=isa.OPCODE_BITS):
    """`isa.Opcode` as an Amaranth enum (for the decoder's opcode register)."""

    NOP = isa.Opcode.NOP.value
    LOAD_A = isa.Opcode.LOAD_A.value
    LOAD_B = isa.Opcode.LOAD_B.value
    LOAD_PARAM = isa.Opcode.LOAD_PARAM.value
    MATMUL = isa.Opcode.MATMUL.value
    STATUS = isa.Opcode.STATUS.value
    COUNTERS = isa.Opcode.COUNTERS.value


_E = isa.ErrorCode
#: Per opcode whose argument words are checked in CHECK, its registered check flags
#: (`CommandDecoder._arg_flags`) in priority order with their error codes.
_ARG_CHECKS = {
    Op.LOAD_A: [("len_a", _E.BAD_LENGTH), ("load_a", _E.A_RANGE)],
    Op.LOAD_B: [("len_b", _E.BAD_LENGTH), ("load_b", _E.B_RANGE)],
    Op.LOAD_PARAM: [("len_p", _E.BAD_LENGTH), ("param", _E.PARAM_RANGE)],
    Op.MATMUL: [
        ("k_zero", _E.BAD_K),
        ("mm_a", _E.A_RANGE),
        ("mm_b", _E.B_RANGE),
        ("mm_group", _E.PARAM_RANGE),
        ("mm_clamp", _E.BAD_CLAMP),
    ],
}


class _Registers:
    """The decoder's registers as attributes (built by `CommandDecoder._registers`)."""

    def __init__(self, **signals) -> None:
        self.__dict__.update(signals)


def _matmul_views(r) -> tuple[data.View, data.View, data.View]:
    """The three argument registers seen as MATMUL words (`isa.MATMUL_ARG_LAYOUTS`)."""
    layouts = isa.MATMUL_ARG_LAYOUTS
    return tuple(data.View(lay, arg) for lay, arg in zip(layouts, r.args, strict=True))


def _sum_exceeds(base: Value, count: Value, limit: int) -> tuple[Value, Value]:
    """``(base + count > limit, base + count)`` with an adder only ``end_bits(limit) + 1`` wide.

    Operands wider than ``w = limit.bit_length()`` bits exceed ``limit`` as soon
    as a high bit is set (an OR-reduce); otherwise the ``w + 1``-bit sum is
    compared. The returned sum is its low ``w`` bits, exact whenever it does
    not exceed ``limit``.
    """
    w = max(1, limit.bit_length())
    high = [v[w:] for v in (base, count) if len(v) > w]
    total = base[:w] + count[:w]
    over = total > limit
    if high:
        over = Cat(*high).any() | over
    return over, total[:w]


class CommandDecoder(wiring.Component):
    """Front end of the accelerator (see module docstring).

    Attributes
    ----------
    cmd : In(stream.Signature(bus_bits))
    a_wr : Out(buffer_write_signature(a_depth, 8 * rows))  A buffer write port (one entry)
    b_wr : Out(buffer_write_signature(b_depth, 8 * cols))  B buffer write port
    p_wr : Out(ParamWriteSignature(config))
        Parameter write of channel ``lane`` (0..cols-1) of ``group``: ``en[f]`` and
        ``data[f]`` (32 bits) per field f of `isa.PARAM_FIELDS` (bias, multiplier,
        shift); the fields of one record word are written in the same cycle.
    matmul : Out(stream.Signature(matmul_desc_layout(config)))  valid and payload registered
    busy_ranges : In(ArrayLayout(range_layout(config), 2))  ranges read by active/queued MATMULs
    param_groups : In(ArrayLayout(group_use_layout(), 4))  groups pending int8 stores read
    idle : In(1)  engine, array and result path have no work
    status_word : In(32), counters : In(ArrayLayout(32, 4))
        Read while answering; the caller holds them while ``answering`` (so a waiting
        answer word stays stable and the four COUNTERS words are one snapshot).
    response : Out(stream.Signature(bus_bits))  STATUS / COUNTERS answers
    answering : Out(1)  a STATUS / COUNTERS answer is being sent
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
                "a_wr": Out(buffer_write_signature(c.a_depth, 8 * c.rows)),
                "b_wr": Out(buffer_write_signature(c.b_depth, 8 * c.cols)),
                "p_wr": Out(ParamWriteSignature(c)),
                "matmul": Out(stream.Signature(matmul_desc_layout(c))),
                "busy_ranges": In(data.ArrayLayout(range_layout(c), 2)),
                "param_groups": In(data.ArrayLayout(group_use_layout(), 4)),
                "idle": In(1),
                "status_word": In(32),
                "counters": In(data.ArrayLayout(32, len(isa.COUNTER_NAMES))),
                "response": Out(stream.Signature(c.bus_bits)),
                "answering": Out(1),
                "clear_status": Out(1),
                "clear_counters": Out(1),
                "error_valid": Out(1),
                "error_code": Out(8),
                "shift_truncated": Out(1),
            }
        )

    # -- registers ---------------------------------------------------------------------

    def _registers(self) -> _Registers:
        c = self.config
        wpe_max = max(c.a_words_per_entry, c.b_words_per_entry)
        n_resp = len(isa.COUNTER_NAMES) + 1
        return _Registers(
            opcode=Signal(Op),
            remaining=Signal(isa.LENGTH_BITS),  # words of this command not yet consumed
            rem_zero=Signal(),  # registered remaining == 0 (keeps 24-bit compares off the FSM)
            rem_one=Signal(),  # registered remaining == 1
            args=[Signal(32, name=f"arg{i}") for i in range(3)],
            nargs=Signal(2),
            argi=Signal(2),
            error=Signal(8),  # framing error found in HEADER, 0 = none
            framing_bad=Signal(),  # registered error != 0
            # registered opcode == X for the opcodes with argument checks (one LUT each
            # in CHECK instead of an 8-bit compare in front of the error priority)
            op_hot={op: Signal(name=f"is_{op.name.lower()}") for op in _ARG_CHECKS},
            # RANGE results (registered every cycle from the stable argument words)
            load_end=Signal(end_bits(max(c.a_depth, c.b_depth)), name="load_end"),
            a_end=Signal(end_bits(c.a_depth), name="mm_a_end"),
            b_end=Signal(end_bits(c.b_depth), name="mm_b_end"),
            end_ch=Signal(end_bits(c.param_depth * c.cols), name="load_end_ch"),
            overlap=Signal(name="hz_overlap"),
            param_hit=Signal(name="hz_param"),
            idle=Signal(name="idle_r"),
            # LOAD: entry assembly
            is_a=Signal(),
            wpe=Signal(range(wpe_max + 1)),
            word_in_entry=Signal(range(wpe_max + 1)),
            load_addr=Signal(addr_bits(max(c.a_depth, c.b_depth))),
            held=[Signal(c.bus_bits, name=f"held{i}") for i in range(wpe_max - 1)],
            # PARAM
            p_group=Signal(end_bits(c.param_depth)),
            p_lane=Signal(range(c.cols)),
            p_word=Signal(range(isa.param_words_per_channel(c.bus_bytes))),
            # RESPOND
            resp_index=Signal(range(n_resp)),
            resp_count=Signal(range(n_resp)),
            resp_clear=Signal(),
            resp_is_status=Signal(),
        )

    def elaborate(self, platform):
        m = Module()
        r = self._registers()
        self._outputs(m, r)
        self._precompute(m, r)
        self._hazards(m, r)
        flags = self._arg_flags(m, r)
        with m.FSM(init="HEADER"):
            with m.State("HEADER"):
                self._header(m, r)
            with m.State("ARGS"):
                self._args(m, r)
            with m.State("RANGE"):  # the argument flags settle into their registers
                m.next = "CHECK"
            with m.State("CHECK"):
                self._check(m, r, *self._arg_error(m, r, flags))
            with m.State("WAIT"):
                self._wait(m, r)
            with m.State("LOAD"):
                self._load(m, r)
            with m.State("PARAM"):
                self._param(m, r)
            with m.State("PUSH"):
                m.d.comb += self.matmul.valid.eq(1)
                with m.If(self.matmul.ready):
                    m.next = "HEADER"
            with m.State("RESPOND"):
                self._respond(m, r)
            with m.State("SKIP"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    self._consume(m, r)
                    with m.If(r.rem_one):
                        m.next = "HEADER"
        return m

    # -- datapath outputs --------------------------------------------------------------

    def _outputs(self, m, r):
        """Write ports and the MATMUL descriptor, all straight from registers."""
        c = self.config
        word = self.cmd.payload
        a0, a1, a2 = r.args
        # the words of one entry, first word in the least significant bits
        a_entry = Cat(*r.held[: c.a_words_per_entry - 1], word)
        b_entry = Cat(*r.held[: c.b_words_per_entry - 1], word)
        mm = self.matmul.payload
        w0, w1, w2 = _matmul_views(r)
        flags = w1.flags
        m.d.comb += [
            self.a_wr.data.eq(a_entry[: 8 * c.rows]),
            self.b_wr.data.eq(b_entry[: 8 * c.cols]),
            self.a_wr.addr.eq(r.load_addr),
            self.b_wr.addr.eq(r.load_addr),
            self.p_wr.group.eq(r.p_group),
            self.p_wr.lane.eq(r.p_lane),
            *[
                self.p_wr.data[f].eq(word.word_select(f % (c.bus_bytes // 4), 32))
                for f in range(len(isa.PARAM_FIELDS))
            ],
            # fields are truncated to the layout widths; RANGE checked they fit
            mm.a_addr.eq(w0.a_addr),
            mm.b_addr.eq(w0.b_addr),
            mm.a_end.eq(r.a_end),
            mm.b_end.eq(r.b_end),
            mm.k.eq(w1.k),
            mm.accumulate.eq(flags[0]),
            mm.store.eq(flags[1]),
            mm.raw.eq(flags[2]),
            mm.group.eq(w1.group),
            mm.zero_point.eq(w2.zero_point),
            mm.act_min.eq(w2.act_min),
            mm.act_max.eq(w2.act_max),
        ]

    def _precompute(self, m, r):
        """End points of the pending command, registered (valid from CHECK on)."""
        c = self.config
        a0, a1, _ = r.args
        is_a = r.opcode == Op.LOAD_A
        _, a_load_end = _sum_exceeds(a0, a1, c.a_depth)
        _, b_load_end = _sum_exceeds(a0, a1, c.b_depth)
        w0, w1, _ = _matmul_views(r)
        _, mm_a_end = _sum_exceeds(w0.a_addr, w1.k, c.a_depth)
        _, mm_b_end = _sum_exceeds(w0.b_addr, w1.k, c.b_depth)
        pw = end_bits(c.param_depth)
        _, end_ch = _sum_exceeds(const_mul(a0[:pw], c.cols), a1, c.param_depth * c.cols)
        m.d.sync += [
            r.load_end.eq(Mux(is_a, a_load_end, b_load_end)),
            r.a_end.eq(mm_a_end),
            r.b_end.eq(mm_b_end),
            r.end_ch.eq(end_ch),
        ]

    def _hazards(self, m, r):
        """Registered hazard and idle flags (see module docstring for why that is safe)."""
        c = self.config
        a0 = r.args[0]
        is_a = r.opcode == Op.LOAD_A
        lo_w = len(r.load_end)
        hits = []
        for rng in self.busy_ranges:
            lo = Mux(is_a, rng.a_lo, rng.b_lo)
            hi = Mux(is_a, rng.a_hi, rng.b_hi)
            hits.append(rng.valid & (a0[:lo_w] < hi) & (lo < r.load_end))
        gw = addr_bits(c.param_depth)  # int8 store groups were checked < param_depth
        p_hits = []
        for g in self.param_groups:
            group = g.group[:gw]
            p_hits.append(g.valid & (group >= a0[:gw]) & (const_mul(group, c.cols) < r.end_ch))
        m.d.sync += [
            r.overlap.eq(Cat(*hits).any()),
            r.param_hit.eq(Cat(*p_hits).any()),
            r.idle.eq(self.idle),
        ]

    # -- framing -------------------------------------------------------------------------

    def _header(self, m, r):
        """Latch opcode and length; framing errors go straight to CHECK."""
        hdr = data.View(isa.HEADER_LAYOUT, self.cmd.payload[:32])
        op, length = hdr.opcode, hdr.length
        m.d.comb += self.cmd.ready.eq(1)

        def framing(bad_length, nargs):
            m.d.sync += r.nargs.eq(nargs)
            with m.If(bad_length):
                m.d.sync += [r.error.eq(isa.ErrorCode.BAD_LENGTH), r.framing_bad.eq(1)]
                m.next = "CHECK"
            with m.Else():
                m.next = "ARGS"

        with m.If(self.cmd.valid):
            m.d.sync += [
                r.opcode.eq(op),
                r.remaining.eq(length),
                r.rem_zero.eq(length == 0),
                r.rem_one.eq(length == 1),
                r.argi.eq(0),
                r.error.eq(0),
                r.framing_bad.eq(0),
                *[hot.eq(op == o.value) for o, hot in r.op_hot.items()],
            ]
            with m.Switch(op):
                with m.Case(Op.NOP):
                    with m.If(length != 0):
                        m.next = "SKIP"
                with m.Case(Op.LOAD_A, Op.LOAD_B, Op.LOAD_PARAM):
                    framing(length < 2, 2)
                with m.Case(Op.MATMUL):
                    framing(length != 3, 3)
                with m.Case(Op.STATUS, Op.COUNTERS):
                    m.d.sync += r.args[0][0].eq(0)  # no argument word: no clear
                    with m.If(length == 0):
                        m.next = "CHECK"
                    with m.Else():
                        framing(length != 1, 1)
                with m.Default():
                    m.d.sync += [r.error.eq(isa.ErrorCode.UNKNOWN_OPCODE), r.framing_bad.eq(1)]
                    m.next = "CHECK"

    def _args(self, m, r):
        m.d.comb += self.cmd.ready.eq(1)
        with m.If(self.cmd.valid):
            with m.Switch(r.argi):
                for i in range(3):
                    with m.Case(i):
                        m.d.sync += r.args[i].eq(self.cmd.payload[:32])
            m.d.sync += r.argi.eq(r.argi + 1)
            self._consume(m, r)
            with m.If(r.argi + 1 == r.nargs):
                m.next = "RANGE"

    # -- checks ----------------------------------------------------------------------------

    def _arg_flags(self, m, r):
        """Every argument check as its own flag, registered each cycle (valid in CHECK).

        Each flag is one narrow compare of the argument words (stable from RANGE
        on); `_arg_error` picks the opcode's flags in priority order in CHECK.
        """
        c = self.config
        a0, a1, a2 = r.args
        count = a1  # entries (LOAD_A/B) or channels (LOAD_PARAM)
        # `remaining` < 2**24, so a count with any of bits 24..31 set never matches it
        count_hi = count[isa.LENGTH_BITS :].any()
        count_lo = count[: isa.LENGTH_BITS]
        pw = end_bits(c.param_depth)
        w0, w1, w2 = _matmul_views(r)
        k = w1.k
        int8_store = w1.flags[1] & ~w1.flags[2]  # MatmulFlags STORE and not RAW
        act_min, act_max = w2.act_min, w2.act_max
        checks = {
            "len_a": count_hi | (r.remaining != const_mul(count_lo, c.a_words_per_entry)),
            "len_b": count_hi | (r.remaining != const_mul(count_lo, c.b_words_per_entry)),
            "len_p": count_hi
            | (r.remaining != const_mul(count_lo, isa.param_words_per_channel(c.bus_bytes))),
            "load_a": _sum_exceeds(a0, count, c.a_depth)[0],
            "load_b": _sum_exceeds(a0, count, c.b_depth)[0],
            "param": a0[pw:].any()
            | (a0[:pw] >= c.param_depth)
            | _sum_exceeds(const_mul(a0[:pw], c.cols), count, c.param_depth * c.cols)[0],
            "k_zero": k == 0,
            "mm_a": _sum_exceeds(w0.a_addr, k, c.a_depth)[0],
            "mm_b": _sum_exceeds(w0.b_addr, k, c.b_depth)[0],
            "mm_group": int8_store & (w1.group >= c.param_depth),
            "mm_clamp": int8_store & (act_min > act_max),
        }
        flags = {name: Signal(name=f"bad_{name}") for name in checks}
        m.d.sync += [flags[name].eq(value) for name, value in checks.items()]
        return flags

    def _arg_error(self, m, r, flags) -> tuple[Value, Value]:
        """The command's `ErrorCode` in CHECK (the framing error, else the first failed
        check) and whether it has one: ``fail`` is a shallow OR of registered flags
        (it steers the FSM), the priority-encoded code only feeds ``error_code``."""
        checks = _ARG_CHECKS
        bad = Signal(8, name="cmd_error")
        fail = Signal(name="cmd_fail")
        m.d.comb += bad.eq(r.error)
        with m.If(r.error == 0):
            with m.Switch(r.opcode):
                for op, ordered in checks.items():
                    with m.Case(op):
                        for i, (flag, code) in enumerate(ordered):
                            with (m.If if i == 0 else m.Elif)(flags[flag]):
                                m.d.comb += bad.eq(code)
        per_op = [
            r.op_hot[op] & Cat(*[flags[f] for f, _ in ordered]).any()
            for op, ordered in checks.items()
        ]
        m.d.comb += fail.eq(r.framing_bad | Cat(*per_op).any())
        return bad, fail

    @staticmethod
    def _consume(m, r):
        """One word of the command taken: count down, with the end flags a cycle ahead."""
        m.d.sync += [
            r.remaining.eq(r.remaining - 1),
            r.rem_zero.eq(r.remaining == 1),
            r.rem_one.eq(r.remaining == 2),
        ]

    @staticmethod
    def _done_or(m, r, state):
        """Next: HEADER if the command has no words left, else ``state``."""
        with m.If(r.rem_zero):
            m.next = "HEADER"
        with m.Else():
            m.next = state

    def _check(self, m, r, bad, fail):
        """Report the command's error ``bad`` (``fail``: it has one), or go on to its
        data phase.

        The data-phase registers are set up whatever ``bad`` is (a bad command
        only skips words), so ``fail`` drives just ``error_valid`` and the state.
        """
        c = self.config
        a0 = r.args[0]
        is_a = r.opcode == Op.LOAD_A
        is_status = r.opcode == Op.STATUS
        m.d.sync += [
            r.is_a.eq(is_a),
            r.wpe.eq(Mux(is_a, c.a_words_per_entry, c.b_words_per_entry)),
            r.word_in_entry.eq(0),
            r.load_addr.eq(a0),
            r.p_group.eq(a0),
            r.p_lane.eq(0),
            r.p_word.eq(0),
            r.resp_index.eq(0),
            r.resp_clear.eq(a0[0]),
            r.resp_is_status.eq(is_status),
            r.resp_count.eq(Mux(is_status, 1, len(isa.COUNTER_NAMES))),
        ]
        m.d.comb += self.error_code.eq(bad)
        with m.If(fail):
            m.d.comb += self.error_valid.eq(1)
            self._done_or(m, r, "SKIP")
        with m.Elif(r.opcode == Op.MATMUL):
            m.next = "PUSH"
        with m.Else():
            m.next = "WAIT"

    def _wait(self, m, r):
        """Hold a LOAD until no hazard, a STATUS/COUNTERS until idle."""
        with m.Switch(r.opcode):
            with m.Case(Op.LOAD_A, Op.LOAD_B):
                with m.If(~r.overlap):
                    self._done_or(m, r, "LOAD")
            with m.Case(Op.LOAD_PARAM):
                with m.If(~r.param_hit):
                    self._done_or(m, r, "PARAM")
            with m.Default():  # STATUS / COUNTERS
                with m.If(r.idle):
                    m.next = "RESPOND"

    # -- data phases ---------------------------------------------------------------------

    def _load(self, m, r):
        """LOAD_A/B payload: assemble ``wpe`` words per entry, write, advance the address."""
        m.d.comb += self.cmd.ready.eq(1)
        with m.If(self.cmd.valid):
            self._consume(m, r)
            with m.If(r.word_in_entry + 1 == r.wpe):
                m.d.comb += [self.a_wr.en.eq(r.is_a), self.b_wr.en.eq(~r.is_a)]
                m.d.sync += [r.word_in_entry.eq(0), r.load_addr.eq(r.load_addr + 1)]
            with m.Else():
                m.d.sync += r.word_in_entry.eq(r.word_in_entry + 1)
                for i, held in enumerate(r.held):
                    with m.If(r.word_in_entry == i):
                        m.d.sync += held.eq(self.cmd.payload)
            with m.If(r.rem_one):
                m.next = "HEADER"

    def _param(self, m, r):
        """LOAD_PARAM payload: one record (bias, multiplier, shift) per channel, packed
        `isa.param_words_per_channel` words per record; each word writes its fields."""
        c = self.config
        per_word = c.bus_bytes // 4  # 32-bit fields per word
        last_word = isa.param_words_per_channel(c.bus_bytes) - 1  # holds the shift
        m.d.comb += self.cmd.ready.eq(1)
        with m.If(self.cmd.valid):
            for f in range(len(isa.PARAM_FIELDS)):
                m.d.comb += self.p_wr.en[f].eq(r.p_word == f // per_word)
            self._consume(m, r)
            with m.If(r.p_word == last_word):
                # shift words must be a sign extension of 6 bits
                top = self.p_wr.data[isa.PARAM_FIELDS.index("shift")][5:32]
                with m.If(~(top.all() | ~top.any())):
                    m.d.comb += self.shift_truncated.eq(1)
                m.d.sync += r.p_word.eq(0)
                with m.If(r.p_lane == c.cols - 1):
                    m.d.sync += [r.p_lane.eq(0), r.p_group.eq(r.p_group + 1)]
                with m.Else():
                    m.d.sync += r.p_lane.eq(r.p_lane + 1)
            with m.Else():
                m.d.sync += r.p_word.eq(r.p_word + 1)
            with m.If(r.rem_one):
                m.next = "HEADER"

    def _respond(self, m, r):
        """STATUS (1 word) or COUNTERS (4 words) answer; clear pulse after the last word."""
        m.d.comb += [self.response.valid.eq(1), self.answering.eq(1)]
        with m.If(r.resp_is_status):
            m.d.comb += self.response.payload.eq(self.status_word)
        with m.Else():
            with m.Switch(r.resp_index):
                for i in range(len(isa.COUNTER_NAMES)):
                    with m.Case(i):
                        m.d.comb += self.response.payload.eq(self.counters[i])
        with m.If(self.response.ready):
            m.d.sync += r.resp_index.eq(r.resp_index + 1)
            with m.If(r.resp_index + 1 == r.resp_count):
                m.next = "HEADER"
                m.d.comb += [
                    self.clear_status.eq(r.resp_clear & r.resp_is_status),
                    self.clear_counters.eq(r.resp_clear & ~r.resp_is_status),
                ]
