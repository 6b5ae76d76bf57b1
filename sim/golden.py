"""Golden numpy models: the written specification the hardware is checked against.

This module never imports ``hw``: it states the arithmetic contract on its own.

Contract (TFLite int8 reference semantics)
------------------------------------------
* Operands are signed 8-bit integers; products and sums are exact integers.
* ``matmul(a, b)`` is ``C[i, j] = sum_k A[i, k] * B[k, j]`` computed exactly and
  returned as int32; a sum outside the signed ``acc_bits`` range is an error
  (`OverflowError`), never a silent wrap.
* ``requantize`` is TFLite's int8 output stage (``MultiplyByQuantizedMultiplier``
  from tensorflow/lite/kernels/internal/common.h with gemmlowp's fixed-point
  helpers), per output channel c::

      x   = acc + bias[c]                                   (saturated to int32 *)
      x   = x * 2**max(shift[c], 0)                         (saturated to int32 *)
      x   = SaturatingRoundingDoublingHighMul(x, multiplier[c])
      x   = RoundingDivideByPOT(x, max(-shift[c], 0))
      out = clamp(x + zero_point, act_min, act_max)          -> int8

  ``shift`` follows TFLite's sign convention (positive = left shift).
  SaturatingRoundingDoublingHighMul(a, b) is ``INT32_MAX`` when
  ``a == b == INT32_MIN``, else ``(a*b + nudge) / 2**31`` with C's truncating
  division and ``nudge = 2**30`` if ``a*b >= 0`` else ``1 - 2**30`` (so exact
  halves round toward +infinity: 1.5 -> 2, -1.5 -> -1, -0.5 -> 0).
  RoundingDivideByPOT(x, e) rounds half away from zero:
  ``(x >> e) + ((x & mask) > (mask >> 1) + (x < 0))`` with ``mask = 2**e - 1``.

  (*) TFLite's C code leaves int32 overflow of these two steps undefined; this
  contract saturates them and the hardware raises a STATUS flag when it happens.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "matmul",
    "check_int8",
    "saturating_rounding_doubling_high_mul",
    "rounding_divide_by_pot",
    "multiply_by_quantized_multiplier",
    "requantize",
    "check_requant_params",
    "fully_connected",
    "conv2d",
    "max_pool",
    "avg_pool",
    "add",
    "depthwise_conv2d",
    "avg_pool_requant",
    "softmax",
    "softmax_input_params",
    "INT32_MIN",
    "INT32_MAX",
]

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def check_int8(name: str, x: np.ndarray, ndim: int) -> np.ndarray:
    """Return ``x`` if it is an int8 array of ``ndim`` dimensions, else raise `ValueError`."""
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"{name} must have dtype int8, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {x.shape}")
    return x


def matmul(a: np.ndarray, b: np.ndarray, *, acc_bits: int = 32) -> np.ndarray:
    """Exact int8 x int8 matrix product, accumulated without rounding.

    Parameters
    ----------
    a : ndarray, int8, shape (M, K)
    b : ndarray, int8, shape (K, N)
    acc_bits : int
        Width of the signed accumulator the result must fit (default 32).

    Returns
    -------
    ndarray, int32 (int64 when ``acc_bits > 32``), shape (M, N)

    Raises
    ------
    ValueError
        Wrong dtype, rank, or inner dimensions that differ.
    OverflowError
        Some C[i, j] does not fit in ``acc_bits`` signed bits.
    """
    a = check_int8("A", a, 2)
    b = check_int8("B", b, 2)
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"inner dimensions differ: A is {a.shape}, B is {b.shape}")
    c = a.astype(np.int64) @ b.astype(np.int64)
    lo, hi = -(2 ** (acc_bits - 1)), 2 ** (acc_bits - 1) - 1
    if c.size and (c.min() < lo or c.max() > hi):
        raise OverflowError(f"matmul result outside the {acc_bits}-bit accumulator range")
    return c.astype(np.int32 if acc_bits <= 32 else np.int64)


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def _sat32(x: np.ndarray) -> np.ndarray:
    return np.clip(x, INT32_MIN, INT32_MAX)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values (elementwise), int64 out."""
    a, b = np.broadcast_arrays(_i64(a), _i64(b))
    ab = a * b  # |ab| <= 2**62: exact in int64
    v = ab + np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    q = np.where(v >= 0, v >> 31, -((-v) >> 31))  # C division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), np.int64(INT32_MAX), q)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    x, e = np.broadcast_arrays(_i64(x), _i64(exponent))
    if np.any((e < 0) | (e > 32)):
        raise ValueError("RoundingDivideByPOT exponent must be in [0, 32]")
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier with the saturating left shift of this contract."""
    x, m, s = np.broadcast_arrays(_i64(x), _i64(multiplier), _i64(shift))
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    shifted = _sat32(x * (np.int64(1) << np.minimum(left, 31)))
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, m), right)


def check_requant_params(bias, multiplier, shift, zero_point, act_min, act_max, n) -> None:
    """Raise `ValueError` unless the parameters fit the int8 contract for ``n`` channels."""
    for name, arr, lo, hi in (
        ("bias", bias, INT32_MIN, INT32_MAX),
        ("multiplier", multiplier, INT32_MIN, INT32_MAX),
        ("shift", shift, -31, 31),
    ):
        arr = np.asarray(arr)
        if arr.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise ValueError(f"{name} values must be in [{lo}, {hi}]")
    for name, v in (("zero_point", zero_point), ("act_min", act_min), ("act_max", act_max)):
        if not -128 <= int(v) <= 127:
            raise ValueError(f"{name} must be in [-128, 127], got {v}")
    if act_min > act_max:
        raise ValueError(f"act_min {act_min} > act_max {act_max}")


def requantize(acc, bias, multiplier, shift, zero_point=0, act_min=-128, act_max=127):
    """int32 accumulators (..., N) -> int8 outputs, per-channel parameters of shape (N,)."""
    acc = _i64(acc)
    n = acc.shape[-1]
    check_requant_params(bias, multiplier, shift, zero_point, act_min, act_max, n)
    x = _sat32(acc + _i64(bias))
    x = multiply_by_quantized_multiplier(x, multiplier, shift)
    out = np.clip(x + int(zero_point), int(act_min), int(act_max))
    return out.astype(np.int8)


# -- network layers (TFLite int8 reference kernels) ------------------------------------------
#
# Activations are int8 NCHW (batch, channels, height, width) with a per-tensor zero point;
# weights are int8 with zero point 0 (symmetric, per output channel); bias is int32.
# conv2d / fully_connected: acc = sum((x - input_zp) * w) + bias, then the output stage
# of `requantize` per output channel. Padding uses the input zero point (a real zero).


def fully_connected(x, w, bias, input_zp, multiplier, shift, output_zp, act_min, act_max):
    """x int8 (B, K), w int8 (N, K) -> int8 (B, N)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    acc = (x - int(input_zp)) @ w.T
    return requantize(acc, bias, multiplier, shift, output_zp, act_min, act_max)


