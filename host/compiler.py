"""Compiler: tiles an M x K x N int8 GEMM (any sizes) into a `Program`.

Schedule (output-stationary): every output tile is one or more MATMULs over
K chunks, accumulating across chunks and storing the tile after the last one.
Buffer use, in order of preference:

* K fits half the A and B buffers (one chunk): A row panels alternate between
  two A slots (the next panel loads while the current one computes); B column
  panels are loaded once and stay resident if all of B fits, else they
  alternate between two B slots and are reloaded per tile.
* K larger: chunks of ``min(a_depth, b_depth) // 2`` slices, each MATMUL reading
  its own A and B slot (alternating), reloaded per tile.

* All of A and all of B fit (one chunk): every panel loads once, at its
  first use, and tiles run in growing squares (step s adds row panel s and
  column panel s), so loads overlap compute from the second tile on.

Parameters: column tile j uses parameter group ``j % param_depth``, loaded just
before its first tile (reloaded when another tile took the group meanwhile).
Total K is limited by ``config.max_k`` (the accumulator width proof).
"""

from __future__ import annotations

import numpy as np

from hw import isa
from hw.config import AccelConfig

from .program import Program, StoredTile, cmd_load, cmd_load_params, cmd_matmul

__all__ = ["compile_gemm", "Requant"]


class Requant:
    """Per-output-channel TFLite requantisation parameters for a GEMM with N outputs."""

    def __init__(self, multiplier, shift, zero_point=0, act_min=-128, act_max=127):
        self.multiplier = np.asarray(multiplier, dtype=np.int64)
        self.shift = np.asarray(shift, dtype=np.int64)
        self.zero_point, self.act_min, self.act_max = int(zero_point), int(act_min), int(act_max)


def _check_operands(cfg: AccelConfig, a, b, bias, requant):
    a = np.asarray(a)
    b = np.asarray(b)
    for name, x in (("A", a), ("B", b)):
        if x.dtype != np.int8:
            raise ValueError(f"{name} must have dtype int8, got {x.dtype}")
        if x.ndim != 2 or 0 in x.shape:
            raise ValueError(f"{name} must be a non-empty 2-D array, got shape {x.shape}")
    m, k = a.shape
    if b.shape[0] != k:
        raise ValueError(f"inner dimensions differ: A is {a.shape}, B is {b.shape}")
    n = b.shape[1]
    if k > cfg.max_k:
        raise ValueError(
            f"K = {k} exceeds max_k = {cfg.max_k} of config {cfg.name} "
            f"(its {cfg.acc_width}-bit accumulator is only proven up to that)"
        )
    if bias is not None:
        bias = np.asarray(bias)
        if bias.dtype != np.int32 or bias.shape != (n,):
            raise ValueError(f"bias must be int32 of shape ({n},), got {bias.dtype} {bias.shape}")
    if requant is not None:
        _check_requant(requant, n)
    return a, b, bias, m, k, n


def _check_requant(rq: Requant, n: int) -> None:
    for name, arr, lo, hi in (
        ("multiplier", rq.multiplier, -(2**31), 2**31 - 1),
        ("shift", rq.shift, -31, 31),
    ):
        if arr.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise ValueError(f"{name} values must be in [{lo}, {hi}]")
    for name, v in (
        ("zero point", rq.zero_point),
        ("act_min", rq.act_min),
        ("act_max", rq.act_max),
    ):
        if not -128 <= v <= 127:
            raise ValueError(f"{name} must be in [-128, 127], got {v}")
    if rq.act_min > rq.act_max:
        raise ValueError(f"act_min {rq.act_min} > act_max {rq.act_max}")


