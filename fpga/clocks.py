"""Clock plans: the board oscillator directly, or an iCE40 PLL (SB_PLL40_PAD).

`ice40_pll_params` searches the divider settings like ``icepll`` does:
``f_pfd = f_in / (DIVR + 1)`` in 10..133 MHz, ``f_vco = f_pfd * (DIVF + 1)``
in 533..1066 MHz, ``f_out = f_vco / 2**DIVQ`` (DIVQ 1..6), closest to the request.
`add_ice40_pll` drives the ``sync`` domain from the PLL and holds it in reset
until the PLL locks and 2**10 more cycles pass (iCE40 block RAMs read zero for
~3 us after configuration).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Instance, Module, Signal

__all__ = ["PLLParams", "ice40_pll_params", "add_ice40_pll"]


@dataclass(frozen=True)
class PLLParams:
    divr: int
    divf: int
    divq: int
    filter_range: int
    f_in_hz: float
    f_out_hz: float


def _filter_range(f_pfd_mhz: float) -> int:
    for limit, value in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
        if f_pfd_mhz < limit:
            return value
    return 6


def ice40_pll_params(f_in_hz: float, f_out_hz: float) -> PLLParams:
    """Best SB_PLL40 settings for ``f_out_hz``; `ValueError` if nothing within 1 %."""
    best = None
    for divr in range(16):
        f_pfd = f_in_hz / (divr + 1)
        if not 10e6 <= f_pfd <= 133e6:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533e6 <= f_vco <= 1066e6:
                continue
            for divq in range(1, 7):
                out = f_vco / 2**divq
                err = abs(out - f_out_hz)
                if best is None or err < best[0]:
                    best = (
                        err,
                        PLLParams(divr, divf, divq, _filter_range(f_pfd / 1e6), f_in_hz, out),
                    )
    if best is None or best[0] > 0.01 * f_out_hz:
        raise ValueError(
            f"no iCE40 PLL setting gives {f_out_hz / 1e6:g} MHz from "
            f"{f_in_hz / 1e6:g} MHz (within 1 %)"
        )
    return best[1]


def add_ice40_pll(m: Module, platform, clk_resource: tuple[str, int], p: PLLParams) -> None:
    """Define the ``sync`` domain in ``m`` (the top module) from an SB_PLL40_PAD.

    ``sync`` is held in reset until the PLL locks and 2**10 cycles more pass.
    """
    pin = platform.request(*clk_resource, dir="-")
    pll_out = Signal()
    locked = Signal()
    m.submodules.pll = Instance(
        "SB_PLL40_PAD",
        p_FEEDBACK_PATH="SIMPLE",
        p_DIVR=p.divr,
        p_DIVF=p.divf,
        p_DIVQ=p.divq,
        p_FILTER_RANGE=p.filter_range,
        i_PACKAGEPIN=pin.io,
        i_RESETB=1,
        i_BYPASS=0,
        o_PLLOUTGLOBAL=pll_out,
        o_LOCK=locked,
    )
    m.domains.sync = sync = ClockDomain("sync")
    m.domains.por = ClockDomain("por", reset_less=True)
    m.d.comb += [sync.clk.eq(pll_out), ClockSignal("por").eq(pll_out)]
    delay = Signal(11)
    with m.If(~locked):
        m.d.por += delay.eq(0)
    with m.Elif(~delay[-1]):
        m.d.por += delay.eq(delay + 1)
    m.d.comb += sync.rst.eq(~delay[-1])
