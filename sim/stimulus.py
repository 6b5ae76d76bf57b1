"""Random stimulus for the accelerator: GEMMs and free-form programs with their expected
results, and junk commands.

Used by the tests, by ``macforge verify soak`` (`sim.soak`) and by ``macforge verify
mutants`` (`sim.mutants`). Every generator draws from the numpy ``Generator`` it is
given, so a seed replays a case exactly. Expected results come from `sim.golden` (the
TFLite int8 contract); this module only picks inputs and predicts the STATUS and
COUNTERS side effects the ISA documents (`hw.isa`).

* `gemm_case` / `make_gemm`: an M x K x N GEMM through the host compiler, with varied
  operand distributions and requantisation parameters that are mostly *fitted* to the
  accumulators (`fitted_requant`: outputs spread over the int8 range, so an internal
  error of the requantiser shows instead of vanishing in a clamp), sometimes any legal
  values (`random_requant`: extremes, saturation).
* `program_case`: a free-form command program (no compiler) with a reference model of
  the ISA's buffers, parameter groups and accumulators: loads at random addresses that
  overwrite ranges a queued MATMUL still reads (hazards), accumulate chains across
  MATMULs and across stores, raw and int8 stores back to back with differing zero
  points and clamps, partial and multi-group LOAD_PARAMs, shift words that the
  hardware truncates to 6 bits (STATUS ``shift_truncated``).
* `junk_command`: one well-framed command that is usually wrong in some way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from macforge.host.compiler import Requant, compile_gemm
from macforge.host.program import Program, cmd_load, cmd_load_params, cmd_matmul
from macforge.hw import isa
from macforge.hw.config import AccelConfig
from macforge.sim import golden

__all__ = [
    "random_requant",
    "fitted_requant",
    "CHANNEL_STYLES",
    "random_operand",
    "requant_saturates",
    "requant_ref",
    "status_word",
    "GemmCase",
    "make_gemm",
    "gemm_case",
    "ProgramCase",
    "program_case",
    "burst_case",
    "hazard_case",
    "junk_command",
    "JUNK_KINDS",
    "junk_shift_truncated",
]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
#: Shift words the hardware keeps: 6-bit signed (`hw.isa.SHIFT_BITS`).
SHIFT_MIN, SHIFT_MAX = -(2 ** (isa.SHIFT_BITS - 1)), 2 ** (isa.SHIFT_BITS - 1) - 1


# -- requantisation parameters ---------------------------------------------------------------


def random_requant(rng, n: int) -> Requant:
    """Per-channel parameters of N outputs: mostly typical, ~10 % any int32 multiplier
    or shift in [-31, 31]; random zero point and clamp. Unrelated to the accumulators,
    so most outputs clamp to the activation range (the extremes: saturation, any sign)."""
    mult = rng.integers(2**30, 2**31, size=n)
    mult[rng.random(n) < 0.1] = rng.integers(-(2**31), 2**31)  # any int32 is legal
    shift = rng.integers(-14, 2, size=n)
    shift[rng.random(n) < 0.1] = rng.integers(-31, 32)
    zp = int(rng.integers(-128, 128))
    lo = int(rng.integers(-128, 20))
    hi = int(rng.integers(max(lo, -10), 128))
    return Requant(mult, shift, zero_point=zp, act_min=lo, act_max=hi)


def _activation_range(rng, zp: int) -> tuple[int, int]:
    """(act_min, act_max): none, fused ReLU (act_min = zero point, as TFLite), ReLU6-like,
    or any ordered pair, possibly a single value."""
    style = rng.random()
    if style < 0.45:
        return -128, 127
    if style < 0.65:
        return zp, 127
    if style < 0.75:
        return zp, int(min(127, zp + rng.integers(1, 100)))
    lo, hi = sorted(int(v) for v in rng.integers(-128, 128, size=2))
    return lo, hi


def _scale_to_tflite(rng, scale: float, x_max: float) -> tuple[int, int]:
    """(multiplier, shift) with ``multiplier * 2**(shift - 31)`` close to ``scale`` (not 0),
    in one of several encodings of the same scale: normalised (|multiplier| in
    [2**30, 2**31), as TFLite's QuantizeMultiplier), a power of two (multiplier
    2**30: every rounding tie is exercised), or denormalised (a smaller multiplier and
    a larger shift, often a left shift) kept so that ``x_max * 2**shift`` mostly fits
    int32. ``x_max`` is the largest |acc + bias| of the channel."""
    neg = scale < 0
    q, e = np.frexp(abs(scale))  # abs(scale) = q * 2**e, q in [0.5, 1)
    e = int(e)
    mult = int(round(q * 2**31))
    if mult == 2**31:
        mult, e = 2**30, e + 1
    style = rng.random()
    if style < 0.15:
        mult = 2**30
    elif style < 0.4:
        room = 31 - int(np.ceil(np.log2(x_max + 1)))  # left shift that still fits int32
        if rng.random() < 0.1:
            room += int(rng.integers(1, 4))  # sometimes it saturates (STATUS flag)
        top = min(31, room) - e
        if top >= 1:
            j = int(rng.integers(1, min(top, 30) + 1))
            mult = max(1, int(round(q * 2 ** (31 - j))))
            e += j
    if e > 31:
        mult, e = 2**31 - 1, 31
    if e < -31:
        e = -31
    return (-mult if neg else mult), e


def _srdhm(x: int, m: int) -> int:
    return int(golden.saturating_rounding_doubling_high_mul(x, m))


def _fit_bias(x: int, acc: int) -> int:
    """The bias that makes ``acc + bias == x`` (clipped to int32)."""
    return int(np.clip(x - acc, INT32_MIN, INT32_MAX))


def _ch_spread(rng, col, zp, lo, hi):
    """Scale the channel's accumulator span onto 0.3..1.6 times the activation range,
    centred at a random point of it (15 % negative multipliers)."""
    amin, amax = float(col.min()), float(col.max())
    half = max((amax - amin) / 2, 1.0)
    scale = max(hi - lo, 1) / 2 * rng.uniform(0.3, 1.6) / half
    if rng.random() < 0.15:
        scale = -scale
    centre = rng.uniform(lo - 0.5, hi + 0.5)
    b = _fit_bias(
        round((centre - zp) / scale + rng.normal(0, 0.1 * half)), round((amin + amax) / 2)
    )
    x_max = max(abs(amin + b), abs(amax + b), 1.0)
    return (b, *_scale_to_tflite(rng, scale, x_max))


def _ch_offset(rng, col, zp, lo, hi):
    """A large bias and a small scale: a random in-range output o, a right shift e of
    8..30 with |o| * 2**e below 2**30 (often just below) and a normalised multiplier, so
    |acc + bias| reaches 2**30 and the high bits of x, of the product and of the
    rounding stage (its 'surely out of range' test) carry the result."""
    o = int(rng.integers(lo, hi + 1)) - zp
    e_max = max(8, 30 - int(np.ceil(np.log2(abs(o) + 1))))
    e = e_max if rng.random() < 0.4 else int(rng.integers(8, e_max + 1))
    mult = int(rng.integers(2**30, 2**31)) * (1 if rng.random() < 0.85 else -1)
    scale = mult / 2**31 / 2**e
    centre = o + rng.uniform(-0.5, 0.5) + zp
    b = _fit_bias(round((centre - zp) / scale), round(float(col.mean())))
    return b, mult, -e


def _rdbp_sensitive(h: np.ndarray, e: int, up: bool) -> np.ndarray:
    """Where RoundingDivideByPOT(h, e) changes when h moves one up (``up``) or down."""
    if e == 0:
        return np.ones(h.shape, bool)
    rem = h & ((1 << e) - 1)
    half = 1 << (e - 1)
    # h >= 0 rounds up from rem >= half, h < 0 from rem > half
    edge = np.where(h >= 0, half - 1, half) if up else np.where(h >= 0, half, half + 1)
    return rem == edge


def _ch_boundary(rng, col, zp, lo, hi):
    """One accumulator x placed where an error in the multiply shows: x * multiplier +
    2**30 = 2**31 * H + d with d small, just above (or, from the other side, just below)
    a multiple of 2**31, so an error of more than d in a partial product moves
    SaturatingRoundingDoublingHighMul's H by one; with a right shift e > 0, H also sits on
    a rounding edge of RoundingDivideByPOT, so the output moves too, and it stays inside
    the clamp.

    Constructed, not searched: for 256 multipliers m near a log-uniform magnitude
    (2**4 .. 2**31, either sign) and every H of the in-range outputs, d is the least
    value that makes 2**31 * H - 2**30 + d divisible by m (x is the quotient); the
    smallest d wins (typically below 2**-16 |m|)."""
    r = int(rng.integers(len(col)))
    e = 0 if rng.random() < 0.4 else int(rng.integers(1, 17))
    up = bool(rng.random() < 0.5)  # d measured from below the next multiple instead
    o_lo, o_hi = lo - zp + 1, hi - zp - 1  # outputs that stay inside after a +-1 error
    if o_lo > o_hi:
        return _ch_spread(rng, col, zp, lo, hi)
    limit = 2**31 - 2**23  # |x| (acc + bias must not saturate)
    # |x| = |2**31 H / m| <= limit with |H| ~ |o| 2**e
    o_abs = max(abs(o_lo), abs(o_hi), 1)
    m_min = max(2**4, 2 ** (e + 31) * o_abs // limit + 1)
    if m_min >= 2**31 - 256:
        return _ch_spread(rng, col, zp, lo, hi)
    # split log2|x * m| ~ 31 + e + log2|o| between x and m (both wide half the time,
    # so every partial product of the 16-bit halves has random bits)
    total = 31 + e + np.log2(rng.uniform(1, o_abs))
    low = max(np.log2(m_min), total - 30.5)
    mag = int(2 ** rng.uniform(low, max(low, min(31.0, total)))) - 256
    m = (np.arange(max(mag, m_min), max(mag, m_min) + 256, dtype=np.int64))[:, None]
    sign = 1 if rng.random() < 0.6 else -1
    outs = np.arange(o_lo, o_hi + 1, dtype=np.int64)
    if e == 0:
        h = outs
    else:  # H next to a rounding edge of RoundingDivideByPOT(H, e), output in range
        near = ((outs << e) + (1 << (e - 1)))[:, None] + np.arange(-2, 2)[None, :]
        h = near.ravel()
        out = np.asarray(golden.rounding_divide_by_pot(h, e))
        moved = np.asarray(golden.rounding_divide_by_pot(h + (1 if up else -1), e))
        h = h[(out != moved) & (out >= o_lo) & (out <= o_hi)]
        if h.size == 0:
            return _ch_spread(rng, col, zp, lo, hi)
    h = h[None, :]
    # x * (sign m) = 2**31 H - 2**30 + d  (up: 2**31 (H + 1) - 2**30 - 1 - d)
    target = (h << 31) - (1 << 30) if not up else ((h + 1) << 31) - (1 << 30) - 1
    d = (-target) % m if not up else target % m
    x = ((target + d) // m if not up else (target - d) // m) * sign
    ok = np.abs(x) <= limit
    if not ok.any():
        return _ch_spread(rng, col, zp, lo, hi)
    flat = np.flatnonzero(ok.ravel())
    best = flat[np.argmin(d.ravel()[flat])]
    i, j = np.unravel_index(best, ok.shape)
    return _fit_bias(int(x[i, j]), int(col[r])), int(m[i, 0]) * sign, -e


def _ch_tie(rng, col, zp, lo, hi):
    """Multiplier +-2**30 and a right shift e in 1..23: one accumulator sits on (or one
    below) a rounding tie of RoundingDivideByPOT, or (30 %) its SRDHM value is +-2**j
    (j >= e + 9: the requantiser's 'surely out of range' test at each bit)."""
    r = int(rng.integers(len(col)))
    e = int(rng.integers(1, 24))
    mult = 2**30 if rng.random() < 0.7 else -(2**30)
    if rng.random() < 0.3:
        j = int(rng.integers(e + 9, 31)) if e + 9 <= 30 else 30
        h = 2**j if rng.random() < 0.5 else -(2**j) - int(rng.integers(0, 2))
    else:
        qmax = max(1, (2**30 - 2**e) // 2**e)
        q = int(np.clip(rng.integers(lo, hi + 1) - zp, -qmax, qmax - 1))
        h = q * 2**e + 2 ** (e - 1) - int(rng.integers(0, 2))
    for x in (2 * h - 1, 2 * h, -2 * h, -2 * h + 1):
        if INT32_MIN <= x <= INT32_MAX and _srdhm(x, mult) == h:
            return _fit_bias(x, int(col[r])), mult, -e
    return _fit_bias(2 * h, int(col[r])), mult, -e  # pragma: no cover (h out of range)


def _ch_extreme(rng, col, zp, lo, hi, bit=None):
    """Left shifts (1..31) with x = +-(2**j + a little) for j at and around the overflow
    window of the shift (each bit of the requantiser's overflow test, from both sides;
    ``bit`` picks j, with the shift putting it just inside or just below the window,
    or (-1, -2) x = 0 or -1, which fit every shift, 31 half the time; without ``bit``
    sometimes x = 0 or -1 too),
    half the time (always with ``bit``) with a small multiplier (|m| < 128: saturated,
    wrapped and exact x give different in-range outputs), else an extreme one
    (INT32_MIN, +-INT32_MAX, +-2**30; SRDHM's INT32_MIN x INT32_MIN case): the
    saturating paths (STATUS ``saturated``)."""
    if bit is None:
        left = int(rng.integers(1, 32)) if rng.random() < 0.5 else int(rng.integers(16, 32))
        j = int(rng.integers(max(0, 28 - left), 31))
    elif bit < 0:  # x = 0 or -1 (bit -1, -2): they fit every shift, even 31
        left = 31 if rng.random() < 0.5 else int(rng.integers(1, 32))
        j = 0
    else:
        j = bit
        inside = rng.random() < 0.7 or j == 30
        left = int(rng.integers(31 - j, 32)) if inside else 30 - j
    x = min(2**j + int(rng.integers(0, 2 ** max(0, 30 - left))), INT32_MAX - 2**23)
    x *= 1 if rng.random() < 0.5 else -1
    if bit is not None and bit < 0:
        x = bit + 1
    elif bit is None and rng.random() < 0.15:
        x = int(rng.integers(-1, 1))
    if bit is not None or rng.random() < 0.5:
        mult = int(rng.integers(16, 128)) * (1 if rng.random() < 0.5 else -1)
    else:
        mult = int(rng.choice([INT32_MIN, INT32_MIN, INT32_MAX, -INT32_MAX, 2**30, -(2**30)]))
    return _fit_bias(x, int(col[int(rng.integers(len(col)))])), mult, left


def _ch_s1sat(rng, col, zp, lo, hi):
    """acc + bias beyond int32 for some accumulators (bias near +-2**31), with no left
    shift (so only the requantiser's first stage saturates; STATUS ``saturated``) and a
    multiplier small enough (|m| < 2**8 at e = 0) that the saturated and the exact
    values give in-range outputs."""
    b = INT32_MAX - int(rng.integers(0, 2**12)) - int(col.min())
    b = b if rng.random() < 0.5 else INT32_MIN + int(rng.integers(0, 2**12)) - int(col.max())
    mult = int(rng.integers(16, 256)) * (1 if rng.random() < 0.5 else -1)
    return int(np.clip(b, INT32_MIN, INT32_MAX)), mult, -int(rng.integers(0, 2))


#: Per-channel styles of `fitted_requant`: name -> (function, weight).
CHANNEL_STYLES = {
    "spread": (_ch_spread, 0.35),
    "offset": (_ch_offset, 0.15),
    "boundary": (_ch_boundary, 0.25),
    "tie": (_ch_tie, 0.15),
    "extreme": (_ch_extreme, 0.10),
    "s1sat": (_ch_s1sat, 0.03),
}


def fitted_requant(
    rng, acc: np.ndarray, *, zero_point: int | None = None, style=None, sweep: bool = False
):
    """Requantisation fitted to the accumulators ``acc`` (M, N): (bias int32 (N,),
    `Requant`).

    Each channel takes one of `CHANNEL_STYLES`: mostly `_ch_spread` (the channel's
    accumulator span mapped onto the activation range, so the int8 outputs spread over
    many values instead of vanishing in a clamp; the encoding of the scale varies,
    `_scale_to_tflite`), else a large offset with a small scale, an accumulator on a
    rounding boundary of the multiply or of the right shift, or extreme saturating
    parameters. The zero point is random (or ``zero_point``), the activation range one
    of `_activation_range`. ``style`` (a name of `CHANNEL_STYLES`) gives every channel
    that style; with ``sweep`` the ``extreme`` style walks the overflow test's bit over
    the channels (channels 2i and 2i + 1 probe bit 30 - i % 33, the last two being
    x = 0 and x = -1).
    """
    acc = np.asarray(acc, dtype=np.int64)
    n = acc.shape[1]
    zp = int(rng.integers(-128, 128)) if zero_point is None else int(zero_point)
    lo, hi = _activation_range(rng, zp)
    bias = np.zeros(n, np.int64)
    mult = np.zeros(n, np.int64)
    shift = np.zeros(n, np.int64)
    names = list(CHANNEL_STYLES)
    weights = np.array([CHANNEL_STYLES[k][1] for k in names])
    picks = rng.choice(names, size=n, p=weights / weights.sum()) if style is None else [style] * n
    for c in range(n):
        col = acc[:, c] if acc.shape[0] else np.zeros(1, np.int64)
        extra = {"bit": 30 - (c // 2) % 33} if sweep and picks[c] == "extreme" else {}
        bias[c], mult[c], shift[c] = CHANNEL_STYLES[picks[c]][0](rng, col, zp, lo, hi, **extra)
    return bias.astype(np.int32), Requant(mult, shift, zero_point=zp, act_min=lo, act_max=hi)


def requant_ref(acc, bias, multiplier, shift, zero_point, act_min, act_max) -> np.ndarray:
    """`golden.requantize`, also for channels whose shift is -32 (a 6-bit shift word the
    hardware stores; TFLite's range is [-31, 31]): those channels take the same steps of
    the contract from `golden`'s building blocks (a right shift by 32)."""
    shift = np.asarray(shift, dtype=np.int64)
    if shift.size == 0 or shift.min() >= -31:
        return golden.requantize(acc, bias, multiplier, shift, zero_point, act_min, act_max)
    acc = np.asarray(acc, dtype=np.int64)
    x = np.clip(acc + np.asarray(bias, np.int64), INT32_MIN, INT32_MAX)
    y = golden.multiply_by_quantized_multiplier(x, multiplier, shift)
    return np.clip(y + int(zero_point), int(act_min), int(act_max)).astype(np.int8)


def requant_saturates(acc, bias, shift) -> bool:
    """Whether requantising ``acc`` (..., N) saturates anywhere: acc + bias outside int32,
    or its left shift (``max(shift, 0)``) outside int32 (STATUS ``saturated``)."""
    x = np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    if x.size == 0:
        return False
    sat = (x < INT32_MIN) | (x > INT32_MAX)
    x = np.clip(x, INT32_MIN, INT32_MAX)
    left = np.maximum(np.asarray(shift, dtype=np.int64), 0)
    shifted = x * (np.int64(1) << left)  # |x| <= 2**31, left <= 31: exact in int64
    sat |= (shifted < INT32_MIN) | (shifted > INT32_MAX)
    return bool(sat.any())


def status_word(
    error: int = 0,
    count: int = 0,
    acc_overflow: bool = False,
    saturated: bool = False,
    shift_truncated: bool = False,
) -> int:
    """The STATUS answer (`hw.isa.STATUS_FIELDS`) these fields give; ``busy`` is 0."""
    values = {
        "error": int(error),
        "error_count": int(count),
        "acc_overflow": int(acc_overflow),
        "saturated": int(saturated),
        "shift_truncated": int(shift_truncated),
        "busy": 0,
    }
    return sum(values[name] << lsb for name, (lsb, _) in isa.STATUS_FIELDS.items())


# -- operands and compiled GEMMs ----------------------------------------------------------------


def random_operand(rng, shape) -> np.ndarray:
    """int8 array of ``shape`` from one of several distributions: uniform over int8
    (half the time), a narrow range around 0, a one-sided subrange, or only the values
    -128, -1, 0, 1, 127."""
    style = rng.random()
    if style < 0.5:
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    if style < 0.7:
        r = int(rng.integers(1, 17))
        return rng.integers(-r, r + 1, size=shape).astype(np.int8)
    if style < 0.85:
        lo, hi = sorted(int(v) for v in rng.integers(-128, 128, size=2))
        return rng.integers(lo, hi + 1, size=shape).astype(np.int8)
    return rng.choice(np.array([-128, -1, 0, 1, 127], np.int8), size=shape)


@dataclass
class GemmCase:
    """A compiled GEMM with what it must produce.

    ``want``: the M x N golden output; ``saturated``: STATUS ``saturated`` after it (the
    requantiser also sees the tiles' padding rows, whose accumulators are 0);
    ``slices``: K-slices its MATMULs put into the array (the COUNTERS ``busy`` figure).
    """

    prog: Program
    want: np.ndarray
    saturated: bool = False
    slices: int = 0
    requant: bool = False


def program_slices(words) -> int:
    """K-slices the valid MATMULs of a well-formed command list read (sum of their K)."""
    total, pos = 0, 0
    while pos < len(words):
        hdr = words[pos] & 0xFFFFFFFF
        op, length = hdr & 0xFF, hdr >> 8
        if op == isa.Opcode.MATMUL and length == 3:
            total += (words[pos + 2] & 0xFFFF) if pos + 2 < len(words) else 0
        pos += 1 + length
    return total


def make_gemm(
    cfg: AccelConfig,
    rng,
    m: int,
    k: int,
    n: int,
    *,
    requant=True,
    fill=None,
    fitted=None,
    style=None,
    sweep=False,
) -> GemmCase:
    """A random (or ``fill``-constant) M x K x N GEMM compiled for ``cfg``, with its golden
    result: int32 (``requant=False``) or requantised int8. ``fitted`` (default: 80 %
    of the time) picks `fitted_requant` parameters, else `random_requant` with a random
    bias (20 % of those any int32, saturating acc + bias); ``style`` forces fitted
    parameters of that `CHANNEL_STYLES` style on every channel (``sweep``: see
    `fitted_requant`)."""
    if fill is None:
        a = random_operand(rng, (m, k))
        b = random_operand(rng, (k, n))
    else:
        a = np.full((m, k), fill[0], np.int8)
        b = np.full((k, n), fill[1], np.int8)
    acc = golden.matmul(a, b, acc_bits=cfg.acc_width)
    if not requant:
        prog = compile_gemm(cfg, a, b)
        return GemmCase(prog, acc, slices=program_slices(prog.words))
    if style is not None or (fitted if fitted is not None else rng.random() < 0.8):
        bias, rq = fitted_requant(rng, acc, style=style, sweep=sweep)
    else:
        bias = rng.integers(-(2**20), 2**20, size=n).astype(np.int32)
        if rng.random() < 0.2:
            bias[:] = rng.integers(-(2**31), 2**31, size=n)  # saturating acc + bias
        rq = random_requant(rng, n)
    want = golden.requantize(
        acc, bias, rq.multiplier, rq.shift, rq.zero_point, rq.act_min, rq.act_max
    )
    prog = compile_gemm(cfg, a, b, bias=bias, requant=rq)
    padded = -(-m // cfg.rows) * cfg.rows
    acc_tiles = np.zeros((padded, n), np.int64)
    acc_tiles[:m] = acc
    sat = requant_saturates(acc_tiles, bias, rq.shift)
    return GemmCase(prog, want, saturated=sat, slices=program_slices(prog.words), requant=True)


def gemm_case(cfg: AccelConfig, rng, m: int, k: int, n: int, *, requant=True, fill=None):
    """(`Program`, golden result) of `make_gemm` (same arguments)."""
    case = make_gemm(cfg, rng, m, k, n, requant=requant, fill=fill)
    return case.prog, case.want


# -- free-form programs with a reference model -----------------------------------------------


@dataclass
class ProgramCase:
    """A free-form command program and what it must produce.

    ``tiles``: per store, in result order, (raw?, expected rows x cols tile: int32 or
    int8); ``saturated`` / ``shift_truncated``: STATUS flags after it; ``slices``:
    K-slices its MATMULs read; ``acc_k``: the array's K count after it (for
    `sim.isa_model.IsaModel.acc_k`).
    """

    config: AccelConfig
    words: list[int] = field(default_factory=list)
    tiles: list[tuple[bool, np.ndarray]] = field(default_factory=list)
    saturated: bool = False
    shift_truncated: bool = False
    slices: int = 0
    acc_k: int = 0

    @property
    def result_words(self) -> int:
        c = self.config
        return sum(
            c.rows * (c.raw_words_per_row if raw else c.int8_words_per_row) for raw, _ in self.tiles
        )

    def decode(self, results) -> list[np.ndarray]:
        """Result words -> the stored tiles (int32 raw, int8 otherwise), in order."""
        c = self.config
        out, pos = [], 0
        for raw, _ in self.tiles:
            wpr = c.raw_words_per_row if raw else c.int8_words_per_row
            block = results[pos : pos + c.rows * wpr]
            pos += c.rows * wpr
            data = b"".join(int(w).to_bytes(c.bus_bytes, "little") for w in block)
            rows = np.frombuffer(data, dtype=np.uint8).reshape(c.rows, wpr * c.bus_bytes)
            if raw:
                out.append(rows[:, : 4 * c.cols].copy().view("<i4"))
            else:
                out.append(rows[:, : c.cols].copy().view(np.int8))
        return out


def _sign6(word: int) -> int:
    """The shift the hardware keeps of a 32-bit shift word: its low 6 bits, signed."""
    v = word & 0x3F
    return v - 64 if v >= 32 else v


class _Machine:
    """Reference model of the ISA state a program touches (`hw.isa` semantics in program
    order): A/B buffers, per-channel parameters, the accumulators and their K count.
    ``known_*`` marks what this program wrote (it only reads what it wrote)."""

    def __init__(self, cfg: AccelConfig) -> None:
        c = self.cfg = cfg
        self.a = np.zeros((c.a_depth, c.rows), np.int64)
        self.b = np.zeros((c.b_depth, c.cols), np.int64)
        self.known_a = np.zeros(c.a_depth, bool)
        self.known_b = np.zeros(c.b_depth, bool)
        channels = c.param_depth * c.cols
        self.bias = np.zeros(channels, np.int64)
        self.mult = np.zeros(channels, np.int64)
        self.shift = np.zeros(channels, np.int64)
        self.known_p = np.zeros(channels, bool)
        self.acc = np.zeros((c.rows, c.cols), np.int64)
        self.acc_k = 0
        self.acc_known = False


class _ProgramGen:
    """Builds one `ProgramCase` command by command, predicting it with `_Machine`."""

    def __init__(self, cfg: AccelConfig, rng) -> None:
        self.c, self.rng = cfg, rng
        self.st = _Machine(cfg)
        self.case = ProgramCase(config=cfg)
        self.recent: list[tuple[int, int, int]] = []  # (a_addr, b_addr, k) of MATMULs
        self.group: int | None = None  # group of the last int8 store

    # -- buffers ------------------------------------------------------------------------
    def load(self, which: int, addr: int, count: int) -> None:
        c, st = self.c, self.st
        opcode = isa.Opcode.LOAD_A if which == 0 else isa.Opcode.LOAD_B
        width = c.rows if which == 0 else c.cols
        data = random_operand(self.rng, (count, width)).astype(np.int64)
        self.case.words.extend(cmd_load(opcode, addr, data.astype(np.int8), c.bus_bytes))
        buf, known = (st.a, st.known_a) if which == 0 else (st.b, st.known_b)
        buf[addr : addr + count] = data
        known[addr : addr + count] = True

    def pick(self, which: int, k: int) -> int:
        """Start of a K-long A (``which`` 0) or B range: often overlapping a range a
        recent MATMUL reads (a LOAD there must wait for it), else anywhere."""
        depth = self.c.a_depth if which == 0 else self.c.b_depth
        rng = self.rng
        if self.recent and rng.random() < 0.6:
            base, kk = (lambda r: (r[which], r[2]))(
                self.recent[int(rng.integers(len(self.recent)))]
            )
            # around its start or its end (the hazard's edges)
            edge = base if rng.random() < 0.5 else base + kk - k
            addr = edge + int(rng.integers(-2, 3))
            return int(np.clip(addr, 0, depth - k))
        return int(rng.integers(0, depth - k + 1))

    def ensure(self, which: int, k: int, reuse: float = 0.4) -> int:
        """An address whose K entries this program has loaded (loading them, in one or
        two LOADs with a little extra around, unless it may reuse what is there)."""
        depth = self.c.a_depth if which == 0 else self.c.b_depth
        known = self.st.known_a if which == 0 else self.st.known_b
        rng = self.rng
        addr = self.pick(which, k)
        if known[addr : addr + k].all() and rng.random() < reuse:
            return addr
        lo = max(0, addr - int(rng.integers(0, 3)))
        hi = min(depth, addr + k + int(rng.integers(0, 3)))
        parts = [(lo, hi)]
        if hi - lo > 1 and rng.random() < 0.3:
            mid = int(rng.integers(lo + 1, hi))
            parts = [(mid, hi), (lo, mid)] if rng.random() < 0.5 else [(lo, mid), (mid, hi)]
        for p0, p1 in parts:
            self.load(which, p0, p1 - p0)
        return addr

    def known_range(self, which: int, k: int) -> int | None:
        """A loaded K-long range, or None."""
        known = self.st.known_a if which == 0 else self.st.known_b
        starts = np.flatnonzero(np.convolve(known, np.ones(k, int), "valid") == k)
        return int(self.rng.choice(starts)) if starts.size else None

    # -- parameters ---------------------------------------------------------------------
    def load_params(self, group: int, acc: np.ndarray, style=None) -> tuple[int, int, int]:
        """LOAD_PARAM for ``group`` (fitted to ``acc`` 80 % of the time); sometimes it
        starts a group early or runs on into the next one, and ~10 % of the shift words
        carry junk above bit 5 (stored truncated, STATUS ``shift_truncated``).
        ``style``: fitted, all channels of that `CHANNEL_STYLES` style. Returns the
        tile's (zero point, act_min, act_max)."""
        c, rng, st = self.c, self.rng, self.st
        if style is not None or rng.random() < 0.8:
            bias, rq = fitted_requant(rng, acc, style=style)
        else:
            rq = random_requant(rng, c.cols)
            bias = rng.integers(-(2**24), 2**24, size=c.cols)
            if rng.random() < 0.2:
                bias = rng.integers(INT32_MIN, INT32_MAX + 1, size=c.cols)
        mult, shift = rq.multiplier, rq.shift.astype(np.int64).copy()
        if rng.random() < 0.1:
            shift[int(rng.integers(c.cols))] = SHIFT_MIN  # -32: a right shift by 32
        for ch in range(c.cols):
            if rng.random() < 0.1:  # junk in bits 6..31: stored truncated to 6 bits
                word = (int(shift[ch]) & 0x3F) | int(rng.integers(1, 2**26)) << 6
                word -= 2**32 if word >= 2**31 else 0
                self.case.shift_truncated |= not SHIFT_MIN <= word <= SHIFT_MAX
                shift[ch] = word
        start = group - 1 if group > 0 and rng.random() < 0.2 else group
        post = (
            int(rng.integers(1, c.cols + 1))
            if group + 1 < c.param_depth and rng.random() < 0.2
            else 0
        )

        def others(size):
            return (
                rng.integers(-(2**20), 2**20, size=size),
                rng.integers(2**30, 2**31, size=size),
                rng.integers(-20, 5, size=size),
            )

        before, after = others((group - start) * c.cols), others(post)
        fields = [
            np.concatenate([p, mid, q]).astype(np.int64)
            for p, mid, q in zip(before, (bias, mult, shift), after, strict=True)
        ]
        self.case.words.extend(cmd_load_params(start, *fields, c.bus_bytes))
        ch0 = start * c.cols
        for i in range(len(fields[0])):
            st.bias[ch0 + i] = int(fields[0][i])
            st.mult[ch0 + i] = int(fields[1][i])
            st.shift[ch0 + i] = _sign6(int(fields[2][i]))
            st.known_p[ch0 + i] = True
        return rq.zero_point, rq.act_min, rq.act_max

    # -- MATMUL -------------------------------------------------------------------------
    def matmul(self, a_addr, b_addr, k, *, first, store, raw, group=0, consts=None) -> None:
        """One MATMUL (``first``: clear the accumulators) and what it stores."""
        c, st, rng, case = self.c, self.st, self.rng, self.case
        part = st.a[a_addr : a_addr + k].T @ st.b[b_addr : b_addr + k]
        st.acc, st.acc_k = (part, k) if first else (st.acc + part, st.acc_k + k)
        flags = 0 if first else int(isa.MatmulFlags.ACCUMULATE)
        zp, lo, hi = consts or (0, -128, 127)
        if store:
            flags |= int(isa.MatmulFlags.STORE)
        elif rng.random() < 0.2:
            flags |= int(isa.MatmulFlags.RAW)  # RAW without STORE: no effect
        if raw:
            flags |= int(isa.MatmulFlags.RAW)
            group = int(rng.integers(0, 256))  # ignored for raw stores
            zp, lo, hi = (int(v) for v in rng.integers(-128, 128, size=3))  # no clamp check
        args = isa.MatmulArgs(a_addr, b_addr, k, flags, group, zp, lo, hi)
        case.words.extend(cmd_matmul(args))
        case.slices += k
        self.recent = [*self.recent[-1:], (a_addr, b_addr, k)]
        if not store:
            return
        if raw:
            case.tiles.append((True, st.acc.astype(np.int32)))
            return
        sl = slice(group * c.cols, (group + 1) * c.cols)
        bias, mult, shift = st.bias[sl], st.mult[sl], st.shift[sl]
        case.tiles.append((False, requant_ref(st.acc, bias, mult, shift, zp, lo, hi)))
        case.saturated |= requant_saturates(st.acc, bias, shift)
        self.group = group

    def int8_group(self) -> int:
        """Parameter group for an int8 store: often the last one's (its LOAD_PARAM must
        wait for that store), else any."""
        if self.group is not None and self.rng.random() < 0.4:
            return self.group
        return int(self.rng.integers(0, self.c.param_depth))

    def tile(self, kmax: int) -> bool:
        """A chain of 1..3 MATMULs of K = 1..kmax slices in all (sometimes exactly
        ``max_k``; sometimes continuing the previous accumulators), its last one storing
        raw, int8 or (10 %) nothing. True if it stored."""
        c, st, rng = self.c, self.st, self.rng
        top = min(c.max_k, c.a_depth, c.b_depth)
        k_total = top if rng.random() < 0.05 else int(rng.integers(1, kmax + 1))
        chain = min(int(rng.integers(1, 4)), k_total)
        cuts = sorted(int(x) + 1 for x in rng.choice(k_total - 1, size=chain - 1, replace=False))
        ks = np.diff([0, *cuts, k_total]).astype(int).tolist()
        cont = st.acc_known and st.acc_k + k_total <= c.max_k and rng.random() < 0.15
        store = rng.random() < 0.9
        raw = store and rng.random() < 0.4
        group = self.int8_group() if store and not raw else 0
        early = store and not raw and rng.random() < 0.5  # LOAD_PARAM before the loads
        consts = None
        words = self.case.words
        for idx, k in enumerate(ks):
            last = idx == len(ks) - 1
            before_loads = len(words)
            order = (0, 1) if rng.random() < 0.5 else (1, 0)
            addrs = {which: self.ensure(which, k) for which in order}
            first = idx == 0 and not cont
            if last and store and not raw:
                nxt = st.a[addrs[0] : addrs[0] + k].T @ st.b[addrs[1] : addrs[1] + k]
                mark = len(words)
                consts = self.param_consts(group, nxt if first else st.acc + nxt)
                if early:  # the LOAD_PARAM goes before this MATMUL's loads
                    chunk = words[mark:]
                    del words[mark:]
                    words[before_loads:before_loads] = chunk
            st.acc_known = True
            self.matmul(
                addrs[0],
                addrs[1],
                k,
                first=first,
                store=last and store,
                raw=last and raw,
                group=group,
                consts=consts,
            )
        return store

    def param_consts(self, group: int, acc) -> tuple[int, int, int]:
        """The tile constants for an int8 store on ``group``: new parameters fitted to
        ``acc`` (or, ``acc`` None, to the accumulators before this chain) unless the
        group is loaded and may be reused (new zero point and clamp then)."""
        c, st, rng = self.c, self.st, self.rng
        sl = slice(group * c.cols, (group + 1) * c.cols)
        if st.known_p[sl].all() and rng.random() < 0.3:
            zp = int(rng.integers(-128, 128))
            return (zp, *_activation_range(rng, zp))
        ref = st.acc if acc is None else acc
        return self.load_params(group, ref)

    def burst(self) -> None:
        """2..5 short storing MATMULs (K 1..4) back to back on loaded data, raw and int8
        mixed, each with new tile constants: store descriptors queue up (both entries of
        the store queue), tiles with other constants wait for the requantiser, a LOAD_PARAM
        of a group a queued store still needs must wait."""
        rng = self.rng
        for _ in range(int(rng.integers(2, 6))):
            k = int(rng.integers(1, 5))
            a_addr, b_addr = self.known_range(0, k), self.known_range(1, k)
            if a_addr is None or b_addr is None:
                return
            raw = rng.random() < 0.35
            group, consts = 0, None
            if not raw:
                group = self.int8_group()
                nxt = self.st.a[a_addr : a_addr + k].T @ self.st.b[b_addr : b_addr + k]
                consts = self.param_consts(group, nxt)
            self.st.acc_known = True
            self.matmul(
                a_addr, b_addr, k, first=True, store=True, raw=raw, group=group, consts=consts
            )

    def hazard(self) -> None:
        """Two MATMULs on loaded data back to back (the second queues behind the first),
        then a LOAD of new data over a few entries one of them still has to read (at its
        first entries, its middle or its last ones) and a MATMUL on that data: the LOAD
        must wait until they are read, whichever range and edge it hits."""
        rng, st = self.rng, self.st
        k1, k2 = int(rng.integers(8, 41)), int(rng.integers(1, 41))
        r1 = self.known_range(0, k1), self.known_range(1, k1)
        r2 = self.known_range(0, k2), self.known_range(1, k2)
        if None in (*r1, *r2):
            return
        raw2 = rng.random() < 0.5
        group, consts = 0, None
        if not raw2:
            group = self.int8_group()
            consts = self.param_consts(group, st.a[r2[0] : r2[0] + k2].T @ st.b[r2[1] : r2[1] + k2])
        st.acc_known = True
        self.matmul(*r1, k1, first=True, store=True, raw=True)
        self.matmul(*r2, k2, first=True, store=True, raw=raw2, group=group, consts=consts)
        which = int(rng.integers(2))
        base, kk = (r1[which], k1) if rng.random() < 0.5 else (r2[which], k2)
        n = int(rng.integers(1, 9))
        edge = int(rng.choice(3, p=[0.45, 0.1, 0.45]))
        addr = (
            base - int(rng.integers(0, n)),
            base + kk // 2,
            base + kk - int(rng.integers(1, n + 1)),
        )[edge]
        depth = self.c.a_depth if which == 0 else self.c.b_depth
        addr = int(np.clip(addr, 0, depth - n))
        self.load(which, addr, n)
        other = self.known_range(1 - which, n)
        if other is not None:
            pair = (addr, other) if which == 0 else (other, addr)
            self.matmul(*pair, n, first=True, store=True, raw=True)


def hazard_case(cfg: AccelConfig, rng, count: int) -> ProgramCase:
    """Loads of every A and B entry, then ``count`` `_ProgramGen.hazard` patterns: LOADs
    over the first, middle or last entries of a running or a queued MATMUL's range, at
    any address of either buffer."""
    gen = _ProgramGen(cfg, rng)
    gen.load(0, 0, cfg.a_depth)
    gen.load(1, 0, cfg.b_depth)
    for _ in range(count):
        gen.hazard()
    gen.case.acc_k = gen.st.acc_k
    return gen.case


def burst_case(cfg: AccelConfig, rng, tiles: int) -> ProgramCase:
    """Loads of a few A and B entries and up to four parameter groups, then ``tiles``
    storing MATMULs of K = 1..4 on them, half raw, half int8 repeating one of four
    templates whose parameters are fitted to their accumulators (`fitted_requant`, two
    of them all ``boundary`` style): little
    command traffic for a lot of results, so under result back-pressure the engine and
    the requantiser mostly wait (the COUNTERS ``stalls`` grow about as fast as
    ``cycles``, every requantiser stage holds its item)."""
    gen = _ProgramGen(cfg, rng)
    st = gen.st
    gen.load(0, 0, 8)
    gen.load(1, 0, 8)
    templates = []
    for group in range(min(4, cfg.param_depth)):
        k = int(rng.integers(1, 5))
        a, b = (int(x) for x in rng.integers(0, 9 - k, size=2))
        style = "boundary" if group % 2 else None
        consts = gen.load_params(group, st.a[a : a + k].T @ st.b[b : b + k], style=style)
        templates.append((a, b, k, group, consts))
    for _ in range(tiles):
        if rng.random() < 0.5:
            a, b, k, group, consts = templates[int(rng.integers(len(templates)))]
            gen.matmul(a, b, k, first=True, store=True, raw=False, group=group, consts=consts)
        else:
            k = int(rng.integers(1, 5))
            a, b = (int(x) for x in rng.integers(0, 9 - k, size=2))
            gen.matmul(a, b, k, first=True, store=True, raw=True)
    gen.case.acc_k = st.acc_k
    return gen.case


def program_case(
    cfg: AccelConfig, rng, tiles: int = 6, *, bursts: float = 0.3, hazards: float = 0.3
) -> ProgramCase:
    """A random free-form program of about ``tiles`` tiles (see the module docstring),
    with every stored tile, the STATUS flags and the K-slices predicted by a reference
    model of the ISA state (`_Machine`).

    Tiles are MATMUL chains over freshly loaded ranges (`_ProgramGen.tile`; loads often
    overlap what queued MATMULs read), with short back-to-back bursts
    (`_ProgramGen.burst`) and deliberate load-over-queued-MATMUL hazards
    (`_ProgramGen.hazard`) in between, after a tile with chance ``bursts`` and
    ``hazards``.
    """
    gen = _ProgramGen(cfg, rng)
    kmax = min(cfg.max_k, cfg.a_depth, cfg.b_depth, 40)
    for _ in range(tiles):
        gen.tile(kmax)
        if rng.random() < bursts:
            gen.burst()
        if rng.random() < hazards:
            gen.hazard()
    gen.case.acc_k = gen.st.acc_k
    return gen.case


# -- junk ------------------------------------------------------------------------------------


def junk_shift_truncated(cfg: AccelConfig, words, code) -> bool:
    """Whether the junk command ``words`` (that gets error ``code``) sets STATUS
    ``shift_truncated``: an accepted LOAD_PARAM with a shift word outside [-32, 31]."""
    hdr = words[0] & 0xFFFFFFFF
    if hdr & 0xFF != isa.Opcode.LOAD_PARAM or code != isa.ErrorCode.NONE:
        return False
    count = words[2] & 0xFFFFFFFF
    wpc = isa.param_words_per_channel(cfg.bus_bytes)
    data = b"".join(int(w).to_bytes(cfg.bus_bytes, "little") for w in words[3:])
    for ch in range(count):
        rec = data[ch * wpc * cfg.bus_bytes :][: isa.PARAM_RECORD_BYTES]
        shift = int.from_bytes(rec[8:12], "little", signed=True)
        if not SHIFT_MIN <= shift <= SHIFT_MAX:
            return True
    return False


#: Kinds of `junk_command` (0 .. JUNK_KINDS - 1).
JUNK_KINDS = 14


def junk_command(
    cfg: AccelConfig, rng, acc_k: int | None = None, kind: int | None = None
) -> list[int]:
    """One well-framed command that is usually wrong in some way, of a random kind (or
    ``kind``, 0 .. `JUNK_KINDS` - 1). ``acc_k``: the array's K count so far
    (`sim.isa_model.IsaModel.acc_k`), to aim accumulations at exactly ``max_k`` and
    ``max_k + 1`` slices (the ACC_OVERFLOW edge)."""
    kind = int(rng.integers(0, JUNK_KINDS)) if kind is None else kind
    if kind == 13 and acc_k is not None:  # a raw MATMUL ending at max_k or max_k + 1
        top = min(cfg.a_depth, cfg.b_depth)
        end = cfg.max_k + int(rng.integers(0, 2))
        accumulate = 0 < acc_k < end and end - acc_k <= top and rng.random() < 0.7
        k = end - acc_k if accumulate else min(end, top)
        return [isa.header(isa.Opcode.MATMUL, 3), 0, k | (4 | int(accumulate)) << 16, 0]
    word_max = 2**cfg.bus_bits
    rnd = lambda n: [int(x) for x in rng.integers(0, 2**31, size=n)]  # noqa: E731
    if kind == 0:  # unknown opcode, random payload
        op = int(rng.integers(7, 256))
        n = int(rng.integers(0, 6))
        return [isa.header(op, n), *[int(rng.integers(0, word_max >> 1)) for _ in range(n)]]
    if kind == 1:  # LOAD with a partial entry or too few words
        op = int(rng.choice([isa.Opcode.LOAD_A, isa.Opcode.LOAD_B]))
        n = int(rng.integers(0, 5))
        return [isa.header(op, 2 + n), int(rng.integers(0, 8)), n + 1, *rnd(n)]
    if kind == 2:  # LOAD past the end of a buffer
        op = int(rng.choice([isa.Opcode.LOAD_A, isa.Opcode.LOAD_B]))
        depth = cfg.a_depth if op == isa.Opcode.LOAD_A else cfg.b_depth
        wpe = cfg.a_words_per_entry if op == isa.Opcode.LOAD_A else cfg.b_words_per_entry
        count = int(rng.integers(1, 4))
        addr = depth - count + int(rng.integers(1, 3))
        if rng.random() < 0.3:  # a count or address far too big (high bits set)
            addr = int(rng.integers(0, depth)) | (1 << int(rng.integers(8, 32)))
        return [isa.header(op, 2 + count * wpe), addr, count, *rnd(count * wpe)]
    if kind == 3:  # MATMUL with K = 0 or a range past the end
        k = int(rng.choice([0, cfg.a_depth, cfg.b_depth // 2 + 1]))
        a_addr = int(rng.integers(0, cfg.a_depth))
        b_addr = int(rng.integers(0, cfg.b_depth))
        return [isa.header(isa.Opcode.MATMUL, 3), a_addr | b_addr << 16, k | 2 << 16, 0]
    if kind == 4:  # MATMUL with a bad clamp or a parameter group out of range
        group = int(rng.integers(cfg.param_depth, 256)) if rng.random() < 0.5 else 0
        lo = int(rng.integers(-127, 128))
        hi = int(rng.integers(-128, lo))  # act_min > act_max
        clamp = (lo & 0xFF) << 8 | (hi & 0xFF) << 16
        return [isa.header(isa.Opcode.MATMUL, 3), 0, 1 | 2 << 16 | group << 24, clamp]
    if kind == 5:  # wrong lengths for fixed-size commands
        op = int(rng.choice([isa.Opcode.MATMUL, isa.Opcode.STATUS, isa.Opcode.COUNTERS]))
        n = int(rng.choice([0, 1, 2, 4, 5])) if op == isa.Opcode.MATMUL else int(rng.integers(2, 5))
        return [isa.header(op, n), *rnd(n)]
    if kind == 6:  # LOAD_PARAM out of range or with a partial channel
        wpc = isa.param_words_per_channel(cfg.bus_bytes)
        if rng.random() < 0.5:  # a group past the end, or too many channels
            group, count = int(rng.choice([cfg.param_depth, 2**31 + 1])), 1
            if rng.random() < 0.3:
                group = int(rng.integers(0, cfg.param_depth))
                count = (cfg.param_depth - group) * cfg.cols + 1
            return [isa.header(isa.Opcode.LOAD_PARAM, 2 + count * wpc), group, count] + [0] * (
                count * wpc
            )
        return [isa.header(isa.Opcode.LOAD_PARAM, 3 + wpc), 0, 1, *[0] * (wpc + 1)]
    if kind == 7:  # NOP with padding
        n = int(rng.integers(0, 4))
        return [isa.header(isa.Opcode.NOP, n), *rnd(n)]
    if kind == 8:  # a valid raw MATMUL that accumulates past max_k when repeated
        k = int(min(cfg.a_depth, cfg.b_depth, 0xFFFF))
        return [isa.header(isa.Opcode.MATMUL, 3), 0, k | (1 | 4) << 16, 0]
    if kind == 9:  # a valid LOAD_PARAM of random records, shift words of any value
        count = int(rng.integers(1, 2 * cfg.cols + 1))
        group = int(rng.integers(0, cfg.param_depth))
        count = min(count, (cfg.param_depth - group) * cfg.cols)
        fields = [rng.integers(INT32_MIN, INT32_MAX + 1, size=count) for _ in range(3)]
        if rng.random() < 0.5:
            fields[2] = rng.integers(SHIFT_MIN, SHIFT_MAX + 1, size=count)
        return cmd_load_params(group, *fields, cfg.bus_bytes)
    if kind == 10:  # valid STATUS / COUNTERS, with or without the (no-)clear word
        op = int(rng.choice([isa.Opcode.STATUS, isa.Opcode.COUNTERS]))
        if rng.random() < 0.5:
            return [isa.header(op, 0)]
        return [isa.header(op, 1), int(rng.integers(0, 2**31)) & ~1 | int(rng.random() < 0.5)]
    if kind == 11:  # a LOAD at the last entries of a buffer (just fits) or of count 0
        op = int(rng.choice([isa.Opcode.LOAD_A, isa.Opcode.LOAD_B]))
        depth = cfg.a_depth if op == isa.Opcode.LOAD_A else cfg.b_depth
        wpe = cfg.a_words_per_entry if op == isa.Opcode.LOAD_A else cfg.b_words_per_entry
        count = int(rng.integers(0, 3))
        return [isa.header(op, 2 + count * wpe), depth - count, count, *rnd(count * wpe)]
    # a valid small LOAD of random data
    op = int(rng.choice([isa.Opcode.LOAD_A, isa.Opcode.LOAD_B]))
    wpe = cfg.a_words_per_entry if op == isa.Opcode.LOAD_A else cfg.b_words_per_entry
    return [
        isa.header(op, 2 + wpe),
        0,
        1,
        *[int(rng.integers(0, word_max >> 1)) for _ in range(wpe)],
    ]
