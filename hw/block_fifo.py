"""A first-word-fall-through FIFO kept in block RAM.

`amaranth.lib.fifo.SyncFIFOBuffered` stores a few wide entries in flip-flops
(a 4-deep FIFO of 97-bit rows costs ~390 iCE40 logic cells); this one keeps
them in a `Memory` marked ``ram_style = "block"`` so Yosys maps it to
EBR/DP16KD even when it is shallow, and uses the RAM's own read register as
the head of the queue.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["BlockFIFO"]


class BlockFIFO(wiring.Component):
    """FIFO of ``width``-bit entries: ``depth`` in block RAM plus one at the head.

    Same port names and meaning as `amaranth.lib.fifo.SyncFIFOBuffered`:
    ``w_data``/``w_en``/``w_rdy`` write (an entry is taken on a cycle where
    ``w_en & w_rdy``), ``r_data``/``r_rdy``/``r_en`` read (``r_data`` is the
    oldest entry while ``r_rdy``; ``r_en & r_rdy`` removes it). An entry written
    into an empty FIFO is readable two cycles later. ``level`` counts all entries
    (0..depth + 1). ``w_rdy`` and ``r_rdy`` come from registers only.

    Parameters
    ----------
    width : int
        Bits per entry.
    depth : int
        Entries in the RAM (>= 2); the head register holds one more.
    """

    def __init__(self, *, width: int, depth: int) -> None:
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth must be an int >= 2, got {depth!r}")
        self.width, self.depth = width, depth
        super().__init__(
            {
                "w_data": In(width),
                "w_en": In(1),
                "w_rdy": Out(1),
                "r_data": Out(width),
                "r_en": In(1),
                "r_rdy": Out(1),
                "level": Out(range(depth + 2)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        m.submodules.mem = mem = Memory(
            shape=self.width, depth=depth, init=[], attrs={"ram_style": "block"}
        )
        wp = mem.write_port()
        rp = mem.read_port()  # synchronous: its data register is the head of the queue

        wptr = Signal(range(depth))
        rptr = Signal(range(depth))
        stored = Signal(range(depth + 1))  # entries in the RAM not yet read out
        head_valid = Signal()
        write = Signal()
        fetch = Signal()
        take = Signal()
        m.d.comb += [
            self.w_rdy.eq(stored != depth),
            write.eq(self.w_en & self.w_rdy),
            self.r_rdy.eq(head_valid),
            self.r_data.eq(rp.data),
            take.eq(self.r_en & head_valid),
            fetch.eq((stored != 0) & (~head_valid | take)),
            wp.addr.eq(wptr),
            wp.data.eq(self.w_data),
            wp.en.eq(write),
            rp.addr.eq(rptr),
            rp.en.eq(fetch),
            self.level.eq(stored + head_valid),
        ]
        with m.If(write):
            m.d.sync += wptr.eq(Mux(wptr == depth - 1, 0, wptr + 1))
        with m.If(fetch):
            m.d.sync += [rptr.eq(Mux(rptr == depth - 1, 0, rptr + 1)), head_valid.eq(1)]
        with m.Elif(take):
            m.d.sync += head_valid.eq(0)
        m.d.sync += stored.eq(stored + write - fetch)
        return m
