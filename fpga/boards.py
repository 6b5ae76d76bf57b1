"""Board registry: adding a board is one `Board` entry in `BOARDS`.

Each board names its amaranth-boards platform, the device family, its default
accelerator config (one that fits and meets timing there), the clock the
design runs at, the serial rate, and the LEDs used for status.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from hw.config import AccelConfig, preset

__all__ = ["Board", "BOARDS", "board_by_name"]


@dataclass(frozen=True)
class Board:
    """One supported board.

    Attributes
    ----------
    name : str            CLI name, e.g. ``icebreaker``
    platform : str        ``module:Class`` of the amaranth-boards platform
    family : str          ``ice40`` or ``ecp5`` (selects tools and report keys)
    device : str          device as reported (e.g. ``iCE40UP5K``)
    target : str          `AccelConfig.target` the device's budgets come from
    config : str          default accelerator preset
    osc_hz : int          the board oscillator
    clk_hz : int          default clock of the design (a PLL makes it when it differs
                          from the oscillator; iCE40 only for now)
    clk_resource : tuple  platform resource of the oscillator pin
    baud : int            default serial rate of the bitstream
    error_led, activity_led : tuple[str, int]  platform resources for status LEDs
    programmer : str      tool that loads a bitstream (``iceprog``, ``openFPGALoader``)
    """

    name: str
    platform: str
    family: str
    device: str
    target: str
    config: str
    osc_hz: int
    clk_hz: int
    clk_resource: tuple[str, int] = ("clk25", 0)
    baud: int = 115200
    error_led: tuple[str, int] = ("led", 0)
    activity_led: tuple[str, int] = ("led", 1)
    programmer: str = "openFPGALoader"

    def make_platform(self):
        module, cls = self.platform.split(":")
        return getattr(importlib.import_module(module), cls)()

    def default_config(self) -> AccelConfig:
        return preset(self.config)


def _ulx3s(size: str, config: str) -> Board:
    return Board(
        name=f"ulx3s-{size}",
        platform=f"amaranth_boards.ulx3s:ULX3S_{size.upper()}_Platform",
        family="ecp5",
        device=f"LFE5U-{size.upper()}",
        target=f"ecp5-{size}",
        config=config,
        osc_hz=25_000_000,
        clk_hz=25_000_000,
        programmer="openFPGALoader",
    )


BOARDS: dict[str, Board] = {
    "icebreaker": Board(
        name="icebreaker",
        platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
        family="ice40",
        device="iCE40UP5K",
        target="ice40-up5k",
        config="icebreaker",
        osc_hz=12_000_000,
        clk_hz=15_000_000,  # SB_PLL40 12 -> 15 MHz: the design's Fmax is ~17.6 MHz
        clk_resource=("clk12", 0),
        error_led=("led_r", 0),
        activity_led=("led_g", 0),
        programmer="iceprog",
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
