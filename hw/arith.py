"""Small arithmetic helpers that keep Yosys from spending DSP blocks where none are needed."""

from __future__ import annotations

from amaranth.hdl import Mux, Value

__all__ = ["const_mul", "lut_mul"]


def const_mul(value: Value, k: int) -> Value:
    """``value * k`` for a non-negative constant ``k`` as shifts and adds (no $mul cell)."""
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"const_mul needs a non-negative int constant, got {k!r}")
    terms = [value << bit for bit in range(k.bit_length()) if (k >> bit) & 1]
    if not terms:
        return value * 0
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def lut_mul(a: Value, b: Value) -> Value:
    """Signed ``a * b`` built from partial products (adders in LUTs, never a DSP block).

    For ``w``-bit two's complement ``b``:
    ``a*b = sum_{i<w-1} b_i * (a << i) - b_{w-1} * (a << (w-1))``.
    The result is ``len(a) + len(b)`` bits wide, signed.
    """
    wa, wb = len(a), len(b)
    width = wa + wb
    a_ext = a.as_signed()
    total = Mux(b[wb - 1], -(a_ext << (wb - 1)), 0)
    for i in range(wb - 1):
        total = total + Mux(b[i], a_ext << i, 0)
    return total[:width].as_signed()
