"""Compiler: tiles an M x K x N int8 GEMM (any sizes) into a `Program`.

Schedule (output-stationary): every output tile is one or more MATMULs over
K slices, accumulating and storing the tile after the last one. Three
schedules, in order of preference:

* `_schedule_resident` -- all of A and all of B fit (K in half a buffer): every
  panel loads once, at its first use, and tiles run in growing squares (step s
  adds row panel s and column panel s), so loads overlap compute from the
  second tile on. While the decoder still lags the array (the first steps), a
  tile that loads a new panel may run as two MATMULs, the first on the slices
  loaded so far, so the array starts before the panel is complete
  (`_plan_splits`, from a timing estimate of decoder and engine).
* `_schedule_double_buffered` -- K fits half the A and B buffers: A row panels
  alternate between two A slots (the next panel loads while the current one
  computes); B column panels stay resident if all of B fits, else they alternate
  between two B slots and are reloaded per tile.
* `_schedule_k_chunked` -- K larger: chunks of ``min(a_depth, b_depth) // 2``
  slices, each MATMUL reading its own A and B slot (alternating), reloaded per tile.

Loads never need fences: the hardware holds a LOAD while a running or queued
MATMUL still reads its range. Parameters: column tile j uses parameter group
``j % param_depth``, loaded before its first storing MATMUL (reloaded when
another tile took the group meanwhile). Total K is limited by ``config.max_k``
(the accumulator width proof).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from macforge.hw import isa
from macforge.hw.config import AccelConfig
from macforge.hw.decoder import LOAD_OVERHEAD_CYCLES, MATMUL_CYCLES
from macforge.hw.engine import START_CYCLES

from .program import Program, StoredTile, cmd_load, cmd_load_params, cmd_matmul

__all__ = ["compile_gemm", "Requant"]


class Requant:
    """Per-output-channel TFLite requantisation parameters for a GEMM with N outputs."""

    def __init__(self, multiplier, shift, zero_point=0, act_min=-128, act_max=127):
        self.multiplier = _integers("multiplier", multiplier)
        self.shift = _integers("shift", shift)
        self.zero_point, self.act_min, self.act_max = (
            int(_integers(name, v))
            for name, v in (("zero_point", zero_point), ("act_min", act_min), ("act_max", act_max))
        )


def _integers(name: str, values) -> np.ndarray:
    """``values`` as int64, refusing anything that is not an integer (a float multiplier
    would otherwise be truncated silently)."""
    arr = np.asarray(values)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got {arr.dtype} values")
    return arr.astype(np.int64)


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


# -- decoder / engine timing, for planning only (defined by the hardware) ---------------
#: decoder cycles of a LOAD_A / LOAD_B / LOAD_PARAM besides its data words
_LOAD_FIXED = LOAD_OVERHEAD_CYCLES
_PARAM_FIXED = LOAD_OVERHEAD_CYCLES
#: decoder cycles of a MATMUL that finds the engine's queue slot free
_MATMUL_CYCLES = MATMUL_CYCLES
#: cycles from the push of a MATMUL to its first slice entering the array
_ENGINE_START = START_CYCLES


@dataclass(frozen=True)
class _TileCost:
    """Decoder work that must precede one output tile of the resident schedule.

    ``words_per_slice``: data words of the panels this tile loads first, per K slice;
    ``loads``: LOAD commands per K chunk (one per new panel); ``param``: cycles of the
    LOAD_PARAM its store needs (0 if none).
    """

    words_per_slice: int
    loads: int
    param: int


def _plan_splits(costs: list[_TileCost], k: int) -> list[int | None]:
    """Where to split a tile's K slices over two MATMULs so the array starts early.

    The decoder runs commands in order and the engine queues one MATMUL behind the
    running one, so a MATMUL waiting for a long panel load leaves the array idle.
    Splitting a tile at slice ``x`` loads its new panels' slices ``[0, x)``, starts a
    MATMUL on them, then loads ``[x, K)`` (and the parameters) while it runs; it
    costs one more MATMUL and LOAD header per new panel. With a timing estimate of
    decoder and engine, the whole GEMM ends ``lag`` + K·tiles cycles after its first
    word, ``lag`` being the largest (decoder time - slices pushed before) at a push.
    A binary search finds the least ``lag`` that a choice of splits reaches: tile by
    tile, a whole tile if it meets the bound, else the split that meets it with the
    earliest decoder time (an earlier decoder never hurts later tiles). Returns per
    tile the split slice or None.
    """

    def push(state, kk):  # -> new state, lag at this push
        t, eng_free, last_start, pushed = state
        t = max(t + _MATMUL_CYCLES - 1, last_start - 1) + 1  # wait for the queue slot
        start = max(t + _ENGINE_START, eng_free)
        return (t, start + kk, start, pushed + kk), t - pushed

    def tile(state, c: _TileCost, x: int | None):  # -> new state, largest lag at its pushes
        bounds = [0, k] if x is None else [0, x, k]
        worst = -(10**9)
        for p in range(len(bounds) - 1):
            n = bounds[p + 1] - bounds[p]
            t = state[0] + c.loads * _LOAD_FIXED + c.words_per_slice * n
            t += c.param if p == len(bounds) - 2 else 0
            state, lag = push((t, *state[1:]), n)
            worst = max(worst, lag)
        return state, worst

    def plan(bound: int) -> tuple[list[int | None], int] | None:
        """Splits meeting ``bound`` (None if impossible), and the largest lag of the
        plan; a tile stays whole when it can."""
        state, out, worst = (0, 0, -(10**9), 0), [], -(10**9)
        for c in costs:
            best, (s, lag) = None, tile(state, c, None)
            for x in range(1, k) if lag > bound and c.loads else ():
                s2, lag2 = tile(state, c, x)
                if lag2 <= bound and (lag > bound or (s2[0], s2[2]) < (s[0], s[2])):
                    best, s, lag = x, s2, lag2
            if lag > bound:
                return None
            out.append(best)
            state, worst = s, max(worst, lag)
        return out, worst

    lo, hi = 0, plan(10**9)[1]  # unsplit everywhere meets its own largest lag
    while lo < hi:
        mid = (lo + hi) // 2
        if plan(mid) is None:
            lo = mid + 1
        else:
            hi = mid
    return plan(lo)[0]


# -- command emission -------------------------------------------------------------------
class _ParamGroups:
    """Which column tile's parameters each group holds; column tile j uses group
    ``j % param_depth`` and is (re)loaded before its first tile after another took it."""

    def __init__(self, param_depth: int) -> None:
        self.depth = param_depth
        self.holder: dict[int, int] = {}

    def claim(self, j: int) -> bool:
        """Mark group of column tile j as holding j; True if that needs a LOAD_PARAM."""
        g = j % self.depth
        if self.holder.get(g) == j:
            return False
        self.holder[g] = j
        return True


class _Emitter:
    """Appends the commands of one GEMM to a `Program` (panels, parameters, MATMULs)."""

    def __init__(self, cfg, prog, a_pad, b_pad, k, requant, bias) -> None:
        self.cfg, self.prog, self.k = cfg, prog, k
        self.a_pad, self.b_pad = a_pad, b_pad
        self.raw = requant is None
        self.rq = requant or Requant(np.zeros(prog.n, np.int64), np.zeros(prog.n, np.int64))
        self.store = isa.MatmulFlags.STORE | (isa.MatmulFlags.RAW if self.raw else 0)
        self.groups = _ParamGroups(cfg.param_depth)
        width = b_pad.shape[1]
        self.bias, self.mult, self.shift = (np.zeros(width, np.int64) for _ in range(3))
        if bias is not None:
            self.bias[: prog.n] = bias
        if not self.raw:
            self.mult[: prog.n] = requant.multiplier
            self.shift[: prog.n] = requant.shift

    def a_panel(self, i: int) -> np.ndarray:  # (K, rows): entry k holds A[i-tile rows, k]
        r = self.cfg.rows
        return self.a_pad[i * r : (i + 1) * r].T

    def b_panel(self, j: int) -> np.ndarray:  # (K, cols): entry k holds B[k, j-tile cols]
        c = self.cfg.cols
        return self.b_pad[:, j * c : (j + 1) * c]

    def load(self, opcode: isa.Opcode, addr: int, entries: np.ndarray) -> None:
        self.prog.words.extend(cmd_load(opcode, addr, entries, self.cfg.bus_bytes))

    def params(self, j: int) -> int:
        """Load column tile j's parameters if its group holds others; return the group."""
        if not self.raw and self.groups.claim(j):
            sl = slice(j * self.cfg.cols, (j + 1) * self.cfg.cols)
            group = j % self.cfg.param_depth
            self.prog.words.extend(
                cmd_load_params(
                    group, self.bias[sl], self.mult[sl], self.shift[sl], self.cfg.bus_bytes
                )
            )
        return j % self.cfg.param_depth

    def param_cycles(self) -> int:
        wpc = isa.param_words_per_channel(self.cfg.bus_bytes)
        return 0 if self.raw else _PARAM_FIXED + wpc * self.cfg.cols

    def matmul(
        self, a_addr: int, b_addr: int, kk: int, *, first: bool, last: bool, group: int
    ) -> None:
        flags = (0 if first else isa.MatmulFlags.ACCUMULATE) | (self.store if last else 0)
        args = isa.MatmulArgs(
            a_addr=a_addr,
            b_addr=b_addr,
            k=kk,
            flags=int(flags),
            group=group,
            zero_point=self.rq.zero_point,
            act_min=self.rq.act_min,
            act_max=self.rq.act_max,
        )
        self.prog.words.extend(cmd_matmul(args))

    def stored(self, i: int, j: int) -> None:
        c = self.cfg
        self.prog.tiles.append(StoredTile(r0=i * c.rows, c0=j * c.cols, raw=self.raw))


