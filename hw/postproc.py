"""TFLite int8 output stage (requantisation), pipelined, ``lanes`` values per cycle.

The arithmetic follows the contract written in `sim.golden` (TFLite
``MultiplyByQuantizedMultiplier``), stage by stage::

    S1  x  = sat32(acc + bias)                        (flag on saturation)
    S2  x  = sat32(x << max(shift, 0))                (flag on saturation)
    S3  p  = x * multiplier                           (64-bit product)
    S4  h  = INT32_MAX if x == m == INT32_MIN else trunc((p + nudge) / 2**31)
    S5  r  = RoundingDivideByPOT(h, max(-shift, 0))   (ties away from zero)
    S6  out = clamp(r + zero_point, act_min, act_max) (int8)
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Requantizer", "requant_in_layout", "requant_out_layout", "SHIFT_BITS"]

SHIFT_BITS = 6
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def requant_in_layout(lanes: int, acc_width: int, tag_bits: int) -> data.StructLayout:
    """Per-transfer input: ``lanes`` accumulators with their channel parameters.

    ``acc`` signed(acc_width), ``bias``/``mult`` signed(32), ``shift`` signed(6)
    per lane; ``zero_point``, ``act_min``, ``act_max`` signed(8) shared; ``tag``
    is carried through unchanged (e.g. row/last markers).
    """
    return data.StructLayout(
        {
            "acc": data.ArrayLayout(signed(acc_width), lanes),
            "bias": data.ArrayLayout(signed(32), lanes),
            "mult": data.ArrayLayout(signed(32), lanes),
            "shift": data.ArrayLayout(signed(SHIFT_BITS), lanes),
            "zero_point": signed(8),
            "act_min": signed(8),
            "act_max": signed(8),
            "tag": max(tag_bits, 1),
        }
    )


def requant_out_layout(lanes: int, tag_bits: int) -> data.StructLayout:
    """Per-transfer output: ``lanes`` int8 results and the carried ``tag``."""
    return data.StructLayout({"value": data.ArrayLayout(signed(8), lanes), "tag": max(tag_bits, 1)})


class Requantizer(wiring.Component):
    """``lanes`` parallel TFLite requantisers in a 6-stage pipeline.

    Streams in and out (valid/ready). The pipeline advances when its output is
    not blocked, so ``i.ready`` is ``~(o.valid & ~o.ready)``. Throughput one
    transfer per cycle; `latency` cycles from input transfer to output valid.

    Parameters
    ----------
    lanes : int
        Values per transfer (1..64).
    acc_width : int
        Width of the incoming accumulators (16..48), sign-extended to 33+ bits.
    tag_bits : int
        Bits carried alongside each transfer untouched.

    Attributes
    ----------
    i : In(stream.Signature(requant_in_layout(...)))
    o : Out(stream.Signature(requant_out_layout(...)))
    saturated : Out(1)
        Pulses for one cycle when some lane saturated in S1 or S2 (not part of
        TFLite, which leaves that overflow undefined).
    """

    def __init__(self, *, lanes: int, acc_width: int = 32, tag_bits: int = 1) -> None:
        if not isinstance(lanes, int) or not 1 <= lanes <= 64:
            raise ValueError(f"lanes must be an int in [1, 64], got {lanes!r}")
        if not isinstance(acc_width, int) or not 16 <= acc_width <= 48:
            raise ValueError(f"acc_width must be an int in [16, 48], got {acc_width!r}")
        self.lanes, self.acc_width, self.tag_bits = lanes, acc_width, tag_bits
        super().__init__(
            {
                "i": In(stream.Signature(requant_in_layout(lanes, acc_width, tag_bits))),
                "o": Out(stream.Signature(requant_out_layout(lanes, tag_bits))),
                "saturated": Out(1),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output being valid (pipeline stages)."""
        return 6

    def elaborate(self, platform):
        m = Module()
        n = self.lanes
        advance = Signal()
        m.d.comb += [
            advance.eq(~(self.o.valid & ~self.o.ready)),
            self.i.ready.eq(advance),
        ]
        stages = self.latency
        valid = [Signal(name=f"valid{s}") for s in range(1, stages + 1)]
        tag = [Signal(self.i.payload.tag.shape(), name=f"tag{s}") for s in range(1, stages + 1)]
        shared = ("zero_point", "act_min", "act_max")
        zp_like = [
            {k: Signal(signed(8), name=f"{k}{s}") for k in shared} for s in range(1, stages + 1)
        ]
        with m.If(advance):
            m.d.sync += [valid[0].eq(self.i.valid), tag[0].eq(self.i.payload.tag)]
            for k in shared:
                m.d.sync += zp_like[0][k].eq(self.i.payload[k])
            for s in range(1, stages):
                m.d.sync += [valid[s].eq(valid[s - 1]), tag[s].eq(tag[s - 1])]
                for k in shared:
                    m.d.sync += zp_like[s][k].eq(zp_like[s - 1][k])

        sat_any = []
        outs = []
        for lane in range(n):
            p = self.i.payload
            # S1: x = sat32(acc + bias); split the shift
            s1_x = Signal(signed(32), name=f"l{lane}_s1_x")
            s1_sat = Signal(name=f"l{lane}_s1_sat")
            s1_left = Signal(range(32), name=f"l{lane}_s1_left")
            s1_right = Signal(range(33), name=f"l{lane}_s1_right")
            s1_mult = Signal(signed(32), name=f"l{lane}_s1_mult")
            total = Signal(signed(max(self.acc_width, 32) + 1), name=f"l{lane}_sum")
            m.d.comb += total.eq(p.acc[lane] + p.bias[lane])
            sh = p.shift[lane]
            with m.If(advance):
                with m.If(total > INT32_MAX):
                    m.d.sync += [s1_x.eq(INT32_MAX), s1_sat.eq(self.i.valid)]
                with m.Elif(total < INT32_MIN):
                    m.d.sync += [s1_x.eq(INT32_MIN), s1_sat.eq(self.i.valid)]
                with m.Else():
                    m.d.sync += [s1_x.eq(total), s1_sat.eq(0)]
                m.d.sync += [
                    s1_left.eq(Mux(sh > 0, sh.as_unsigned(), 0)),
                    s1_right.eq(Mux(sh < 0, -sh, 0)),
                    s1_mult.eq(p.mult[lane]),
                ]
            # S2: x = sat32(x << left)
            s2_x = Signal(signed(32), name=f"l{lane}_s2_x")
            s2_sat = Signal(name=f"l{lane}_s2_sat")
            s2_right = Signal.like(s1_right, name=f"l{lane}_s2_right")
            s2_mult = Signal(signed(32), name=f"l{lane}_s2_mult")
            shifted = Signal(signed(64), name=f"l{lane}_shifted")
            m.d.comb += shifted.eq(s1_x << s1_left)
            with m.If(advance):
                with m.If(shifted > INT32_MAX):
                    m.d.sync += [s2_x.eq(INT32_MAX), s2_sat.eq(valid[0])]
                with m.Elif(shifted < INT32_MIN):
                    m.d.sync += [s2_x.eq(INT32_MIN), s2_sat.eq(valid[0])]
                with m.Else():
                    m.d.sync += [s2_x.eq(shifted), s2_sat.eq(0)]
                m.d.sync += [s2_right.eq(s1_right), s2_mult.eq(s1_mult)]
            # S3: 64-bit product, note the one saturating SRDHM case
            s3_p = Signal(signed(64), name=f"l{lane}_s3_p")
            s3_special = Signal(name=f"l{lane}_s3_special")
            s3_right = Signal.like(s1_right, name=f"l{lane}_s3_right")
            with m.If(advance):
                m.d.sync += [
                    s3_p.eq(s2_x * s2_mult),
                    s3_special.eq((s2_x == INT32_MIN) & (s2_mult == INT32_MIN)),
                    s3_right.eq(s2_right),
                ]
            # S4: h = trunc((p + nudge) / 2**31), saturating case -> INT32_MAX
            s4_h = Signal(signed(32), name=f"l{lane}_s4_h")
            s4_right = Signal.like(s1_right, name=f"l{lane}_s4_right")
            nudged = Signal(signed(65), name=f"l{lane}_nudged")
            toward_zero = Signal(signed(66), name=f"l{lane}_tz")
            m.d.comb += [
                nudged.eq(s3_p + Mux(s3_p >= 0, 1 << 30, 1 - (1 << 30))),
                toward_zero.eq(nudged + Mux(nudged < 0, (1 << 31) - 1, 0)),
            ]
            with m.If(advance):
                m.d.sync += [
                    s4_h.eq(Mux(s3_special, INT32_MAX, toward_zero >> 31)),
                    s4_right.eq(s3_right),
                ]
            # S5: RoundingDivideByPOT(h, right)
            s5_r = Signal(signed(32), name=f"l{lane}_s5_r")
            mask = Signal(33, name=f"l{lane}_mask")
            remainder = Signal(33, name=f"l{lane}_rem")
            threshold = Signal(33, name=f"l{lane}_thr")
            m.d.comb += [
                mask.eq((Const(1, 34) << s4_right) - 1),
                remainder.eq(s4_h.as_unsigned() & mask),
                threshold.eq((mask >> 1) + (s4_h < 0)),
            ]
            with m.If(advance):
                m.d.sync += s5_r.eq((s4_h >> s4_right) + (remainder > threshold))
            # S6: + zero point, clamp
            s6_v = Signal(signed(8), name=f"l{lane}_s6_v")
            with_zp = Signal(signed(34), name=f"l{lane}_zp")
            m.d.comb += with_zp.eq(s5_r + zp_like[4]["zero_point"])
            lo, hi = zp_like[4]["act_min"], zp_like[4]["act_max"]
            with m.If(advance):
                with m.If(with_zp < lo):
                    m.d.sync += s6_v.eq(lo)
                with m.Elif(with_zp > hi):
                    m.d.sync += s6_v.eq(hi)
                with m.Else():
                    m.d.sync += s6_v.eq(with_zp)
            outs.append(s6_v)
            sat_any.append((s1_sat & valid[0]) | (s2_sat & valid[1]))

        for lane, v in enumerate(outs):
            m.d.comb += self.o.payload.value[lane].eq(v)
        m.d.comb += [
            self.o.valid.eq(valid[-1]),
            self.o.payload.tag.eq(tag[-1]),
        ]
        sat = 0
        for s in sat_any:
            sat = sat | s
        m.d.comb += self.saturated.eq(sat & advance)
        return m
