"""Store unit: drained rows of C -> requantised int8 (or raw int32) -> result words.

For each tile it takes the next store descriptor (from the engine, through a
queue), reads that tile's parameter group (one cycle, prefetched while the tile
computes), sends every row through the `Requantizer` (int8 mode) in
``cols / pp_lanes`` transfers of ``pp_lanes`` values, or straight on (raw mode),
and serialises each row into result words of ``bus_bytes``:
``int8_words_per_row`` or ``raw_words_per_row`` words, byte c of the row at byte
``c % bus_bytes`` of word ``c // bus_bytes``. Raw rows wait until the
requantiser is empty, so rows leave in order.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .array import result_layout
from .config import AccelConfig
from .layouts import store_desc_layout
from .postproc import SHIFT_BITS, Requantizer

__all__ = ["StoreUnit"]


class StoreUnit(wiring.Component):
    """Post-processing and result serialisation (see module docstring).

    Attributes
    ----------
    rows : In(stream.Signature(result_layout(config)))   from the array
    desc : In(stream.Signature(store_desc_layout()))     one per drained tile
    p_rd_addr : Out   parameter group to read (read port always enabled)
    bias_data, mult_data : In(32 * cols); shift_data : In(6 * cols)
    words : Out(stream.Signature(bus_bits))
    saturated : Out(1)   pulse: some lane saturated (acc + bias or left shift)
    idle : Out(1)        no descriptor, nothing in flight, nothing to send
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = config
        c = config
        super().__init__(
            {
                "rows": In(stream.Signature(result_layout(c))),
                "desc": In(stream.Signature(store_desc_layout())),
                "p_rd_addr": Out(range(c.param_depth)),
                "bias_data": In(32 * c.cols),
                "mult_data": In(32 * c.cols),
                "shift_data": In(SHIFT_BITS * c.cols),
                "words": Out(stream.Signature(c.bus_bits)),
                "saturated": Out(1),
                "idle": Out(1),
            }
        )

    def elaborate(self, platform):
        c = self.config
        m = Module()
        lanes = c.pp_lanes
        passes = c.cols // lanes  # requantiser transfers per row
        m.submodules.requant = rq = Requantizer(lanes=lanes, acc_width=c.acc_width, tag_bits=1)
        m.d.comb += self.saturated.eq(rq.saturated)

        # -- descriptor and parameter prefetch ---------------------------------------
        d = self.desc.payload
        pop = Signal()
        params_ok = Signal()  # parameter read data matches the current descriptor
        m.d.sync += params_ok.eq(self.desc.valid & ~pop)
        m.d.comb += self.p_rd_addr.eq(d.group)
        ok = Signal()
        m.d.comb += ok.eq(self.desc.valid & params_ok)

        # -- requantiser occupancy (raw rows must not overtake int8 rows) -----------------
        inflight = Signal(range(rq.latency + 2))
        rq_in = Signal()
        rq_out = Signal()
        m.d.comb += [
            rq_in.eq(rq.i.valid & rq.i.ready),
            rq_out.eq(rq.o.valid & rq.o.ready),
        ]
        m.d.sync += inflight.eq(inflight + rq_in - rq_out)

        # -- serialiser ---------------------------------------------------------------------
        sreg = Signal(32 * c.cols)
        scount = Signal(range(max(c.raw_words_per_row, c.int8_words_per_row) + 1))
        can_load = Signal()
        m.d.comb += [
            self.words.valid.eq(scount != 0),
            self.words.payload.eq(sreg[: c.bus_bits]),
            can_load.eq((scount == 0) | ((scount == 1) & self.words.ready)),
        ]
        with m.If(self.words.valid & self.words.ready):
            m.d.sync += [sreg.eq(sreg >> c.bus_bits), scount.eq(scount - 1)]

        # -- row routing: `passes` requantiser transfers of `lanes` values per row ----------
        in_pass = Signal(range(passes))
        out_pass = Signal(range(passes))
        p = rq.i.payload
        row = self.rows.payload.row
        with m.Switch(in_pass):
            for k in range(passes):
                with m.Case(k):
                    for lane in range(lanes):
                        ch = k * lanes + lane
                        m.d.comb += [
                            p.acc[lane].eq(row[ch]),
                            p.bias[lane].eq(self.bias_data[32 * ch : 32 * ch + 32]),
                            p.mult[lane].eq(self.mult_data[32 * ch : 32 * ch + 32]),
                            p.shift[lane].eq(
                                self.shift_data[SHIFT_BITS * ch : SHIFT_BITS * (ch + 1)]
                            ),
                        ]
        m.d.comb += [
            p.zero_point.eq(d.zero_point),
            p.act_min.eq(d.act_min),
            p.act_max.eq(d.act_max),
            p.tag.eq(0),
        ]
        last_in_pass = in_pass == passes - 1
        last_out_pass = out_pass == passes - 1
        # earlier passes of a row wait in `partial`; the last pass needs the serialiser
        partial = Signal(8 * lanes * max(passes - 1, 1))
        m.d.comb += rq.o.ready.eq(~last_out_pass | can_load)
        raw_load = Signal()
        with m.If(d.raw):
            m.d.comb += [
                raw_load.eq(ok & self.rows.valid & (inflight == 0) & can_load),
                self.rows.ready.eq(raw_load),
            ]
        with m.Else():
            m.d.comb += [
                rq.i.valid.eq(ok & self.rows.valid),
                self.rows.ready.eq(ok & rq.i.ready & last_in_pass),
            ]
        with m.If(rq_in):
            m.d.sync += in_pass.eq(Mux(last_in_pass, 0, in_pass + 1))
        m.d.comb += pop.eq(self.rows.valid & self.rows.ready & self.rows.payload.last)
        m.d.comb += self.desc.ready.eq(pop)

        values = Cat(*rq.o.payload.value)
        with m.If(rq_out):
            m.d.sync += out_pass.eq(Mux(last_out_pass, 0, out_pass + 1))
            if passes > 1:
                with m.Switch(out_pass):
                    for k in range(passes - 1):
                        with m.Case(k):
                            m.d.sync += partial[8 * lanes * k : 8 * lanes * (k + 1)].eq(values)
        with m.If(rq_out & last_out_pass):
            full = Cat(partial[: 8 * lanes * (passes - 1)], values) if passes > 1 else values
            m.d.sync += [sreg.eq(full), scount.eq(c.int8_words_per_row)]
        with m.Elif(raw_load):
            ext = []
            for j in range(c.cols):
                x = Signal(32, name=f"raw32_{j}")
                m.d.comb += x.eq(self.rows.payload.row[j])  # sign-extends the accumulator
                ext.append(x)
            m.d.sync += [sreg.eq(Cat(*ext)), scount.eq(c.raw_words_per_row)]

        m.d.comb += self.idle.eq(~self.desc.valid & (scount == 0) & (inflight == 0))
        return m
