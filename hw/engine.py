"""MATMUL engine: streams K-slices from the A/B buffers into the systolic array.

It holds one active and one queued MATMUL, so a queued command starts on the
cycle after the active one issues its last slice (no bubble between tiles).
Buffer reads take one cycle (synchronous read ports with enable); the read
stage holds its data while the array back-pressures.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .array import slice_layout
from .config import AccelConfig
from .layouts import (
    addr_bits,
    group_use_layout,
    matmul_desc_layout,
    range_layout,
    store_desc_layout,
)
from .ports import buffer_read_signature

__all__ = ["MatmulEngine", "StoreQueue", "STORE_QUEUE_DEPTH", "START_CYCLES"]

#: Cycles from the decoder's push of a MATMUL into an idle engine to its first slice
#: entering the array (queue slot -> active descriptor -> buffer read).
START_CYCLES = 2


class MatmulEngine(wiring.Component):
    """Address generator and read stage between the buffers and the array.

    Attributes
    ----------
    matmul : In(stream.Signature(matmul_desc_layout(config)))
        ``ready`` is a flip-flop (the queued slot is free).
    a_rd : Out(buffer_read_signature(a_depth, 8 * rows))  A buffer read port (1-cycle latency)
    b_rd : Out(buffer_read_signature(b_depth, 8 * cols))  B buffer read port
    slices : Out(stream.Signature(slice_layout(config)))  to the array
    store : Out(stream.Signature(store_desc_layout()))
        One descriptor per MATMUL with ``store``, pushed before its last slice.
    busy_ranges : Out(ArrayLayout(range_layout(config), 2))
        Buffer ranges still to be read, straight from registers (the descriptor
        carries its end points, so no adder sits in the decoder's hazard path).
    param_groups : Out(ArrayLayout(group_use_layout(), 2))  groups the active/queued stores use
    idle : Out(1)   nothing active, queued or in the read stage
    slice_in : Out(1)  a slice entered the array this cycle
    stall : Out(1)  a MATMUL was active but no slice entered this cycle
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = config
        c = config
        super().__init__(
            {
                "matmul": In(stream.Signature(matmul_desc_layout(c))),
                "a_rd": Out(buffer_read_signature(c.a_depth, 8 * c.rows)),
                "b_rd": Out(buffer_read_signature(c.b_depth, 8 * c.cols)),
                "slices": Out(stream.Signature(slice_layout(c))),
                "store": Out(stream.Signature(store_desc_layout())),
                "busy_ranges": Out(data.ArrayLayout(range_layout(c), 2)),
                "param_groups": Out(data.ArrayLayout(group_use_layout(), 2)),
                "idle": Out(1),
                "slice_in": Out(1),
                "stall": Out(1),
            }
        )

    def elaborate(self, platform):
        c = self.config
        m = Module()
        desc = matmul_desc_layout(c)
        cur = Signal(desc, name="cur")
        cur_valid = Signal()
        cur_a = Signal(addr_bits(c.a_depth))
        cur_b = Signal(addr_bits(c.b_depth))
        cur_left = Signal.like(cur.k)
        cur_first = Signal()
        desc_pushed = Signal()
        pend = Signal(desc, name="pend")
        pend_valid = Signal()

        s1_valid = Signal()
        s1_first = Signal()
        s1_last = Signal()

        advance = Signal()
        issue = Signal()
        is_last = Signal()  # registered: cur_left == 1 (keeps a compare off the issue path)
        needs_desc = Signal()
        desc_done = Signal()
        m.d.comb += [
            advance.eq(~s1_valid | self.slices.ready),
            needs_desc.eq(cur_valid & cur.store & is_last),
            self.store.valid.eq(needs_desc & ~desc_pushed),
            self.store.payload.raw.eq(cur.raw),
            self.store.payload.group.eq(cur.group),
            self.store.payload.zero_point.eq(cur.zero_point),
            self.store.payload.act_min.eq(cur.act_min),
            self.store.payload.act_max.eq(cur.act_max),
            desc_done.eq(desc_pushed | (self.store.valid & self.store.ready)),
            issue.eq(advance & cur_valid & (~needs_desc | desc_done)),
        ]
        with m.If(self.store.valid & self.store.ready):
            m.d.sync += desc_pushed.eq(1)

        # -- read stage -----------------------------------------------------------------
        m.d.comb += [
            self.a_rd.addr.eq(cur_a),
            self.b_rd.addr.eq(cur_b),
            self.a_rd.en.eq(advance),
            self.b_rd.en.eq(advance),
            self.slices.valid.eq(s1_valid),
            self.slices.payload.a.eq(self.a_rd.data),
            self.slices.payload.b.eq(self.b_rd.data),
            self.slices.payload.first.eq(s1_first),
            self.slices.payload.last.eq(s1_last),
        ]
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(issue),
                s1_first.eq(cur_first & ~cur.accumulate),
                s1_last.eq(is_last & cur.store),
            ]

        # -- active MATMUL -------------------------------------------------------------
        with m.If(issue):
            m.d.sync += [
                cur_a.eq(cur_a + 1),
                cur_b.eq(cur_b + 1),
                cur_left.eq(cur_left - 1),
                is_last.eq(cur_left == 2),
                cur_first.eq(0),
            ]
            with m.If(is_last):
                m.d.sync += [cur_valid.eq(0), desc_pushed.eq(0)]

        # -- queue: accept into `pend`, promote to `cur` --------------------------------
        m.d.comb += self.matmul.ready.eq(~pend_valid)
        with m.If(self.matmul.valid & self.matmul.ready):
            m.d.sync += [pend.eq(self.matmul.payload), pend_valid.eq(1)]
        with m.If(pend_valid & (~cur_valid | (issue & is_last))):
            m.d.sync += [
                cur.eq(pend),
                cur_valid.eq(1),
                cur_a.eq(pend.a_addr),
                cur_b.eq(pend.b_addr),
                cur_left.eq(pend.k),
                is_last.eq(pend.k == 1),
                cur_first.eq(1),
                desc_pushed.eq(0),
                pend_valid.eq(0),
            ]

        # -- hazards and status -------------------------------------------------------
        r0, r1 = self.busy_ranges[0], self.busy_ranges[1]
        m.d.comb += [
            r0.valid.eq(cur_valid),
            r0.a_lo.eq(cur_a),
            r0.a_hi.eq(cur.a_end),
            r0.b_lo.eq(cur_b),
            r0.b_hi.eq(cur.b_end),
            r1.valid.eq(pend_valid),
            r1.a_lo.eq(pend.a_addr),
            r1.a_hi.eq(pend.a_end),
            r1.b_lo.eq(pend.b_addr),
            r1.b_hi.eq(pend.b_end),
            self.param_groups[0].valid.eq(cur_valid & cur.store & ~cur.raw),
            self.param_groups[0].group.eq(cur.group),
            self.param_groups[1].valid.eq(pend_valid & pend.store & ~pend.raw),
            self.param_groups[1].group.eq(pend.group),
            self.idle.eq(~cur_valid & ~pend_valid & ~s1_valid),
            self.slice_in.eq(self.slices.valid & self.slices.ready),
            self.stall.eq((cur_valid | s1_valid) & ~(self.slices.valid & self.slices.ready)),
        ]
        return m


