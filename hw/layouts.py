"""Struct layouts shared by the decoder, engine, store queue and store unit."""

from __future__ import annotations

from amaranth.hdl import signed
from amaranth.lib import data

from . import isa

__all__ = [
    "ADDR_W",
    "matmul_desc_layout",
    "range_layout",
    "store_desc_layout",
    "group_use_layout",
]

#: Buffer addresses and end points (up to 65536).
ADDR_W = isa.ADDR_BITS + 1


def matmul_desc_layout() -> data.StructLayout:
    """A validated MATMUL command, as handed to the engine."""
    return data.StructLayout(
        {
            "a_addr": ADDR_W,
            "b_addr": ADDR_W,
            "k": ADDR_W,
            "accumulate": 1,
            "store": 1,
            "raw": 1,
            "group": 8,
            "zero_point": signed(8),
            "act_min": signed(8),
            "act_max": signed(8),
        }
    )


def range_layout() -> data.StructLayout:
    """Buffer ranges a MATMUL reads: [a_lo, a_hi) and [b_lo, b_hi), when ``valid``."""
    return data.StructLayout(
        {"valid": 1, "a_lo": ADDR_W, "a_hi": ADDR_W, "b_lo": ADDR_W, "b_hi": ADDR_W}
    )


def group_use_layout() -> data.StructLayout:
    """A parameter group some pending int8 store will read (when ``valid``)."""
    return data.StructLayout({"valid": 1, "group": 8})


def store_desc_layout() -> data.StructLayout:
    """How to store one drained tile: raw int32 or int8 with parameter ``group``."""
    return data.StructLayout(
        {
            "raw": 1,
            "group": 8,
            "zero_point": matmul_desc_layout()["zero_point"].shape,
            "act_min": matmul_desc_layout()["act_min"].shape,
            "act_max": matmul_desc_layout()["act_max"].shape,
        }
    )
