"""Formal property of the requantiser (`hw.postproc.Requantizer`): every output value
equals a combinational transcription of the TFLite int8 contract (`sim.golden`'s
module docstring, restated here in Amaranth as `contract`) of its input — whatever the
accumulator, bias, shift (-31..31), zero point and clamp range, and whatever the
valid/ready timing on both sides.

Bounded, in two ways (the README says so too):

* BMC from reset to `Requantizer.latency` + 2 cycles (every pipeline stage filled,
  with stalls), of a one-lane requantiser built like the config's (its lanes are
  identical copies run in lockstep);
* one input value, offered again and again (the input stream's payload and the
  per-tile constants are free but held for the run), and the multiplier one of the
  constants in `MULTIPLIERS` (2**30, 1, INT32_MIN), one check each. SMT solvers do
  not prove a 32 x 32 product equal to the sum of its four 16 x 16 partial products
  (z3 gives up after minutes even with one operand narrowed to 8 bits), so general
  multipliers and the order of different values in
  the pipeline are left to the random simulations.

Broken variant: odd results of lane 0 come out one too low (a rounding slip).
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cover, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from .config import AccelConfig
from .formal import FormalCheck, assume_stream_held, past, past_valid
from .postproc import Requantizer, requant_in_layout
from .store import LUT_MUL_BITS

__all__ = ["contract", "RequantHarness", "formal_checks"]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: The multipliers the bounded checks cover, one check each (the multiplier input is a
#: constant there, which the solver folds): a normalised one (2**30), 1 (the product is
#: x itself: every rounding and clamp path on its own) and INT32_MIN (SRDHM's saturating
#: case). Others (-2**17: over 6 minutes) are beyond the suite's time budget.
MULTIPLIERS = (1 << 30, 1, INT32_MIN)


def _sat32(m: Module, value, name: str):
    out = Signal(signed(32), name=name)
    m.d.comb += out.eq(Mux(value > INT32_MAX, INT32_MAX, Mux(value < INT32_MIN, INT32_MIN, value)))
    return out


def contract(m: Module, acc, bias, mult, shift, zero_point, act_min, act_max, name: str):
    """The TFLite int8 output stage of one value, as combinational logic (int8 result).

    ``acc`` signed(acc_width), ``bias``/``mult`` signed(32), ``shift`` signed(6) in
    -31..31, the rest signed(8)."""
    x = _sat32(m, acc + bias, f"{name}_x")
    left = Mux(shift > 0, shift, 0)
    right = Mux(shift < 0, -shift, 0)[:6]
    shifted = _sat32(m, x << left[:5], f"{name}_shifted")
    ab = Signal(signed(64), name=f"{name}_ab")
    m.d.comb += ab.eq(shifted * mult)
    v = Signal(signed(65), name=f"{name}_v")
    m.d.comb += v.eq(ab + Mux(ab >= 0, 1 << 30, 1 - (1 << 30)))
    trunc = Signal(signed(34), name=f"{name}_srdhm_raw")
    m.d.comb += trunc.eq(Mux(v >= 0, v >> 31, -((-v) >> 31)))
    high = Signal(signed(33), name=f"{name}_srdhm")
    both_min = (shifted == INT32_MIN) & (Value.cast(mult) == INT32_MIN)
    m.d.comb += high.eq(Mux(both_min, INT32_MAX, trunc))
    mask = Signal(33, name=f"{name}_mask")
    m.d.comb += mask.eq((1 << right) - 1)
    remainder = high.as_unsigned()[:33] & mask
    threshold = (mask >> 1) + (high < 0)
    rounded = Signal(signed(34), name=f"{name}_rounded")
    m.d.comb += rounded.eq((high >> right) + (remainder > threshold))
    total = rounded + zero_point
    out = Signal(signed(8), name=f"{name}_out")
    m.d.comb += out.eq(Mux(total < act_min, act_min, Mux(total > act_max, act_max, total)))
    return out


class RequantHarness(wiring.Component):
    """A `Requantizer` fed one free input value (held for the run) with free valid and
    back-pressure; every output transfer is checked against `contract`."""

    def __init__(self, config: AccelConfig, mul: str, multiplier: int, broken: bool = False):
        self.config, self.mul, self.broken, self.multiplier = config, mul, broken, multiplier
        self.lanes = 1  # the lanes are identical copies in lockstep: one is checked
        layout = requant_in_layout(self.lanes, config.acc_width, 1)
        super().__init__(
            {
                "payload": In(layout),
                "valid": In(1),
                "ready": In(1),
                "zero_point": In(signed(8)),
                "act_min": In(signed(8)),
                "act_max": In(signed(8)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        c = self.config
        m.submodules.dut = dut = Requantizer(
            lanes=self.lanes,
            acc_width=c.acc_width,
            tag_bits=1,
            mul=self.mul,
            mul_bits=LUT_MUL_BITS,
        )
        m.d.comb += [
            dut.i.payload.eq(self.payload),
            dut.i.payload.mult[0].eq(self.multiplier),  # a constant: see the docstring
            dut.i.valid.eq(self.valid),
            dut.o.ready.eq(self.ready),
            dut.zero_point.eq(self.zero_point),
            dut.act_min.eq(self.act_min),
            dut.act_max.eq(self.act_max),
        ]
        assume_stream_held(m, dut.i, "i")
        # per-tile constants held for the whole run, a legal clamp range, and one input
        # value offered again and again (see the module docstring)
        consts = [self.zero_point, self.act_min, self.act_max, self.payload.as_value()]
        was = [past(m, v, name="const") for v in consts]
        with m.If(past_valid(m)):
            m.d.comb += [Assume(v == w) for v, w in zip(consts, was, strict=True)]
        m.d.comb += Assume(self.act_min <= self.act_max)
        for lane in range(self.lanes):
            m.d.comb += Assume(self.payload.shift[lane] >= -31)

        take_out = dut.o.valid & dut.o.ready
        p = self.payload
        want = [
            contract(
                m,
                p.acc[lane],
                p.bias[lane],
                self.multiplier,
                p.shift[lane],
                self.zero_point,
                self.act_min,
                self.act_max,
                name=f"lane{lane}",
            )
            for lane in range(self.lanes)
        ]
        got = [dut.o.payload.value[lane] for lane in range(self.lanes)]
        if self.broken:  # an odd result of lane 0 comes out one too low
            got[0] = Mux(got[0][0], got[0] - 1, got[0])[:8].as_signed()
        with m.If(take_out):
            for lane in range(self.lanes):
                m.d.comb += Assert(got[lane] == want[lane], f"lane {lane} differs from contract")
            m.d.comb += Assert(dut.o.payload.tag == p.tag, "tag differs")
        # a non-trivial value (negative, not clamped) left after a stall
        stalled = past(m, dut.o.valid & ~self.ready, name="stalled")
        m.d.comb += Cover(take_out & stalled & (want[0] < -1) & (want[0] > self.act_min))
        return m


def formal_checks(config: AccelConfig) -> list[FormalCheck]:
    """The requantiser's contract property for ``config``'s multiplier style, one check
    per multiplier of `MULTIPLIERS`."""
    req = Requantizer(
        lanes=config.pp_lanes, acc_width=config.acc_width, mul=config.pp_mul, mul_bits=LUT_MUL_BITS
    )
    req._MustUse__silence = True  # built only to read its latency
    checks = []
    for k, mult in enumerate(MULTIPLIERS):
        checks.append(
            FormalCheck(
                name=f"postproc.matches_contract_m{k}",
                module="hw/postproc.py",
                statement=f"requantiser (one lane, {config.pp_mul} multiplier), multiplier "
                f"{mult}: every output equals the TFLite int8 contract of its input",
                mode="bmc",
                depth=req.latency + 2,
                harness=lambda broken, mult=mult: RequantHarness(
                    config, config.pp_mul, mult, broken
                ),
                broken="odd results of lane 0 come out one too low",
            )
        )
    return checks
