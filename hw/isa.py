"""The command-stream instruction set, shared by the hardware decoder and the host compiler.

Framing
-------
The command stream carries words of ``config.bus_bytes`` bytes. Every command is
one *header* word followed by exactly ``length`` words::

    header (low 32 bits of the word):  [7:0] opcode   [31:8] length (words that follow)

Fields of argument words live in the low 32 bits; the rest of a wide word is
ignored. Because every header carries its length, the decoder skips a bad or
unknown command completely and stays in sync with the next one.

Commands (``args`` = argument words, then payload words)
---------------------------------------------------------
========== ==== ======================================================================
name       code words after the header
========== ==== ======================================================================
NOP        0x00 any number, ignored (padding)
LOAD_A     0x01 ``addr``, ``n``, then ``n * a_words_per_entry`` data words: A entries
                addr..addr+n-1
LOAD_B     0x02 ``addr``, ``n``, then ``n * b_words_per_entry`` data words: B entries
                addr..addr+n-1
LOAD_PARAM 0x03 ``group``, ``count``, then ``count * param_words_per_channel(bus_bytes)``
                words: one 12-byte record per channel (bias, multiplier, shift) for
                channels ``group*cols``, ``group*cols+1``, ...
MATMUL     0x04 3 argument words, see `MatmulArgs`
STATUS     0x05 0 or 1 word (bit 0: clear after reading); answers 1 result word
COUNTERS   0x06 0 or 1 word (bit 0: clear after reading); answers 4 result words
========== ==== ======================================================================

Data packing: an A entry is column k of an A tile, ``A[i0 + r, k]`` for r in
0..rows-1, byte r of the entry at byte ``r % bus_bytes`` of word ``r // bus_bytes``
(little endian). B entries likewise hold ``B[k, j0 + c]``. A parameter record is
packed the same way: int32 ``bias`` at bytes 0..3, int32 ``multiplier`` at 4..7, int32
``shift`` at 8..11 (`PARAM_FIELDS`), so a channel takes 3 words on a 4-byte stream, 2 on
an 8-byte one and 1 on a 16-byte one (`param_words_per_channel`).

MATMUL streams K entries ``A[a_addr + k]`` and ``B[b_addr + k]`` through the array.
With ``accumulate`` the accumulators continue from the previous MATMUL; with
``store`` the finished ``rows x cols`` tile leaves on the result stream after this
MATMUL: in int8 mode through post-processing with parameter group ``group``
(``int8_words_per_row`` words per row), in ``raw`` mode as int32
(``raw_words_per_row`` words per row, value c at bytes 4c..4c+3), row 0 first.

STATUS answer (low 32 bits): ``[7:0]`` first error code since the last clear
(sticky), ``[15:8]`` number of errors (saturates at 255), ``[16]`` accumulator
overflow (a sum ran longer than ``max_k``), ``[17]`` bias add or left shift
saturated to int32, ``[18]`` a shift word outside [-32, 31] was truncated,
``[19]`` busy (always 0: STATUS waits for all earlier work).

COUNTERS answer: four words, 32-bit saturating: ``cycles`` since reset/clear,
``busy`` (cycles a K-slice entered the array), ``macs`` (busy x rows x cols,
padding included), ``stalls`` (cycles a MATMUL was active but no slice entered).
STATUS and COUNTERS wait until every earlier command has finished and every
result has left, so their answers follow all earlier results.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth.hdl import signed
from amaranth.lib import data

__all__ = [
    "Opcode",
    "ErrorCode",
    "MatmulFlags",
    "MatmulArgs",
    "LENGTH_BITS",
    "MAX_LENGTH",
    "header",
    "STATUS_FIELDS",
    "COUNTER_NAMES",
    "PARAM_FIELD_BITS",
    "HEADER_LAYOUT",
    "MATMUL_ARG_LAYOUTS",
    "PARAM_FIELDS",
    "PARAM_RECORD_BYTES",
    "param_words_per_channel",
]

OPCODE_BITS = 8
LENGTH_BITS = 24
MAX_LENGTH = 2**LENGTH_BITS - 1
ADDR_BITS = 16
#: Bits of the requantisation shift the hardware stores (signed: -32..31).
SHIFT_BITS = 6
#: The header word's low 32 bits (the decoder views words through it, `header` packs it).
HEADER_LAYOUT = data.StructLayout({"opcode": OPCODE_BITS, "length": LENGTH_BITS})
#: MATMUL's three argument words (low 32 bits each); see `MatmulArgs`.
MATMUL_ARG_LAYOUTS = (
    data.StructLayout({"a_addr": ADDR_BITS, "b_addr": ADDR_BITS}),
    data.StructLayout({"k": 16, "flags": 8, "group": 8}),
    data.StructLayout(
        {"zero_point": signed(8), "act_min": signed(8), "act_max": signed(8), "unused": 8}
    ),
)
#: Fields of a LOAD_PARAM channel record, in byte order, 4 bytes (int32) each.
PARAM_FIELDS = ("bias", "multiplier", "shift")
PARAM_RECORD_BYTES = 4 * len(PARAM_FIELDS)
#: Bits the parameter buffer keeps of each field (the shift is `SHIFT_BITS` wide).
PARAM_FIELD_BITS = dict(zip(PARAM_FIELDS, (32, 32, SHIFT_BITS), strict=True))


def param_words_per_channel(bus_bytes: int) -> int:
    """Command words one LOAD_PARAM channel record takes on a ``bus_bytes`` stream."""
    return -(-PARAM_RECORD_BYTES // bus_bytes)


class Opcode(enum.IntEnum):
    NOP = 0x00
    LOAD_A = 0x01
    LOAD_B = 0x02
    LOAD_PARAM = 0x03
    MATMUL = 0x04
    STATUS = 0x05
    COUNTERS = 0x06


class ErrorCode(enum.IntEnum):
    """Sticky error codes reported by STATUS ``[7:0]`` (the first one since clear)."""

    NONE = 0
    UNKNOWN_OPCODE = 1  #: opcode not in `Opcode`; the command is skipped
    BAD_LENGTH = 2  #: length does not fit the opcode (e.g. partial entry)
    A_RANGE = 3  #: A buffer address range outside 0..a_depth-1
    B_RANGE = 4  #: B buffer address range outside 0..b_depth-1
    PARAM_RANGE = 5  #: parameter group outside 0..param_depth-1
    BAD_K = 6  #: MATMUL with K = 0
    BAD_CLAMP = 7  #: MATMUL with act_min > act_max
    ACC_OVERFLOW = 8  #: accumulation ran longer than max_k (results untrustworthy)


class MatmulFlags(enum.IntFlag):
    ACCUMULATE = 1  #: continue the previous accumulators (no clear)
    STORE = 2  #: drain the tile to the result stream after this MATMUL
    RAW = 4  #: store int32 accumulators instead of requantised int8


@dataclass(frozen=True)
class MatmulArgs:
    """MATMUL argument words.

    word 0: ``[15:0] a_addr``  ``[31:16] b_addr``
    word 1: ``[15:0] k``  ``[23:16] flags`` (`MatmulFlags`)  ``[31:24] group``
    word 2: ``[7:0] zero_point``  ``[15:8] act_min``  ``[23:16] act_max`` (int8 each)
    """

    a_addr: int
    b_addr: int
    k: int
    flags: int = 0
    group: int = 0
    zero_point: int = 0
    act_min: int = -128
    act_max: int = 127

    def words(self) -> list[int]:
        for name, value, lo, hi in (
            ("a_addr", self.a_addr, 0, 0xFFFF),
            ("b_addr", self.b_addr, 0, 0xFFFF),
            ("k", self.k, 0, 0xFFFF),
            ("flags", self.flags, 0, 0xFF),
            ("group", self.group, 0, 0xFF),
            ("zero_point", self.zero_point, -128, 127),
            ("act_min", self.act_min, -128, 127),
            ("act_max", self.act_max, -128, 127),
        ):
            if not lo <= int(value) <= hi:
                raise ValueError(f"MATMUL {name} = {value} outside [{lo}, {hi}]")
        w0, w1, w2 = MATMUL_ARG_LAYOUTS
        return [
            w0.const({"a_addr": self.a_addr, "b_addr": self.b_addr}).as_bits(),
            w1.const({"k": self.k, "flags": int(self.flags), "group": self.group}).as_bits(),
            w2.const(
                {"zero_point": self.zero_point, "act_min": self.act_min, "act_max": self.act_max}
            ).as_bits(),
        ]


def header(opcode: int, length: int) -> int:
    """The header word (low 32 bits) of a command with ``length`` following words."""
    if not 0 <= opcode < 2**OPCODE_BITS:
        raise ValueError(f"opcode {opcode} does not fit {OPCODE_BITS} bits")
    if not 0 <= length <= MAX_LENGTH:
        raise ValueError(f"command length {length} outside [0, {MAX_LENGTH}]")
    return HEADER_LAYOUT.const({"opcode": opcode, "length": length}).as_bits()


#: STATUS word fields: name -> (lsb, width)
STATUS_FIELDS = {
    "error": (0, 8),
    "error_count": (8, 8),
    "acc_overflow": (16, 1),
    "saturated": (17, 1),
    "shift_truncated": (18, 1),
    "busy": (19, 1),
}

#: COUNTERS answer, in order.
COUNTER_NAMES = ("cycles", "busy", "macs", "stalls")
