"""Host side of the framed serial link of `hw.bridge` (no I/O here).

`encode_frame` builds host -> device frames; `FrameParser` turns the device's
byte stream into `DeviceFrame`s (ACK, NACK, DATA), dropping anything whose
CRC does not match and resynchronising on the next sync byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from macforge.hw.link_protocol import (
    MAX_DATA_WORDS,
    SYNC_DEVICE,
    SYNC_HOST,
    FrameType,
    Nack,
    crc16_step,
)

__all__ = [
    "crc16",
    "encode_frame",
    "DeviceFrame",
    "FrameParser",
    "Nack",
    "LinkError",
    "split_words",
]


class LinkError(RuntimeError):
    """The serial link failed: no answer after retries, or corrupted/lost result data."""


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), as the bridge computes it."""
    crc = 0xFFFF
    for byte in data:
        crc = crc16_step(crc, byte)
    return crc


def encode_frame(seq: int, words: Sequence[int], bus_bytes: int) -> bytes:
    """0xA5, seq, len (LE16), payload, CRC16 (LE). ``words`` empty = session reset."""
    body = bytes([seq & 0xFF]) + len(words).to_bytes(2, "little")
    body += b"".join(int(w).to_bytes(bus_bytes, "little") for w in words)
    return bytes([SYNC_HOST]) + body + crc16(body).to_bytes(2, "little")


def split_words(words: Sequence[int], max_words: int) -> list[list[int]]:
    return [list(words[i : i + max_words]) for i in range(0, len(words), max_words)]


@dataclass(frozen=True)
class DeviceFrame:
    kind: str  #: "ack", "nack" or "data"
    seq: int  #: acknowledged seq, or DATA frame counter
    reason: int = 0  #: `Nack` reason for a NACK
    words: tuple[int, ...] = ()


@dataclass
class FrameParser:
    """Incremental parser of the device's byte stream."""

    bus_bytes: int
    corrupt: int = 0  #: frames dropped for a bad CRC or impossible header
    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[DeviceFrame]:
        self._buf += data
        out: list[DeviceFrame] = []
        while True:
            start = self._buf.find(SYNC_DEVICE)
            if start < 0:
                self._buf.clear()
                return out
            del self._buf[:start]
            if len(self._buf) < 4:
                return out
            kind = self._buf[1]
            if kind in (FrameType.ACK, FrameType.NACK):
                total = 6
            elif kind == FrameType.DATA and 1 <= self._buf[3] <= MAX_DATA_WORDS:
                total = 4 + self._buf[3] * self.bus_bytes + 2
            else:
                self.corrupt += 1
                del self._buf[:1]
                continue
            if len(self._buf) < total:
                return out
            frame = bytes(self._buf[:total])
            if crc16(frame[1:-2]) != int.from_bytes(frame[-2:], "little"):
                self.corrupt += 1
                del self._buf[:1]
                continue
            del self._buf[:total]
            if kind == FrameType.ACK:
                out.append(DeviceFrame("ack", frame[2]))
            elif kind == FrameType.NACK:
                out.append(DeviceFrame("nack", frame[2], frame[3]))
            else:
                payload = frame[4:-2]
                words = tuple(
                    int.from_bytes(payload[i : i + self.bus_bytes], "little")
                    for i in range(0, len(payload), self.bus_bytes)
                )
                out.append(DeviceFrame("data", frame[2], 0, words))
