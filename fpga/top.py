"""Board top level: clock (oscillator or PLL) and reset, the UART pins, status LEDs, the SoC."""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from hw.config import AccelConfig
from hw.soc import AcceleratorSoC

from .boards import Board
from .clocks import add_ice40_pll, ice40_pll_params

__all__ = ["BoardTop"]


class BoardTop(Elaboratable):
    """`hw.soc.AcceleratorSoC` on a board.

    With ``clk_hz`` equal to the board oscillator, the ``sync`` domain is the
    platform's default clock (with its power-on reset); otherwise an iCE40 PLL
    makes it (`fpga.clocks.add_ice40_pll`). The UART is the board's USB-serial port.
    """

    def __init__(
        self,
        board: Board,
        config: AccelConfig,
        *,
        baud: int | None = None,
        clk_hz: int | None = None,
        max_words: int = 64,
    ) -> None:
        self.board, self.config = board, config
        self.baud = baud or board.baud
        self.clk_hz = int(clk_hz or board.clk_hz)
        self.pll = None
        if self.clk_hz != board.osc_hz:
            if board.family != "ice40":
                raise ValueError(
                    f"board {board.name}: a PLL clock is only supported on iCE40; "
                    f"use the {board.osc_hz / 1e6:g} MHz oscillator"
                )
            self.pll = ice40_pll_params(board.osc_hz, self.clk_hz)
            self.clk_hz = round(self.pll.f_out_hz)
        self.soc = AcceleratorSoC(config, clk_hz=self.clk_hz, baud=self.baud, max_words=max_words)

    @property
    def clock_source(self) -> str:
        if self.pll is None:
            return f"board oscillator, {self.clk_hz / 1e6:g} MHz"
        p = self.pll
        return (
            f"SB_PLL40 {self.board.osc_hz / 1e6:g} MHz -> {self.clk_hz / 1e6:g} MHz "
            f"(DIVR {p.divr}, DIVF {p.divf}, DIVQ {p.divq})"
        )

    def elaborate(self, platform):
        m = Module()
        if self.pll is not None:
            add_ice40_pll(m, platform, self.board.clk_resource, self.pll)
        m.submodules.soc = soc = self.soc
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_buffer = tx = io.Buffer("o", uart.tx)
        m.d.comb += [soc.rx.eq(rx.i), tx.o.eq(soc.tx)]
        for (name, number), signal in (
            (self.board.error_led, soc.error),
            (self.board.activity_led, soc.activity),
        ):
            led = io.Buffer("o", platform.request(name, number, dir="-"))
            m.submodules[f"{name}_{number}_buffer"] = led
            m.d.comb += led.o.eq(signal)
        return m
