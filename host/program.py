"""`Program`: command words for the accelerator plus how to read its results.

Encoding helpers turn numpy tiles into `hw.isa` commands for one `AccelConfig`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from macforge.hw import isa
from macforge.hw.config import AccelConfig

__all__ = [
    "Program",
    "StoredTile",
    "pack_entries",
    "cmd_load",
    "cmd_load_params",
    "cmd_matmul",
    "cmd_status",
    "cmd_counters",
    "decode_status",
]


def _words_from_bytes(raw: np.ndarray, bus_bytes: int) -> list[int]:
    """(n, bus_bytes) uint8 -> n little-endian integers."""
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    return [int.from_bytes(row.tobytes(), "little") for row in raw]


def pack_entries(values: np.ndarray, bus_bytes: int) -> list[int]:
    """Buffer entries -> command words.

    ``values`` is int8 of shape (entries, entry_bytes); every entry takes
    ``ceil(entry_bytes / bus_bytes)`` words, zero padded.
    """
    values = np.asarray(values, dtype=np.int8)
    n, width = values.shape
    wpe = -(-width // bus_bytes)
    padded = np.zeros((n, wpe * bus_bytes), dtype=np.uint8)
    padded[:, :width] = values.view(np.uint8)
    return _words_from_bytes(padded.reshape(n * wpe, bus_bytes), bus_bytes)


def cmd_load(opcode: isa.Opcode, addr: int, entries: np.ndarray, bus_bytes: int) -> list[int]:
    """LOAD_A / LOAD_B of ``entries`` (n, entry_bytes) int8 at buffer address ``addr``."""
    data = pack_entries(entries, bus_bytes)
    return [isa.header(opcode, 2 + len(data)), addr, len(entries), *data]


def cmd_load_params(group: int, bias, multiplier, shift, bus_bytes: int) -> list[int]:
    """LOAD_PARAM for channels ``group * cols`` onwards: one record of `isa.PARAM_FIELDS`
    (int32 each) per channel, packed like an entry (`isa.param_words_per_channel` words)."""
    fields = [np.asarray(v, dtype=np.int64) for v in (bias, multiplier, shift)]
    n = len(fields[0])
    if any(len(f) != n for f in fields):
        raise ValueError("bias, multiplier and shift must have one value per channel")
    records = np.stack([(f & 0xFFFFFFFF).astype("<u4") for f in fields], axis=1)
    data = pack_entries(records.view(np.int8).reshape(n, isa.PARAM_RECORD_BYTES), bus_bytes)
    return [isa.header(isa.Opcode.LOAD_PARAM, 2 + len(data)), group, n, *data]


def cmd_matmul(args: isa.MatmulArgs) -> list[int]:
    return [isa.header(isa.Opcode.MATMUL, 3), *args.words()]


def cmd_status(clear: bool = False) -> list[int]:
    return [isa.header(isa.Opcode.STATUS, 1), int(clear)]


def cmd_counters(clear: bool = False) -> list[int]:
    return [isa.header(isa.Opcode.COUNTERS, 1), int(clear)]


def decode_status(word: int) -> dict[str, int]:
    """STATUS answer -> {field: value} per `hw.isa.STATUS_FIELDS`."""
    return {
        name: (word >> lsb) & ((1 << width) - 1) for name, (lsb, width) in isa.STATUS_FIELDS.items()
    }


@dataclass(frozen=True)
class StoredTile:
    """One tile the program stores: C[r0:r0+rows, c0:c0+cols] (clipped to M x N)."""

    r0: int
    c0: int
    raw: bool


@dataclass
class Program:
    """Command words and the layout of the results they produce.

    Attributes
    ----------
    config : AccelConfig
    words : list[int]       command words, each below ``2 ** bus_bits``
    m, n : int              output shape
    tiles : list[StoredTile]  stored tiles, in result-stream order
    macs : int              useful multiply-accumulates (M * K * N)
    """

    config: AccelConfig
    words: list[int] = field(default_factory=list)
    m: int = 0
    n: int = 0
    tiles: list[StoredTile] = field(default_factory=list)
    macs: int = 0

    @property
    def result_words(self) -> int:
        c = self.config
        per = {True: c.raw_words_per_row, False: c.int8_words_per_row}
        return sum(c.rows * per[t.raw] for t in self.tiles)

    def decode(self, results: Sequence[int]) -> np.ndarray:
        """Result words -> the M x N output (int8, or int32 when tiles are raw)."""
        c = self.config
        if len(results) != self.result_words:
            raise ValueError(f"expected {self.result_words} result words, got {len(results)}")
        raw = bool(self.tiles) and self.tiles[0].raw
        out = np.zeros((self.m, self.n), dtype=np.int32 if raw else np.int8)
        pos = 0
        for t in self.tiles:
            wpr = c.raw_words_per_row if t.raw else c.int8_words_per_row
            block = results[pos : pos + c.rows * wpr]
            pos += c.rows * wpr
            data = b"".join(int(w).to_bytes(c.bus_bytes, "little") for w in block)
            per_row = np.frombuffer(data, dtype=np.uint8).reshape(c.rows, wpr * c.bus_bytes)
            if t.raw:
                tile = per_row[:, : 4 * c.cols].copy().view("<i4")
            else:
                tile = per_row[:, : c.cols].copy().view(np.int8)
            rr = min(c.rows, self.m - t.r0)
            cc = min(c.cols, self.n - t.c0)
            out[t.r0 : t.r0 + rr, t.c0 : t.c0 + cc] = tile[:rr, :cc]
        return out
