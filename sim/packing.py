"""Bit packing between numpy values and the array's flattened stream payloads.

Amaranth flattens a `data.StructLayout` payload into one Verilog port, first
field in the least significant bits. These helpers mirror `hw.array.slice_layout`
and `hw.array.result_layout` for the cocotb benches.
"""

from __future__ import annotations

from collections.abc import Sequence

from macforge.hw.config import AccelConfig

__all__ = ["pack_slice", "unpack_result", "to_signed"]


def to_signed(value: int, width: int) -> int:
    """Interpret the low ``width`` bits of ``value`` as two's complement."""
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


def pack_slice(
    cfg: AccelConfig, a_col: Sequence[int], b_row: Sequence[int], first: bool, last: bool
) -> int:
    """Pack one K-slice: ``a_col`` (rows int8), ``b_row`` (cols int8), flags."""
    if len(a_col) != cfg.rows or len(b_row) != cfg.cols:
        raise ValueError(f"slice needs {cfg.rows} A values and {cfg.cols} B values")
    w = cfg.input_width
    mask = (1 << w) - 1
    word, pos = 0, 0
    for v in list(a_col) + list(b_row):
        word |= (int(v) & mask) << pos
        pos += w
    word |= int(bool(first)) << pos
    word |= int(bool(last)) << (pos + 1)
    return word


def unpack_result(cfg: AccelConfig, word: int) -> tuple[list[int], bool]:
    """Unpack one result row: (``cols`` signed values, ``last`` flag)."""
    w = cfg.acc_width
    row = [to_signed(word >> (j * w), w) for j in range(cfg.cols)]
    return row, bool((word >> (cfg.cols * w)) & 1)
