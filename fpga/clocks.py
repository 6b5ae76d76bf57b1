"""Clock plans: the board oscillator directly, or a PLL (iCE40 SB_PLL40_PAD, ECP5 EHXPLLL).

`ice40_pll_params` searches the divider settings like ``icepll`` does:
``f_pfd = f_in / (DIVR + 1)`` in 10..133 MHz, ``f_vco = f_pfd * (DIVF + 1)``
in 533..1066 MHz, ``f_out = f_vco / 2**DIVQ`` (DIVQ 1..6), closest to the request.

`ecp5_pll_params` searches like ``ecppll`` (Project Trellis) does, in the same
32-bit float arithmetic so both pick the same dividers:
``f_pfd = f_in / CLKI_DIV`` (>= 3.125 MHz), ``f_out = f_pfd * CLKFB_DIV``
with feedback from CLKOP, ``f_vco = f_out * CLKOP_DIV`` in 400..800 MHz; ties
go to the VCO nearest 600 MHz; CLKOP is shifted by half a period
(``CLKOP_CPHASE``) as Lattice's tools do.

`add_ice40_pll` / `add_ecp5_pll` drive the ``sync`` domain from the PLL and hold
it in reset until the PLL locks and 2**10 more cycles pass (iCE40 block RAMs
read zero for ~3 us after configuration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import ClockDomain, ClockSignal, Instance, Module, Signal
from amaranth.lib import io

from macforge.hw.devices import DEVICES

__all__ = [
    "PLLParams",
    "ECP5PLLParams",
    "ice40_pll_params",
    "ecp5_pll_params",
    "add_ice40_pll",
    "add_ecp5_pll",
]

#: family -> the PLL cell its board tops instantiate (named in `hw.devices.DEVICES`)
PLL_CELLS = {d.family: d.pll_primitive for d in DEVICES.values() if d.pll_primitive}

#: a PLL output further than this from the request is refused
PLL_TOLERANCE = 0.01


@dataclass(frozen=True)
class PLLParams:
    divr: int
    divf: int
    divq: int
    filter_range: int
    f_in_hz: float
    f_out_hz: float

    def describe(self) -> str:
        return (
            f"SB_PLL40 {self.f_in_hz / 1e6:g} MHz -> {self.f_out_hz / 1e6:g} MHz "
            f"(DIVR {self.divr}, DIVF {self.divf}, DIVQ {self.divq})"
        )


@dataclass(frozen=True)
class ECP5PLLParams:
    """EHXPLLL settings, feedback from CLKOP (``FEEDBK_PATH="CLKOP"``)."""

    clki_div: int
    clkfb_div: int
    clkop_div: int
    clkop_cphase: int
    f_in_hz: float
    f_out_hz: float
    f_vco_hz: float

    def describe(self) -> str:
        return (
            f"EHXPLLL {self.f_in_hz / 1e6:g} MHz -> {self.f_out_hz / 1e6:g} MHz "
            f"(CLKI_DIV {self.clki_div}, CLKFB_DIV {self.clkfb_div}, "
            f"CLKOP_DIV {self.clkop_div}, VCO {self.f_vco_hz / 1e6:g} MHz)"
        )


def _filter_range(f_pfd_mhz: float) -> int:
    for limit, value in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
        if f_pfd_mhz < limit:
            return value
    return 6


def _refuse(family: str, f_in_hz: float, f_out_hz: float, nearest: float | None) -> ValueError:
    near = f" (nearest: {nearest / 1e6:g} MHz)" if nearest else ""
    return ValueError(
        f"no {family} PLL setting gives {f_out_hz / 1e6:g} MHz from "
        f"{f_in_hz / 1e6:g} MHz within {100 * PLL_TOLERANCE:g} %{near}"
    )


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
    if best is None or best[0] > PLL_TOLERANCE * f_out_hz:
        raise _refuse("iCE40", f_in_hz, f_out_hz, best[1].f_out_hz if best else None)
    return best[1]


def ecp5_pll_params(f_in_hz: float, f_out_hz: float) -> ECP5PLLParams:
    """Best EHXPLLL settings for ``f_out_hz`` (ecppll's search); `ValueError` beyond 1 %."""
    f32 = np.float32
    f_in, want = f32(f_in_hz / 1e6), f32(f_out_hz / 1e6)
    vco_min, vco_max, pfd_min, pfd_max, vco_opt = map(f32, (400, 800, 3.125, 400, 600))
    error = f32(np.finfo(np.float32).max)
    best = None
    with np.errstate(over="ignore"):
        for clki_div in range(1, 129):
            pfd = f_in / f32(clki_div)
            if pfd < pfd_min or pfd > pfd_max:
                continue
            for clkfb_div in range(1, 81):
                for clkop_div in range(1, 129):
                    vco = pfd * f32(clkfb_div) * f32(clkop_div)
                    if vco < vco_min or vco > vco_max:
                        continue
                    out = vco / f32(clkop_div)
                    err = abs(out - want)
                    if err < error or (
                        err == error
                        and best is not None
                        and abs(vco - vco_opt) < abs(f32(best[4]) - vco_opt)
                    ):
                        error = err
                        # half a period of CLKOP in VCO cycles, truncated as ecppll does
                        ns_phase = f32(1 / (float(out) * 1e6) * 0.5)
                        cphase = int(float(ns_phase) * (float(vco) * 1e6))
                        best = (clki_div, clkfb_div, clkop_div, cphase, float(vco), float(out))
    if best is None:
        raise _refuse("ECP5", f_in_hz, f_out_hz, None)
    clki_div, clkfb_div, clkop_div, cphase, vco, out = best
    # exact rational output (the float search only picks the dividers)
    exact = f_in_hz * clkfb_div / clki_div
    if abs(exact - f_out_hz) > PLL_TOLERANCE * f_out_hz:
        raise _refuse("ECP5", f_in_hz, f_out_hz, exact)
    return ECP5PLLParams(clki_div, clkfb_div, clkop_div, cphase, f_in_hz, exact, exact * clkop_div)


def _sync_from_pll(m: Module, pll_out: Signal, locked: Signal) -> None:
    """``sync`` clocked by ``pll_out``, in reset until ``locked`` and 2**10 cycles more."""
    m.domains.sync = sync = ClockDomain("sync")
    m.domains.por = ClockDomain("por", reset_less=True)
    m.d.comb += [sync.clk.eq(pll_out), ClockSignal("por").eq(pll_out)]
    delay = Signal(11)
    with m.If(~locked):
        m.d.por += delay.eq(0)
    with m.Elif(~delay[-1]):
        m.d.por += delay.eq(delay + 1)
    m.d.comb += sync.rst.eq(~delay[-1])


def add_ice40_pll(m: Module, platform, clk_resource: tuple[str, int], p: PLLParams) -> None:
    """Define the ``sync`` domain in ``m`` (the top module) from an SB_PLL40_PAD.

    ``sync`` is held in reset until the PLL locks and 2**10 cycles more pass.
    """
    pin = platform.request(*clk_resource, dir="-")
    pll_out = Signal()
    locked = Signal()
    m.submodules.pll = Instance(
        PLL_CELLS["ice40"],
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
    _sync_from_pll(m, pll_out, locked)


def add_ecp5_pll(m: Module, platform, clk_resource: tuple[str, int], p: ECP5PLLParams) -> None:
    """Define the ``sync`` domain in ``m`` (the top module) from an EHXPLLL.

    The oscillator pin goes through an input buffer to CLKI; CLKOP feeds back to
    CLKFB and clocks ``sync``, which is held in reset until LOCK and 2**10 cycles
    more. nextpnr derives the CLKOP constraint from the pin's ``FREQUENCY``.
    """
    pin = platform.request(*clk_resource, dir="-")
    m.submodules.pll_clk_buffer = clk_in = io.Buffer("i", pin)
    pll_out = Signal()
    locked = Signal()
    m.submodules.pll = Instance(
        PLL_CELLS["ecp5"],
        # analogue settings as ecppll / Lattice's tools write them
        a_ICP_CURRENT="12",
        a_LPF_RESISTOR="8",
        a_MFG_ENABLE_FILTEROPAMP="1",
        a_MFG_GMCREF_SEL="2",
        a_FREQUENCY_PIN_CLKI=f"{p.f_in_hz / 1e6:g}",
        a_FREQUENCY_PIN_CLKOP=f"{p.f_out_hz / 1e6:g}",
        p_PLLRST_ENA="DISABLED",
        p_INTFB_WAKE="DISABLED",
        p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED",
        p_OUTDIVIDER_MUXA="DIVA",
        p_OUTDIVIDER_MUXB="DIVB",
        p_OUTDIVIDER_MUXC="DIVC",
        p_OUTDIVIDER_MUXD="DIVD",
        p_CLKI_DIV=p.clki_div,
        p_CLKOP_ENABLE="ENABLED",
        p_CLKOP_DIV=p.clkop_div,
        p_CLKOP_CPHASE=p.clkop_cphase,
        p_CLKOP_FPHASE=0,
        p_FEEDBK_PATH="CLKOP",
        p_CLKFB_DIV=p.clkfb_div,
        i_RST=0,
        i_STDBY=0,
        i_CLKI=clk_in.i,
        i_CLKFB=pll_out,
        i_PHASESEL0=0,
        i_PHASESEL1=0,
        i_PHASEDIR=1,
        i_PHASESTEP=1,
        i_PHASELOADREG=1,
        i_PLLWAKESYNC=0,
        i_ENCLKOP=0,
        o_CLKOP=pll_out,
        o_LOCK=locked,
    )
    _sync_from_pll(m, pll_out, locked)
