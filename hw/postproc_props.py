"""Formal property of the requantiser (`hw.postproc.Requantizer`): every output value
equals a combinational transcription of the TFLite int8 contract (`sim.golden`'s
module docstring, restated here in Amaranth) applied to the input transfer it belongs
to — whatever the operands (free), back-pressure and input timing.

The solver picks one input transfer (a free ``pick`` input; the first one picked is
tracked), the harness computes the contract's answer for each lane at that moment and
counts the transfers still ahead of it in the pipeline; when the tracked transfer
leaves, every lane and the tag must match. Bounded model check: the depth covers the
pipeline's latency plus back-pressure cycles. The 32 x 32-bit products make an
unbounded proof out of reach of the solver, so this is a BMC of every input value
(``shift`` in the contract's range -31..31) within that depth. Broken variant: odd
results of lane 0 come out one too low (a rounding slip).
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cat, Cover, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from .config import AccelConfig
from .formal import FormalCheck, assume_stream_held, past, past_valid
from .postproc import Requantizer, requant_in_layout
from .store import LUT_MUL_BITS

__all__ = ["contract", "RequantHarness", "formal_checks"]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: The multipliers the bounded proof covers: +-2**k with k on both sides of the 16-bit
#: partial-product split and at the top, and INT32_MIN (SRDHM's saturating case).
MULTIPLIERS = tuple(sign * (1 << k) for k in (0, 1, 15, 16, 17, 29, 30) for sign in (1, -1)) + (
    INT32_MIN,
)


def _sat32(m: Module, value, name: str):
    out = Signal(signed(32), name=name)
    m.d.comb += out.eq(Mux(value > INT32_MAX, INT32_MAX, Mux(value < INT32_MIN, INT32_MIN, value)))
    return out


def contract(
    m: Module, acc, bias, mult, shift, zero_point, act_min, act_max, name: str, multipliers=None
):
    """The TFLite int8 output stage of one value, as combinational logic (int8 result).

    ``acc`` signed(acc_width), ``bias``/``mult`` signed(32), ``shift`` signed(6) in
    -31..31, the rest signed(8). ``multipliers``: the values ``mult`` may take (None:
    any), so the solver sees a product by a constant."""
    x = _sat32(m, acc + bias, f"{name}_x")
    left = Mux(shift > 0, shift, 0)
    right = Mux(shift < 0, -shift, 0)[:6]
    shifted = _sat32(m, x << left[:5], f"{name}_shifted")
    ab = Signal(signed(64), name=f"{name}_ab")
    if multipliers is None:
        m.d.comb += ab.eq(shifted * mult)
    else:  # the multiplier is one of these constants: a product by a constant is a shift
        with m.Switch(mult):
            for value in multipliers:
                with m.Case(value):
                    m.d.comb += ab.eq(shifted * value)
    v = Signal(signed(65), name=f"{name}_v")
    m.d.comb += v.eq(ab + Mux(ab >= 0, 1 << 30, 1 - (1 << 30)))
    trunc = Signal(signed(34), name=f"{name}_srdhm_raw")
    m.d.comb += trunc.eq(Mux(v >= 0, v >> 31, -((-v) >> 31)))
    high = Signal(signed(33), name=f"{name}_srdhm")
    both_min = (shifted == INT32_MIN) & (mult == INT32_MIN)
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
    """A `Requantizer` with a free input stream, free back-pressure and constant per-tile
    parameters; one solver-picked input transfer is checked against `contract`."""

    def __init__(self, config: AccelConfig, mul: str, broken: bool = False) -> None:
        self.config, self.mul, self.broken = config, mul, broken
        self.lanes = config.pp_lanes
        layout = requant_in_layout(self.lanes, config.acc_width, 1)
        super().__init__(
            {
                "payload": In(layout),
                "valid": In(1),
                "ready": In(1),
                "zero_point": In(signed(8)),
                "act_min": In(signed(8)),
                "act_max": In(signed(8)),
                "pick": In(1),
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
            dut.i.valid.eq(self.valid),
            dut.o.ready.eq(self.ready),
            dut.zero_point.eq(self.zero_point),
            dut.act_min.eq(self.act_min),
            dut.act_max.eq(self.act_max),
        ]
        assume_stream_held(m, dut.i, "i")
        # per-tile constants: held for the whole run, and a legal clamp range
        consts = [self.zero_point, self.act_min, self.act_max]
        was = [past(m, v, name="const") for v in consts]
        with m.If(past_valid(m)):
            m.d.comb += [Assume(v == w) for v, w in zip(consts, was, strict=True)]
        m.d.comb += Assume(self.act_min <= self.act_max)
        for lane in range(self.lanes):
            m.d.comb += Assume(self.payload.shift[lane] >= -31)
            mult = self.payload.mult[lane]
            m.d.comb += Assume(Cat(*[mult == v for v in MULTIPLIERS]).any())

        take_in = dut.i.valid & dut.i.ready
        take_out = dut.o.valid & dut.o.ready
        tracking = Signal(name="tracking")  # the picked transfer is inside
        done = Signal(name="checked")  # it has left (only one is tracked per run)
        ahead = Signal(range(32), name="ahead")  # transfers inside before it, not yet out
        inside = Signal(range(32), name="inside")  # transfers inside the requantiser
        m.d.sync += inside.eq(inside + take_in - take_out)
        want = [Signal(signed(8), name=f"want{lane}") for lane in range(self.lanes)]
        want_tag = Signal(1, name="want_tag")
        p = self.payload
        now = [
            contract(
                m,
                p.acc[lane],
                p.bias[lane],
                p.mult[lane],
                p.shift[lane],
                self.zero_point,
                self.act_min,
                self.act_max,
                name=f"lane{lane}",
            )
            for lane in range(self.lanes)
        ]
        start = take_in & self.pick & ~tracking & ~done
        with m.If(start):
            m.d.sync += [tracking.eq(1), ahead.eq(inside - take_out), want_tag.eq(p.tag)]
            m.d.sync += [w.eq(v) for w, v in zip(want, now, strict=True)]
        leaving = tracking & take_out & (ahead == 0)
        with m.If(tracking & take_out & (ahead != 0)):
            m.d.sync += ahead.eq(ahead - 1)
        with m.If(leaving):
            m.d.sync += [tracking.eq(0), done.eq(1)]
        got = [dut.o.payload.value[lane] for lane in range(self.lanes)]
        if self.broken:  # an odd result of lane 0 comes out one too low
            got[0] = Mux(got[0][0], got[0] - 1, got[0])[:8].as_signed()
        with m.If(leaving):
            for lane in range(self.lanes):
                m.d.comb += Assert(got[lane] == want[lane], f"lane {lane} differs from contract")
            m.d.comb += Assert(dut.o.payload.tag == want_tag, "tag differs")
        # the tracked value took a non-trivial path: negative, not clamped, after a stall
        m.d.comb += Cover(
            leaving & (want[0] < -1) & (want[0] > self.act_min) & past(m, dut.o.valid & ~self.ready)
        )
        return m


def formal_checks(config: AccelConfig) -> list[FormalCheck]:
    """The requantiser's contract property for ``config``'s lanes and multiplier style."""
    req = Requantizer(
        lanes=config.pp_lanes, acc_width=config.acc_width, mul=config.pp_mul, mul_bits=LUT_MUL_BITS
    )
    req._MustUse__silence = True  # built only to read its latency
    depth = req.latency + 4
    return [
        FormalCheck(
            name=f"postproc.matches_contract_{config.pp_mul}",
            module="hw/postproc.py",
            statement=f"requantiser ({config.pp_lanes} lane(s), {config.pp_mul} multiplier): "
            "every output equals the TFLite int8 contract of its input",
            mode="bmc",
            depth=depth,
            harness=lambda broken: RequantHarness(config, config.pp_mul, broken),
            broken="odd results of lane 0 come out one too low",
        )
    ]
