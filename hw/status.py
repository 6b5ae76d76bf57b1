"""STATUS and COUNTERS state of the accelerator (answered by the decoder, `hw.isa`).

`StatusRegisters` keeps the sticky STATUS fields: the first error's code, a
saturating count of errors, and the accumulator-overflow, saturation and
shift-truncation flags. `PerfCounters` keeps the four 32-bit saturating
COUNTERS (`isa.COUNTER_NAMES`). Both clear on a one-cycle pulse from the
decoder (a STATUS / COUNTERS command with its clear bit).

Latency: every event is registered before it updates a field (one cycle), which
keeps the decoder's CHECK logic and the array's handshake out of these carry
chains; STATUS / COUNTERS answer only after the engine has been idle for two
cycles, so no event is missed.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .config import AccelConfig

__all__ = ["StatusRegisters", "PerfCounters", "COUNTER_MAX"]

#: Largest counter value (32-bit, saturating on the carry-out of a 33-bit increment).
COUNTER_MAX = 2**32 - 1


class StatusRegisters(wiring.Component):
    """Sticky STATUS fields (`isa.STATUS_FIELDS`).

    Attributes
    ----------
    dec_error : In(1), dec_code : In(8)  the decoder's one-cycle error pulse and its code
    overflow : In(1)      the array's sticky accumulator overflow (ACC_OVERFLOW on its rise)
    saturated : In(1)     pulse: the requantiser saturated a value
    shift_truncated : In(1)  pulse: a shift word was stored truncated
    clear : In(1)         pulse: clear every field
    overflow_clear : Out(1)  to the array, with ``clear``
    word : Out(32)        the STATUS answer (``busy`` is 0: STATUS answers when idle)
    error : Out(1)        an error is recorded (for an LED)
    """

    def __init__(self) -> None:
        super().__init__(
            {
                "dec_error": In(1),
                "dec_code": In(8),
                "overflow": In(1),
                "saturated": In(1),
                "shift_truncated": In(1),
                "clear": In(1),
                "overflow_clear": Out(1),
                "word": Out(32),
                "error": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        err_code = Signal(8)
        err_count = Signal(8)
        saturated = Signal()
        shift_trunc = Signal()
        overflow_seen = Signal()
        new_error = Signal()
        new_code = Signal(8)
        dec_error = Signal()
        dec_code = Signal(8)
        m.d.sync += [
            overflow_seen.eq(self.overflow),
            dec_error.eq(self.dec_error),
            dec_code.eq(self.dec_code),
        ]
        with m.If(dec_error):
            m.d.comb += [new_error.eq(1), new_code.eq(dec_code)]
        with m.Elif(self.overflow & ~overflow_seen):
            m.d.comb += [new_error.eq(1), new_code.eq(isa.ErrorCode.ACC_OVERFLOW)]
        with m.If(self.clear):
            m.d.sync += [err_code.eq(0), err_count.eq(0), saturated.eq(0), shift_trunc.eq(0)]
            m.d.comb += self.overflow_clear.eq(1)
        with m.Else():
            with m.If(new_error):
                with m.If(err_code == 0):
                    m.d.sync += err_code.eq(new_code)
                with m.If(err_count != 255):
                    m.d.sync += err_count.eq(err_count + 1)
            with m.If(self.saturated):
                m.d.sync += saturated.eq(1)
            with m.If(self.shift_truncated):
                m.d.sync += shift_trunc.eq(1)
        fields = {
            "error": err_code,
            "error_count": err_count,
            "acc_overflow": self.overflow,
            "saturated": saturated,
            "shift_truncated": shift_trunc,
            "busy": 0,
        }
        for name, (lsb, width) in isa.STATUS_FIELDS.items():
            m.d.comb += self.word[lsb : lsb + width].eq(fields[name])
        m.d.comb += self.error.eq(err_code != 0)
        return m


class PerfCounters(wiring.Component):
    """The COUNTERS (`isa.COUNTER_NAMES`): cycles, busy (slices into the array),
    MACs (``peak_macs_per_cycle`` per slice) and stalls.

    Attributes
    ----------
    slice_in : In(1)  the engine put a slice into the array this cycle
    stall : In(1)     a MATMUL was active but no slice went in
    hold : In(1)      the counters are being read out: hold them (a snapshot; the
                      cycles spent answering are not counted)
    clear : In(1)     pulse: zero every counter
    counters : Out(ArrayLayout(32, 4))  in `isa.COUNTER_NAMES` order
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = config
        super().__init__(
            {
                "slice_in": In(1),
                "stall": In(1),
                "hold": In(1),
                "clear": In(1),
                "counters": Out(data.ArrayLayout(32, len(isa.COUNTER_NAMES))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        slice_in = Signal()
        stall = Signal()
        m.d.sync += [slice_in.eq(self.slice_in), stall.eq(self.stall)]
        incr = {
            "cycles": 1,
            "busy": slice_in,
            "macs": Mux(slice_in, self.config.peak_macs_per_cycle, 0),
            "stalls": stall,
        }
        for i, name in enumerate(isa.COUNTER_NAMES):
            ctr = Signal(32, name=f"count_{name}")
            total = Signal(33, name=f"next_{name}")  # increments are < 2**32: one carry-out
            m.d.comb += [total.eq(ctr + incr[name]), self.counters[i].eq(ctr)]
            with m.If(self.clear):
                m.d.sync += ctr.eq(0)
            with m.Elif(self.hold):
                pass
            with m.Elif(total[32]):
                m.d.sync += ctr.eq(COUNTER_MAX)
            with m.Else():
                m.d.sync += ctr.eq(total[:32])
        return m
