"""Host-side int8 kernels: im2col for conv lowering, pooling, TFLite QuantizeMultiplier.

Independent of `sim.golden` (the specification the tests compare against).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "im2col",
    "max_pool_int8",
    "avg_pool_int8",
    "avg_pool_requant_int8",
    "depthwise_im2col",
    "softmax_int8",
    "add_int8",
    "requantize_int8",
    "add_params",
    "quantize_multiplier",
    "out_size",
]


def out_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int) -> int:
    n = (size + pad_before + pad_after - kernel) // stride + 1
    if n < 1:
        raise ValueError(
            f"kernel {kernel} does not fit input {size} with padding ({pad_before}, {pad_after})"
        )
    return n


def _padded(x: np.ndarray, pads, fill: int) -> np.ndarray:
    top, left, bottom, right = pads
    b, c, h, w = x.shape
    xp = np.full((b, c, h + top + bottom, w + left + right), fill, dtype=x.dtype)
    xp[:, :, top : top + h, left : left + w] = x
    return xp


def im2col(x: np.ndarray, kernel, stride, pads, pad_value: int):
    """int8 (B, C, H, W) -> patches int8 (B*HO*WO, C*KH*KW) and (HO, WO).

    Row ``(b*HO + i)*WO + j`` holds the window at output (i, j) of image b, ordered
    (c, kh, kw) like a flattened (O, C, KH, KW) weight; padding is ``pad_value``.
    """
    b, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = stride
    ho = out_size(h, kh, sh, pads[0], pads[2])
    wo = out_size(w, kw, sw, pads[1], pads[3])
    xp = _padded(x, pads, pad_value)
    cols = np.empty((b, ho, wo, c, kh, kw), dtype=np.int8)
    for i in range(kh):
        for j in range(kw):
            win = xp[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
            cols[:, :, :, :, i, j] = win.transpose(0, 2, 3, 1)
    return cols.reshape(b * ho * wo, c * kh * kw), (ho, wo)


def _windows(x, kernel, stride, pads, fill):
    b, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = stride
    ho = out_size(h, kh, sh, pads[0], pads[2])
    wo = out_size(w, kw, sw, pads[1], pads[3])
    xp = _padded(x.astype(np.int32), pads, fill)
    mask = _padded(np.ones((1, 1, h, w), np.int32), pads, 0)
    taps = [(i, j) for i in range(kh) for j in range(kw)]
    win = np.stack(
        [xp[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] for i, j in taps],
        axis=-1,
    )
    cnt = np.stack(
        [
            mask[0, 0, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
            for i, j in taps
        ],
        axis=-1,
    ).sum(axis=-1)
    return win, cnt


def max_pool_int8(x, kernel, stride, pads=(0, 0, 0, 0)) -> np.ndarray:
    win, _ = _windows(x, kernel, stride, pads, fill=-129)
    return win.max(axis=-1).astype(np.int8)


def avg_pool_int8(x, kernel, stride, pads=(0, 0, 0, 0)) -> np.ndarray:
    """Mean of the unpadded elements, rounded half away from zero (TFLite)."""
    win, cnt = _windows(x, kernel, stride, pads, fill=0)
    total = win.sum(axis=-1).astype(np.int64)
    rounded = (np.abs(total) + cnt // 2) // cnt
    return np.clip(np.sign(total) * rounded, -128, 127).astype(np.int8)


def avg_pool_requant_int8(x, kernel, stride, pads, zp_in, multipliers, shifts, zp_out):
    """Average pooling into another quantisation: per window of ``n`` unpadded elements,
    ``sum(x - zp_in)`` through the TFLite output stage with ``multipliers[n]``,
    ``shifts[n]`` (`host.layer_params.avg_pool_params`), plus ``zp_out``, clamped."""
    win, cnt = _windows(x, kernel, stride, pads, fill=zp_in)
    acc = (win - zp_in).sum(axis=-1).astype(np.int64)
    m = np.asarray(multipliers, np.int64)[cnt]
    sh = np.asarray(shifts, np.int64)[cnt]
    out = _multiply_by_quantized_multiplier(acc, m, sh) + zp_out
    return np.clip(out, -128, 127).astype(np.int8)


def depthwise_im2col(x: np.ndarray, kernel, stride, pads, pad_value: int, channels: slice):
    """Patches of the channels ``channels`` of int8 (B, C, H, W): (B*HO*WO, G*KH*KW)
    ordered (channel, kh, kw), so channel g's taps are columns ``g*KH*KW ..``; and
    (HO, WO). A block-diagonal weight turns them into a depthwise conv of G channels."""
    return im2col(x[:, channels], kernel, stride, pads, pad_value)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: ``real = multiplier * 2**(shift - 31)``.

    ``multiplier`` in [2**30, 2**31) (0 for a zero scale), ``shift`` the exponent,
    clamped to [-31, 30] (a scale below 2**-32 becomes multiplier 0).
    """
    if real < 0:
        raise ValueError("quantize_multiplier needs a non-negative scale")
    if real == 0:
        return 0, 0
    mant, exp = np.frexp(real)
    q = int(np.floor(mant * (1 << 31) + 0.5))  # std::round: half away from zero
    if q == 1 << 31:
        q //= 2
        exp += 1
    if exp < -31:
        return 0, 0
    if exp > 30:
        raise ValueError(f"scale {real} too large for an int32 multiplier")
    return q, int(exp)


