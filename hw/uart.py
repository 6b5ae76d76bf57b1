"""8N1 UART receiver and transmitter (our own; amaranth-stdio is not on PyPI).

Both take ``divisor`` = clock cycles per bit (clock frequency / baud rate,
rounded; at least 4, i.e. at least 4 clock samples per bit). The receiver
synchronises ``rx`` through two flip-flops, finds the start bit's falling edge,
samples each bit in its middle (the edge is found 0..1 cycle late, so the first
sample comes ``(divisor - 3) // 2 + 1`` cycles after it: 4..5 cycles into a 10-cycle
bit) and checks the stop bit; a byte with a bad stop bit is dropped and
``frame_error`` pulses. With the rate within 2 % the stop bit's sample stays
within 0.2 + 1/divisor bit of its middle.
A byte that arrives while the previous one is still unread is dropped and
``overrun`` pulses: the stream has no back-pressure on the wire.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx", "divisor_for", "baud_error", "fastest_baud", "STANDARD_BAUDS"]

#: rates USB-UARTs (FTDI: 3 MHz / n) and host drivers commonly accept, fastest first
STANDARD_BAUDS = (3_000_000, 2_000_000, 1_500_000, 1_000_000, 500_000, 250_000, 115_200)
MIN_DIVISOR = 4
MAX_ERROR = 0.02


def baud_error(clk_hz: int, baud: int) -> float | None:
    """Relative rate error of ``baud`` made at ``clk_hz``; None below `MIN_DIVISOR` cycles/bit."""
    div = round(clk_hz / baud)
    if div < MIN_DIVISOR:
        return None
    return abs(clk_hz / div - baud) / baud


def fastest_baud(clk_hz: int, max_baud: int = STANDARD_BAUDS[0]) -> int | None:
    """The fastest of `STANDARD_BAUDS` up to ``max_baud`` that ``clk_hz`` makes within 2 %."""
    for baud in STANDARD_BAUDS:
        err = baud_error(clk_hz, baud) if baud <= max_baud else None
        if err is not None and err <= MAX_ERROR:
            return baud
    return None


def divisor_for(clk_hz: int, baud: int) -> int:
    """Cycles per bit for ``baud`` at ``clk_hz``; `ValueError` if the rate error exceeds 2 %.

    The message names the fastest standard rate the clock does make.
    """
    if not isinstance(baud, int) or not isinstance(clk_hz, int) or baud <= 0 or clk_hz <= 0:
        raise ValueError(f"clock {clk_hz!r} Hz and baud {baud!r} must be positive integers")
    err = baud_error(clk_hz, baud)
    if err is None or err > MAX_ERROR:
        why = (
            f"needs >= {MIN_DIVISOR} clock cycles per bit"
            if err is None
            else f"the nearest divisor {round(clk_hz / baud)} is off by {100 * err:.1f} % (> 2 %)"
        )
        alt = fastest_baud(clk_hz)
        hint = f"; {alt} baud works at this clock" if alt else ""
        raise ValueError(
            f"baud {baud} cannot be made from a {clk_hz / 1e6:g} MHz clock: {why}{hint}"
        )
    return round(clk_hz / baud)


class UARTRx(wiring.Component):
    """Serial in, bytes out.

    Attributes
    ----------
    rx : In(1)          the line (idle high), reset value 1
    data : Out(stream.Signature(8))  one transfer per received byte
    frame_error : Out(1)  pulse: stop bit was 0 (byte dropped)
    overrun : Out(1)      pulse: a byte arrived before the last one was taken (dropped)
    """

    def __init__(self, divisor: int) -> None:
        if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
            raise ValueError(f"divisor must be an int >= {MIN_DIVISOR}, got {divisor!r}")
        self.divisor = divisor
        super().__init__(
            {
                "rx": In(1, init=1),
                "data": Out(stream.Signature(8)),
                "frame_error": Out(1),
                "overrun": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        sync1 = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [sync1.eq(self.rx), line.eq(sync1)]
        timer = Signal(range(div))
        bit = Signal(range(10))
        shreg = Signal(8)
        busy = Signal()
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.If(~busy):
            with m.If(~line):  # start bit edge (seen 0..1 cycle late): sample its middle
                m.d.sync += [busy.eq(1), timer.eq((div - 3) // 2), bit.eq(0)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += timer.eq(div - 1)
            with m.If(bit == 0):
                with m.If(line):  # glitch, not a start bit
                    m.d.sync += busy.eq(0)
                with m.Else():
                    m.d.sync += bit.eq(1)
            with m.Elif(bit <= 8):
                m.d.sync += [shreg.eq(Cat(shreg[1:], line)), bit.eq(bit + 1)]
            with m.Else():  # stop bit
                m.d.sync += busy.eq(0)
                with m.If(~line):
                    m.d.comb += self.frame_error.eq(1)
                with m.Elif(self.data.valid & ~self.data.ready):
                    m.d.comb += self.overrun.eq(1)
                with m.Else():
                    m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
        return m


class UARTTx(wiring.Component):
    """Bytes in, serial out (8N1, LSB first).

    Attributes
    ----------
    data : In(stream.Signature(8))
    tx : Out(1)   the line, idle high
    """

    def __init__(self, divisor: int) -> None:
        if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
            raise ValueError(f"divisor must be an int >= {MIN_DIVISOR}, got {divisor!r}")
        self.divisor = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        timer = Signal(range(div))
        shreg = Signal(10, init=0x3FF)  # stop, 8 data, start (LSB first)
        bits = Signal(range(11))
        m.d.comb += [self.tx.eq(shreg[0]), self.data.ready.eq(bits == 0)]
        with m.If(bits == 0):
            with m.If(self.data.valid):
                m.d.sync += [
                    shreg.eq((self.data.payload << 1) | (1 << 9)),
                    bits.eq(10),
                    timer.eq(div - 1),
                ]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [shreg.eq((shreg >> 1) | (1 << 9)), bits.eq(bits - 1), timer.eq(div - 1)]
        return m
