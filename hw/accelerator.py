"""The accelerator core: command stream in, result stream out (see `hw.isa`).

::

    cmd -> skid -> CommandDecoder --(LOAD)--> A / B / parameter buffers (lib.memory)
                        |                              |
                        +--(MATMUL)--> MatmulEngine --> SystolicArray --> StoreUnit
                        |                                                          |
                        +--(STATUS / COUNTERS answers) -------------------------> mux -> skid -> res

Every handshake between blocks has a registered ``ready`` or one a few gates from
registers: the two `SkidBuffer` stages above (one cycle of latency each, full
throughput), the engine's ``matmul.ready`` (its queue slot is free), the
`StoreQueue`'s ``inp.ready``; the store unit's ``rows.ready`` is constant (its
row FIFO has room for every tile the store queue admits), so the array is never
frozen and its ``slices.ready`` comes from its own registers only.
So no combinational path runs from the result consumer through the store and
the array to the buffer read address, or from the decoder into the bridge.

Status and counters live here. Counters are 32-bit and saturate (on the
carry-out of a 33-bit increment).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import isa
from .arith import const_mul
from .array import SystolicArray
from .config import AccelConfig
from .decoder import CommandDecoder
from .engine import MatmulEngine, StoreQueue
from .isa import SHIFT_BITS
from .skid import SkidBuffer
from .store import StoreUnit

__all__ = ["Accelerator"]

COUNTER_MAX = 2**32 - 1


class Accelerator(wiring.Component):
    """Programmable int8 GEMM accelerator generated from one `AccelConfig`.

    Attributes
    ----------
    cmd : In(stream.Signature(8 * bus_bytes))   command words (`hw.isa`)
    res : Out(stream.Signature(8 * bus_bytes))  result words: stored tiles, answers
    error : Out(1)   some error is recorded (STATUS error field non-zero); for an LED
    """

    def __init__(self, config: AccelConfig) -> None:
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, got {config!r}")
        self.config = config
        super().__init__(
            {
                "cmd": In(stream.Signature(config.bus_bits)),
                "res": Out(stream.Signature(config.bus_bits)),
                "error": Out(1),
            }
        )

    def elaborate(self, platform):
        c = self.config
        m = Module()
        m.submodules.decoder = dec = CommandDecoder(c)
        m.submodules.engine = eng = MatmulEngine(c)
        m.submodules.array = arr = SystolicArray(c)
        m.submodules.store = st = StoreUnit(c)
        m.submodules.store_queue = squeue = StoreQueue()
        m.submodules.cmd_skid = cmd_skid = SkidBuffer(c.bus_bits)
        m.submodules.res_skid = res_skid = SkidBuffer(c.bus_bits)

        self._buffers(m, dec, eng, st)
        self._data_path(m, dec, eng, arr, st, squeue, cmd_skid)
        self._result_stream(m, dec, st, res_skid)
        self._status(m, dec, arr, st)
        self._counters(m, dec, eng)
        return m

    def _buffers(self, m, dec, eng, st):
        """A, B and parameter memories between the decoder's write ports and the readers."""
        c = self.config
        # -- buffers ----------------------------------------------------------------------
        m.submodules.a_mem = a_mem = Memory(shape=8 * c.rows, depth=c.a_depth, init=[])
        m.submodules.b_mem = b_mem = Memory(shape=8 * c.cols, depth=c.b_depth, init=[])
        # parameters: one word per requantiser transfer, `pp_lanes` channels wide, so a
        # time-shared requantiser reads narrow words (no wide muxes, fewer block RAMs)
        lanes, passes = c.pp_lanes, c.cols // c.pp_lanes
        p_depth = c.param_depth * passes
        m.submodules.bias_mem = bias_mem = Memory(shape=32 * lanes, depth=p_depth, init=[])
        m.submodules.mult_mem = mult_mem = Memory(shape=32 * lanes, depth=p_depth, init=[])
        m.submodules.shift_mem = shift_mem = Memory(
            shape=SHIFT_BITS * lanes, depth=p_depth, init=[]
        )
        a_w, a_r = a_mem.write_port(), a_mem.read_port()
        b_w, b_r = b_mem.write_port(), b_mem.read_port()
        m.d.comb += [
            a_w.addr.eq(dec.a_wr_addr),
            a_w.data.eq(dec.a_wr_data),
            a_w.en.eq(dec.a_wr_en),
            b_w.addr.eq(dec.b_wr_addr),
            b_w.data.eq(dec.b_wr_data),
            b_w.en.eq(dec.b_wr_en),
            a_r.addr.eq(eng.a_rd_addr),
            a_r.en.eq(eng.a_rd_en),
            eng.a_rd_data.eq(a_r.data),
            b_r.addr.eq(eng.b_rd_addr),
            b_r.en.eq(eng.b_rd_en),
            eng.b_rd_data.eq(b_r.data),
        ]
        # channel `lane` of group g lives in word g * passes + lane // lanes, slot lane % lanes
        wr_pass = Signal(range(passes), name="p_wr_pass")
        wr_slot = Signal(range(lanes), name="p_wr_slot")
        with m.Switch(dec.p_wr_lane):
            for ch in range(c.cols):
                with m.Case(ch):
                    m.d.comb += [wr_pass.eq(ch // lanes), wr_slot.eq(ch % lanes)]
        wr_addr = Signal(range(p_depth), name="p_wr_addr")
        m.d.comb += wr_addr.eq(const_mul(dec.p_wr_group, passes) + wr_pass)
        for field, mem, width in ((0, bias_mem, 32), (1, mult_mem, 32), (2, shift_mem, SHIFT_BITS)):
            wp = mem.write_port(granularity=width)
            rp = mem.read_port()
            m.d.comb += [
                wp.addr.eq(wr_addr),
                wp.data.eq(Cat(*[dec.p_wr_data[field][:width]] * lanes)),
                rp.addr.eq(st.p_rd_addr),
                rp.en.eq(1),
            ]
            for slot in range(lanes):
                m.d.comb += wp.en[slot].eq(
                    dec.p_wr_en[field] & (wr_slot == slot)
                )
            target = (st.bias_data, st.mult_data, st.shift_data)[field]
            m.d.comb += target.eq(rp.data)


    def _data_path(self, m, dec, eng, arr, st, squeue, cmd_skid):
        """cmd -> decoder -> engine -> array -> store, and the hazard inputs of the decoder."""
        # -- data path ---------------------------------------------------------------------
        wiring.connect(m, wiring.flipped(self.cmd), cmd_skid.i)
        wiring.connect(m, cmd_skid.o, dec.cmd)
        wiring.connect(m, dec.matmul, eng.matmul)
        # the array's slices.ready is a shallow function of registers (its row FIFO's
        # fill level and its own drain state), so the engine connects directly
        wiring.connect(m, eng.slices, arr.slices)
        # the store's row FIFO has a registered ready already: no skid buffer needed here
        wiring.connect(m, arr.results, st.rows)
        wiring.connect(m, eng.store, squeue.inp)
        wiring.connect(m, squeue.out, st.desc)
        m.d.comb += [
            dec.busy_ranges.eq(eng.busy_ranges),
            dec.param_groups[0].eq(eng.param_groups[0]),
            dec.param_groups[1].eq(eng.param_groups[1]),
            dec.param_groups[2].eq(squeue.param_groups[0]),
            dec.param_groups[3].eq(squeue.param_groups[1]),
            dec.idle.eq(eng.idle & st.idle & squeue.empty),
        ]


    def _result_stream(self, m, dec, st, res_skid):
        """Store words and decoder answers into the result skid buffer."""
        # -- result stream: answers only flow when everything else is idle ----------------
        # An answer is only pending while everything else is idle (STATUS / COUNTERS wait
        # for it and the decoder issues nothing meanwhile), so the store's ready need not
        # depend on the decoder's state: that keeps the decoder FSM out of the store's paths.
        res_in = res_skid.i
        m.d.comb += [
            st.words.ready.eq(res_in.ready),
            dec.response.ready.eq(res_in.ready),
        ]
        with m.If(dec.response.valid):
            m.d.comb += [res_in.valid.eq(1), res_in.payload.eq(dec.response.payload)]
        with m.Else():
            m.d.comb += [res_in.valid.eq(st.words.valid), res_in.payload.eq(st.words.payload)]
        wiring.connect(m, res_skid.o, wiring.flipped(self.res))


    def _status(self, m, dec, arr, st):
        """Sticky STATUS fields (first error, error count, overflow, saturation, shift)."""
        # -- status ---------------------------------------------------------------------------
        err_code = Signal(8)
        err_count = Signal(8)
        acc_overflow = Signal()
        saturated = Signal()
        shift_trunc = Signal()
        overflow_seen = Signal()
        new_error = Signal()
        new_code = Signal(8)
        # the decoder's error pulse is registered before it updates the status (a STATUS
        # command answers many cycles after any earlier command's CHECK)
        dec_error = Signal()
        dec_code = Signal(8)
        m.d.sync += [
            overflow_seen.eq(arr.overflow),
            dec_error.eq(dec.error_valid),
            dec_code.eq(dec.error_code),
        ]
        with m.If(dec_error):
            m.d.comb += [new_error.eq(1), new_code.eq(dec_code)]
        with m.Elif(arr.overflow & ~overflow_seen):
            m.d.comb += [new_error.eq(1), new_code.eq(isa.ErrorCode.ACC_OVERFLOW)]
        with m.If(dec.clear_status):
            m.d.sync += [
                err_code.eq(0),
                err_count.eq(0),
                saturated.eq(0),
                shift_trunc.eq(0),
            ]
            m.d.comb += arr.overflow_clear.eq(1)
        with m.Else():
            with m.If(new_error):
                with m.If(err_code == 0):
                    m.d.sync += err_code.eq(new_code)
                with m.If(err_count != 255):
                    m.d.sync += err_count.eq(err_count + 1)
            with m.If(st.saturated):
                m.d.sync += saturated.eq(1)
            with m.If(dec.shift_truncated):
                m.d.sync += shift_trunc.eq(1)
        m.d.comb += [
            acc_overflow.eq(arr.overflow),
            dec.status_word.eq(Cat(err_code, err_count, acc_overflow, saturated, shift_trunc)),
            self.error.eq(err_code != 0),
        ]


    def _counters(self, m, dec, eng):
        """The four saturating COUNTERS."""
        c = self.config
        # -- counters ---------------------------------------------------------------------------
        # The engine's events are registered first (counted one cycle late): this keeps the
        # array's handshake out of the counters' carry chains. STATUS/COUNTERS answer only
        # after the engine has been idle for two cycles, so no event is missed.
        names = isa.COUNTER_NAMES
        counters = {name: Signal(32, name=f"count_{name}") for name in names}
        slice_in = Signal()
        stall = Signal()
        m.d.sync += [slice_in.eq(eng.slice_in), stall.eq(eng.stall)]
        incr = {
            "cycles": 1,
            "busy": slice_in,
            "macs": Mux(slice_in, c.peak_macs_per_cycle, 0),
            "stalls": stall,
        }
        for i, name in enumerate(names):
            ctr = counters[name]
            total = Signal(33, name=f"next_{name}")  # increments are < 2**32: one carry-out
            m.d.comb += [total.eq(ctr + incr[name]), dec.counters[i].eq(ctr)]
            with m.If(dec.clear_counters):
                m.d.sync += ctr.eq(0)
            with m.Elif(total[32]):
                m.d.sync += ctr.eq(COUNTER_MAX)
            with m.Else():
                m.d.sync += ctr.eq(total[:32])