def _srdhm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    prod = a * b
    nudged = prod + np.where(prod >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(nudged >= 0, nudged >> 31, -((-nudged) >> 31))
    return np.where((a == -(2**31)) & (b == -(2**31)), 2**31 - 1, high)


def _rdbpot(x: np.ndarray, e) -> np.ndarray:
    """RoundingDivideByPOT: x / 2**e rounded half away from zero (e >= 0, broadcast)."""
    mask = (np.int64(1) << e) - 1
    return (x >> e) + ((x & mask) > ((mask >> 1) + (x < 0)))


def _multiply_by_quantized_multiplier(x: np.ndarray, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier on int32 values ``x`` (int64 arrays): saturating
    left shift by ``max(shift, 0)``, SRDHM by ``multiplier``, RDBPOT by ``max(-shift, 0)``."""
    s = np.asarray(shift, np.int64)
    shifted = np.clip(x << np.maximum(s, 0), -(2**31), 2**31 - 1)
    return _rdbpot(_srdhm(shifted, np.asarray(multiplier, np.int64)), np.maximum(-s, 0))


def _scale_down(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """x * multiplier * 2**(shift - 31) with TFLite rounding, for shift <= 0."""
    return _rdbpot(_srdhm(x.astype(np.int64), np.int64(multiplier)), -shift)


def requantize_int8(acc, bias, multiplier, shift, zero_point, act_min, act_max) -> np.ndarray:
    """The accelerator's output stage on the host (TFLite int8, per output channel along
    the last axis): ``sat32(acc + bias)``, saturating left shift by ``max(shift, 0)``,
    SaturatingRoundingDoublingHighMul by ``multiplier``, RoundingDivideByPOT by
    ``max(-shift, 0)``, plus ``zero_point``, clamped to [act_min, act_max]. ``acc``: int64
    accumulators (..., N); ``bias``/``multiplier``/``shift``: (N,)."""
    x = np.clip(np.asarray(acc, np.int64) + np.asarray(bias, np.int64), -(2**31), 2**31 - 1)
    y = _multiply_by_quantized_multiplier(x, multiplier, shift)
    return np.clip(y + int(zero_point), int(act_min), int(act_max)).astype(np.int8)


def add_int8(x1, x2, params: dict) -> np.ndarray:
    """TFLite int8 Add of two broadcastable int8 tensors; ``params`` from `add_params`."""
    p = params
    a = (np.asarray(x1, np.int64) + p["input1_offset"]) << p["left_shift"]
    b = (np.asarray(x2, np.int64) + p["input2_offset"]) << p["left_shift"]
    total = _scale_down(a, p["input1_multiplier"], p["input1_shift"]) + _scale_down(
        b, p["input2_multiplier"], p["input2_shift"]
    )
    out = _scale_down(total, p["output_multiplier"], p["output_shift"]) + p["output_offset"]
    return np.clip(out, p["act_min"], p["act_max"]).astype(np.int8)


def add_params(
    s1: float,
    zp1: int,
    s2: float,
    zp2: int,
    s_out: float,
    zp_out: int,
    act_min: int = -128,
    act_max: int = 127,
) -> dict:
    """TFLite's integer parameters for an int8 Add (left shift 20, multipliers < 1)."""
    left_shift = 20
    twice_max = 2 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * s_out))
    if max(sh1, sh2, sho) > 0:
        raise ValueError("Add scales need multipliers below one")
    return {
        "left_shift": left_shift,
        "input1_offset": -zp1,
        "input2_offset": -zp2,
        "input1_multiplier": m1,
        "input1_shift": sh1,
        "input2_multiplier": m2,
        "input2_shift": sh2,
        "output_multiplier": mo,
        "output_shift": sho,
        "output_offset": zp_out,
        "act_min": act_min,
        "act_max": act_max,
    }