def conv2d(
    x,
    w,
    bias,
    input_zp,
    multiplier,
    shift,
    output_zp,
    act_min,
    act_max,
    *,
    stride=(1, 1),
    pads=(0, 0, 0, 0),
):
    """x int8 (B, C, H, W), w int8 (O, C, KH, KW), pads (top, left, bottom, right).

    Direct convolution (no im2col), dilation 1, groups 1 -> int8 (B, O, HO, WO).
    """
    x = np.asarray(x, dtype=np.int64) - int(input_zp)
    w = np.asarray(w, dtype=np.int64)
    b, c, h, wd = x.shape
    o, c2, kh, kw = w.shape
    if c != c2:
        raise ValueError(f"conv2d: input has {c} channels, weights expect {c2}")
    top, left, bottom, right = pads
    xp = np.zeros((b, c, h + top + bottom, wd + left + right), dtype=np.int64)
    xp[:, :, top : top + h, left : left + wd] = x  # padded with (zp - zp) = 0
    sh, sw = stride
    ho = (h + top + bottom - kh) // sh + 1
    wo = (wd + left + right - kw) // sw + 1
    acc = np.zeros((b, o, ho, wo), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
            acc += np.einsum("bchw,oc->bohw", patch, w[:, :, i, j])
    acc = np.moveaxis(acc, 1, -1)  # channels last for per-channel requantisation
    out = requantize(acc, bias, multiplier, shift, output_zp, act_min, act_max)
    return np.moveaxis(out, -1, 1)


def _pool_windows(x, kernel, stride, pads, fill):
    b, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = stride
    top, left, bottom, right = pads
    xp = np.full((b, c, h + top + bottom, w + left + right), fill, dtype=np.int64)
    valid = np.zeros((h + top + bottom, w + left + right), dtype=np.int64)
    xp[:, :, top : top + h, left : left + w] = x
    valid[top : top + h, left : left + w] = 1
    ho = (h + top + bottom - kh) // sh + 1
    wo = (w + left + right - kw) // sw + 1
    wins = np.stack(
        [
            xp[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
            for i in range(kh)
            for j in range(kw)
        ]
    )
    counts = sum(
        valid[i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    )
    return wins, counts


def max_pool(x, kernel, stride, pads=(0, 0, 0, 0), act_min=-128, act_max=127):
    """int8 max pooling (padding never wins), clamped to the activation range."""
    x = np.asarray(x, dtype=np.int64)
    wins, _ = _pool_windows(x, kernel, stride, pads, fill=-(2**40))
    return np.clip(wins.max(axis=0), act_min, act_max).astype(np.int8)


def avg_pool(x, kernel, stride, pads=(0, 0, 0, 0), act_min=-128, act_max=127):
    """TFLite int8 average pooling: the sum over the valid (unpadded) elements, divided by
    their count rounding half away from zero, clamped to the activation range."""
    x = np.asarray(x, dtype=np.int64)
    wins, counts = _pool_windows(x, kernel, stride, pads, fill=0)
    total = wins.sum(axis=0)
    half = counts // 2
    q = np.where(total > 0, (total + half) // counts, -((-total + half) // counts))
    return np.clip(q, act_min, act_max).astype(np.int8)


def add(
    x1,
    x2,
    input1_offset,
    input2_offset,
    input1_multiplier,
    input1_shift,
    input2_multiplier,
    input2_shift,
    output_multiplier,
    output_shift,
    output_offset,
    act_min=-128,
    act_max=127,
    left_shift=20,
):
    """TFLite int8 elementwise Add (reference_ops::AddElementwise), numpy broadcasting.

    Each input is offset, shifted left by ``left_shift`` and scaled by its own
    multiplier (shifts <= 0: MultiplyByQuantizedMultiplierSmallerThanOneExp); the
    sum is scaled by the output multiplier, offset and clamped.
    """
    a = np.asarray(x1, dtype=np.int64) + int(input1_offset)
    b = np.asarray(x2, dtype=np.int64) + int(input2_offset)
    sa = multiply_by_quantized_multiplier(a * (1 << left_shift), input1_multiplier, input1_shift)
    sb = multiply_by_quantized_multiplier(b * (1 << left_shift), input2_multiplier, input2_shift)
    raw = multiply_by_quantized_multiplier(sa + sb, output_multiplier, output_shift)
    return np.clip(raw + int(output_offset), act_min, act_max).astype(np.int8)


def depthwise_conv2d(
    x,
    w,
    bias,
    input_zp,
    multiplier,
    shift,
    output_zp,
    act_min,
    act_max,
    *,
    stride=(1, 1),
    pads=(0, 0, 0, 0),
):
    """TFLite DEPTHWISE_CONV_2D, depth multiplier 1: x int8 (B, C, H, W), w int8
    (C, 1, KH, KW); channel c of the output is ``sum((x[c] - input_zp) * w[c]) + bias[c]``
    over each window (padding is a real zero), requantised per channel -> (B, C, HO, WO)."""
    x = np.asarray(x, dtype=np.int64) - int(input_zp)
    w = np.asarray(w, dtype=np.int64)
    b, c, h, wd = x.shape
    if w.shape[:2] != (c, 1):
        raise ValueError(f"depthwise_conv2d: weights must be ({c}, 1, KH, KW), got {w.shape}")
    kh, kw = w.shape[2:]
    top, left, bottom, right = pads
    xp = np.zeros((b, c, h + top + bottom, wd + left + right), dtype=np.int64)
    xp[:, :, top : top + h, left : left + wd] = x
    sh, sw = stride
    ho = (h + top + bottom - kh) // sh + 1
    wo = (wd + left + right - kw) // sw + 1
    acc = np.zeros((b, c, ho, wo), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
            acc += patch * w[None, :, 0, i, j, None, None]
    acc = np.moveaxis(acc, 1, -1)
    out = requantize(acc, bias, multiplier, shift, output_zp, act_min, act_max)
    return np.moveaxis(out, -1, 1)


def avg_pool_requant(
    x, kernel, stride, pads, input_zp, multipliers, shifts, output_zp, act_min=-128, act_max=127
):
    """Average pooling into another quantisation (TFLite MEAN's integer scheme): per
    window with ``n`` unpadded elements, ``acc = sum(x - input_zp)`` and
    ``out = clamp(MultiplyByQuantizedMultiplier(acc, multipliers[n], shifts[n]) +
    output_zp)``, the multiplier of ``n`` being that of ``input_scale / (output_scale n)``
    (so one output stage of `requantize`, no division)."""
    x = np.asarray(x, dtype=np.int64) - int(input_zp)
    wins, counts = _pool_windows(x, kernel, stride, pads, fill=0)
    acc = wins.sum(axis=0)
    m = np.asarray(multipliers, dtype=np.int64)[counts]
    s = np.asarray(shifts, dtype=np.int64)[counts]
    out = multiply_by_quantized_multiplier(acc, m, s) + int(output_zp)
    return np.clip(out, act_min, act_max).astype(np.int8)


# -- softmax: TFLite reference_ops::Softmax (int8), gemmlowp fixed point ---------------------
#
# The row maximum is subtracted; each difference d >= diff_min is scaled to Q5.26
# (``SRDHM(d * 2**input_left_shift, input_multiplier)``, the real value beta * scale * d)
# and exponentiated by gemmlowp's ``exp_on_negative_values`` into Q0.31; the sum of the
# exps (each rescaled to Q12.19 with RoundingDivideByPOT(., 12)) is inverted by
# TFLite's ``GetReciprocal`` (Newton-Raphson ``one_over_one_plus_x_for_x_in_0_1``), and
# p = SRDHM(reciprocal, exp) is the probability in Q0.31 scaled by 2**num_bits_over_unit.
# Output: TFLite's fixed quantisation (scale 1/256): ``RoundingDivideByPOT(p,
# num_bits_over_unit + 23) + output_zp``; for another output scale s, this contract
# first multiplies p by the fixed-point multiplier of 1 / (256 s):
# ``RoundingDivideByPOT(SRDHM(p, M), num_bits_over_unit + 23 - shift) + output_zp``.
# A difference below diff_min gives probability 0, i.e. output_zp (TFLite writes the int8
# minimum, which is its output zero point -128). Every int32 step saturates or cannot
# overflow, as in the C code.

_SRDHM = saturating_rounding_doubling_high_mul
_RDBPOT = rounding_divide_by_pot


def _sat_shl(x, e: int) -> np.ndarray:
    return _sat32(_i64(x) * (1 << e))


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a):
    """gemmlowp: exp(a) for a in [-1/4, 0), Q0.31 in and out (Taylor series around -1/8)."""
    x = a + (1 << 28)
    x2 = _SRDHM(x, x)
    x3 = _SRDHM(x2, x)
    x4 = _SRDHM(x2, x2)
    x4_over_4 = _RDBPOT(x4, 2)
    poly = _RDBPOT(_SRDHM(x4_over_4 + x3, 715827883) + x2, 1)  # 715827883: 1/3
    return 1895147668 + _SRDHM(1895147668, x + poly)  # 1895147668: exp(-1/8)


#: gemmlowp's exp barrel shifter: (power of two, exp(-2**power) in Q0.31)
_EXP_FACTORS = (
    (-2, 1672461947),
    (-1, 1302514674),
    (0, 790015084),
    (1, 290630308),
    (2, 39332535),
    (3, 720401),
    (4, 242),
)


def _exp_on_negative_values(a):
    """gemmlowp exp_on_negative_values: Q5.26 a <= 0 -> exp(a) in Q0.31."""
    a = _i64(a)
    quarter = 1 << 24
    a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        _sat_shl(a_mod_quarter_minus_quarter, 5)
    )
    remainder = a_mod_quarter_minus_quarter - a
    for power, factor in _EXP_FACTORS:
        result = np.where(remainder & (1 << (26 + power)), _SRDHM(result, factor), result)
    return np.where(a == 0, INT32_MAX, result)


def _one_over_one_plus_x_for_x_in_0_1(a):
    """gemmlowp: 1 / (1 + a) for a in [0, 1), Q0.31 in and out (three Newton steps in Q2.29)."""
    total = _i64(a) + INT32_MAX
    half_denominator = (total + 1) >> 1  # RoundingHalfSum(a, One); total >= 0
    x = 1515870810 + _SRDHM(half_denominator, -1010580540)  # 48/17 - 32/17 d
    for _ in range(3):
        one_minus_half_denominator_times_x = (1 << 29) - _SRDHM(half_denominator, x)
        x = x + _sat_shl(_SRDHM(x, one_minus_half_denominator_times_x), 2)
    return _sat_shl(x, 1)


def _bit_length(x) -> np.ndarray:
    x = _i64(x)
    return sum(((x >> i) > 0).astype(np.int64) for i in range(32))


def softmax_input_params(input_scale: float, beta: float = 1.0) -> tuple[int, int, int]:
    """TFLite's PreprocessSoftmaxScaling and CalculateInputRadius (5 integer bits):
    (input_multiplier, input_left_shift, diff_min) for an int8 input of this scale."""
    real = min(beta * input_scale * (1 << 26), (1 << 31) - 1.0)
    mant, exp = np.frexp(real)
    q = int(np.floor(mant * (1 << 31) + 0.5))
    if q == 1 << 31:
        q, exp = q // 2, exp + 1
    if exp < 0 or exp > 30:
        raise ValueError(f"softmax input scale {input_scale} is out of TFLite's range")
    radius = int(np.floor(31.0 * (1 << 26) / (1 << int(exp))))
    return q, int(exp), -radius


def softmax(
    x,
    input_multiplier,
    input_left_shift,
    diff_min,
    output_zp=-128,
    output_multiplier=None,
    output_shift=0,
):
    """int8 softmax over the last axis of x (TFLite reference, see above).

    ``output_multiplier`` None: TFLite's output scale 1/256; else the output scale is
    ``1 / (256 * output_multiplier * 2**(output_shift - 31))``.
    """
    x = np.asarray(x, dtype=np.int64)
    if x.shape[-1] > 4096:
        raise ValueError("softmax: at most 4096 classes (the Q12.19 sum of exps)")
    diff = x - x.max(axis=-1, keepdims=True)
    valid = diff >= int(diff_min)
    scaled = _SRDHM(np.where(valid, diff, 0) * (1 << int(input_left_shift)), input_multiplier)
    exps = _exp_on_negative_values(scaled)
    sum_of_exps = np.where(valid, _RDBPOT(exps, 12), 0).sum(axis=-1, keepdims=True)
    headroom_plus_one = 32 - _bit_length(sum_of_exps)
    num_bits_over_unit = 12 - headroom_plus_one
    shifted_sum_minus_one = ((sum_of_exps << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    shifted_scale = _one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one)
    p = _SRDHM(shifted_scale, exps)
    if output_multiplier is None:
        unsat = _RDBPOT(p, num_bits_over_unit + 23)
    else:
        unsat = _RDBPOT(_SRDHM(p, int(output_multiplier)), num_bits_over_unit + 23 - output_shift)
    out = np.clip(unsat + int(output_zp), -128, 127)
    return np.where(valid, out, int(output_zp)).astype(np.int8)
