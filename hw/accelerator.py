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

The A and B buffers are `lib.memory.Memory` instances whose ports the decoder
(write) and engine (read) carry as their own signatures (`hw.ports`); the
parameters live in `ParamBuffer`, STATUS and COUNTERS in `hw.status`. Every
connection below is a `wiring.connect` of matching signatures, except the
decoder's hazard inputs, which several blocks feed.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .array import SystolicArray
from .config import AccelConfig
from .decoder import CommandDecoder
from .engine import MatmulEngine, StoreQueue
from .param_buffer import ParamBuffer
from .skid import SkidBuffer
from .status import PerfCounters, StatusRegisters
from .store import StoreUnit

__all__ = ["Accelerator"]


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
        m.submodules.params = params = ParamBuffer(c)
        m.submodules.status = status = StatusRegisters()
        m.submodules.counters = counters = PerfCounters(c)

        # -- buffers: the decoder writes, the engine and the store read ----------------------
        m.submodules.a_mem = a_mem = Memory(shape=8 * c.rows, depth=c.a_depth, init=[])
        m.submodules.b_mem = b_mem = Memory(shape=8 * c.cols, depth=c.b_depth, init=[])
        wiring.connect(m, dec.a_wr, a_mem.write_port())
        wiring.connect(m, dec.b_wr, b_mem.write_port())
        wiring.connect(m, eng.a_rd, a_mem.read_port())
        wiring.connect(m, eng.b_rd, b_mem.read_port())
        wiring.connect(m, dec.p_wr, params.write)
        wiring.connect(m, st.params, params.read)

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
        self._result_stream(m, dec, st, res_skid)

        # -- STATUS and COUNTERS ---------------------------------------------------------------
        m.d.comb += [
            status.dec_error.eq(dec.error_valid),
            status.dec_code.eq(dec.error_code),
            status.overflow.eq(arr.overflow),
            status.saturated.eq(st.saturated),
            status.shift_truncated.eq(dec.shift_truncated),
            status.clear.eq(dec.clear_status),
            arr.overflow_clear.eq(status.overflow_clear),
            dec.status_word.eq(status.word),
            self.error.eq(status.error),
            counters.slice_in.eq(eng.slice_in),
            counters.stall.eq(eng.stall),
            counters.clear.eq(dec.clear_counters),
            counters.hold.eq(dec.answering),
            dec.counters.eq(counters.counters),
        ]
        return m

    def _result_stream(self, m, dec, st, res_skid):
        """Store words and decoder answers into the result skid buffer.

        An answer is only pending while everything else is idle (STATUS / COUNTERS
        wait for it and the decoder issues nothing meanwhile), so the store's ready
        need not depend on the decoder's state: that keeps the decoder FSM out of
        the store's paths.
        """
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