# -- int8 softmax (TFLite reference_ops::Softmax), on Python integers ------------------------
def _srdhm_int(a: int, b: int) -> int:
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    return v >> 31 if v >= 0 else -((-v) >> 31)


def _rdbpot_int(x: int, e: int) -> int:
    mask = (1 << e) - 1
    return (x >> e) + ((x & mask) > (mask >> 1) + (x < 0))


def _shl_sat_int(x: int, e: int) -> int:
    return min(max(x << e, -(2**31)), 2**31 - 1)


def _exp_negative(a: int) -> int:
    """exp of a Q5.26 value a <= 0, Q0.31 (gemmlowp ``exp_on_negative_values``)."""
    if a == 0:
        return 2**31 - 1
    quarter = 1 << 24
    r = (a & (quarter - 1)) - quarter  # a mod 1/4, minus 1/4: in [-1/4, 0)
    x = _shl_sat_int(r, 5) + (1 << 28)  # Q0.31, shifted by 1/8 for the Taylor series
    x2 = _srdhm_int(x, x)
    x3 = _srdhm_int(x2, x)
    x4 = _srdhm_int(x2, x2)
    poly = _rdbpot_int(_srdhm_int(_rdbpot_int(x4, 2) + x3, 715827883) + x2, 1)
    result = 1895147668 + _srdhm_int(1895147668, x + poly)
    rest = r - a
    for power, factor in zip(
        range(-2, 5),
        (1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242),
        strict=True,
    ):
        if rest & (1 << (26 + power)):
            result = _srdhm_int(result, factor)
    return result


def _reciprocal(sum_q12: int) -> tuple[int, int]:
    """TFLite GetReciprocal of a Q12.19 sum: (1/(1+x) in Q0.31, num_bits_over_unit)."""
    headroom_plus_one = 32 - sum_q12.bit_length()
    bits_over_unit = 12 - headroom_plus_one
    a = ((sum_q12 << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    half = (a + 2**31 - 1 + 1) >> 1
    x = 1515870810 + _srdhm_int(half, -1010580540)
    for _ in range(3):
        x += _shl_sat_int(_srdhm_int(x, (1 << 29) - _srdhm_int(half, x)), 2)
    return _shl_sat_int(x, 1), bits_over_unit


def softmax_int8(x: np.ndarray, params: dict) -> np.ndarray:
    """int8 softmax over the last axis; ``params`` from `host.layer_params.softmax_params`."""
    p = params
    x = np.asarray(x)
    out = np.empty(x.shape, np.int8)
    for idx in np.ndindex(x.shape[:-1]):
        row = [int(v) for v in x[idx]]
        top = max(row)
        exps = []
        for v in row:
            d = v - top
            if d >= p["diff_min"]:
                exps.append(
                    _exp_negative(_srdhm_int(d << p["input_left_shift"], p["input_multiplier"]))
                )
            else:
                exps.append(None)
        total = sum(_rdbpot_int(e, 12) for e in exps if e is not None)
        recip, bits = _reciprocal(total)
        res = []
        for e in exps:
            if e is None:  # probability 0
                res.append(p["output_zp"])
                continue
            prob = _srdhm_int(recip, e)
            if p["output_multiplier"] is None:
                q = _rdbpot_int(prob, bits + 23)
            else:
                q = _rdbpot_int(
                    _srdhm_int(prob, p["output_multiplier"]), bits + 23 - p["output_shift"]
                )
            res.append(min(max(q + p["output_zp"], -128), 127))
        out[idx] = res
    return out
