"""Store unit: drained rows of C -> requantised int8 (or raw int32) -> result words.

For each tile it takes the next store descriptor (from the engine, through a
queue), reads the parameters of each requantiser transfer from the parameter
memories (one word of ``pp_lanes`` channels per transfer, address
``group * passes + pass`` with ``passes = cols / pp_lanes``, read one cycle
ahead), sends every row through the `Requantizer` (int8 mode) in
``cols / pp_lanes`` transfers of ``pp_lanes`` values, or straight on (raw mode),
and serialises each row into result words of ``bus_bytes``:
``int8_words_per_row`` or ``raw_words_per_row`` words, byte c of the row at byte
``c % bus_bytes`` of word ``c // bus_bytes``. Raw rows wait until the
requantiser is empty, so rows leave in order.

Drained rows first enter a block-RAM FIFO (`hw.block_fifo.BlockFIFO`) of
`row_fifo_depth` rows: room for `STORE_QUEUE_DEPTH` tiles, so ``rows.ready`` is
constant 1 and the array is never frozen from here. That bound holds by
construction: the engine issues a tile's last slice only together with its store
descriptor into the `hw.engine.StoreQueue` (`STORE_QUEUE_DEPTH` entries), and the
descriptor leaves the queue only when the tile's last row leaves the FIFO, so at
most `STORE_QUEUE_DEPTH` tiles have rows in the array or the FIFO. When the
output (raw words or the requantiser, ``cols / pp_lanes * interval`` cycles per
row) cannot keep up on average, the engine waits for a queue entry instead.

The per-tile constants (zero point, activation range) are registered once per
tile from the descriptor and held on the requantiser's ports; a tile whose
constants differ from the previous one waits until the requantiser is empty.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import const_mul
from .array import result_layout
from .block_fifo import BlockFIFO
from .config import AccelConfig
from .engine import STORE_QUEUE_DEPTH
from .isa import SHIFT_BITS
from .layouts import store_desc_layout
from .ports import ParamReadSignature
from .postproc import Requantizer
from .skid import SkidBuffer

__all__ = ["StoreUnit", "LUT_MUL_BITS"]

#: Multiplier bits per cycle of the ``pp_mul="lut"`` requantiser (interval 32 / this = 8
#: cycles): one lane keeps up with a 4x4 array for K >= 128 (16 values per tile). 8 bits
#: (interval 4, K >= 64) cost ~240 more iCE40 LUTs and ~160 flip-flops, which the UP5K
#: does not have to spare once the 16-MAC array, bridge and controller are in.
LUT_MUL_BITS = 4


class StoreUnit(wiring.Component):
    """Post-processing and result serialisation (see module docstring).

    Attributes
    ----------
    rows : In(stream.Signature(result_layout(config)))   from the array
    desc : In(stream.Signature(store_desc_layout()))     one per drained tile
    params : Out(ParamReadSignature(config))  parameter word ``group * passes + pass``
        (the buffer's read port is always enabled: data one cycle after ``addr``)
    words : Out(stream.Signature(bus_bits))
    saturated : Out(1)   pulse: some lane saturated (acc + bias or left shift)
    idle : Out(1)        no descriptor, nothing buffered or in flight, nothing to send
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = config
        c = config
        super().__init__(
            {
                "rows": In(stream.Signature(result_layout(c))),
                "desc": In(stream.Signature(store_desc_layout())),
                "params": Out(ParamReadSignature(c)),
                "words": Out(stream.Signature(c.bus_bits)),
                "saturated": Out(1),
                "idle": Out(1),
            }
        )

    def requantizer(self) -> Requantizer:
        """The requantiser this unit instantiates (its `interval` and `latency` pace the rows)."""
        c = self.config
        return Requantizer(
            lanes=c.pp_lanes, acc_width=c.acc_width, tag_bits=1, mul=c.pp_mul, mul_bits=LUT_MUL_BITS
        )

    @property
    def row_fifo_depth(self) -> int:
        """Drained rows the block-RAM FIFO holds between the array and the output
        (`STORE_QUEUE_DEPTH` tiles' worth, at least 4; plus one at its head)."""
        return STORE_QUEUE_DEPTH * max(self.config.rows, 2)

    @property
    def cycles_per_row(self) -> int:
        """Cycles one int8 row occupies the requantiser at full speed."""
        return self.config.cols // self.config.pp_lanes * self.requantizer().interval

    def elaborate(self, platform):
        c = self.config
        m = Module()
        lanes = c.pp_lanes
        passes = c.cols // lanes  # requantiser transfers per row
        m.submodules.requant = rq = self.requantizer()
        m.d.comb += self.saturated.eq(rq.saturated)

        # -- row FIFO: the array drains into it; everything below reads its head ------------
        layout = result_layout(c)
        m.submodules.row_fifo = rf = BlockFIFO(width=layout.size, depth=self.row_fifo_depth)
        m.d.comb += [
            rf.w_data.eq(self.rows.payload.as_value()),
            rf.w_en.eq(self.rows.valid),
            self.rows.ready.eq(1),  # room for every row in flight: see the module docstring
        ]
        head = data.View(layout, rf.r_data)
        head_valid = rf.r_rdy
        head_take = rf.r_en

        # -- descriptor and parameter prefetch ---------------------------------------
        d = self.desc.payload
        pop = Signal()
        params_ok = Signal()  # parameter read data matches the current descriptor
        m.d.sync += params_ok.eq(self.desc.valid & ~pop)
        # the parameter word of the transfer after this cycle's (see `in_pass` below)
        rd_pass = Signal(range(passes))
        m.d.comb += self.params.addr.eq(const_mul(d.group, passes) + rd_pass)
        # per-tile constants: registered once per tile, held on the requantiser's ports
        tile_zp, tile_lo, tile_hi = (
            Signal(signed(8), name=f"tile_{k}") for k in ("zp", "lo", "hi")
        )
        m.d.comb += [rq.zero_point.eq(tile_zp), rq.act_min.eq(tile_lo), rq.act_max.eq(tile_hi)]
        consts_ok = Signal()  # the registers hold this descriptor's constants
        same = Signal()
        m.d.comb += same.eq(
            (tile_zp == d.zero_point) & (tile_lo == d.act_min) & (tile_hi == d.act_max)
        )
        ok = Signal()
        m.d.comb += ok.eq(self.desc.valid & params_ok & (consts_ok | d.raw))

        # -- requantiser output through a skid buffer: the serialiser's ready (and so the
        # result stream's) never reaches back through the requantiser's stall logic -------
        m.submodules.rq_skid = rq_skid = SkidBuffer(rq.o.payload.shape())
        wiring.connect(m, rq.o, rq_skid.i)
        rq_o = rq_skid.o

        # -- requantiser occupancy (raw rows must not overtake int8 rows) -----------------
        inflight = Signal(range(rq.latency + 4))  # in the requantiser or its skid buffer
        rq_in = Signal()
        rq_out = Signal()
        m.d.comb += [
            rq_in.eq(rq.i.valid & rq.i.ready),
            rq_out.eq(rq_o.valid & rq_o.ready),
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
        self._feed_requantiser(m, rq, head.row, in_pass)
        last_in_pass = in_pass == passes - 1
        last_out_pass = out_pass == passes - 1
        # earlier passes of a row wait in `partial`; the last pass needs the serialiser
        partial = Signal(8 * lanes * max(passes - 1, 1))
        m.d.comb += rq_o.ready.eq(~last_out_pass | can_load)
        raw_load = Signal()
        with m.If(d.raw):
            m.d.comb += [
                raw_load.eq(ok & head_valid & (inflight == 0) & can_load),
                head_take.eq(raw_load),
            ]
        with m.Else():
            m.d.comb += [
                rq.i.valid.eq(ok & head_valid),
                head_take.eq(ok & rq.i.ready & last_in_pass),
            ]
        next_pass = Mux(last_in_pass, 0, in_pass + 1)
        m.d.comb += rd_pass.eq(Mux(rq_in, next_pass, in_pass))
        with m.If(rq_in):
            m.d.sync += in_pass.eq(next_pass)
        m.d.comb += pop.eq(head_valid & head_take & head.last)
        m.d.comb += self.desc.ready.eq(pop)
        with m.If(pop):
            m.d.sync += consts_ok.eq(0)
        with m.Elif(self.desc.valid & ~consts_ok & ~d.raw & (same | (inflight == 0))):
            m.d.sync += [
                tile_zp.eq(d.zero_point),
                tile_lo.eq(d.act_min),
                tile_hi.eq(d.act_max),
                consts_ok.eq(1),
            ]

        self._load_serialiser(
            m, rq_o, rq_out, out_pass, last_out_pass, partial, raw_load, head.row, sreg, scount
        )

        m.d.comb += self.idle.eq(~self.desc.valid & ~head_valid & (scount == 0) & (inflight == 0))
        return m

    def _feed_requantiser(self, m, rq, row, in_pass):
        """Requantiser input: pass ``in_pass`` of the FIFO's head row and the parameter
        words read for it (one transfer of ``pp_lanes`` values)."""
        c = self.config
        lanes, passes = c.pp_lanes, c.cols // c.pp_lanes
        p = rq.i.payload
        with m.Switch(in_pass):
            for k in range(passes):
                with m.Case(k):
                    for lane in range(lanes):
                        m.d.comb += p.acc[lane].eq(row[k * lanes + lane])
        for lane in range(lanes):
            m.d.comb += [
                p.bias[lane].eq(self.params.bias.word_select(lane, 32)),
                p.mult[lane].eq(self.params.multiplier.word_select(lane, 32)),
                p.shift[lane].eq(self.params.shift.word_select(lane, SHIFT_BITS)),
            ]
        m.d.comb += p.tag.eq(0)

    def _load_serialiser(
        self, m, rq_o, rq_out, out_pass, last_out_pass, partial, raw_load, row, sreg, scount
    ):
        """Collect a row's int8 passes (earlier ones in ``partial``) or sign-extend a raw
        row, and load it into the serialiser."""
        c = self.config
        lanes, passes = c.pp_lanes, c.cols // c.pp_lanes
        values = Cat(*rq_o.payload.value)
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
                m.d.comb += x.eq(row[j])  # sign-extends the accumulator
                ext.append(x)
            m.d.sync += [sreg.eq(Cat(*ext)), scount.eq(c.raw_words_per_row)]