def compile_gemm(
    cfg: AccelConfig,
    a: np.ndarray,
    b: np.ndarray,
    *,
    bias: np.ndarray | None = None,
    requant: Requant | None = None,
) -> Program:
    """C = A @ B (+ bias, requantised when ``requant`` is given) as a `Program`.

    Without ``requant`` the tiles are stored raw and C is int32 (``bias`` is then
    not allowed: raw mode bypasses post-processing). With it, C is int8.
    """
    a, b, bias, m, k, n = _check_operands(cfg, a, b, bias, requant)
    if requant is None and bias is not None:
        raise ValueError("bias needs requantisation parameters (raw int32 output has no bias)")
    rows, cols = cfg.rows, cfg.cols
    mt, nt = -(-m // rows), -(-n // cols)
    a_pad = np.zeros((mt * rows, k), np.int8)
    a_pad[:m] = a
    b_pad = np.zeros((k, nt * cols), np.int8)
    b_pad[:, :n] = b
    prog = Program(config=cfg, m=m, n=n, macs=m * k * n)
    w = prog.words
    raw = requant is None

    # -- parameters -------------------------------------------------------------------
    if not raw:
        bias_all = np.zeros(nt * cols, np.int64)
        if bias is not None:
            bias_all[:n] = bias
        mult_all = np.zeros(nt * cols, np.int64)
        mult_all[:n] = requant.multiplier
        shift_all = np.zeros(nt * cols, np.int64)
        shift_all[:n] = requant.shift

        def params_for(j: int, group: int) -> list[int]:
            sl = slice(j * cols, (j + 1) * cols)
            return cmd_load_params(group, bias_all[sl], mult_all[sl], shift_all[sl])

    # -- buffer plan ----------------------------------------------------------------------
    half = min(cfg.a_depth, cfg.b_depth) // 2
    kc = min(k, half)
    chunks = [(s0, min(s0 + kc, k)) for s0 in range(0, k, kc)]
    single = len(chunks) == 1
    resident = single and mt * k <= cfg.a_depth and nt * k <= cfg.b_depth
    b_resident = single and nt * k <= cfg.b_depth
    a_slot_base = [0, cfg.a_depth // 2]
    b_slot_base = [0, cfg.b_depth // 2]
    flags_store = isa.MatmulFlags.STORE | (isa.MatmulFlags.RAW if raw else 0)
    rq = requant or Requant(np.zeros(n), np.zeros(n))

    def a_panel(i: int) -> np.ndarray:  # (K, rows): entry k holds A[i-tile rows, k]
        return a_pad[i * rows : (i + 1) * rows].T

    def b_panel(j: int) -> np.ndarray:  # (K, cols): entry k holds B[k, j-tile cols]
        return b_pad[:, j * cols : (j + 1) * cols]

    def matmul(a_addr: int, b_addr: int, kk: int, flags: int, group: int) -> None:
        w.extend(
            cmd_matmul(
                isa.MatmulArgs(
                    a_addr=a_addr,
                    b_addr=b_addr,
                    k=kk,
                    flags=int(flags),
                    group=group,
                    zero_point=rq.zero_point,
                    act_min=rq.act_min,
                    act_max=rq.act_max,
                )
            )
        )

    params_loaded: set[int] = set()

    def ensure_params(j: int) -> int:
        """Load column tile j's parameters if needed; return its group."""
        group = j % cfg.param_depth
        if not raw and j not in params_loaded:
            params_loaded.difference_update(
                {x for x in params_loaded if x % cfg.param_depth == group}
            )
            w.extend(params_for(j, group))
            params_loaded.add(j)
        return group

    if resident:
        # Everything stays on chip: visit tiles in growing squares so each step
        # loads one new A panel and one new B panel while earlier tiles compute.
        a_loaded: set[int] = set()
        b_loaded: set[int] = set()
        order = []
        for step in range(max(mt, nt)):
            order += [(step, j) for j in range(min(step, nt))] if step < mt else []
            order += [(i, step) for i in range(min(step + 1, mt))] if step < nt else []
        for i, j in order:
            if i not in a_loaded:
                w += cmd_load(isa.Opcode.LOAD_A, i * k, a_panel(i), cfg.bus_bytes)
                a_loaded.add(i)
            if j not in b_loaded:
                w += cmd_load(isa.Opcode.LOAD_B, j * k, b_panel(j), cfg.bus_bytes)
                b_loaded.add(j)
            group = ensure_params(j)
            matmul(i * k, j * k, k, flags_store, group)
            prog.tiles.append(StoredTile(r0=i * rows, c0=j * cols, raw=raw))
    elif single:
        # A row panels alternate between two slots; B stays resident if it fits.
        b_loaded = set()
        slot = 0
        for i in range(mt):
            a_addr = a_slot_base[i % 2]
            w += cmd_load(isa.Opcode.LOAD_A, a_addr, a_panel(i), cfg.bus_bytes)
            for j in range(nt):
                if b_resident:
                    b_addr = j * k
                    if j not in b_loaded:
                        w += cmd_load(isa.Opcode.LOAD_B, b_addr, b_panel(j), cfg.bus_bytes)
                        b_loaded.add(j)
                else:
                    b_addr = b_slot_base[slot]
                    slot ^= 1
                    w += cmd_load(isa.Opcode.LOAD_B, b_addr, b_panel(j), cfg.bus_bytes)
                group = ensure_params(j)
                matmul(a_addr, b_addr, k, flags_store, group)
                prog.tiles.append(StoredTile(r0=i * rows, c0=j * cols, raw=raw))
    else:
        # K longer than half a buffer: chunks accumulate, each in alternating slots.
        slot = 0
        for i in range(mt):
            for j in range(nt):
                group = ensure_params(j)
                for ci, (k0, k1) in enumerate(chunks):
                    a_addr, b_addr = a_slot_base[slot], b_slot_base[slot]
                    slot ^= 1
                    w += cmd_load(isa.Opcode.LOAD_A, a_addr, a_panel(i)[k0:k1], cfg.bus_bytes)
                    w += cmd_load(isa.Opcode.LOAD_B, b_addr, b_panel(j)[k0:k1], cfg.bus_bytes)
                    last = ci == len(chunks) - 1
                    flags = (isa.MatmulFlags.ACCUMULATE if ci else 0) | (flags_store if last else 0)
                    matmul(a_addr, b_addr, k1 - k0, flags, group)
                prog.tiles.append(StoredTile(r0=i * rows, c0=j * cols, raw=raw))
    return prog
