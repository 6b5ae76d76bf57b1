"""One processing element (PE) of the output-stationary systolic array."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .arith import lut_mul

__all__ = ["ProcessingElement"]


class ProcessingElement(wiring.Component):
    """Signed ``input_width`` x ``input_width`` multiply-accumulate cell.

    Operands arrive from the left (``a``, with the control bits) and from above
    (``b``); every input is forwarded registered to the right / downwards, so a
    grid of PEs forms a systolic array. The accumulator stays in the PE
    (output-stationary) and maps onto a DSP multiply-accumulate.

    Timing: one clock edge. On an edge where ``valid_in`` is high the PE computes
    ``total = (0 if first_in else acc) + a_in * b_in``, stores it in ``acc`` and,
    when ``last_in`` is high, also in ``result``. All ``*_out`` ports are the
    inputs delayed by exactly one edge. Use `amaranth.hdl.EnableInserter` to stall.

    Parameters
    ----------
    input_width : int
        Operand width in bits (8 for int8).
    acc_width : int
        Accumulator and result width in bits (two's complement). The caller
        guarantees no dot product overflows it (see `hw.config.max_k_for`).
    use_dsp : bool
        True: a plain ``*`` that synthesis maps onto a DSP block. False: the
        product is built from partial products (`hw.arith.lut_mul`) in LUTs.

    Attributes
    ----------
    a_in, b_in : Signal(signed(input_width)), in
    valid_in, first_in, last_in : Signal(1), in
        ``first`` clears the accumulator before adding; ``last`` latches the sum.
    a_out, b_out, valid_out, first_out, last_out : out
        The inputs delayed by one edge (``last_out`` is ``last_in & valid_in``).
    result : Signal(signed(acc_width)), out
        The sum latched by the most recent ``last``.
    """

    def __init__(self, *, input_width: int = 8, acc_width: int = 32, use_dsp: bool = True) -> None:
        if not isinstance(input_width, int) or input_width < 2:
            raise ValueError(f"input_width must be an int >= 2, got {input_width!r}")
        if not isinstance(acc_width, int) or acc_width < 2 * input_width:
            raise ValueError(
                f"acc_width must be an int >= 2*input_width ({2 * input_width}), got {acc_width!r}"
            )
        self.input_width = input_width
        self.acc_width = acc_width
        self.use_dsp = bool(use_dsp)
        super().__init__(
            {
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
                "result": Out(signed(acc_width)),
            }
        )

    @property
    def latency(self) -> int:
        """Edges from an operand at the inputs to its effect on acc/outputs (1)."""
        return 1

    def elaborate(self, platform):
        m = Module()
        acc = Signal(signed(self.acc_width), name="acc")
        total = Signal(signed(self.acc_width), name="total")
        product = self.a_in * self.b_in if self.use_dsp else lut_mul(self.a_in, self.b_in)
        m.d.comb += total.eq(Mux(self.first_in, 0, acc) + product)
        with m.If(self.valid_in):
            m.d.sync += acc.eq(total)
            with m.If(self.last_in):
                m.d.sync += self.result.eq(total)
        m.d.sync += [
            self.a_out.eq(self.a_in),
            self.b_out.eq(self.b_in),
            self.valid_out.eq(self.valid_in),
            self.first_out.eq(self.first_in & self.valid_in),
            self.last_out.eq(self.last_in & self.valid_in),
        ]
        return m
