"""One processing element (PE) of the output-stationary systolic array."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .arith import lut_mul

__all__ = ["ProcessingElement", "MULTIPLIERS"]

#: Where a PE's multiplier lives: ``dsp`` (a registered ``*`` that synthesis maps onto a
#: DSP block), ``lut`` (registered `hw.arith.lut_mul` partial products in logic),
#: ``external`` (the caller computes the registered product, e.g. `hw.dsp.SBMac16Dual8x8`).
MULTIPLIERS = ("dsp", "lut", "external")


class ProcessingElement(wiring.Component):
    """Signed ``input_width`` x ``input_width`` multiply-accumulate cell, 2-stage pipeline.

    Operands arrive from the left (``a``, with the control bits) and from above
    (``b``); every input is forwarded registered to the right / downwards, so a
    grid of PEs forms a systolic array. The accumulator stays in the PE
    (output-stationary).

    Pipeline (edges of ``sync``; stall the whole PE with
    `amaranth.hdl.EnableInserter`, and an ``external`` multiplier with its own
    clock enable):

    1. ``prod = a_in * b_in`` (``2*input_width`` bits, signed) is registered, and
       so are the control bits (they are the ``*_out`` ports).
    2. If the registered ``valid``: ``acc = prod if first else acc + prod``
       (``acc_width`` bits); ``done`` is the registered ``last``. The ``first``
       select sits after the adder, so each accumulator bit is one LUT4 on the
       carry chain.

    `latency` (2) edges after operands with ``last`` are at the inputs, ``done``
    is high for one (enabled) cycle and ``acc`` holds the finished dot product
    during that cycle only: the next dot product may start accumulating at the
    following edge. The PE has no result register; the array reads ``acc`` while
    ``done`` (see `hw.array.SystolicArray`), which saves ``acc_width`` flip-flops
    per PE.

    Parameters
    ----------
    input_width : int
        Operand width in bits (8 for int8).
    acc_width : int
        Accumulator width in bits (two's complement). The caller guarantees no
        dot product overflows it (see `hw.config.max_k_for`).
    multiplier : str
        One of `MULTIPLIERS`: ``dsp`` (default), ``lut`` or ``external``.

    Attributes
    ----------
    a_in, b_in : Signal(signed(input_width)), in
    valid_in, first_in, last_in : Signal(1), in
        ``first`` clears the accumulator before adding; ``last`` ends the dot product.
    product : Signal(signed(2 * input_width)), in (``external`` only)
        ``a_in * b_in`` as it was at the previous (enabled) edge.
    a_out, b_out, valid_out, first_out, last_out : out
        The inputs delayed by one edge (``first_out``/``last_out`` are ANDed with
        ``valid_in``).
    acc : Signal(signed(acc_width)), out
        The accumulator.
    done : Signal(1), out
        ``acc`` holds a finished dot product (``last_out`` delayed by one edge).
    """

    #: Edges from operands at the inputs to their sum in ``acc`` (product, accumulate).
    LATENCY = 2

    def __init__(
        self, *, input_width: int = 8, acc_width: int = 32, multiplier: str = "dsp"
    ) -> None:
        if not isinstance(input_width, int) or input_width < 2:
            raise ValueError(f"input_width must be an int >= 2, got {input_width!r}")
        if not isinstance(acc_width, int) or acc_width < 2 * input_width:
            raise ValueError(
                f"acc_width must be an int >= 2*input_width ({2 * input_width}), got {acc_width!r}"
            )
        if multiplier not in MULTIPLIERS:
            raise ValueError(f"multiplier must be one of {MULTIPLIERS}, got {multiplier!r}")
        self.input_width = input_width
        self.acc_width = acc_width
        self.multiplier = multiplier
        ports = {
            "a_in": In(signed(input_width)),
            "b_in": In(signed(input_width)),
            "valid_in": In(1),
            "first_in": In(1),
            "last_in": In(1),
            "a_out": Out(signed(input_width)),
            "b_out": Out(signed(input_width)),
            "valid_out": Out(1),
            "first_out": Out(1),
            "last_out": Out(1),
            "acc": Out(signed(acc_width)),
            "done": Out(1),
        }
        if multiplier == "external":
            ports["product"] = In(signed(2 * input_width))
        super().__init__(ports)

    @property
    def latency(self) -> int:
        """Edges from operands with ``last`` at the inputs to ``done`` and the sum (2)."""
        return self.LATENCY

    def elaborate(self, platform):
        m = Module()
        w = self.input_width
        # stage 1: product register; the control bits are registered alongside as *_out
        if self.multiplier == "external":
            prod = self.product
        else:
            prod = Signal(signed(2 * w), name="prod")
            full = (
                self.a_in * self.b_in if self.multiplier == "dsp" else lut_mul(self.a_in, self.b_in)
            )
            m.d.sync += prod.eq(full)
        m.d.sync += [
            self.a_out.eq(self.a_in),
            self.b_out.eq(self.b_in),
            self.valid_out.eq(self.valid_in),
            self.first_out.eq(self.first_in & self.valid_in),
            self.last_out.eq(self.last_in & self.valid_in),
        ]
        # stage 2: accumulate
        with m.If(self.valid_out):
            m.d.sync += self.acc.eq(Mux(self.first_out, prod, self.acc + prod))
        m.d.sync += self.done.eq(self.last_out)
        return m
