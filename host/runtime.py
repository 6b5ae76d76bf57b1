"""Runtime: runs `Program`s on any `Transport` (RTL simulation or a board).

Around each program the runtime clears STATUS and COUNTERS first and reads
them afterwards, so every run reports the hardware's own counters and any
error code; an error raises `AcceleratorError` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from macforge.hw import isa
from macforge.hw.config import AccelConfig

from .program import Program, cmd_counters, cmd_status, decode_status

__all__ = [
    "Transport",
    "Segment",
    "SegmentResult",
    "ProgramResult",
    "AcceleratorError",
    "run",
    "run_many",
    "check_same_hardware",
    "program_segment",
]


@dataclass(frozen=True)
class Segment:
    """Words to send and the number of result words they produce.

    ``measure`` = (first word index, result count) of the span whose cycles the
    transport reports: from accepting word ``measure[0]`` to delivering result
    ``measure[1] - 1``.
    """

    words: Sequence[int]
    results: int
    measure: tuple[int, int] | None = None


@dataclass(frozen=True)
class SegmentResult:
    results: list[int]
    cycles: int | None  #: measured span in clock cycles (None if the transport cannot tell)


class Transport(Protocol):
    """Moves command words to an accelerator and result words back.

    ``config`` is the configuration the accelerator behind it was generated from
    (the RTL model's, or the bitstream's): `run_many` refuses a program compiled
    for another one.
    """

    config: AccelConfig

    def execute(self, segments: Sequence[Segment]) -> list[SegmentResult]:
        """Run the segments in order; return each one's result words."""
        ...


class AcceleratorError(RuntimeError):
    """The accelerator reported an error in STATUS."""


@dataclass
class ProgramResult:
    output: np.ndarray
    cycles: int | None  #: first program word accepted .. last result word delivered
    counters: dict[str, int] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)


_PRE = cmd_status(clear=True) + cmd_counters(clear=True)
_PRE_RESULTS = 1 + len(isa.COUNTER_NAMES)
_POST = cmd_counters(clear=False) + cmd_status(clear=False)
_POST_RESULTS = len(isa.COUNTER_NAMES) + 1


def program_segment(program: Program) -> Segment:
    """The segment `run` sends for ``program``: STATUS/COUNTERS around its words, with
    the measured span (``measure``) on the program itself."""
    words = [*_PRE, *program.words, *_POST]
    return Segment(
        words=words,
        results=_PRE_RESULTS + program.result_words + _POST_RESULTS,
        measure=(len(_PRE), _PRE_RESULTS + program.result_words),
    )


def _finish(program: Program, res: SegmentResult, check: bool) -> ProgramResult:
    body = res.results[_PRE_RESULTS : _PRE_RESULTS + program.result_words]
    tail = res.results[_PRE_RESULTS + program.result_words :]
    mask = 0xFFFFFFFF
    counters = {name: tail[i] & mask for i, name in enumerate(isa.COUNTER_NAMES)}
    status = decode_status(tail[len(isa.COUNTER_NAMES)] & mask)
    if check and status["error"]:
        code = isa.ErrorCode(status["error"]) if status["error"] in iter(isa.ErrorCode) else None
        raise AcceleratorError(
            f"accelerator error {status['error']} ({code.name if code else 'unknown'}), "
            f"{status['error_count']} error(s)"
        )
    return ProgramResult(
        output=program.decode(body), cycles=res.cycles, counters=counters, status=status
    )


def check_same_hardware(program_config: AccelConfig, hardware_config: AccelConfig) -> None:
    """`ValueError` naming the first differing field unless a program compiled for
    ``program_config`` can run on hardware generated from ``hardware_config`` (every
    field but the name equal: shapes, widths, depths, target)."""
    ours, theirs = program_config.to_dict(), hardware_config.to_dict()
    for key in ours:
        if key != "name" and ours[key] != theirs.get(key):
            raise ValueError(
                f"program compiled for config {program_config.name!r} ({key}={ours[key]!r}) "
                f"cannot run on hardware of config {hardware_config.name!r} "
                f"({key}={theirs.get(key)!r})"
            )


def run(program: Program, transport: Transport, *, check: bool = True) -> ProgramResult:
    """Run one program; raise `AcceleratorError` if the hardware flags an error."""
    return run_many([program], transport, check=check)[0]


def run_many(
    programs: Sequence[Program], transport: Transport, *, check: bool = True
) -> list[ProgramResult]:
    """Run several programs in one transport session (one simulation, one board link)."""
    for p in programs:
        check_same_hardware(p.config, transport.config)
    results = transport.execute([program_segment(p) for p in programs])
    return [_finish(p, r, check) for p, r in zip(programs, results, strict=True)]
