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
    "random_operand",
    "requant_saturates",
    "requant_ref",
    "status_word",
    "GemmCase",
    "make_gemm",
    "gemm_case",
    "ProgramCase",
    "program_case",
    "junk_command",
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
    """A large bias and a small scale (right shift 8..24): acc + bias near 2**30, so the
    high bits of x, of the product and of the rounding stage carry the result."""
    e = int(rng.integers(8, 25))
    mult = int(rng.integers(2**30, 2**31)) * (1 if rng.random() < 0.85 else -1)
    scale = mult / 2**31 / 2**e
    centre = rng.uniform(lo - 0.5, hi + 0.5)
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
    2**30 as close above (or below) a multiple of 2**31 as a search of 2**16 candidates
    finds, so a small error in a partial product moves SaturatingRoundingDoublingHighMul
    by one; with a right shift e of 1..8, also on a rounding edge of
    RoundingDivideByPOT so the output moves too (else e = 0). The multiplier is
    log-uniform in magnitude (2**4 .. 2**31, either sign), so the partial products of
    the 16-bit halves take all sorts of values; the output stays inside the clamp."""
    r = int(rng.integers(len(col)))
    e = 0 if rng.random() < 0.5 else int(rng.integers(1, 9))
    mult = int(min(2 ** rng.uniform(4, 31), INT32_MAX)) * (1 if rng.random() < 0.6 else -1)
    up = bool(rng.random() < 0.5)
    o_lo, o_hi = lo - zp + 1, hi - zp - 1  # outputs that stay inside after a +-1 error
    if o_lo > o_hi:
        return _ch_spread(rng, col, zp, lo, hi)
    limit = 2**31 - 2**23  # |x| (acc + bias must not saturate)
    ends = sorted(v * 2**e * 2**31 / mult for v in (o_lo - 0.5, o_hi + 0.5))
    x0, x1 = max(-limit, int(np.ceil(ends[0]))), min(limit, int(np.floor(ends[1])))
    if x0 > x1:
        return _ch_spread(rng, col, zp, lo, hi)
    n = 1 << 16
    x = np.arange(x0, x1 + 1) if x1 - x0 < n else rng.integers(x0, x1 + 1, size=n)
    f = x.astype(np.int64) * mult + (1 << 30)
    h = f >> 31
    res = f & ((1 << 31) - 1)
    dist = ((1 << 31) - 1 - res) if up else res
    out = np.asarray(golden.rounding_divide_by_pot(h, e))
    ok = _rdbp_sensitive(h, e, up) & (out >= o_lo) & (out <= o_hi)
    if not ok.any():
        return _ch_spread(rng, col, zp, lo, hi)
    best = int(x[ok][np.argmin(dist[ok])])
    return _fit_bias(best, int(col[r])), mult, -e


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


def _ch_extreme(rng, col, zp, lo, hi):
    """Extreme multipliers (INT32_MIN, +-INT32_MAX, +-2**30) with left shifts of 15..31
    and x of both signs: the saturating paths (STATUS ``saturated``)."""
    mult = int(rng.choice([INT32_MIN, INT32_MAX, -INT32_MAX, 2**30, -(2**30)]))
    b = _fit_bias(int(rng.integers(-(2**12), 2**12)), round(float(col.mean())))
    return b, mult, int(rng.integers(15, 32))


#: Per-channel styles of `fitted_requant` and their weights.
_CHANNEL_STYLES = (
    (_ch_spread, 0.45),
    (_ch_offset, 0.15),
    (_ch_boundary, 0.15),
    (_ch_tie, 0.17),
    (_ch_extreme, 0.08),
)


def fitted_requant(rng, acc: np.ndarray, *, zero_point: int | None = None):
    """Requantisation fitted to the accumulators ``acc`` (M, N): (bias int32 (N,),
    `Requant`).

    Each channel takes one of `_CHANNEL_STYLES`: mostly `_ch_spread` (the channel's
    accumulator span mapped onto the activation range, so the int8 outputs spread over
    many values instead of vanishing in a clamp; the encoding of the scale varies,
    `_scale_to_tflite`), else a large offset with a small scale, an accumulator on a
    rounding boundary of the multiply or of the right shift, or extreme saturating
    parameters. The zero point is random (or ``zero_point``), the activation range one
    of `_activation_range`.
    """
    acc = np.asarray(acc, dtype=np.int64)
    n = acc.shape[1]
    zp = int(rng.integers(-128, 128)) if zero_point is None else int(zero_point)
    lo, hi = _activation_range(rng, zp)
    bias = np.zeros(n, np.int64)
    mult = np.zeros(n, np.int64)
    shift = np.zeros(n, np.int64)
    styles, weights = zip(*_CHANNEL_STYLES, strict=True)
    picks = rng.choice(len(styles), size=n, p=np.array(weights) / sum(weights))
    for c in range(n):
        col = acc[:, c] if acc.shape[0] else np.zeros(1, np.int64)
        bias[c], mult[c], shift[c] = styles[picks[c]](rng, col, zp, lo, hi)
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
    cfg: AccelConfig, rng, m: int, k: int, n: int, *, requant=True, fill=None, fitted=None
) -> GemmCase:
    """A random (or ``fill``-constant) M x K x N GEMM compiled for ``cfg``, with its golden
    result: int32 (``requant=False``) or requantised int8. ``fitted`` (default: 80 %
    of the time) picks `fitted_requant` parameters, else `random_requant` with a random
    bias (20 % of those any int32, saturating acc + bias)."""
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
    if fitted if fitted is not None else rng.random() < 0.8:
        bias, rq = fitted_requant(rng, acc)
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


def program_case(cfg: AccelConfig, rng, tiles: int = 6) -> ProgramCase:
    """A random program of about ``tiles`` stored tiles (see the module docstring),
    with every stored tile, the STATUS flags and the slices predicted by `_Machine`.

    Each tile is a chain of 1..3 MATMULs (the first clears the accumulators, unless the
    chain continues the previous tile's; the others accumulate) of K = 1..~40 slices in
    all (within ``max_k``), the last one storing raw or int8 with a random parameter
    group and per-tile zero point and clamp. Before a MATMUL its A and B ranges are
    loaded, often at addresses overlapping what the queued MATMULs read.
    """
    c = cfg
    st = _Machine(c)
    case = ProgramCase(config=c)
    words = case.words
    kmax = min(c.max_k, c.a_depth, c.b_depth, 40)
    prev_ranges: list[tuple[int, int, int]] = []  # (a_addr, b_addr, k) of recent MATMULs

    def load(opcode, addr: int, count: int) -> None:
        is_a = opcode == isa.Opcode.LOAD_A
        width = c.rows if is_a else c.cols
        data = random_operand(rng, (count, width)).astype(np.int64)
        words.extend(cmd_load(opcode, addr, data.astype(np.int8), c.bus_bytes))
        buf, known = (st.a, st.known_a) if is_a else (st.b, st.known_b)
        buf[addr : addr + count] = data
        known[addr : addr + count] = True

    def pick_range(depth: int, k: int, which: int) -> int:
        """Start address of a K-long range: overlapping a recent MATMUL's (hazard) or
        anywhere; ``which`` 0 for A, 1 for B."""
        if prev_ranges and rng.random() < 0.5:
            base = prev_ranges[int(rng.integers(len(prev_ranges)))][which]
            addr = base + int(rng.integers(-k + 1, k)) if k > 1 else base
            return int(np.clip(addr, 0, depth - k))
        return int(rng.integers(0, depth - k + 1))

    def ensure(depth: int, k: int, which: int) -> int:
        """An address whose K entries this program has loaded (loading them if needed)."""
        known = st.known_a if which == 0 else st.known_b
        opcode = isa.Opcode.LOAD_A if which == 0 else isa.Opcode.LOAD_B
        addr = pick_range(depth, k, which)
        if known[addr : addr + k].all() and rng.random() < 0.3:
            return addr  # reuse what is there
        # load the range, sometimes in two commands, sometimes a bit more around it
        lo = max(0, addr - int(rng.integers(0, 3)))
        hi = min(depth, addr + k + int(rng.integers(0, 3)))
        if hi - lo > 1 and rng.random() < 0.3:
            mid = int(rng.integers(lo + 1, hi))
            parts = [(mid, hi), (lo, mid)] if rng.random() < 0.5 else [(lo, mid), (mid, hi)]
        else:
            parts = [(lo, hi)]
        for p0, p1 in parts:
            load(opcode, p0, p1 - p0)
        return addr

    def load_params(group: int, acc: np.ndarray) -> tuple[int, int, int]:
        """LOAD_PARAM fitted to ``acc`` for ``group``; (zero point, act_min, act_max)."""
        if rng.random() < 0.8:
            bias, rq = fitted_requant(rng, acc)
            mult, shift = rq.multiplier, rq.shift.copy()
            consts = (rq.zero_point, rq.act_min, rq.act_max)
        else:
            rq = random_requant(rng, c.cols)
            bias = rng.integers(-(2**24), 2**24, size=c.cols)
            if rng.random() < 0.2:
                bias = rng.integers(INT32_MIN, INT32_MAX + 1, size=c.cols)
            mult, shift = rq.multiplier, rq.shift.copy()
            if rng.random() < 0.3:
                shift[int(rng.integers(c.cols))] = SHIFT_MIN  # -32: a right shift by 32
            consts = (rq.zero_point, rq.act_min, rq.act_max)
        shift_words = shift.astype(np.int64).copy()
        for ch in range(c.cols):
            if rng.random() < 0.1:  # junk in bits 6..31: stored truncated to 6 bits
                word = (int(shift_words[ch]) & 0x3F) | int(rng.integers(1, 2**26)) << 6
                word -= 2**32 if word >= 2**31 else 0
                case.shift_truncated |= not SHIFT_MIN <= word <= SHIFT_MAX
                shift_words[ch] = word
        # the records start at group * cols: sometimes a group early, sometimes running
        # on into the next group
        start = group - 1 if group > 0 and rng.random() < 0.2 else group
        post = (
            int(rng.integers(1, c.cols + 1))
            if group + 1 < c.param_depth and rng.random() < 0.2
            else 0
        )
        before = (group - start) * c.cols

        def others(size):
            return (
                rng.integers(-(2**20), 2**20, size=size),
                rng.integers(2**30, 2**31, size=size),
                rng.integers(-20, 5, size=size),
            )

        pre_f, post_f = others(before), others(post)
        fields = [
            np.concatenate([p, mid, q]).astype(np.int64)
            for p, mid, q in zip(pre_f, (bias, mult, shift_words), post_f, strict=True)
        ]
        words.extend(cmd_load_params(start, *fields, c.bus_bytes))
        ch0 = start * c.cols
        for i in range(len(fields[0])):
            st.bias[ch0 + i] = int(fields[0][i])
            st.mult[ch0 + i] = int(fields[1][i])
            st.shift[ch0 + i] = _sign6(int(fields[2][i]))
            st.known_p[ch0 + i] = True
        return consts

    made = 0
    while made < tiles:
        chain = min(int(rng.integers(1, 4)), kmax)
        k_total = int(rng.integers(chain, kmax + 1))
        cuts = sorted(int(x) for x in rng.choice(k_total - 1, size=chain - 1, replace=False) + 1)
        ks = np.diff([0, *cuts, k_total]).astype(int).tolist()
        continue_prev = st.acc_known and st.acc_k + k_total <= c.max_k and rng.random() < 0.15
        store = rng.random() < 0.9
        raw = store and rng.random() < 0.4
        for idx, k in enumerate(ks):
            a_addr = ensure(c.a_depth, k, 0)
            b_addr = ensure(c.b_depth, k, 1)
            first = idx == 0 and not continue_prev
            part = st.a[a_addr : a_addr + k].T @ st.b[b_addr : b_addr + k]
            if first:
                st.acc, st.acc_k = part, k
            else:
                st.acc, st.acc_k = st.acc + part, st.acc_k + k
            st.acc_known = True
            last = idx == len(ks) - 1
            flags = 0 if first else int(isa.MatmulFlags.ACCUMULATE)
            group, zp, lo, hi = 0, 0, -128, 127
            if last and store:
                flags |= int(isa.MatmulFlags.STORE)
                if raw:
                    flags |= int(isa.MatmulFlags.RAW)
                    group = int(rng.integers(0, 256))  # ignored for raw stores
                    zp, lo, hi = (int(v) for v in rng.integers(-128, 128, size=3))
                else:
                    group = int(rng.integers(0, c.param_depth))
                    sl = slice(group * c.cols, (group + 1) * c.cols)
                    if not st.known_p[sl].all() or rng.random() < 0.7:
                        zp, lo, hi = load_params(group, st.acc)
                    else:  # reuse the group's parameters with new tile constants
                        zp = int(rng.integers(-128, 128))
                        lo, hi = _activation_range(rng, zp)
            elif rng.random() < 0.2:
                flags |= int(isa.MatmulFlags.RAW)  # RAW without STORE: no effect
            words.extend(
                cmd_matmul(
                    isa.MatmulArgs(
                        a_addr=a_addr,
                        b_addr=b_addr,
                        k=k,
                        flags=flags,
                        group=group,
                        zero_point=zp,
                        act_min=lo,
                        act_max=hi,
                    )
                )
            )
            case.slices += k
            prev_ranges.append((a_addr, b_addr, k))
            del prev_ranges[:-2]
            if last and store:
                if raw:
                    case.tiles.append((True, st.acc.astype(np.int32)))
                else:
                    sl = slice(group * c.cols, (group + 1) * c.cols)
                    bias, mult, shift = st.bias[sl], st.mult[sl], st.shift[sl]
                    want = requant_ref(st.acc, bias, mult, shift, zp, lo, hi)
                    case.tiles.append((False, want))
                    case.saturated |= requant_saturates(st.acc, bias, shift)
        made += 1 if store else 0
    case.acc_k = st.acc_k
    return case


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


def junk_command(cfg: AccelConfig, rng) -> list[int]:
    """One well-framed command that is usually wrong in some way."""
    kind = rng.integers(0, 13)
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
