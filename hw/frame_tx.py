"""Device -> host half of the serial link (`hw.bridge` documents the frames).

`FrameTransmitter` sends the ACK / NACK replies the receiver asks for (a
`ReplySignature` handshake) and packs result words into DATA frames of up to
`MAX_DATA_WORDS` words: a frame goes out when that many are buffered, or when
at least one is and no new word has arrived for 64 cycles. Replies take
priority over DATA frames; a frame, once started, is sent whole.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .link_protocol import MAX_DATA_WORDS, SYNC_DEVICE, FrameType
from .link_protocol import crc16_step as _crc16_step

__all__ = ["FrameTransmitter", "ReplySignature", "crc16_step", "RESULT_FIFO_WORDS"]

#: Result words buffered between the accelerator and the DATA framer.
RESULT_FIFO_WORDS = 32
#: Cycles without a new result word after which a partial DATA frame is sent.
FLUSH_QUIET_CYCLES = 64


def crc16_step(crc, byte):
    """`hw.link_protocol.crc16_step` on Amaranth values."""
    return _crc16_step(crc, byte, select=Mux)


class ReplySignature(wiring.Signature):
    """A reply request, from the requester's side.

    ``req`` is held high (with ``kind`` a `FrameType` ACK/NACK, ``reason`` a
    `Nack` code or 0, ``seq`` the frame's sequence number, all stable) until
    ``done`` pulses for one cycle: the reply's last byte was sent.
    """

    def __init__(self) -> None:
        super().__init__(
            {"req": Out(1), "kind": Out(2), "reason": Out(8), "seq": Out(8), "done": In(1)}
        )


class FrameTransmitter(wiring.Component):
    """Attributes
    ----------
    reply : In(ReplySignature())        ACK / NACK requests from the receiver
    res : In(stream.Signature(8 * bus_bytes))  result words from the accelerator
    tx : Out(stream.Signature(8))       bytes to the UART transmitter
    """

    def __init__(self, *, bus_bytes: int) -> None:
        self.bus_bytes = bus_bytes
        super().__init__(
            {
                "reply": In(ReplySignature()),
                "res": In(stream.Signature(8 * bus_bytes)),
                "tx": Out(stream.Signature(8)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        nb = self.bus_bytes
        rp = self.reply
        m.submodules.results = results = fifo.SyncFIFOBuffered(
            width=8 * nb, depth=RESULT_FIFO_WORDS
        )
        m.d.comb += [
            results.w_data.eq(self.res.payload),
            results.w_en.eq(self.res.valid),
            self.res.ready.eq(results.w_rdy),
        ]
        quiet = Signal(range(FLUSH_QUIET_CYCLES + 1))
        with m.If(self.res.valid & self.res.ready):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != FLUSH_QUIET_CYCLES):
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
        flush = (level >= MAX_DATA_WORDS) | ((level != 0) & (quiet == FLUSH_QUIET_CYCLES))
        with m.Switch(tstate):
            with m.Case(T_IDLE):
                with m.If(rp.req & ~rp.done):
                    m.d.sync += [
                        hdr.eq(Cat(Const(SYNC_DEVICE, 8), rp.kind, Const(0, 6), rp.seq, rp.reason)),
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
                        m.d.comb += rp.done.eq(1)
        return m