def _growing_squares(mt: int, nt: int) -> list[tuple[int, int]]:
    """Tile order in which step s adds row panel s and column panel s."""
    order = []
    for step in range(max(mt, nt)):
        order += [(step, j) for j in range(min(step, nt))] if step < mt else []
        order += [(i, step) for i in range(min(step + 1, mt))] if step < nt else []
    return order


def _schedule_resident(e: _Emitter, mt: int, nt: int) -> None:
    """All of A and B on chip: every panel loads once, at its first use, tiles in
    growing squares; tiles whose loads would idle the array are split (`_plan_splits`)."""
    cfg, k = e.cfg, e.k
    order = _growing_squares(mt, nt)
    costs, a_seen, b_seen = [], set(), set()
    groups = _ParamGroups(cfg.param_depth)
    for i, j in order:
        new_a, new_b = i not in a_seen, j not in b_seen
        a_seen.add(i)
        b_seen.add(j)
        words = new_a * cfg.a_words_per_entry + new_b * cfg.b_words_per_entry
        param = e.param_cycles() if groups.claim(j) else 0
        costs.append(_TileCost(words_per_slice=words, loads=new_a + new_b, param=param))
    splits = _plan_splits(costs, k)
    a_seen.clear()
    b_seen.clear()
    for (i, j), x in zip(order, splits, strict=True):
        new_a, new_b = i not in a_seen, j not in b_seen
        a_seen.add(i)
        b_seen.add(j)
        bounds = [0, k] if x is None else [0, x, k]
        for p in range(len(bounds) - 1):
            k0, k1 = bounds[p], bounds[p + 1]
            if new_a:
                e.load(isa.Opcode.LOAD_A, i * k + k0, e.a_panel(i)[k0:k1])
            if new_b:
                e.load(isa.Opcode.LOAD_B, j * k + k0, e.b_panel(j)[k0:k1])
            last = k1 == k
            group = e.params(j) if last else 0
            e.matmul(i * k + k0, j * k + k0, k1 - k0, first=k0 == 0, last=last, group=group)
        e.stored(i, j)


