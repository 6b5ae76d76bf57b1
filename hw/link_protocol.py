"""The serial link's protocol facts, shared by the gateware (`hw.bridge`) and the host
(`host.link`): sync bytes, frame types, NACK reasons, the CRC step. Plain Python (no
Amaranth), so the host imports it without any gateware.

Frame layouts are documented in `hw.bridge`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

__all__ = ["SYNC_HOST", "SYNC_DEVICE", "MAX_DATA_WORDS", "FrameType", "Nack", "crc16_step"]

#: First byte of a host -> device frame.
SYNC_HOST = 0xA5
#: First byte of a device -> host frame.
SYNC_DEVICE = 0x5A
#: Result words one DATA frame carries at most.
MAX_DATA_WORDS = 16


class FrameType(enum.IntEnum):
    """Second byte of a device -> host frame."""

    ACK = 1  #: the frame with this ``seq`` ran (or was a duplicate / session reset)
    NACK = 2  #: the frame was refused; the next byte is a `Nack` reason
    DATA = 3  #: result words follow


class Nack(enum.IntEnum):
    """Reasons in a NACK frame."""

    CRC = 1  #: CRC mismatch: the frame was corrupted
    LENGTH = 2  #: ``len`` above the device's ``max_words``
    SEQUENCE = 3  #: ``seq`` neither the expected nor the previous one
    TIMEOUT = 4  #: the frame stopped arriving (truncated)


#: CRC-16/CCITT-FALSE: polynomial and initial value.
CRC_POLY, CRC_INIT = 0x1021, 0xFFFF


def crc16_step(crc, byte, select: Callable | None = None):
    """CRC-16/CCITT-FALSE after one more byte.

    On ints as is; on hardware values pass ``select=amaranth.hdl.Mux`` (the XOR with
    the polynomial is then a 2-way select per bit, no arithmetic).
    """
    for i in range(7, -1, -1):
        bit = (byte >> i) & 1
        top = (crc >> 15) & 1
        shifted = (crc << 1) & 0xFFFF
        if select is None:
            crc = shifted ^ (CRC_POLY if top ^ bit else 0)
        else:
            crc = shifted ^ select(top ^ bit, CRC_POLY, 0)
    return crc
