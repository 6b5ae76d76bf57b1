"""Framed, CRC-checked byte link between a UART and the accelerator's word streams.

Host -> device frame::

    0xA5  seq  len_lo len_hi  payload (len * bus_bytes bytes)  crc_lo crc_hi

``len`` counts command words (1 .. max_words); the CRC is CRC-16/CCITT-FALSE
(poly 0x1021, init 0xFFFF) over ``seq``, ``len`` and the payload. The device
keeps the whole frame in a buffer and acts only on a complete frame whose CRC
matches, so no command is ever executed in part:

* ``seq`` is the expected one: the words go to the accelerator, then ACK.
* ``seq`` is the previous one (the host missed our ACK): ACK again, nothing runs twice.
* ``len`` = 0: session reset: the next expected ``seq`` becomes ``seq + 1``; ACK.
* otherwise NACK with a reason (bad CRC, bad length, sequence, timeout).

A frame that stops arriving for ``timeout`` cycles is dropped (NACK TIMEOUT)
and the receiver hunts for the next 0xA5.

Device -> host frames (all end in a CRC-16 over everything after 0xA5/0x5A)::

    ACK   0x5A 0x01 seq 0x00 crc_lo crc_hi
    NACK  0x5A 0x02 seq reason crc_lo crc_hi
    DATA  0x5A 0x03 dseq n  payload (n * bus_bytes bytes) crc_lo crc_hi

DATA frames carry result words (1 .. 16 per frame) in order; ``dseq`` counts
DATA frames modulo 256 so the host notices a lost one.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .link_protocol import MAX_DATA_WORDS, SYNC_DEVICE, SYNC_HOST, FrameType, Nack
from .link_protocol import crc16_step as _crc16_step

__all__ = ["SerialBridge"]


def crc16_step(crc, byte):
    """`hw.link_protocol.crc16_step` on Amaranth values."""
    return _crc16_step(crc, byte, select=Mux)


class SerialBridge(wiring.Component):
    """Frame receiver/executor and result framer (see module docstring).

    Parameters
    ----------
    bus_bytes : int      accelerator word width in bytes
    max_words : int      largest frame payload in words (frame buffer depth)
    timeout : int        cycles without a byte that end a frame (truncation)

    Attributes
    ----------
    rx : In(stream.Signature(8))    bytes from the UART receiver
    tx : Out(stream.Signature(8))   bytes to the UART transmitter
    cmd : Out(stream.Signature(8 * bus_bytes))  to the accelerator
    res : In(stream.Signature(8 * bus_bytes))   from the accelerator
    frames_ok, frames_bad : Out(16)  counters (wrap), e.g. for LEDs or debug
    """

    def __init__(self, *, bus_bytes: int, max_words: int = 64, timeout: int = 100000) -> None:
        if bus_bytes not in (4, 8, 16):
            raise ValueError(f"bus_bytes must be 4, 8 or 16, got {bus_bytes!r}")
        if not isinstance(max_words, int) or not 1 <= max_words <= 65535:
            raise ValueError(f"max_words must be in [1, 65535], got {max_words!r}")
        if not isinstance(timeout, int) or timeout < 16:
            raise ValueError(f"timeout must be an int >= 16 cycles, got {timeout!r}")
        self.bus_bytes, self.max_words, self.timeout = bus_bytes, max_words, timeout
        bits = 8 * bus_bytes
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "tx": Out(stream.Signature(8)),
                "cmd": Out(stream.Signature(bits)),
                "res": In(stream.Signature(bits)),
                "frames_ok": Out(16),
                "frames_bad": Out(16),
            }
        )

    def elaborate(self, platform):
        m = Module()
        nb = self.bus_bytes
        bits = 8 * nb
        m.submodules.frame = frame = Memory(shape=bits, depth=self.max_words, init=[])
        wr = frame.write_port()
        rd = frame.read_port()

        # ================= receive side =================
        state = Signal(range(9))
        seq = Signal(8)
        expected = Signal(8)
        seq_is_next = Signal()  # registered seq == expected
        seq_is_repeat = Signal()  # registered seq == expected - 1
        len_lo = Signal(8)  # low byte of ``len`` until the high byte arrives
        length = Signal(range(self.max_words + 1))  # ``len`` once checked <= max_words
        crc = Signal(16, init=0xFFFF)
        crc_lo_ok = Signal()  # registered at CRC0: the first CRC byte matched
        len_zero = Signal()  # registered at LEN1: ``len`` == 0
        at_timeout = Signal()  # registered: ``idle`` == ``timeout``
        issue_more = Signal()  # registered: ``issued`` < ``length`` (EXEC)
        issue_left = Signal(range(self.max_words + 1))  # ``length - issued``
        last_word = Signal()  # registered: ``word_idx + 1 == length`` (DATA)
        byte_idx = Signal(range(nb))
        word_idx = Signal(range(self.max_words + 1))
        word = Signal(bits)
        idle = Signal(range(self.timeout + 1))
        reply_type = Signal(2)
        reply_reason = Signal(8)
        reply_req = Signal()
        reply_done = Signal()
        execute = Signal()

        r = SimpleNamespace(
            state=state,
            seq=seq,
            expected=expected,
            seq_is_next=seq_is_next,
            seq_is_repeat=seq_is_repeat,
            len_lo=len_lo,
            length=length,
            crc=crc,
            crc_lo_ok=crc_lo_ok,
            len_zero=len_zero,
            at_timeout=at_timeout,
            issue_more=issue_more,
            issue_left=issue_left,
            last_word=last_word,
            byte_idx=byte_idx,
            word_idx=word_idx,
            word=word,
            idle=idle,
            reply_type=reply_type,
            reply_reason=reply_reason,
            reply_req=reply_req,
            reply_done=reply_done,
            execute=execute,
        )
        self._receive(m, r, wr)
        self._execute(m, r, rd)
        self._transmit(m, r)
        return m

    def _receive(self, m, r, wr):
        """Frame receiver: hunt, header, payload into the frame buffer, CRC, sequence."""
        nb = self.bus_bytes
        HUNT, SEQ, LEN0, LEN1, DATA, CRC0, CRC1, EXEC, REPLY = range(9)
        state = r.state
        seq = r.seq
        expected = r.expected
        seq_is_next = r.seq_is_next
        seq_is_repeat = r.seq_is_repeat
        len_lo = r.len_lo
        length = r.length
        crc = r.crc
        crc_lo_ok = r.crc_lo_ok
        len_zero = r.len_zero
        at_timeout = r.at_timeout
        issue_more = r.issue_more
        issue_left = r.issue_left
        last_word = r.last_word
        byte_idx = r.byte_idx
        word_idx = r.word_idx
        word = r.word
        idle = r.idle
        reply_type = r.reply_type
        reply_reason = r.reply_reason
        reply_req = r.reply_req
        reply_done = r.reply_done
        execute = r.execute
        got = Signal()
        b = self.rx.payload
        m.d.comb += [self.rx.ready.eq(1), got.eq(self.rx.valid)]
        next_crc = crc16_step(crc, b)

        def reply(kind, reason=0):
            return [reply_type.eq(kind), reply_reason.eq(reason), state.eq(REPLY), reply_req.eq(1)]

        # inter-byte timeout inside a frame
        receiving = (state != HUNT) & (state != EXEC) & (state != REPLY)
        with m.If(~receiving | got):
            m.d.sync += [idle.eq(0), at_timeout.eq(0)]
        with m.Else():
            m.d.sync += [idle.eq(idle + 1), at_timeout.eq(idle == self.timeout - 1)]
        m.d.comb += [wr.addr.eq(word_idx), wr.data.eq(Cat(word[8:], b) if nb > 1 else b)]

        with m.Switch(state):
            with m.Case(HUNT):
                with m.If(got & (b == SYNC_HOST)):
                    m.d.sync += [state.eq(SEQ), crc.eq(0xFFFF)]
            with m.Case(SEQ):
                with m.If(got):
                    m.d.sync += [seq.eq(b), crc.eq(next_crc), state.eq(LEN0)]
            with m.Case(LEN0):
                with m.If(got):
                    m.d.sync += [len_lo.eq(b), crc.eq(next_crc), state.eq(LEN1)]
            with m.Case(LEN1):
                with m.If(got):
                    full_len = Cat(len_lo, b)
                    m.d.sync += [
                        length.eq(full_len),  # truncated: only used when it fits
                        len_zero.eq(full_len == 0),
                        last_word.eq(full_len == 1),
                        issue_more.eq(full_len != 0),
                        issue_left.eq(full_len),
                        crc.eq(next_crc),
                        byte_idx.eq(0),
                        word_idx.eq(0),
                    ]
                    with m.If(full_len > self.max_words):
                        m.d.sync += reply(FrameType.NACK, Nack.LENGTH)
                    with m.Elif(full_len == 0):
                        m.d.sync += state.eq(CRC0)
                    with m.Else():
                        m.d.sync += state.eq(DATA)
            with m.Case(DATA):
                with m.If(got):
                    m.d.sync += [crc.eq(next_crc), word.eq(Cat(word[8:], b))]
                    with m.If(byte_idx == nb - 1):
                        m.d.comb += wr.en.eq(1)
                        m.d.sync += [
                            byte_idx.eq(0),
                            word_idx.eq(word_idx + 1),
                            last_word.eq(word_idx + 2 == length),
                        ]
                        with m.If(last_word):
                            m.d.sync += state.eq(CRC0)
                    with m.Else():
                        m.d.sync += byte_idx.eq(byte_idx + 1)
            with m.Case(CRC0):
                with m.If(got):
                    m.d.sync += [crc_lo_ok.eq(b == crc[:8]), state.eq(CRC1)]
            with m.Case(CRC1):
                with m.If(got):
                    with m.If(~crc_lo_ok | (b != crc[8:])):
                        m.d.sync += reply(FrameType.NACK, Nack.CRC)
                    with m.Elif(len_zero):
                        m.d.sync += [expected.eq(seq + 1)] + reply(FrameType.ACK)
                    with m.Elif(seq_is_next):
                        m.d.sync += [expected.eq(seq + 1), state.eq(EXEC)]
                    with m.Elif(seq_is_repeat):
                        m.d.sync += reply(FrameType.ACK)  # duplicate: acknowledge, do not run
                    with m.Else():
                        m.d.sync += reply(FrameType.NACK, Nack.SEQUENCE)
            with m.Case(EXEC):
                m.d.comb += execute.eq(1)
            with m.Case(REPLY):
                with m.If(reply_done):
                    m.d.sync += [state.eq(HUNT), reply_req.eq(0)]

        # sequence checks registered ahead of CRC1: `seq` and `expected` are stable for
        # the many cycles between the header and the CRC bytes
        m.d.sync += [seq_is_next.eq(seq == expected), seq_is_repeat.eq(seq == expected - 1)]

        with m.If(receiving & ~got & at_timeout):
            m.d.sync += reply(FrameType.NACK, Nack.TIMEOUT)

    def _execute(self, m, r, rd):
        """EXEC: the checked frame's words to the accelerator, then ACK."""
        REPLY = 8
        state = r.state
        issue_more = r.issue_more
        issue_left = r.issue_left
        reply_type = r.reply_type
        reply_reason = r.reply_reason
        reply_req = r.reply_req
        reply_done = r.reply_done
        execute = r.execute
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
            m.d.sync += out_valid.eq(execute & issue_more)
            with m.If(execute & issue_more):
                m.d.sync += [
                    issued.eq(issued + 1),
                    issue_left.eq(issue_left - 1),
                    issue_more.eq(issue_left != 1),
                ]
        with m.If(execute & ~issue_more & ~out_valid):
            m.d.sync += [
                issued.eq(0),
                state.eq(REPLY),
                reply_type.eq(FrameType.ACK),
                reply_reason.eq(0),
                reply_req.eq(1),
            ]

        with m.If(reply_done):
            with m.If(reply_type == FrameType.ACK):
                m.d.sync += self.frames_ok.eq(self.frames_ok + 1)
            with m.Else():
                m.d.sync += self.frames_bad.eq(self.frames_bad + 1)

    def _transmit(self, m, r):
        """Device -> host frames: ACK / NACK replies and DATA frames of result words."""
        nb = self.bus_bytes
        bits = 8 * nb
        seq = r.seq
        reply_type = r.reply_type
        reply_reason = r.reply_reason
        reply_req = r.reply_req
        reply_done = r.reply_done
        m.submodules.results = results = fifo.SyncFIFOBuffered(width=bits, depth=32)
        m.d.comb += [
            results.w_data.eq(self.res.payload),
            results.w_en.eq(self.res.valid),
            self.res.ready.eq(results.w_rdy),
        ]
        quiet = Signal(range(65))
        with m.If(self.res.valid & self.res.ready):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != 64):
            m.d.sync += quiet.eq(quiet + 1)

        tstate = Signal(range(8))
        T_IDLE, T_HDR, T_PAYLOAD, T_CRC0, T_CRC1 = range(5)
        hdr = Signal(4 * 8)  # up to 4 header bytes after the sync byte
        hdr_len = Signal(range(5))
        hdr_idx = Signal(range(5))
        tcrc = Signal(16, init=0xFFFF)
        dseq = Signal(8)
        words_left = Signal(range(MAX_DATA_WORDS + 1))
        tbyte = Signal(range(nb))
        is_data = Signal()
        out_byte = Signal(8)
        m.d.comb += [self.tx.payload.eq(out_byte)]
        sent = Signal()
        m.d.comb += sent.eq(self.tx.valid & self.tx.ready)
        after_crc = crc16_step(tcrc, out_byte)

        level = results.level
        flush = (level >= MAX_DATA_WORDS) | ((level != 0) & (quiet == 64))
        with m.Switch(tstate):
            with m.Case(T_IDLE):
                with m.If(reply_req & ~reply_done):
                    m.d.sync += [
                        hdr.eq(
                            Cat(Const(SYNC_DEVICE, 8), reply_type, Const(0, 6), seq, reply_reason)
                        ),
                        hdr_len.eq(4),
                        hdr_idx.eq(0),
                        is_data.eq(0),
                        tstate.eq(T_HDR),
                        tcrc.eq(0xFFFF),
                    ]
                with m.Elif(flush):
                    count = Mux(level >= MAX_DATA_WORDS, MAX_DATA_WORDS, level)
                    m.d.sync += [
                        hdr.eq(
                            Cat(Const(SYNC_DEVICE, 8), Const(FrameType.DATA, 8), dseq, count[:8])
                        ),
                        hdr_len.eq(4),
                        hdr_idx.eq(0),
                        is_data.eq(1),
                        tstate.eq(T_HDR),
                        words_left.eq(count),
                        tbyte.eq(0),
                        tcrc.eq(0xFFFF),
                    ]
            with m.Case(T_HDR):
                m.d.comb += [self.tx.valid.eq(1), out_byte.eq(hdr.word_select(hdr_idx, 8))]
                with m.If(sent):
                    with m.If(hdr_idx != 0):
                        m.d.sync += tcrc.eq(after_crc)
                    m.d.sync += hdr_idx.eq(hdr_idx + 1)
                    with m.If(hdr_idx == hdr_len - 1):
                        m.d.sync += tstate.eq(Mux(is_data, T_PAYLOAD, T_CRC0))
            with m.Case(T_PAYLOAD):
                m.d.comb += [self.tx.valid.eq(1), out_byte.eq(results.r_data.word_select(tbyte, 8))]
                with m.If(sent):
                    m.d.sync += [tcrc.eq(after_crc), tbyte.eq(tbyte + 1)]
                    with m.If(tbyte == nb - 1):
                        m.d.comb += results.r_en.eq(1)
                        m.d.sync += [tbyte.eq(0), words_left.eq(words_left - 1)]
                        with m.If(words_left == 1):
                            m.d.sync += tstate.eq(T_CRC0)
            with m.Case(T_CRC0):
                m.d.comb += [self.tx.valid.eq(1), out_byte.eq(tcrc[:8])]
                with m.If(sent):
                    m.d.sync += tstate.eq(T_CRC1)
            with m.Case(T_CRC1):
                m.d.comb += [self.tx.valid.eq(1), out_byte.eq(tcrc[8:])]
                with m.If(sent):
                    m.d.sync += tstate.eq(T_IDLE)
                    with m.If(is_data):
                        m.d.sync += dseq.eq(dseq + 1)
                    with m.Else():
                        m.d.comb += reply_done.eq(1)