#: Store descriptors `StoreQueue` holds: tiles whose last slice has been issued and
#: whose last row has not left the store unit (which sizes its row FIFO by it).
STORE_QUEUE_DEPTH = 2


class StoreQueue(wiring.Component):
    """`STORE_QUEUE_DEPTH`-entry (two) queue of store descriptors whose entries are
    visible (for hazards).

    ``inp`` accepts while an entry is free; ``out`` presents the oldest entry.
    A push and a pop may happen in the same cycle. ``param_groups`` reports the
    parameter groups the queued int8 stores will read.
    """

    def __init__(self) -> None:
        super().__init__(
            {
                "inp": In(stream.Signature(store_desc_layout())),
                "out": Out(stream.Signature(store_desc_layout())),
                "param_groups": Out(data.ArrayLayout(group_use_layout(), 2)),
                "empty": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        e0 = Signal(store_desc_layout(), name="e0")
        e1 = Signal(store_desc_layout(), name="e1")
        v0, v1 = Signal(), Signal()
        push = Signal()
        pop = Signal()
        m.d.comb += [
            self.inp.ready.eq(~v1),
            self.out.valid.eq(v0),
            self.out.payload.eq(e0),
            push.eq(self.inp.valid & self.inp.ready),
            pop.eq(self.out.valid & self.out.ready),
            self.empty.eq(~v0),
        ]
        with m.If(pop & push):
            with m.If(v1):
                m.d.sync += [e0.eq(e1), e1.eq(self.inp.payload)]
            with m.Else():
                m.d.sync += e0.eq(self.inp.payload)
        with m.Elif(pop):
            m.d.sync += [e0.eq(e1), v0.eq(v1), v1.eq(0)]
        with m.Elif(push):
            with m.If(~v0):
                m.d.sync += [e0.eq(self.inp.payload), v0.eq(1)]
            with m.Else():
                m.d.sync += [e1.eq(self.inp.payload), v1.eq(1)]
        for i, (e, v) in enumerate(((e0, v0), (e1, v1))):
            m.d.comb += [
                self.param_groups[i].valid.eq(v & ~e.raw),
                self.param_groups[i].group.eq(e.group),
            ]
        return m
