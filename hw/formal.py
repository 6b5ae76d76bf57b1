"""Building blocks of the formal properties that sit beside the modules they state.

A property is a `FormalCheck`: a *harness* — a `wiring.Component` whose ``In`` ports
are the solver's free inputs (any value at every cycle), holding the design under
test, `Assume` statements on what its environment does, `Assert` statements of what
it guarantees and `Cover` statements showing the interesting case is reachable — and
how to prove it (``prove``: k-induction, or ``bmc``: bounded model check to a stated
depth). Each harness also builds a *broken* variant (a bug put into the design or
its environment, described in `FormalCheck.broken`) that the same proof must reject,
so no proof passes vacuously. `sim.formal` runs them with SymbiYosys.

Time in a harness is the ``sync`` domain's cycle; `past` and `PastValid` give the
values of earlier cycles (Amaranth 0.5 has no ``Past``), as registers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amaranth.hdl import Assert, Assume, Module, Signal, Value

__all__ = ["FormalCheck", "MODES", "past", "past_valid", "assert_stream_held", "assume_stream_held"]

#: Proof modes: SymbiYosys ``prove`` (k-induction: holds in every reachable state) and
#: ``bmc`` (holds in every state reachable within ``depth`` cycles of reset).
MODES = ("prove", "bmc")


@dataclass(frozen=True)
class FormalCheck:
    """One property of one module.

    name : str          unique, ``module.property``
    module : str        the `hw` module whose behaviour it states
    statement : str     what is asserted, one sentence
    mode : str          one of `MODES`
    depth : int         induction length (``prove``) or cycles checked (``bmc``)
    harness : callable  ``harness(broken: bool) -> Component`` (free inputs = ``In`` ports)
    broken : str        the bug the broken variant carries
    cover_depth : int   cycles the cover search and the broken variant's BMC may take
                        (at least ``depth``)
    """

    name: str
    module: str
    statement: str
    mode: str
    depth: int
    harness: Callable
    broken: str
    cover_depth: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")


def past(m: Module, value: Value, cycles: int = 1, name: str = "past") -> Signal:
    """``value`` as it was ``cycles`` cycles ago (its reset value before that).

    Call it outside any ``m.If``: the registers it adds must load every cycle."""
    sig = Value.cast(value)
    for i in range(cycles):
        reg = Signal(sig.shape(), name=f"{name}_{i + 1}")
        m.d.sync += reg.eq(sig)
        sig = reg
    return sig


def past_valid(m: Module, cycles: int = 1) -> Signal:
    """High from the ``cycles``-th cycle after reset on (`past` values are meaningful)."""
    count = Signal(range(cycles + 1), name="past_valid_count")
    ok = Signal(name=f"past_valid_{cycles}")
    with m.If(count != cycles):
        m.d.sync += count.eq(count + 1)
    m.d.comb += ok.eq(count == cycles)
    return ok


def _held(m: Module, stream, name: str):
    """(a transfer was offered and refused last cycle, valid now, payload unchanged)."""
    was_waiting = past(m, stream.valid & ~stream.ready, name=f"{name}_waiting")
    was_payload = past(m, Value.cast(stream.payload), name=f"{name}_payload")
    return was_waiting & past_valid(m), stream.valid, Value.cast(stream.payload) == was_payload


def assert_stream_held(m: Module, stream, name: str) -> None:
    """Assert the valid/ready rule on a stream the design *produces*: once ``valid`` is
    offered without ``ready``, ``valid`` stays high and ``payload`` stable next cycle."""
    waiting, valid, same = _held(m, stream, name)
    with m.If(waiting):
        m.d.comb += [
            Assert(valid, f"{name}: valid dropped"),
            Assert(same, f"{name}: payload changed"),
        ]


def assume_stream_held(m: Module, stream, name: str) -> None:
    """Assume the valid/ready rule of a stream the design *consumes* (its producer, the
    free environment, follows the protocol)."""
    waiting, valid, same = _held(m, stream, name)
    with m.If(waiting):
        m.d.comb += Assume(valid & same)
