"""Two-entry skid buffer: a `stream` register stage with a registered ``ready``."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SkidBuffer"]


class SkidBuffer(wiring.Component):
    """Registers both directions of a stream at full throughput.

    ``i.ready`` is a flip-flop (the skid entry is empty), so no combinational
    path runs from ``o.ready`` back to ``i``; ``o.valid`` and ``o.payload`` are
    flip-flops too. Latency: one cycle from ``i`` to ``o``. Throughput: one
    transfer per cycle. While ``o.valid & ~o.ready`` the payload is stable.
    Cost: two registers of the payload width.

    Parameters
    ----------
    shape : ShapeLike   payload shape (e.g. an int width or a `data` layout)

    Attributes
    ----------
    i : In(stream.Signature(shape))
    o : Out(stream.Signature(shape))
    empty : Out(1)   neither entry holds a transfer
    """

    def __init__(self, shape) -> None:
        self.shape = shape
        super().__init__(
            {
                "i": In(stream.Signature(shape)),
                "o": Out(stream.Signature(shape)),
                "empty": Out(1),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from a transfer on ``i`` to its appearance on ``o``."""
        return 1

    def elaborate(self, platform):
        m = Module()
        main = Signal.like(self.o.payload, name="main")
        main_valid = Signal()
        skid = Signal.like(self.o.payload, name="skid")
        skid_valid = Signal()
        m.d.comb += [
            self.i.ready.eq(~skid_valid),
            self.o.valid.eq(main_valid),
            self.o.payload.eq(main),
            self.empty.eq(~main_valid & ~skid_valid),
        ]
        with m.If(~main_valid | self.o.ready):  # the output register may load
            with m.If(skid_valid):
                m.d.sync += [main.eq(skid), main_valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [main.eq(self.i.payload), main_valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_valid):  # output stalled: park in the skid entry
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m
