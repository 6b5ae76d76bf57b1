"""Board top level: the board's clock and reset, the UART pins, status LEDs, the SoC."""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module

from hw.config import AccelConfig
from hw.soc import AcceleratorSoC

from .boards import Board

__all__ = ["BoardTop"]


class BoardTop(Elaboratable):
    """`hw.soc.AcceleratorSoC` on a board.

    The ``sync`` domain comes from the platform's default clock (with the
    platform's power-on reset); the UART is the board's USB-serial port.
    """

    def __init__(
        self, board: Board, config: AccelConfig, *, baud: int | None = None, max_words: int = 64
    ) -> None:
        self.board, self.config = board, config
        self.baud = baud or board.baud
        self.soc = AcceleratorSoC(config, clk_hz=board.clk_hz, baud=self.baud, max_words=max_words)

    def elaborate(self, platform):
        m = Module()
        m.submodules.soc = soc = self.soc
        uart = platform.request("uart", 0)
        m.d.comb += [soc.rx.eq(uart.rx.i), uart.tx.o.eq(soc.tx)]
        for (name, number), signal in (
            (self.board.error_led, soc.error),
            (self.board.activity_led, soc.activity),
        ):
            led = platform.request(name, number)
            m.d.comb += led.o.eq(signal)
        return m