def _schedule_double_buffered(e: _Emitter, mt: int, nt: int) -> None:
    """K fits half a buffer: A row panels alternate between two slots (the next loads
    while the current one computes); B column panels stay resident if all of B fits,
    else they alternate between two slots and reload per tile."""
    cfg, k = e.cfg, e.k
    b_resident = nt * k <= cfg.b_depth
    b_loaded: set[int] = set()
    slot = 0
    for i in range(mt):
        a_addr = (i % 2) * (cfg.a_depth // 2)
        e.load(isa.Opcode.LOAD_A, a_addr, e.a_panel(i))
        for j in range(nt):
            if b_resident:
                b_addr = j * k
                if j not in b_loaded:
                    e.load(isa.Opcode.LOAD_B, b_addr, e.b_panel(j))
                    b_loaded.add(j)
            else:
                b_addr = slot * (cfg.b_depth // 2)
                slot ^= 1
                e.load(isa.Opcode.LOAD_B, b_addr, e.b_panel(j))
            group = e.params(j)
            e.matmul(a_addr, b_addr, k, first=True, last=True, group=group)
            e.stored(i, j)


def _schedule_k_chunked(e: _Emitter, mt: int, nt: int) -> None:
    """K longer than half a buffer: chunks of ``min(a_depth, b_depth) // 2`` slices
    accumulate, each MATMUL reading its own A and B slot (alternating), reloaded per tile."""
    cfg, k = e.cfg, e.k
    kc = min(cfg.a_depth, cfg.b_depth) // 2
    chunks = [(k0, min(k0 + kc, k)) for k0 in range(0, k, kc)]
    slot = 0
    for i in range(mt):
        for j in range(nt):
            group = e.params(j)
            for k0, k1 in chunks:
                a_addr, b_addr = slot * (cfg.a_depth // 2), slot * (cfg.b_depth // 2)
                slot ^= 1
                e.load(isa.Opcode.LOAD_A, a_addr, e.a_panel(i)[k0:k1])
                e.load(isa.Opcode.LOAD_B, b_addr, e.b_panel(j)[k0:k1])
                e.matmul(a_addr, b_addr, k1 - k0, first=k0 == 0, last=k1 == k, group=group)
            e.stored(i, j)


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
    e = _Emitter(cfg, prog, a_pad, b_pad, k, requant, bias)
    single = k <= min(cfg.a_depth, cfg.b_depth) // 2
    if single and mt * k <= cfg.a_depth and nt * k <= cfg.b_depth:
        _schedule_resident(e, mt, nt)
    elif single:
        _schedule_double_buffered(e, mt, nt)
    else:
        _schedule_k_chunked(e, mt, nt)
    return prog
