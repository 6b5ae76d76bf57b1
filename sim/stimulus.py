"""Random stimulus for the accelerator: GEMMs with their golden results, and junk commands.

Used by the tests and by ``macforge verify soak`` (`sim.soak`). Every generator draws
from the numpy ``Generator`` it is given, so a seed replays a case exactly.
"""

from __future__ import annotations

import numpy as np

from macforge.host.compiler import Requant, compile_gemm
from macforge.hw import isa
from macforge.hw.config import AccelConfig
from macforge.sim import golden

__all__ = ["random_requant", "gemm_case", "junk_command"]


def random_requant(rng, n: int) -> Requant:
    """Per-channel parameters of N outputs: mostly typical, ~10 % any int32 multiplier
    or shift in [-31, 31]; random zero point and clamp."""
    mult = rng.integers(2**30, 2**31, size=n)
    mult[rng.random(n) < 0.1] = rng.integers(-(2**31), 2**31)  # any int32 is legal
    shift = rng.integers(-14, 2, size=n)
    shift[rng.random(n) < 0.1] = rng.integers(-31, 32)
    zp = int(rng.integers(-128, 128))
    lo = int(rng.integers(-128, 20))
    hi = int(rng.integers(max(lo, -10), 128))
    return Requant(mult, shift, zero_point=zp, act_min=lo, act_max=hi)


def gemm_case(cfg: AccelConfig, rng, m: int, k: int, n: int, *, requant=True, fill=None):
    """A random (or ``fill``-constant) M x K x N GEMM compiled for ``cfg``, with its golden
    result: int32 (``requant=False``) or requantised int8 with random parameters."""
    if fill is None:
        a = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
        b = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    else:
        a = np.full((m, k), fill[0], np.int8)
        b = np.full((k, n), fill[1], np.int8)
    acc = golden.matmul(a, b, acc_bits=cfg.acc_width)
    if not requant:
        return compile_gemm(cfg, a, b), acc
    bias = rng.integers(-(2**20), 2**20, size=n).astype(np.int32)
    if rng.random() < 0.2:
        bias[:] = rng.integers(-(2**31), 2**31, size=n)  # saturating acc + bias
    rq = random_requant(rng, n)
    want = golden.requantize(
        acc, bias, rq.multiplier, rq.shift, rq.zero_point, rq.act_min, rq.act_max
    )
    return compile_gemm(cfg, a, b, bias=bias, requant=rq), want


def junk_command(cfg: AccelConfig, rng) -> list[int]:
    """One well-framed command that is usually wrong in some way."""
    kind = rng.integers(0, 10)
    word_max = 2**cfg.bus_bits
    rnd = lambda n: [int(x) for x in rng.integers(0, 2**31, size=n)]  # noqa: E731
    if kind == 0:  # unknown opcode, random payload
        op = int(rng.integers(7, 256))
        n = int(rng.integers(0, 6))
        return [isa.header(op, n), *[int(rng.integers(0, word_max >> 1)) for _ in range(n)]]
    if kind == 1:  # LOAD with a partial entry or too few words
        op = int(rng.choice([isa.Opcode.LOAD_A, isa.Opcode.LOAD_B]))
        n = int(rng.integers(0, 5))
        return [isa.header(op, 2 + n), int(rng.integers(0, 8)), n + 1, *rnd(n)]
    if kind == 2:  # LOAD past the end of a buffer
        op = int(rng.choice([isa.Opcode.LOAD_A, isa.Opcode.LOAD_B]))
        depth = cfg.a_depth if op == isa.Opcode.LOAD_A else cfg.b_depth
        wpe = cfg.a_words_per_entry if op == isa.Opcode.LOAD_A else cfg.b_words_per_entry
        count = int(rng.integers(1, 4))
        addr = depth - count + int(rng.integers(1, 3))
        return [isa.header(op, 2 + count * wpe), addr, count, *rnd(count * wpe)]
    if kind == 3:  # MATMUL with K = 0 or a range past the end
        k = int(rng.choice([0, cfg.a_depth, cfg.b_depth // 2 + 1]))
        a_addr = int(rng.integers(0, cfg.a_depth))
        b_addr = int(rng.integers(0, cfg.b_depth))
        return [isa.header(isa.Opcode.MATMUL, 3), a_addr | b_addr << 16, k | 2 << 16, 0]
    if kind == 4:  # MATMUL with a bad clamp or a parameter group out of range
        group = int(rng.integers(cfg.param_depth, 256)) if rng.random() < 0.5 else 0
        clamp = (10 & 0xFF) << 8 | (-10 & 0xFF) << 16  # act_min 10 > act_max -10
        return [isa.header(isa.Opcode.MATMUL, 3), 0, 1 | 2 << 16 | group << 24, clamp]
    if kind == 5:  # wrong lengths for fixed-size commands
        op = int(rng.choice([isa.Opcode.MATMUL, isa.Opcode.STATUS, isa.Opcode.COUNTERS]))
        n = int(rng.choice([0, 1, 2, 4, 5])) if op == isa.Opcode.MATMUL else int(rng.integers(2, 5))
        return [isa.header(op, n), *rnd(n)]
    if kind == 6:  # LOAD_PARAM out of range or with a partial channel
        wpc = isa.param_words_per_channel(cfg.bus_bytes)
        if rng.random() < 0.5:
            return [isa.header(isa.Opcode.LOAD_PARAM, 2 + wpc), cfg.param_depth, 1, *[0] * wpc]
        return [isa.header(isa.Opcode.LOAD_PARAM, 3 + wpc), 0, 1, *[0] * (wpc + 1)]
    if kind == 7:  # NOP with padding
        n = int(rng.integers(0, 4))
        return [isa.header(isa.Opcode.NOP, n), *rnd(n)]
    if kind == 8:  # a valid raw MATMUL that accumulates past max_k when repeated
        k = int(min(cfg.a_depth, cfg.b_depth, 0xFFFF))
        return [isa.header(isa.Opcode.MATMUL, 3), 0, k | (1 | 4) << 16, 0]
    # a valid small LOAD of random data
    op = int(rng.choice([isa.Opcode.LOAD_A, isa.Opcode.LOAD_B]))
    wpe = cfg.a_words_per_entry if op == isa.Opcode.LOAD_A else cfg.b_words_per_entry
    return [
        isa.header(op, 2 + wpe),
        0,
        1,
        *[int(rng.integers(0, word_max >> 1)) for _ in range(wpe)],
    ]
