"""Golden numpy models: the written specification the hardware is checked against.

This module never imports ``hw``: it states the arithmetic contract on its own.

Contract (TFLite int8 reference semantics)
------------------------------------------
* Operands are signed 8-bit integers; products and sums are exact integers.
* ``matmul(a, b)`` is ``C[i, j] = sum_k A[i, k] * B[k, j]`` computed exactly and
  returned as int32; a sum outside the signed ``acc_bits`` range is an error
  (`OverflowError`), never a silent wrap.
"""

from __future__ import annotations

import numpy as np

__all__ = ["matmul", "check_int8"]


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
