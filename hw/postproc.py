"""TFLite int8 output stage (requantisation), pipelined, ``lanes`` values per transfer.

The arithmetic follows the contract written in `sim.golden` (TFLite
``MultiplyByQuantizedMultiplier``), split so that no stage holds more than one
carry chain (S6: two short ones)::

    S1   s  = acc + bias                                 (one carry chain)
    S2   x  = sat32(sat32(s) << max(shift, 0))           (flags; overflow found by masks)
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
    MUL is two registered stages: the four 16x16 partial products of ``x * m``
    (one SB_MAC16 / MULT18X18D each, 4 per lane, registered at the blocks'
    outputs), then their sum rounded to the high half ``h = (x*m + 2**30) >> 31``.
    One transfer per cycle (`interval` 1), `latency` 7.
``lut``
    MUL is a sequential shift-add multiplier per lane (no ``*`` between signals,
    so no DSP block) working on the item held in S2, in overlapped stages:
    PP sums the ``mul_bits`` AND-gated partial products of one digit of m (a
    tree of two-input adders, one registered level per stage), ACC adds that into a right-shifting
    accumulator (one carry chain) that starts at ``2**30 + m[31] * 2**31`` (the
    rounding nudge and the two's complement carry of the negative-weight bit 31,
    whose partial product is ``~x``). `interval` = ``32 / mul_bits`` cycles
    between accepted transfers; `latency` = ``interval + levels + 5`` with
    ``levels = max(1, ceil(log2(mul_bits)))`` registered adder-tree levels.
    The lanes run in lockstep.

The per-tile constants ``zero_point``, ``act_min``, ``act_max`` are ports read
by S6 only (nothing is piped with them): the producer holds them stable from the
first input transfer of a tile until its last output transfer.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .isa import SHIFT_BITS

__all__ = [
    "Requantizer",
    "requant_in_layout",
    "requant_out_layout",
    "MUL_STYLES",
]

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


def _pot_mask(e):
    """``2**e - 1`` on 33 bits for e in 0..32 (logic only, no carry chain)."""
    return ~(Const((1 << 33) - 1, 33) << e)[:33]


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
    ``o.valid``; ``i.ready`` depends combinationally on ``o.ready`` for ``dsp`` and
    is a register (S1 empty) for ``lut``). A new
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
        return 7 if self.mul == "dsp" else self.interval + self._pp_levels + 5

    def elaborate(self, platform):
        m = Module()
        n = self.lanes
        p = self.i.payload
        tag_shape = p.tag.shape()

        # -- flow control: back segment (S4..S6), MUL, front segment (S1, S2) -----------
        adv_b = Signal()  # S4..S6 (and, for dsp, the two MUL stages) advance together
        m.d.comb += adv_b.eq(~(self.o.valid & ~self.o.ready))
        mul_free = Signal()  # MUL takes the item in S2 this cycle (if there is one)
        v1, v2 = Signal(name="v1"), Signal(name="v2")
        t1, t2 = Signal(tag_shape, name="t1"), Signal(tag_shape, name="t2")
        en1 = Signal()  # S1 loads from the input (taking it when i.valid)
        en2 = Signal()  # S2 loads from S1
        if self.mul == "dsp":
            # one transfer per cycle: S1 and S2 advance together with the multiplier
            m.d.comb += [en1.eq(mul_free), en2.eq(mul_free), self.i.ready.eq(mul_free)]
            with m.If(mul_free):
                m.d.sync += [v1.eq(self.i.valid), v2.eq(v1)]
        else:
            # one transfer per `interval` cycles: S1 takes an item only when empty, so
            # ``i.ready`` is a register (~v1) and no ready path runs through the
            # multiplier's step logic; S1 refills while the multiplier works
            m.d.comb += [
                en1.eq(~v1),
                en2.eq(v1 & (~v2 | mul_free)),
                self.i.ready.eq(~v1),
            ]
            with m.If(en1):
                m.d.sync += v1.eq(self.i.valid)
            with m.Elif(en2):
                m.d.sync += v1.eq(0)
            with m.If(en2):
                m.d.sync += v2.eq(1)
            with m.Elif(mul_free):
                m.d.sync += v2.eq(0)
        with m.If(en1):
            m.d.sync += t1.eq(p.tag)
        with m.If(en2):
            m.d.sync += t2.eq(t1)

        # per-lane values entering the back segment (from MUL)
        hv = Signal(name="hv")
        ht = Signal(tag_shape, name="ht")
        h_lane = [Signal(signed(_H_BITS), name=f"l{ln}_h") for ln in range(n)]
        he_lane = [Signal(_E_BITS, name=f"l{ln}_he") for ln in range(n)]
        hm_lane = [Signal(33, name=f"l{ln}_hmask") for ln in range(n)]

        sat1, sat2, x2_lane, m2_lane, e2_lane = self._front(m, en1, en2)

        if self.mul == "dsp":
            dv, dt, dh, de, dm = self._mul_dsp(
                m, adv_b, mul_free, v2, t2, x2_lane, m2_lane, e2_lane
            )
            m.d.comb += [hv.eq(dv), ht.eq(dt)]
            for ln in range(n):
                m.d.comb += [
                    h_lane[ln].eq(dh[ln]),
                    he_lane[ln].eq(de[ln]),
                    hm_lane[ln].eq(dm[ln]),
                ]
        else:
            self._mul_lut(
                m,
                adv_b,
                mul_free,
                v2,
                t2,
                x2_lane,
                m2_lane,
                e2_lane,
                hv,
                ht,
                h_lane,
                he_lane,
                hm_lane,
            )

        self._back(m, adv_b, hv, ht, h_lane, he_lane, hm_lane)

        # an item leaves S1 when S2 loads, S2 when the multiplier takes it
        leave1, leave2 = v1 & en2, v2 & mul_free
        m.d.comb += self.saturated.eq((leave1 & Cat(*sat1).any()) | (leave2 & Cat(*sat2).any()))
        return m

    def _front(self, m, en1, en2):
        """S1 (acc + bias) and S2 (saturate, shift left) of every lane; S1 loads on ``en1``,
        S2 on ``en2``. Returns per-lane S1/S2 saturation flags and the x, multiplier and
        right-shift exponent that leave S2."""
        n, p = self.lanes, self.i.payload
        sat1, sat2 = [], []
        x2_lane, m2_lane, e2_lane = [], [], []
        for ln in range(n):
            # S1: acc + bias (one carry chain, nothing after it: the saturation to 32
            # bits is decided in S2); split the shift into left and right parts
            total = Signal(signed(max(self.acc_width, 32) + 1), name=f"l{ln}_sum")
            left1 = Signal(5, name=f"l{ln}_left1")
            e1 = Signal(_E_BITS, name=f"l{ln}_e1")
            m1 = Signal(signed(32), name=f"l{ln}_m1")
            top_mask = Signal(31, name=f"l{ln}_topmask")  # bits 31-left..30, for S2
            sh = p.shift[ln]
            with m.If(en1):
                m.d.sync += [
                    total.eq(p.acc[ln] + p.bias[ln]),
                    left1.eq(Mux(sh[-1], 0, sh[:5])),
                    top_mask.eq(Mux(sh[-1], 0, ~(Const((1 << 31) - 1, 31) >> sh[:5]))),
                    e1.eq(Mux(sh[-1], -sh, 0)),
                    m1.eq(p.mult[ln]),
                ]
            # S2: x = sat32(sat32(sum) << left); overflow iff bits 31-left..30 differ from
            # the sign.
            top = total[31:]  # sat32 is exact iff every bit from 31 up equals the sign
            fits = (top == 0) | (top == Const(-1, len(top)).as_unsigned())
            s1 = Signal(name=f"l{ln}_sat1")
            x1 = Signal(signed(32), name=f"l{ln}_x1")
            m.d.comb += [
                s1.eq(~fits),
                x1.eq(Mux(fits, total[:32], Mux(total[-1], INT32_MIN, INT32_MAX))),
            ]
            # The shift and the overflow test are registered side by side; the
            # saturating mux sits in front of the multiplier (one LUT level).
            xs2 = Signal(signed(32), name=f"l{ln}_xs2")
            s2 = Signal(name=f"l{ln}_sat2")
            neg2 = Signal(name=f"l{ln}_neg2")
            e2 = Signal(_E_BITS, name=f"l{ln}_e2")
            m2 = Signal(signed(32), name=f"l{ln}_m2")
            sign = x1[31]
            over = ((x1[:31] ^ sign.replicate(31)) & top_mask).any()
            with m.If(en2):
                m.d.sync += [
                    xs2.eq((x1 << left1)[:32]),
                    s2.eq(over),
                    neg2.eq(sign),
                    e2.eq(e1),
                    m2.eq(m1),
                ]
            x2 = Signal(signed(32), name=f"l{ln}_x2")
            m.d.comb += x2.eq(Mux(s2, Mux(neg2, INT32_MIN, INT32_MAX), xs2))
            sat1.append(s1)
            sat2.append(s2)
            x2_lane.append(x2)
            m2_lane.append(m2)
            e2_lane.append(e2)
        return sat1, sat2, x2_lane, m2_lane, e2_lane

    def _back(self, m, adv_b, hv, ht, h_lane, he_lane, hm_lane):
        """S4..S6 of every lane on the multiplier's h (rounding, right shift, clip, zero
        point, clamp), advancing on ``adv_b``; drives ``o``."""
        n = self.lanes
        tag_shape = ht.shape()
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
            mask = hm_lane[ln]  # 2**e - 1, registered with h
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

    # -- multiplier styles -------------------------------------------------------------
    def _mul_dsp(self, m, adv_b, mul_free, v2, t2, x2_lane, m2_lane, e2_lane):
        """Two registered stages advancing with the back segment:

        P  the four 16x16 partial products of ``x * m`` (``lo`` halves unsigned, ``hi``
           halves signed), one DSP block each, registered at the blocks' outputs (no
           adder behind a DSP block in the same cycle, so the blocks may sit far from
           the logic).
        H  ``h = ({hh, ll} + 2**30 + ((lh + hl) << 16)) >> 31`` (34 bits): the outer
           products do not overlap, so they only need concatenating.

        Returns the valid, tag, per-lane h (signed 34), exponent and ``2**e - 1``
        mask signals of stage H.
        """
        m.d.comb += mul_free.eq(adv_b)
        vp, vh = Signal(name="v3p"), Signal(name="v3h")
        tp, th = Signal(t2.shape(), name="t3p"), Signal(t2.shape(), name="t3h")
        with m.If(adv_b):
            m.d.sync += [vp.eq(v2), tp.eq(t2), vh.eq(vp), th.eq(tp)]
        hs, es, ms = [], [], []
        for ln, (x2, m2, e2) in enumerate(zip(x2_lane, m2_lane, e2_lane, strict=True)):
            ep = Signal(_E_BITS, name=f"l{ln}_e3p")
            eh = Signal(_E_BITS, name=f"l{ln}_e3h")
            ll = Signal(32, name=f"l{ln}_pp_ll")
            lh = Signal(signed(33), name=f"l{ln}_pp_lh")
            hl = Signal(signed(33), name=f"l{ln}_pp_hl")
            hh = Signal(signed(32), name=f"l{ln}_pp_hh")
            h = Signal(signed(_H_BITS), name=f"l{ln}_h3")
            mask = Signal(33, name=f"l{ln}_mask3")
            x_lo, x_hi = x2[:16], x2[16:].as_signed()
            m_lo, m_hi = m2[:16], m2[16:].as_signed()
            full = Signal(signed(65), name=f"l{ln}_full")  # x * m + 2**30
            m.d.comb += full.eq(Cat(ll, hh).as_signed() + (1 << 30) + ((lh + hl) << 16))
            with m.If(adv_b):
                m.d.sync += [
                    ll.eq(x_lo * m_lo),
                    lh.eq(x_lo * m_hi),
                    hl.eq(x_hi * m_lo),
                    hh.eq(x_hi * m_hi),
                    ep.eq(e2),
                    h.eq(full[31:64].as_signed()),
                    eh.eq(ep),
                    mask.eq(_pot_mask(ep)),
                ]
            hs.append(h)
            es.append(eh)
            ms.append(mask)
        return vh, th, hs, es, ms

    def _mul_lut(
        self, m, adv_b, mul_free, v2, t2, x2_lane, m2_lane, e2_lane, hv, ht, h_lane, he, hm
    ):
        """Sequential shift-add multiplier per lane, lanes in lockstep, no ``*``.

        Works on the item held in S2, one digit of ``mul_bits`` multiplier bits per
        cycle (S2's m shifts right by a digit each cycle; S2 is released after the
        last digit). PP: the AND-gated partial products of the digit are summed by
        a tree of two-input adders, one registered level per stage
        (`_pp_levels` stages). ACC adds the sum into a right-shifting accumulator
        (one carry chain) started at ``2**30 + m[31] * 2**31`` on the first digit.
        PP of the next item overlaps ACC of the previous one, so a new item starts
        every ``32 / mul_bits`` cycles.
        """
        r = self.mul_bits
        steps = 32 // r
        width = 34 + r  # accumulator: |acc + x * digit| < 2**32 + 2**(31 + r)
        k = Signal(range(steps), name="mul_k")  # digit of the item in S2
        k_last = Signal(name="mul_k_last")
        step = Signal(name="mul_step")  # the PP stages and ACC advance
        m.d.comb += [k_last.eq(k == steps - 1), mul_free.eq(step & k_last)]
        with m.If(step & v2):
            m.d.sync += k.eq(Mux(k_last, 0, k + 1))
        # shared flags through the PP stages: valid, first digit, last digit, tag
        fv, ff, fl, ft = v2, k == 0, k_last, t2
        for lvl in range(self._pp_levels):
            nv, nf, nl = (Signal(name=f"pp{lvl}_{x}") for x in ("valid", "first", "last"))
            nt = Signal(t2.shape(), name=f"pp{lvl}_tag")
            with m.If(step):
                m.d.sync += [nv.eq(fv), nf.eq(ff), nl.eq(fl), nt.eq(ft)]
            fv, ff, fl, ft = nv, nf, nl, nt
        m.d.comb += step.eq(~(fv & fl & hv & ~adv_b))
        with m.If(step):
            with m.If(fv & fl):
                m.d.sync += [hv.eq(1), ht.eq(ft)]
            with m.Elif(adv_b):
                m.d.sync += hv.eq(0)
        for ln, (x2, m2, e2) in enumerate(zip(x2_lane, m2_lane, e2_lane, strict=True)):
            with m.If(step & v2 & ~k_last):
                m.d.sync += m2.eq(m2.as_unsigned() >> r)
            # partial products of the digit; bit 31 (top bit of the last digit) weighs
            # -2**31: -x = ~x + 1, the +1 (times 2**31) is in the initial accumulator
            terms = []
            for j in range(r):
                xx = (x2 ^ k_last.replicate(32))[:32].as_signed() if j == r - 1 else x2
                terms.append(Mux(m2[j], xx, 0) << j)
            e_cur, m31 = e2, m2[31]
            for lvl in range(self._pp_levels):
                if len(terms) == 1:
                    sums = terms
                else:
                    sums = [terms[i] + terms[i + 1] for i in range(0, len(terms), 2)]
                regs = [
                    Signal(signed(len(v)), name=f"l{ln}_pp{lvl}_{i}") for i, v in enumerate(sums)
                ]
                e_reg = Signal(_E_BITS, name=f"l{ln}_pp{lvl}_e")
                m31_reg = Signal(name=f"l{ln}_pp{lvl}_m31")
                with m.If(step):
                    m.d.sync += [reg.eq(v) for reg, v in zip(regs, sums, strict=True)]
                    m.d.sync += [e_reg.eq(e_cur), m31_reg.eq(m31)]
                terms, e_cur, m31 = regs, e_reg, m31_reg
            ps = terms[0]
            acc = Signal(signed(width), name=f"l{ln}_macc")
            start = Cat(Const(0, 30), Const(1, 1), m31).as_signed()
            total = Signal(signed(width + 1), name=f"l{ln}_msum")
            m.d.comb += total.eq(Mux(ff, start.as_unsigned(), acc) + ps)
            with m.If(step & fv):
                with m.If(fl):
                    m.d.sync += [
                        h_lane[ln].eq(total >> (r - 1)),
                        he[ln].eq(e_cur),
                        hm[ln].eq(_pot_mask(e_cur)),
                    ]
                with m.Else():
                    m.d.sync += acc.eq(total >> r)

    @property
    def _pp_levels(self) -> int:
        """Registered adder-tree levels of the lut multiplier (at least one)."""
        return max(1, (self.mul_bits - 1).bit_length())
