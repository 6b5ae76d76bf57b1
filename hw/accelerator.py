"""The accelerator core: command stream in, result stream out (see `hw.isa`).

::

    cmd --> CommandDecoder --(LOAD)--> A / B / parameter buffers (lib.memory)
                 |                              |
                 +--(MATMUL)--> MatmulEngine --> SystolicArray --> StoreUnit --> res
                 +--(STATUS / COUNTERS answers) ---------------------------------^

Status and counters live here. Counters are 32-bit and saturate.
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
from .postproc import SHIFT_BITS
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
                wp.data.eq(Cat(*[dec.p_wr_data[:width]] * lanes)),
                rp.addr.eq(st.p_rd_addr),
                rp.en.eq(1),
            ]
            for slot in range(lanes):
                m.d.comb += wp.en[slot].eq(
                    dec.p_wr_en & (dec.p_wr_field == field) & (wr_slot == slot)
                )
            target = (st.bias_data, st.mult_data, st.shift_data)[field]
            m.d.comb += target.eq(rp.data)

        # -- data path ---------------------------------------------------------------------
        wiring.connect(m, wiring.flipped(self.cmd), dec.cmd)
        wiring.connect(m, dec.matmul, eng.matmul)
        wiring.connect(m, eng.slices, arr.slices)
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

        # -- result stream: answers only flow when everything else is idle ----------------
        with m.If(dec.response.valid):
            m.d.comb += [
                self.res.valid.eq(1),
                self.res.payload.eq(dec.response.payload),
                dec.response.ready.eq(self.res.ready),
            ]
        with m.Else():
            m.d.comb += [
                self.res.valid.eq(st.words.valid),
                self.res.payload.eq(st.words.payload),
                st.words.ready.eq(self.res.ready),
            ]

        # -- status ---------------------------------------------------------------------------
        err_code = Signal(8)
        err_count = Signal(8)
        acc_overflow = Signal()
        saturated = Signal()
        shift_trunc = Signal()
        overflow_seen = Signal()
        new_error = Signal()
        new_code = Signal(8)
        m.d.sync += overflow_seen.eq(arr.overflow)
        with m.If(dec.error_valid):
            m.d.comb += [new_error.eq(1), new_code.eq(dec.error_code)]
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

        # -- counters ---------------------------------------------------------------------------
        names = isa.COUNTER_NAMES
        counters = {name: Signal(32, name=f"count_{name}") for name in names}
        incr = {
            "cycles": 1,
            "busy": eng.slice_in,
            "macs": Mux(eng.slice_in, c.peak_macs_per_cycle, 0),
            "stalls": eng.stall,
        }
        for i, name in enumerate(names):
            ctr = counters[name]
            total = Signal(34, name=f"next_{name}")
            m.d.comb += [total.eq(ctr + incr[name]), dec.counters[i].eq(ctr)]
            with m.If(dec.clear_counters):
                m.d.sync += ctr.eq(0)
            with m.Elif(total > COUNTER_MAX):
                m.d.sync += ctr.eq(COUNTER_MAX)
            with m.Else():
                m.d.sync += ctr.eq(total)
        return m
