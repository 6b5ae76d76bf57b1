"""Formal properties of the command decoder (`hw.decoder.CommandDecoder`).

The harness follows the command stream itself, from the framing rules of `hw.isa`
(a header with opcode and length, then ``length`` words; LOAD's first two words are
``addr`` and ``n``) — written here independently of the decoder — and checks:

``decoder.writes_in_range``
    every A / B / parameter-buffer write belongs to a LOAD of that buffer whose
    length and range are legal (a command with an error writes nothing), and goes to
    exactly the entry (channel) the command's data word at hand names:
    ``addr + j // words_per_entry`` for data word ``j``. Broken variant: the write
    address is off by one on the last entry of the buffer's range (wraps to 0).
``decoder.bounded_liveness``
    with the result side ready (answers and MATMUL descriptors taken, the engine
    idle, no buffer hazard), ``cmd.ready`` is never low for `LIVENESS_BOUND`
    consecutive cycles, whatever the command words. Broken variant: the decoder's
    ``idle`` input is stuck low, so a STATUS waits forever.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cover, Module, Mux, Signal

from . import isa
from .config import AccelConfig
from .decoder import CommandDecoder
from .formal import FormalCheck
from .stream_props import StreamHarness, decoder_environment

__all__ = ["LIVENESS_BOUND", "formal_checks"]

#: ``cmd.ready`` is never low this many cycles in a row with the result side ready; the
#: longest wait is one less (RANGE, CHECK, WAIT, idle sampled, then the four COUNTERS
#: answer words), which the property's cover reaches.
LIVENESS_BOUND = 8


class _Tracker:
    """The command the word on ``cmd`` belongs to, from the ISA framing rules.

    ``header`` (comb): the word at hand is a header; ``opcode``, ``length``,
    ``arg0``, ``arg1``: the current command's (valid once its words are in);
    ``data_index`` (comb): the index of the word at hand among the words after the
    two arguments."""

    def __init__(self, m: Module, cmd) -> None:
        take = cmd.valid & cmd.ready
        word = cmd.payload[:32]
        self.rem = Signal(isa.LENGTH_BITS, name="trk_rem")  # words left in the command
        self.seen = Signal(isa.LENGTH_BITS, name="trk_seen")  # words after the header taken
        self.opcode = Signal(isa.OPCODE_BITS, name="trk_opcode")
        self.length = Signal(isa.LENGTH_BITS, name="trk_length")
        self.arg0 = Signal(32, name="trk_arg0")
        self.arg1 = Signal(32, name="trk_arg1")
        self.header = Signal(name="trk_header")
        self.data_index = Signal(isa.LENGTH_BITS, name="trk_data_index")
        m.d.comb += [self.header.eq(self.rem == 0), self.data_index.eq(self.seen - 2)]
        with m.If(take):
            with m.If(self.header):
                m.d.sync += [
                    self.opcode.eq(word[: isa.OPCODE_BITS]),
                    self.length.eq(word[isa.OPCODE_BITS : 32]),
                    self.rem.eq(word[isa.OPCODE_BITS : 32]),
                    self.seen.eq(0),
                ]
            with m.Else():
                m.d.sync += [self.rem.eq(self.rem - 1), self.seen.eq(self.seen + 1)]
                with m.If(self.seen == 0):
                    m.d.sync += self.arg0.eq(word)
                with m.If(self.seen == 1):
                    m.d.sync += self.arg1.eq(word)


class DecoderHarness(StreamHarness):
    """The decoder with free inputs (see `StreamHarness`) and one of its properties
    (``prop``: ``range`` or ``liveness``)."""

    def __init__(self, config: AccelConfig, prop: str, broken: bool = False) -> None:
        self.config, self.prop, self.broken_variant = config, prop, broken
        super().__init__(CommandDecoder(config), environment=decoder_environment, covers=False)

    def elaborate(self, platform):
        m = super().elaborate(platform)
        if self.prop == "range":
            self._writes_in_range(m)
        else:
            self._liveness(m)
        return m

    def _writes_in_range(self, m):
        c = self.config
        t = _Tracker(m, self.cmd)
        data_word = self.cmd.valid & self.cmd.ready & ~t.header & (t.seen >= 2)
        wide = 34  # sums of two 32-bit words never wrap
        n, addr = t.arg1, t.arg0
        wpc = isa.param_words_per_channel(c.bus_bytes)

        def legal_load(opcode, depth, wpe):
            return (
                (t.opcode == opcode)
                & (n < 2**isa.LENGTH_BITS)
                & (t.length == 2 + n * wpe)
                & (addr + n <= depth)
            )

        for port, opcode, depth, wpe in (
            (self.a_wr, isa.Opcode.LOAD_A, c.a_depth, c.a_words_per_entry),
            (self.b_wr, isa.Opcode.LOAD_B, c.b_depth, c.b_words_per_entry),
        ):
            wr_addr = port.addr
            if self.broken_variant and opcode == isa.Opcode.LOAD_A:
                wr_addr = Mux(port.addr == depth - 1, 0, port.addr)
            legal = legal_load(opcode, depth, wpe)
            with m.If(port.en):
                m.d.comb += Assert(data_word & legal, f"{opcode.name} write outside a legal LOAD")
                if wpe == 1:
                    m.d.comb += Assert(wr_addr == (addr + t.data_index)[: len(wr_addr)])
                else:
                    m.d.comb += Assert(
                        (wr_addr * wpe + (wpe - 1)) == (addr * wpe + t.data_index)[:wide]
                    )
            m.d.comb += Cover(port.en & (wr_addr == depth - 1))
        legal_p = (
            (t.opcode == isa.Opcode.LOAD_PARAM)
            & (n < 2**isa.LENGTH_BITS)
            & (t.length == 2 + n * wpc)
            & (addr < c.param_depth)
            & (addr * c.cols + n <= c.param_depth * c.cols)
        )
        channel = self.p_wr.group * c.cols + self.p_wr.lane
        first = (channel - addr * c.cols) * wpc  # data index of the channel's first word
        with m.If(self.p_wr.en.any()):
            m.d.comb += Assert(data_word & legal_p, "parameter write outside a legal LOAD_PARAM")
            m.d.comb += Assert(
                (first <= t.data_index) & (t.data_index < first + wpc),
                "parameter write to another channel than the data word's",
            )
        m.d.comb += Cover(self.p_wr.en.any() & (channel == 1))

    def _liveness(self, m):
        m.d.comb += [
            Assume(self.response.ready),
            Assume(self.matmul.ready),
            Assume(~self.idle if self.broken_variant else self.idle),
        ]
        for rng in self.busy_ranges:
            m.d.comb += Assume(~rng.valid)
        for g in self.param_groups:
            m.d.comb += Assume(~g.valid)
        low = Signal(range(LIVENESS_BOUND + 1), name="ready_low_run")
        with m.If(self.cmd.ready):
            m.d.sync += low.eq(0)
        with m.Elif(low != LIVENESS_BOUND):
            m.d.sync += low.eq(low + 1)
        m.d.comb += Assert(low < LIVENESS_BOUND, "cmd.ready low for too long")
        # the bound is tight: a wait of LIVENESS_BOUND - 1 cycles happens
        m.d.comb += Cover((low == LIVENESS_BOUND - 1) & self.cmd.ready)


def formal_checks(config: AccelConfig) -> list[FormalCheck]:
    """The decoder's write-range and bounded-liveness properties for ``config``."""
    return [
        FormalCheck(
            name="decoder.writes_in_range",
            module="hw/decoder.py",
            statement="every A/B/parameter write belongs to a legal LOAD of that buffer and "
            "goes to the entry its data word names (a command with an error writes nothing)",
            mode="bmc",
            depth=10,
            harness=lambda broken: DecoderHarness(config, "range", broken),
            broken="the write address wraps to 0 on the buffer's last entry",
            cover_depth=10,
        ),
        FormalCheck(
            name="decoder.bounded_liveness",
            module="hw/decoder.py",
            statement=f"with the result side ready, cmd.ready is never low for "
            f"{LIVENESS_BOUND} cycles in a row",
            mode="prove",
            depth=12,
            harness=lambda broken: DecoderHarness(config, "liveness", broken),
            broken="the engine never reports idle, so a STATUS waits forever",
            cover_depth=16,
        ),
    ]
