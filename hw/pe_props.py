"""Formal property of the processing element (`hw.pe.ProcessingElement`): when ``done``
is high, ``acc`` equals the sum of the products ``a * b`` of every valid input since
the last one with ``first`` (two's complement, ``acc_width`` bits), whatever the
operands and control bits (all free inputs). Proved by k-induction.

The reference sums the products as the inputs arrive; the PE's accumulator lags it by
one edge (product register), so the stronger invariant asserted every cycle is
``acc == ref`` one cycle ago, and the result statement follows at ``done``. The
broken variant drops ``first`` on its way into the PE when a free ``glitch`` input is
high (a stale accumulator: the classic bug of output-stationary arrays).
"""

from __future__ import annotations

from amaranth.hdl import Assert, Cover, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from .config import AccelConfig
from .formal import FormalCheck, past
from .pe import ProcessingElement

__all__ = ["PEHarness", "formal_checks"]


class PEHarness(wiring.Component):
    """A PE with free operands and control bits, and the sum-of-products reference."""

    def __init__(self, *, acc_width: int, multiplier: str, broken: bool = False) -> None:
        self.acc_width, self.multiplier, self.broken = acc_width, multiplier, broken
        super().__init__(
            {
                "a": In(signed(8)),
                "b": In(signed(8)),
                "valid": In(1),
                "first": In(1),
                "last": In(1),
                "glitch": In(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.pe = pe = ProcessingElement(
            input_width=8, acc_width=self.acc_width, multiplier=self.multiplier
        )
        first = self.first & ~self.glitch if self.broken else self.first
        m.d.comb += [
            pe.a_in.eq(self.a),
            pe.b_in.eq(self.b),
            pe.valid_in.eq(self.valid),
            pe.first_in.eq(first),
            pe.last_in.eq(self.last),
        ]
        ref = Signal(signed(self.acc_width), name="ref")  # sum since first, as inputs arrive
        terms = Signal(range(4), name="terms")  # products in the sum (saturating at 3)
        prod = self.a * self.b
        with m.If(self.valid):
            m.d.sync += ref.eq(Mux(self.first, prod, ref + prod))
            m.d.sync += terms.eq(Mux(self.first, 1, Mux(terms == 3, 3, terms + 1)))
        ref_then = past(m, ref, name="ref")
        terms_then = past(m, terms, name="terms")
        m.d.comb += Assert(pe.acc == ref_then, "PE accumulator differs from the sum of products")
        with m.If(pe.done):
            m.d.comb += Assert(pe.acc == ref_then, "PE result differs from the sum of products")
        m.d.comb += Cover(pe.done & (terms_then == 3) & (pe.acc < -1000))
        return m


def formal_checks(config: AccelConfig) -> list[FormalCheck]:
    """The PE property for both fabric multipliers at ``config``'s accumulator width."""
    checks = []
    for mult in ("dsp", "lut"):
        checks.append(
            FormalCheck(
                name=f"pe.sum_of_products_{mult}",
                module="hw/pe.py",
                statement=f"PE ({mult} multiplier, {config.acc_width}-bit accumulator): at "
                "done, acc = sum of a*b since first",
                mode="prove",
                depth=4 if mult == "dsp" else 2,  # the LUT multiplier is costly per step
                harness=lambda broken, mult=mult: PEHarness(
                    acc_width=config.acc_width, multiplier=mult, broken=broken
                ),
                broken="first is dropped on its way into the PE (stale accumulator)",
                cover_depth=8,
            )
        )
    return checks
