"""Board top level: clock (oscillator or PLL) and reset, the UART pins, status LEDs, the SoC."""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from macforge.hw.config import AccelConfig
from macforge.hw.soc import AcceleratorSoC
from macforge.hw.uart import divisor_for

from .boards import Board
from .clocks import add_ecp5_pll, add_ice40_pll, ecp5_pll_params, ice40_pll_params

__all__ = ["BoardTop"]


class BoardTop(Elaboratable):
    """`hw.soc.AcceleratorSoC` on a board.

    With ``clk_hz`` equal to the board oscillator, the ``sync`` domain is the
    platform's default clock (with its power-on reset); otherwise the family's PLL
    makes it (`fpga.clocks.add_ice40_pll`, `fpga.clocks.add_ecp5_pll`) and ``clk_hz``
    becomes the PLL's exact output. The UART is the board's USB-serial port at
    ``baud`` (default: `Board.default_baud` at this clock); `ValueError` if the clock
    cannot make it within 2 %.
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
        self.clk_hz = int(clk_hz or board.clk_hz)
        self.max_words = max_words
        self.pll = None
        if self.clk_hz != board.osc_hz:
            search = {"ice40": ice40_pll_params, "ecp5": ecp5_pll_params}[board.family]
            self.pll = search(board.osc_hz, self.clk_hz)
            self.clk_hz = round(self.pll.f_out_hz)
        self.baud = baud or board.default_baud(self.clk_hz)
        try:
            divisor_for(self.clk_hz, self.baud)
        except ValueError as exc:
            raise ValueError(
                f"board {board.name}: {exc} (choose a clock that is a multiple of the "
                f"rate with --freq, or a slower --baud)"
            ) from None
        self.soc = AcceleratorSoC(config, clk_hz=self.clk_hz, baud=self.baud, max_words=max_words)

    @property
    def clock_source(self) -> str:
        """``board oscillator, 25 MHz`` or the PLL and its dividers."""
        if self.pll is None:
            return f"board oscillator, {self.clk_hz / 1e6:g} MHz"
        return self.pll.describe()

    def elaborate(self, platform):
        m = Module()
        if self.pll is not None:
            add = {"ice40": add_ice40_pll, "ecp5": add_ecp5_pll}[self.board.family]
            add(m, platform, self.board.clk_resource, self.pll)
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
