"""Struct layouts shared by the decoder, engine, store queue and store unit.

Buffer addresses, counts and end points are only as wide as the configured
buffers need (`addr_bits`, `end_bits`); the decoder rejects any command whose
16-bit address or count does not fit before it builds one of these.
"""

from __future__ import annotations

from amaranth.hdl import signed
from amaranth.lib import data

from .config import AccelConfig

__all__ = [
    "addr_bits",
    "end_bits",
    "matmul_desc_layout",
    "range_layout",
    "store_desc_layout",
    "group_use_layout",
]


def addr_bits(depth: int) -> int:
    """Bits of an address into a buffer of ``depth`` entries (0 .. depth-1), at least 1."""
    return max(1, (depth - 1).bit_length())


def end_bits(depth: int) -> int:
    """Bits of an end point or count of a buffer of ``depth`` entries (0 .. depth)."""
    return max(1, depth.bit_length())


def matmul_desc_layout(config: AccelConfig) -> data.StructLayout:
    """A validated MATMUL command, as handed to the engine.

    ``a_addr`` / ``b_addr``: first entry read (`addr_bits` of the buffer);
    ``a_end`` / ``b_end``: one past the last entry read (`end_bits`), precomputed
    by the decoder so the engine's hazard ranges need no adder; ``k`` in
    1 .. min(a_depth, b_depth); ``group`` is the low bits of the command's group
    (only meaningful for int8 stores, which are checked to be < param_depth).
    """
    c = config
    return data.StructLayout(
        {
            "a_addr": addr_bits(c.a_depth),
            "b_addr": addr_bits(c.b_depth),
            "a_end": end_bits(c.a_depth),
            "b_end": end_bits(c.b_depth),
            "k": end_bits(min(c.a_depth, c.b_depth)),
            "accumulate": 1,
            "store": 1,
            "raw": 1,
            "group": addr_bits(c.param_depth),
            "zero_point": signed(8),
            "act_min": signed(8),
            "act_max": signed(8),
        }
    )


def range_layout(config: AccelConfig) -> data.StructLayout:
    """Buffer ranges a MATMUL reads: [a_lo, a_hi) and [b_lo, b_hi), when ``valid`` (`end_bits`)."""
    a, b = end_bits(config.a_depth), end_bits(config.b_depth)
    return data.StructLayout({"valid": 1, "a_lo": a, "a_hi": a, "b_lo": b, "b_hi": b})


def group_use_layout() -> data.StructLayout:
    """A parameter group some pending int8 store will read (when ``valid``)."""
    return data.StructLayout({"valid": 1, "group": 8})


def store_desc_layout() -> data.StructLayout:
    """How to store one drained tile: raw int32 or int8 with parameter ``group``."""
    return data.StructLayout(
        {
            "raw": 1,
            "group": 8,
            "zero_point": signed(8),
            "act_min": signed(8),
            "act_max": signed(8),
        }
    )
