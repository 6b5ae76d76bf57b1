"""Reference model of the command decoder's checks, written from `hw.isa`'s documentation.

`IsaModel.step(words)` takes one framed command (header + its words) and
returns the `ErrorCode` the hardware must report for it and the number of
result words it produces. It tracks the one piece of state that matters for
errors: how long the current accumulation has run (ACC_OVERFLOW).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from macforge.hw import isa
from macforge.hw.config import AccelConfig

__all__ = ["IsaModel"]


@dataclass
class IsaModel:
    config: AccelConfig
    acc_k: int = 0  #: slices in the current accumulation (array k counter)

    def step(self, words: Sequence[int]) -> tuple[isa.ErrorCode, int]:
        c = self.config
        hdr = words[0] & 0xFFFFFFFF
        op, length = hdr & 0xFF, hdr >> 8
        if len(words) != 1 + length:
            raise ValueError("words must be exactly one framed command")
        args = [w & 0xFFFFFFFF for w in words[1:4]]
        E = isa.ErrorCode
        if op == isa.Opcode.NOP:
            return E.NONE, 0
        if op in (isa.Opcode.LOAD_A, isa.Opcode.LOAD_B, isa.Opcode.LOAD_PARAM):
            if length < 2:
                return E.BAD_LENGTH, 0
            addr, count = args[0], args[1]
            data = length - 2
            if op == isa.Opcode.LOAD_PARAM:
                # one 12-byte record per channel, packed like an entry
                if data != count * -(-12 // c.bus_bytes):
                    return E.BAD_LENGTH, 0
                if addr >= c.param_depth or addr * c.cols + count > c.param_depth * c.cols:
                    return E.PARAM_RANGE, 0
                return E.NONE, 0
            is_a = op == isa.Opcode.LOAD_A
            wpe = c.a_words_per_entry if is_a else c.b_words_per_entry
            depth = c.a_depth if is_a else c.b_depth
            if data != count * wpe:
                return E.BAD_LENGTH, 0
            if addr + count > depth:
                return E.A_RANGE if is_a else E.B_RANGE, 0
            return E.NONE, 0
        if op == isa.Opcode.MATMUL:
            if length != 3:
                return E.BAD_LENGTH, 0
            a_addr, b_addr = args[0] & 0xFFFF, args[0] >> 16
            k, flags, group = args[1] & 0xFFFF, (args[1] >> 16) & 0xFF, args[1] >> 24
            zp_min_max = [((args[2] >> s) & 0xFF) for s in (0, 8, 16)]
            act_min, act_max = [v - 256 if v > 127 else v for v in zp_min_max[1:]]
            store = bool(flags & isa.MatmulFlags.STORE)
            raw = bool(flags & isa.MatmulFlags.RAW)
            if k == 0:
                return E.BAD_K, 0
            if a_addr + k > c.a_depth:
                return E.A_RANGE, 0
            if b_addr + k > c.b_depth:
                return E.B_RANGE, 0
            if store and not raw and group >= c.param_depth:
                return E.PARAM_RANGE, 0
            if store and not raw and act_min > act_max:
                return E.BAD_CLAMP, 0
            accumulate = bool(flags & isa.MatmulFlags.ACCUMULATE)
            self.acc_k = (self.acc_k if accumulate else 0) + k
            code = E.ACC_OVERFLOW if self.acc_k > c.max_k else E.NONE
            per_row = c.raw_words_per_row if raw else c.int8_words_per_row
            return code, (c.rows * per_row if store else 0)
        if op in (isa.Opcode.STATUS, isa.Opcode.COUNTERS):
            if length > 1:
                return E.BAD_LENGTH, 0
            return E.NONE, 1 if op == isa.Opcode.STATUS else len(isa.COUNTER_NAMES)
        return E.UNKNOWN_OPCODE, 0
