"""TFLite int8 output stage (requantisation), pipelined, ``lanes`` values per transfer.

The arithmetic follows the contract written in `sim.golden` (TFLite
``MultiplyByQuantizedMultiplier``), split so that no stage holds more than one
carry chain (S6: two short ones)::

    S1   x  = sat32(acc + bias)                          (flag on saturation)
    S2   x  = sat32(x << max(shift, 0))                  (flag; overflow found by masks)
    MUL  h  = (x * multiplier + 2**30) >> 31             (34 bits, see below)
    S4   t  = min(h, INT32_MAX) + round_const(e, sign)   (e = max(-shift, 0), 0..32)
    S5   r  = clip(t >> e, -512, 511)                    (11-bit barrel shift; the clip
                                                       is decided from h in S4)
    S6   out = clamp(r + zero_point, act_min, act_max)   (int8)

SaturatingRoundingDoublingHighMul with TFLite's sign-dependent nudge equals
``floor((x*m + 2**30) / 2**31)`` for every int32 pair (the nudge ``1 - 2**30``
with truncation toward zero and ``2**30`` with flooring agree), saturated to
INT32_MAX in its one overflow case x == m == INT32_MIN. RoundingDivideByPOT
(ties away from zero) is ``(h + 2**(e-1) - (h < 0)) >> e`` for e > 0.
Clipping r to [-512, 511] before the zero point cannot change an int8 clamp.

Two multiplier styles (``mul``):

``dsp``
    MUL is two registered stages: the 64-bit product ``x * m`` (Yosys maps the
    ``*`` onto DSP blocks: 4 SB_MAC16 / MULT18X18D per lane), then the rounding
    ``h = p[31:] + p[30]``. One transfer per cycle (`interval` 1), `latency` 7.
``lut``
    MUL is a sequential shift-add multiplier per lane (no ``*`` between signals,
    so no DSP block): ``mul_bits`` multiplier bits per cycle are summed as
    AND-gated partial products in an adder tree into a right-shifting
    accumulator that starts at ``2**30 + m[31] * 2**31`` (the rounding nudge and
    the two's complement carry of the negative-weight bit 31, whose partial
    product is ``~x``). `interval` = ``32 / mul_bits`` cycles between accepted
    transfers; `latency` = ``interval + 6``. The lanes run in lockstep.

The per-tile constants ``zero_point``, ``act_min``, ``act_max`` are ports read
by S6 only (nothing is piped with them): the producer holds them stable from the
first input transfer of a tile until its last output transfer.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = [
    "Requantizer",
    "requant_in_layout",
    "requant_out_layout",
    "SHIFT_BITS",
    "MUL_STYLES",
]

SHIFT_BITS = 6
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: Multiplier styles of the `Requantizer` (``AccelConfig.pp_mul`` after resolution).
MUL_STYLES = ("dsp", "lut")
#: Right-shift exponents 0..32 (a signed 6-bit shift goes down to -32).
_E_BITS = 6
#: Width of the SRDHM result before saturation (h = 2**31 in the overflow case).
_H_BITS = 34
#: Width the rounded, shifted value is kept in before the zero point: values of magnitude
#: 512 or more are clipped to +-512 (+511), which cannot change an int8 clamp.
_CLIP_BITS = 11


def requant_in_layout(lanes: int, acc_width: int, tag_bits: int) -> data.StructLayout:
    """Per-transfer input: ``lanes`` accumulators with their channel parameters.

    ``acc`` signed(acc_width), ``bias``/``mult`` signed(32), ``shift`` signed(6)
    per lane; ``tag`` (``max(tag_bits, 1)`` bits) is carried through unchanged.
    """
    return data.StructLayout(
        {
            "acc": data.ArrayLayout(signed(acc_width), lanes),
            "bias": data.ArrayLayout(signed(32), lanes),
            "mult": data.ArrayLayout(signed(32), lanes),
            "shift": data.ArrayLayout(signed(SHIFT_BITS), lanes),
            "tag": max(tag_bits, 1),
        }
    )


def requant_out_layout(lanes: int, tag_bits: int) -> data.StructLayout:
    """Per-transfer output: ``lanes`` int8 results and the carried ``tag``."""
    return data.StructLayout({"value": data.ArrayLayout(signed(8), lanes), "tag": max(tag_bits, 1)})


def _tree_sum(m, terms, name):
    """Balanced tree of two-input adders (depth ceil(log2(len(terms)))).

    Every partial sum is a ``keep`` signal so Yosys maps each adder onto a carry
    chain (one LUT per bit on iCE40) instead of merging the tree into a
    carry-save multi-operand adder (two LUTs per bit and operand).
    """
    terms = list(terms)
    level = 0
    while len(terms) > 1:
        nxt = []
        for i in range(0, len(terms) - 1, 2):
            width = max(len(terms[i]), len(terms[i + 1])) + 1
            s = Signal(signed(width), name=f"{name}_{level}_{i // 2}", attrs={"keep": 1})
            m.d.comb += s.eq(terms[i] + terms[i + 1])
            nxt.append(s)
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
        level += 1
    return terms[0]


def _shr_low(value, amount, keep):
    """The low ``keep`` bits of ``value >> amount`` (arithmetic) as a barrel shifter whose
    levels keep only the bits later levels can still reach (fewer muxes than a full shift)."""
    for b in reversed(range(len(amount))):
        need = keep + (1 << b) - 1
        value = Mux(amount[b], value >> (1 << b), value)[: min(need, len(value))].as_signed()
    return value[:keep]


class Requantizer(wiring.Component):
    """``lanes`` parallel TFLite requantisers (see the module docstring for the stages).

    Streams in and out (valid/ready, no combinational path from ``i.valid`` to
    ``o.valid``; ``i.ready`` depends combinationally on ``o.ready``). A new
    transfer is accepted every `interval` cycles at best; its result is valid
    `latency` cycles after it was accepted, unless back-pressured.

    Parameters
    ----------
    lanes : int
        Values per transfer (1..64).
    acc_width : int
        Width of the incoming accumulators (16..48).
    tag_bits : int
        Bits carried alongside each transfer untouched.
    mul : str
        ``"dsp"`` (one 32x32 ``*`` per lane, one transfer per cycle) or ``"lut"``
        (sequential shift-add multiplier, no DSP block).
    mul_bits : int
        ``lut`` only: multiplier bits per cycle, a divisor of 32 in 1..16
        (partial products per cycle; `interval` = 32 / mul_bits).

    Attributes
    ----------
    i : In(stream.Signature(requant_in_layout(...)))
    o : Out(stream.Signature(requant_out_layout(...)))
    zero_point, act_min, act_max : In(signed(8))
        Per-tile constants read by the last stage; hold them while the tile's
        transfers are in flight.
    saturated : Out(1)
        Pulses when some lane of a transfer leaving S1 or S2 saturated (not part
        of TFLite, which leaves that overflow undefined).

    Raises
    ------
    ValueError
        For a parameter out of range (named with its value).
    """

    def __init__(
        self,
        *,
        lanes: int,
        acc_width: int = 32,
        tag_bits: int = 1,
        mul: str = "dsp",
        mul_bits: int = 4,
    ) -> None:
        if isinstance(lanes, bool) or not isinstance(lanes, int) or not 1 <= lanes <= 64:
            raise ValueError(f"lanes must be an int in [1, 64], got {lanes!r}")
        if isinstance(acc_width, bool) or not isinstance(acc_width, int):
            raise ValueError(f"acc_width must be an int in [16, 48], got {acc_width!r}")
        if not 16 <= acc_width <= 48:
            raise ValueError(f"acc_width must be an int in [16, 48], got {acc_width!r}")
        if mul not in MUL_STYLES:
            raise ValueError(f"mul must be one of {MUL_STYLES}, got {mul!r}")
        if mul_bits not in (1, 2, 4, 8, 16):
            raise ValueError(f"mul_bits must be a divisor of 32 in [1, 16], got {mul_bits!r}")
        self.lanes, self.acc_width, self.tag_bits = lanes, acc_width, tag_bits
        self.mul, self.mul_bits = mul, mul_bits
        super().__init__(
            {
                "i": In(stream.Signature(requant_in_layout(lanes, acc_width, tag_bits))),
                "o": Out(stream.Signature(requant_out_layout(lanes, tag_bits))),
                "zero_point": In(signed(8)),
                "act_min": In(signed(8)),
                "act_max": In(signed(8)),
                "saturated": Out(1),
            }
        )

    @property
    def interval(self) -> int:
        """Cycles between accepted transfers at full speed (dsp: 1, lut: 32 / mul_bits)."""
        return 1 if self.mul == "dsp" else 32 // self.mul_bits

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to its output being valid (no back-pressure)."""
        return 7 if self.mul == "dsp" else self.interval + 6

    def elaborate(self, platform):
        m = Module()
        n = self.lanes
        p = self.i.payload
        tag_shape = p.tag.shape()

        # -- flow control: back segment (S4..S6), MUL, front segment (S1, S2) -----------
        adv_b = Signal()  # S4..S6 (and, for dsp, the two MUL stages) advance together
        m.d.comb += adv_b.eq(~(self.o.valid & ~self.o.ready))
        mul_free = Signal()  # MUL takes the item in S2 this cycle (if there is one)
        adv_f = Signal()  # S1, S2 advance
        v1, v2 = Signal(name="v1"), Signal(name="v2")
        t1, t2 = Signal(tag_shape, name="t1"), Signal(tag_shape, name="t2")
        m.d.comb += [adv_f.eq(~(v2 & ~mul_free)), self.i.ready.eq(adv_f)]
        with m.If(adv_f):
            m.d.sync += [v1.eq(self.i.valid), t1.eq(p.tag), v2.eq(v1), t2.eq(t1)]

        # per-lane values entering the back segment (from MUL)
        hv = Signal(name="hv")
        ht = Signal(tag_shape, name="ht")
        h_lane = [Signal(signed(_H_BITS), name=f"l{ln}_h") for ln in range(n)]
        he_lane = [Signal(_E_BITS, name=f"l{ln}_he") for ln in range(n)]

        sat1, sat2 = [], []
        x2_lane, m2_lane, e2_lane = [], [], []
        for ln in range(n):
            # S1: x = sat32(acc + bias); split the shift into left and right parts
            x1 = Signal(signed(32), name=f"l{ln}_x1")
            s1 = Signal(name=f"l{ln}_sat1")
            left1 = Signal(5, name=f"l{ln}_left1")
            e1 = Signal(_E_BITS, name=f"l{ln}_e1")
            m1 = Signal(signed(32), name=f"l{ln}_m1")
            total = Signal(signed(max(self.acc_width, 32) + 1), name=f"l{ln}_sum")
            m.d.comb += total.eq(p.acc[ln] + p.bias[ln])
            top = total[31:]  # sat32 is exact iff every bit from 31 up equals the sign
            fits = (top == 0) | (top == Const(-1, len(top)).as_unsigned())
            sh = p.shift[ln]
            with m.If(adv_f):
                m.d.sync += [
                    x1.eq(Mux(fits, total, Mux(total[-1], INT32_MIN, INT32_MAX))),
                    s1.eq(~fits),
                    left1.eq(Mux(sh[-1], 0, sh[:5])),
                    e1.eq(Mux(sh[-1], -sh, 0)),
                    m1.eq(p.mult[ln]),
                ]
            # S2: x = sat32(x << left); overflow iff bits 31-left..30 differ from the sign
            x2 = Signal(signed(32), name=f"l{ln}_x2")
            s2 = Signal(name=f"l{ln}_sat2")
            e2 = Signal(_E_BITS, name=f"l{ln}_e2")
            m2 = Signal(signed(32), name=f"l{ln}_m2")
            ones = Const((1 << 31) - 1, 31)
            top_mask = Signal(31, name=f"l{ln}_topmask")  # bits 31-left..30
            m.d.comb += top_mask.eq(~(ones >> left1))
            sign = x1[31]
            over = ((x1[:31] ^ sign.replicate(31)) & top_mask).any()
            with m.If(adv_f):
                m.d.sync += [
                    x2.eq(Mux(over, Mux(sign, INT32_MIN, INT32_MAX), (x1 << left1)[:32])),
                    s2.eq(over),
                    e2.eq(e1),
                    m2.eq(m1),
                ]
            sat1.append(s1)
            sat2.append(s2)
            x2_lane.append(x2)
            m2_lane.append(m2)
            e2_lane.append(e2)

        if self.mul == "dsp":
            dv, dt, dh, de = self._mul_dsp(m, adv_b, mul_free, v2, t2, x2_lane, m2_lane, e2_lane)
            m.d.comb += [hv.eq(dv), ht.eq(dt)]
            for ln in range(n):
                m.d.comb += [h_lane[ln].eq(dh[ln]), he_lane[ln].eq(de[ln])]
        else:
            self._mul_lut(
                m, adv_b, mul_free, v2, t2, x2_lane, m2_lane, e2_lane, hv, ht, h_lane, he_lane
            )

        # -- back segment ----------------------------------------------------------------
        v4, v5, v6 = Signal(name="v4"), Signal(name="v5"), Signal(name="v6")
        t4, t5, t6 = (Signal(tag_shape, name=f"t{s}") for s in (4, 5, 6))
        with m.If(adv_b):
            m.d.sync += [v4.eq(hv), t4.eq(ht), v5.eq(v4), t5.eq(t4), v6.eq(v5), t6.eq(t5)]
        lo, hi = self.act_min, self.act_max
        for ln in range(n):
            h = h_lane[ln]
            e = he_lane[ln]
            # S4: saturate SRDHM (only h == 2**31 can overflow), add the rounding constant
            hs = Signal(signed(32), name=f"l{ln}_hs")
            m.d.comb += hs.eq(Mux(~h[-1] & h[31:].any(), INT32_MAX, h[:32]))
            mask = Signal(33, name=f"l{ln}_mask")  # 2**e - 1
            m.d.comb += mask.eq(~(Const((1 << 33) - 1, 33) << e))
            rc = Signal(32, name=f"l{ln}_rc")  # 2**(e-1) (h >= 0) or 2**(e-1) - 1, 0 for e == 0
            m.d.comb += rc.eq(Mux(hs[31], mask >> 1, mask ^ (mask >> 1)))
            # |r| >= 2**(_CLIP_BITS - 2) for sure when hs has a non-sign bit at e + 9 or up;
            # otherwise r = round(hs / 2**e) lies in [-512, 512] and fits _CLIP_BITS bits
            hi_mask = Signal(32, name=f"l{ln}_himask")  # bits >= e + 9
            m.d.comb += hi_mask.eq(~Cat(Const(0x1FF, 9), mask)[:32])
            t = Signal(signed(34), name=f"l{ln}_t")
            e4 = Signal(_E_BITS, name=f"l{ln}_e4")
            big = Signal(name=f"l{ln}_big")
            neg = Signal(name=f"l{ln}_neg")
            with m.If(adv_b):
                m.d.sync += [
                    t.eq(hs + rc),
                    e4.eq(e),
                    big.eq(((hs ^ hs[31].replicate(32)) & hi_mask).any()),
                    neg.eq(hs[31]),
                ]
            # S5: arithmetic shift right by e (only the low bits are kept), clip
            r = Signal(signed(_CLIP_BITS), name=f"l{ln}_r")
            m.d.comb += r.eq(_shr_low(t, e4, _CLIP_BITS))
            lim = 1 << (_CLIP_BITS - 2)
            v = Signal(signed(_CLIP_BITS), name=f"l{ln}_v")
            with m.If(adv_b):
                m.d.sync += v.eq(Mux(big, Mux(neg, -lim, lim - 1), r))
            # S6: + zero point, clamp to [act_min, act_max]
            z = Signal(signed(_CLIP_BITS + 1), name=f"l{ln}_z")
            m.d.comb += z.eq(v + self.zero_point)
            out = Signal(signed(8), name=f"l{ln}_out")
            with m.If(adv_b):
                m.d.sync += out.eq(Mux(z < lo, lo, Mux(z > hi, hi, z[:8])))
            m.d.comb += self.o.payload.value[ln].eq(out)

        m.d.comb += [self.o.valid.eq(v6), self.o.payload.tag.eq(t6)]
        m.d.comb += self.saturated.eq(adv_f & ((v1 & Cat(*sat1).any()) | (v2 & Cat(*sat2).any())))
        return m

    # -- multiplier styles -------------------------------------------------------------
    def _mul_dsp(self, m, adv_b, mul_free, v2, t2, x2_lane, m2_lane, e2_lane):
        """Two stages advancing with the back segment: product, then rounding.

        Returns the valid, tag, per-lane h (signed 34) and exponent signals of the
        second stage.
        """
        m.d.comb += mul_free.eq(adv_b)
        v3, v3b = Signal(name="v3"), Signal(name="v3b")
        t3, t3b = Signal(t2.shape(), name="t3"), Signal(t2.shape(), name="t3b")
        with m.If(adv_b):
            m.d.sync += [v3.eq(v2), t3.eq(t2), v3b.eq(v3), t3b.eq(t3)]
        hs, es = [], []
        for ln, (x2, m2, e2) in enumerate(zip(x2_lane, m2_lane, e2_lane, strict=True)):
            prod = Signal(signed(64), name=f"l{ln}_prod")
            e3 = Signal(_E_BITS, name=f"l{ln}_e3")
            h = Signal(signed(_H_BITS), name=f"l{ln}_h3")
            e3b = Signal(_E_BITS, name=f"l{ln}_e3b")
            with m.If(adv_b):
                m.d.sync += [
                    prod.eq(x2 * m2),
                    e3.eq(e2),
                    h.eq(prod[31:].as_signed() + prod[30]),
                    e3b.eq(e3),
                ]
            hs.append(h)
            es.append(e3b)
        return v3b, t3b, hs, es

    def _mul_lut(self, m, adv_b, mul_free, v2, t2, x2_lane, m2_lane, e2_lane, hv, ht, h_lane, he):
        """Sequential shift-add multiplier per lane, lanes in lockstep, no ``*``."""
        r = self.mul_bits
        steps = 32 // r
        width = 34 + r  # accumulator: |acc + x * digit| < 2**32 + 2**(31 + r)
        busy = Signal(name="mul_busy")
        count = Signal(range(steps), name="mul_count")
        last = Signal(name="mul_last")
        out_free = Signal()
        finish = Signal()
        load = Signal()
        tw = Signal(t2.shape(), name="mul_tag")
        m.d.comb += [
            last.eq(busy & (count == steps - 1)),
            out_free.eq(~hv | adv_b),
            finish.eq(last & out_free),
            mul_free.eq(~busy | finish),
            load.eq(v2 & mul_free),
        ]
        with m.If(busy & ~last):
            m.d.sync += count.eq(count + 1)
        with m.If(finish):
            m.d.sync += [busy.eq(0), hv.eq(1), ht.eq(tw)]
        with m.Elif(hv & adv_b):
            m.d.sync += hv.eq(0)
        with m.If(load):
            m.d.sync += [busy.eq(1), count.eq(0), tw.eq(t2)]
        for ln, (x2, m2, e2) in enumerate(zip(x2_lane, m2_lane, e2_lane, strict=True)):
            xr = Signal(signed(32), name=f"l{ln}_mx")
            mr = Signal(32, name=f"l{ln}_mm")
            acc = Signal(signed(width), name=f"l{ln}_macc")
            ew = Signal(_E_BITS, name=f"l{ln}_me")
            # partial products of this step; bit 31 (the last step's top bit) weighs -2**31:
            # -x = ~x + 1, the +1 (times 2**31) is in the initial accumulator
            terms = [acc]
            for j in range(r):
                xx = (xr ^ last.replicate(32))[:32] if j == r - 1 else xr
                terms.append(Mux(mr[j], xx.as_signed(), 0) << j)
            total = Signal(signed(width + 1), name=f"l{ln}_msum")
            m.d.comb += total.eq(_tree_sum(m, terms, f"l{ln}_pp"))
            with m.If(busy & ~last):
                m.d.sync += [acc.eq(total >> r), mr.eq(mr >> r)]
            with m.If(finish):
                m.d.sync += [h_lane[ln].eq(total >> (r - 1)), he[ln].eq(ew)]
            with m.If(load):
                m.d.sync += [
                    xr.eq(x2),
                    mr.eq(m2),
                    acc.eq(Cat(Const(0, 30), Const(1, 1), m2[31])),
                    ew.eq(e2),
                ]
