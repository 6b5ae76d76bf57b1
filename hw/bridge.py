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

The two directions are their own components: `hw.frame_rx.FrameReceiver`
(frames in, words to the accelerator, reply requests) and
`hw.frame_tx.FrameTransmitter` (replies and DATA frames out).
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .frame_rx import FrameReceiver
from .frame_tx import FrameTransmitter

__all__ = ["SerialBridge"]


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
        m.submodules.receiver = rx = FrameReceiver(
            bus_bytes=self.bus_bytes, max_words=self.max_words, timeout=self.timeout
        )
        m.submodules.transmitter = tx = FrameTransmitter(bus_bytes=self.bus_bytes)
        wiring.connect(m, wiring.flipped(self.rx), rx.rx)
        wiring.connect(m, rx.cmd, wiring.flipped(self.cmd))
        wiring.connect(m, rx.reply, tx.reply)
        wiring.connect(m, wiring.flipped(self.res), tx.res)
        wiring.connect(m, tx.tx, wiring.flipped(self.tx))
        m.d.comb += [self.frames_ok.eq(rx.frames_ok), self.frames_bad.eq(rx.frames_bad)]
        return m
