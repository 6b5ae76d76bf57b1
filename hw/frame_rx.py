"""Host -> device half of the serial link (`hw.bridge` documents the frames).

`FrameReceiver` hunts for the sync byte, stores a frame's payload in a frame
buffer while it checks length, CRC and sequence number, and only then issues
the stored words to the accelerator (EXEC), so no command ever runs in part or
twice. Every frame ends in a reply request (ACK or NACK with a reason) to the
`FrameTransmitter`; the receiver takes no byte until that reply is sent.

Timing: one byte per cycle; every compare that steers the state machine
(CRC low byte, ``len`` == 0, last word, sequence checks, timeout, words left to
issue) is registered a state or more ahead of the state that uses it.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .frame_tx import ReplySignature, crc16_step
from .link_protocol import SYNC_HOST, FrameType, Nack

__all__ = ["FrameReceiver"]

#: Receiver states (``state`` register).
HUNT, SEQ, LEN0, LEN1, DATA, CRC0, CRC1, EXEC, REPLY = range(9)


class FrameReceiver(wiring.Component):
    """Parameters
    ----------
    bus_bytes : int   accelerator word width in bytes
    max_words : int   largest frame payload in words (frame buffer depth)
    timeout : int     cycles without a byte that end a frame (NACK TIMEOUT)

    Attributes
    ----------
    rx : In(stream.Signature(8))   bytes from the UART receiver (always ready)
    cmd : Out(stream.Signature(8 * bus_bytes))  a checked frame's words, in order
    reply : Out(ReplySignature())  ACK / NACK requests to the transmitter
    frames_ok, frames_bad : Out(16)  frames acknowledged / refused (wrap)
    """

    def __init__(self, *, bus_bytes: int, max_words: int, timeout: int) -> None:
        self.bus_bytes, self.max_words, self.timeout = bus_bytes, max_words, timeout
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "cmd": Out(stream.Signature(8 * bus_bytes)),
                "reply": Out(ReplySignature()),
                "frames_ok": Out(16),
                "frames_bad": Out(16),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.frame = frame = Memory(shape=8 * self.bus_bytes, depth=self.max_words, init=[])
        r = SimpleNamespace(
            state=Signal(range(9)),
            expected=Signal(8),
            seq_is_next=Signal(),  # registered seq == expected
            seq_is_repeat=Signal(),  # registered seq == expected - 1
            len_lo=Signal(8),  # low byte of ``len`` until the high byte arrives
            length=Signal(range(self.max_words + 1)),  # ``len`` once checked <= max_words
            crc=Signal(16, init=0xFFFF),
            crc_lo_ok=Signal(),  # registered at CRC0: the first CRC byte matched
            len_zero=Signal(),  # registered at LEN1: ``len`` == 0
            at_timeout=Signal(),  # registered: ``idle`` == ``timeout``
            issue_more=Signal(),  # registered: words left to issue (EXEC)
            issue_left=Signal(range(self.max_words + 1)),  # ``length - issued``
            last_word=Signal(),  # registered: ``word_idx + 1 == length`` (DATA)
            byte_idx=Signal(range(self.bus_bytes)),
            word_idx=Signal(range(self.max_words + 1)),
            word=Signal(8 * self.bus_bytes),
            idle=Signal(range(self.timeout + 1)),
            execute=Signal(),
        )
        self._receive(m, r, frame.write_port())
        self._execute(m, r, frame.read_port())
        self._count(m)
        return m

    def _receive(self, m, r, wr):
        """Hunt, header, payload into the frame buffer, CRC, sequence; ask for the reply."""
        nb = self.bus_bytes
        rp = self.reply
        state, crc = r.state, r.crc
        got = Signal()
        b = self.rx.payload
        m.d.comb += [self.rx.ready.eq(1), got.eq(self.rx.valid)]
        next_crc = crc16_step(crc, b)

        def reply(kind, reason=0):
            return [rp.kind.eq(kind), rp.reason.eq(reason), state.eq(REPLY), rp.req.eq(1)]

        # inter-byte timeout inside a frame
        receiving = (state != HUNT) & (state != EXEC) & (state != REPLY)
        with m.If(~receiving | got):
            m.d.sync += [r.idle.eq(0), r.at_timeout.eq(0)]
        with m.Else():
            m.d.sync += [r.idle.eq(r.idle + 1), r.at_timeout.eq(r.idle == self.timeout - 1)]
        m.d.comb += [wr.addr.eq(r.word_idx), wr.data.eq(Cat(r.word[8:], b) if nb > 1 else b)]

        with m.Switch(state):
            with m.Case(HUNT):
                with m.If(got & (b == SYNC_HOST)):
                    m.d.sync += [state.eq(SEQ), crc.eq(0xFFFF)]
            with m.Case(SEQ):
                with m.If(got):
                    m.d.sync += [rp.seq.eq(b), crc.eq(next_crc), state.eq(LEN0)]
            with m.Case(LEN0):
                with m.If(got):
                    m.d.sync += [r.len_lo.eq(b), crc.eq(next_crc), state.eq(LEN1)]
            with m.Case(LEN1):
                with m.If(got):
                    full_len = Cat(r.len_lo, b)
                    m.d.sync += [
                        r.length.eq(full_len),  # truncated: only used when it fits
                        r.len_zero.eq(full_len == 0),
                        r.last_word.eq(full_len == 1),
                        r.issue_more.eq(full_len != 0),
                        r.issue_left.eq(full_len),
                        crc.eq(next_crc),
                        r.byte_idx.eq(0),
                        r.word_idx.eq(0),
                    ]
                    with m.If(full_len > self.max_words):
                        m.d.sync += reply(FrameType.NACK, Nack.LENGTH)
                    with m.Elif(full_len == 0):
                        m.d.sync += state.eq(CRC0)
                    with m.Else():
                        m.d.sync += state.eq(DATA)
            with m.Case(DATA):
                with m.If(got):
                    m.d.sync += [crc.eq(next_crc), r.word.eq(Cat(r.word[8:], b))]
                    with m.If(r.byte_idx == nb - 1):
                        m.d.comb += wr.en.eq(1)
                        m.d.sync += [
                            r.byte_idx.eq(0),
                            r.word_idx.eq(r.word_idx + 1),
                            r.last_word.eq(r.word_idx + 2 == r.length),
                        ]
                        with m.If(r.last_word):
                            m.d.sync += state.eq(CRC0)
                    with m.Else():
                        m.d.sync += r.byte_idx.eq(r.byte_idx + 1)
            with m.Case(CRC0):
                with m.If(got):
                    m.d.sync += [r.crc_lo_ok.eq(b == crc[:8]), state.eq(CRC1)]
            with m.Case(CRC1):
                with m.If(got):
                    with m.If(~r.crc_lo_ok | (b != crc[8:])):
                        m.d.sync += reply(FrameType.NACK, Nack.CRC)
                    with m.Elif(r.len_zero):
                        m.d.sync += [r.expected.eq(rp.seq + 1)] + reply(FrameType.ACK)
                    with m.Elif(r.seq_is_next):
                        m.d.sync += [r.expected.eq(rp.seq + 1), state.eq(EXEC)]
                    with m.Elif(r.seq_is_repeat):
                        m.d.sync += reply(FrameType.ACK)  # duplicate: acknowledge, do not run
                    with m.Else():
                        m.d.sync += reply(FrameType.NACK, Nack.SEQUENCE)
            with m.Case(EXEC):
                m.d.comb += r.execute.eq(1)
            with m.Case(REPLY):
                with m.If(rp.done):
                    m.d.sync += [state.eq(HUNT), rp.req.eq(0)]

        # sequence checks registered ahead of CRC1: `seq` and `expected` are stable for
        # the many cycles between the header and the CRC bytes
        m.d.sync += [
            r.seq_is_next.eq(rp.seq == r.expected),
            # modulo 256: `expected - 1` alone is a 9-bit signed -1 when expected == 0
            r.seq_is_repeat.eq(rp.seq == (r.expected - 1)[:8]),
        ]

        with m.If(receiving & ~got & r.at_timeout):
            m.d.sync += reply(FrameType.NACK, Nack.TIMEOUT)

    def _execute(self, m, r, rd):
        """EXEC: the checked frame's words to the accelerator, then ACK."""
        rp = self.reply
        out_valid = Signal()
        issued = Signal(range(self.max_words + 1))
        advance = Signal()
        m.d.comb += [
            advance.eq(~out_valid | self.cmd.ready),
            rd.addr.eq(issued),
            rd.en.eq(advance),
            self.cmd.valid.eq(out_valid),
            self.cmd.payload.eq(rd.data),
        ]
        with m.If(advance):
            m.d.sync += out_valid.eq(r.execute & r.issue_more)
            with m.If(r.execute & r.issue_more):
                m.d.sync += [
                    issued.eq(issued + 1),
                    r.issue_left.eq(r.issue_left - 1),
                    r.issue_more.eq(r.issue_left != 1),
                ]
        with m.If(r.execute & ~r.issue_more & ~out_valid):
            m.d.sync += [
                issued.eq(0),
                r.state.eq(REPLY),
                rp.kind.eq(FrameType.ACK),
                rp.reason.eq(0),
                rp.req.eq(1),
            ]

    def _count(self, m):
        """frames_ok / frames_bad: one per reply sent."""
        rp = self.reply
        with m.If(rp.done):
            with m.If(rp.kind == FrameType.ACK):
                m.d.sync += self.frames_ok.eq(self.frames_ok + 1)
            with m.Else():
                m.d.sync += self.frames_bad.eq(self.frames_bad + 1)
