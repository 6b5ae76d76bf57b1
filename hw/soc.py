"""`AcceleratorSoC`: the accelerator behind a UART, as it sits on a board.

``rx``/``tx`` are the serial pins; `hw.bridge` frames the bytes, `hw.uart`
moves them at ``baud``. This is the unit the board tops instantiate and the
UART-level cocotb bench simulates.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .accelerator import Accelerator
from .bridge import SerialBridge
from .config import AccelConfig
from .uart import UARTRx, UARTTx, divisor_for

__all__ = ["AcceleratorSoC"]


class AcceleratorSoC(wiring.Component):
    """Accelerator + framed UART link.

    Parameters
    ----------
    config : AccelConfig
    clk_hz : int          clock frequency of the ``sync`` domain
    baud : int            serial rate (default 115200)
    max_words : int       largest command frame, in words (default 64)

    Attributes
    ----------
    rx : In(1)   serial input (idle high)
    tx : Out(1)  serial output (idle high)
    error : Out(1)   the accelerator has an error recorded (for an LED)
    activity : Out(1)  high while a frame is acknowledged (for an LED)
    """

    def __init__(
        self, config: AccelConfig, *, clk_hz: int, baud: int = 115200, max_words: int = 64
    ) -> None:
        self.config = config
        self.clk_hz, self.baud, self.max_words = clk_hz, baud, max_words
        self.divisor = divisor_for(clk_hz, baud)
        super().__init__(
            {"rx": In(1, init=1), "tx": Out(1, init=1), "error": Out(1), "activity": Out(1)}
        )

    @property
    def timeout_cycles(self) -> int:
        """Cycles of silence that end a frame: 32 byte times."""
        return 32 * 10 * self.divisor

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = UARTRx(self.divisor)
        m.submodules.uart_tx = utx = UARTTx(self.divisor)
        m.submodules.bridge = br = SerialBridge(
            bus_bytes=self.config.bus_bytes, max_words=self.max_words, timeout=self.timeout_cycles
        )
        m.submodules.accel = acc = Accelerator(self.config)
        wiring.connect(m, urx.data, br.rx)
        wiring.connect(m, br.tx, utx.data)
        wiring.connect(m, br.cmd, acc.cmd)
        wiring.connect(m, acc.res, br.res)
        m.d.comb += [
            urx.rx.eq(self.rx),
            self.tx.eq(utx.tx),
            self.error.eq(acc.error),
            self.activity.eq(br.frames_ok[0]),
        ]
        return m
