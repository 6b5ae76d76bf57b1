"""Host-side int8 kernels: im2col for conv lowering, pooling, TFLite QuantizeMultiplier.

Independent of `sim.golden` (the specification the tests compare against).
"""

from __future__ import annotations

import numpy as np

__all__ = ["im2col", "max_pool_int8", "avg_pool_int8", "quantize_multiplier", "out_size"]


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
