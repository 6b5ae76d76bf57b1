"""Board registry: adding a board is one `Board` entry in `BOARDS`.

Each board names its amaranth-boards platform, the device family, its default
accelerator config (one that fits and meets timing there), the clock the
design runs at (a PLL makes it when it differs from the oscillator), the serial
rate, and the LEDs used for status.

The default clocks live in `ULX3S_CLK_HZ` and the iCEBreaker entry: change them
there when new Fmax measurements (``macforge build --seeds N``) allow.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from macforge.hw.config import AccelConfig
from macforge.hw.devices import device
from macforge.hw.presets import preset
from macforge.hw.uart import fastest_baud

__all__ = ["Board", "BOARDS", "ULX3S_CLK_HZ", "board_by_name"]


@dataclass(frozen=True)
class Board:
    """One supported board.

    Attributes
    ----------
    name : str            CLI name, e.g. ``icebreaker``
    platform : str        ``module:Class`` of the amaranth-boards platform
    target : str          `AccelConfig.target`: the `hw.devices.Device` (part name,
                          budgets, capacities) of the board's FPGA
    config : str          default accelerator preset
    osc_hz : int          the board oscillator
    clk_hz : int          default clock of the design (a PLL makes it when it differs
                          from the oscillator: SB_PLL40 on iCE40, EHXPLLL on ECP5)
    clk_resource : tuple  platform resource of the oscillator pin
    max_baud : int        fastest rate the board's USB-UART takes; the bitstream's
                          default rate is the fastest standard rate up to it that the
                          design clock makes within 2 % (`default_baud`)
    uart_bridge : str     the USB-UART chip (for messages)
    error_led, activity_led : tuple[str, int]  platform resources for status LEDs
    programmer : str      tool that loads a bitstream (``iceprog``, ``openFPGALoader``)
    seed : int            default nextpnr seed: one that meets ``clk_hz`` with the board's
                          default config (placement varies by seed; ``macforge build
                          --seeds N`` measures the spread, the README gives it)
    """

    name: str
    platform: str
    target: str
    config: str
    osc_hz: int
    clk_hz: int
    clk_resource: tuple[str, int] = ("clk25", 0)
    max_baud: int = 3_000_000
    uart_bridge: str = "FT231X"
    error_led: tuple[str, int] = ("led", 0)
    activity_led: tuple[str, int] = ("led", 1)
    programmer: str = "openFPGALoader"
    seed: int = 1

    @property
    def family(self) -> str:
        """``ice40`` or ``ecp5`` (selects tools and report keys), from the device table."""
        return device(self.target).family

    @property
    def device(self) -> str:
        """The FPGA's part name as nextpnr reports it (e.g. ``iCE40UP5K``)."""
        return device(self.target).part

    def make_platform(self):
        module, cls = self.platform.split(":")
        return getattr(importlib.import_module(module), cls)()

    def default_config(self) -> AccelConfig:
        return preset(self.config)

    def default_baud(self, clk_hz: int | None = None) -> int:
        """Fastest standard rate up to `max_baud` that ``clk_hz`` (default: the board's) makes.

        3 Mbaud needs a clock that is a multiple of 3 MHz within 2 % (e.g. 15, 30,
        36, 60 MHz); otherwise a slower rate is chosen (25 MHz: 1.5 Mbaud).
        """
        clk_hz = clk_hz or self.clk_hz
        baud = fastest_baud(clk_hz, self.max_baud)
        if baud is None:
            raise ValueError(f"board {self.name}: no serial rate fits a {clk_hz / 1e6:g} MHz clock")
        return baud


#: default design clock per ULX3S size; 25 MHz is the oscillator, anything else
#: comes from the EHXPLLL (pick rates ecp5_pll_params makes exactly, e.g. 50, 60, 75)
#: 85F: 40 MHz (EHXPLLL 25 -> 40 MHz exactly), 256 MACs x 40 MHz = 10.24 GMAC/s; the
#: README names the build that measured it. 25F/45F: not placed and routed with their
#: current presets yet: the oscillator.
ULX3S_CLK_HZ = {"25f": 25_000_000, "45f": 25_000_000, "85f": 40_000_000}


def _ulx3s(size: str, config: str) -> Board:
    return Board(
        name=f"ulx3s-{size}",
        platform=f"amaranth_boards.ulx3s:ULX3S_{size.upper()}_Platform",
        target=f"ecp5-{size}",
        config=config,
        osc_hz=25_000_000,
        clk_hz=ULX3S_CLK_HZ[size],
        max_baud=3_000_000,  # FT231X: up to 3 Mbaud
        uart_bridge="FT231X",
        programmer="openFPGALoader",
    )


BOARDS: dict[str, Board] = {
    "icebreaker": Board(
        name="icebreaker",
        platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
        target="ice40-up5k",
        config="icebreaker",
        osc_hz=12_000_000,
        clk_hz=31_500_000,  # SB_PLL40 12 -> 31.5 MHz: 16 MACs x 31.5 MHz = 0.504 GMAC/s
        clk_resource=("clk12", 0),
        max_baud=3_000_000,  # FT2232H channel B: 12 MHz / 4
        uart_bridge="FT2232H",
        error_led=("led_r", 0),
        activity_led=("led_g", 0),
        programmer="iceprog",
        # nextpnr seeds 1..4 at 31.5 MHz reach 33.0 / 32.2 / 31.6 / 31.0 MHz: seed 1 is best
        seed=1,
    ),
    "ulx3s-25f": _ulx3s("25f", "ulx3s-25f"),
    "ulx3s-45f": _ulx3s("45f", "ulx3s-45f"),
    "ulx3s-85f": _ulx3s("85f", "ulx3s"),
}


def board_by_name(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None
