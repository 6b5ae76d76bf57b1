"""Buffer port signatures: how the decoder, engine and store reach the memories.

The A and B buffers are `amaranth.lib.memory.Memory` instances; their writer (the
decoder) and reader (the engine) carry the memory's own port signatures, flipped,
so `Accelerator` joins them with `wiring.connect`. The parameter buffer
(`hw.param_buffer.ParamBuffer`) has one write and one read signature of its own.

Widths: addresses are ``ceil(log2(depth))`` bits (as `Memory` makes them); data
are ``8 * rows`` (A) or ``8 * cols`` (B) bits, one byte per array row/column;
read data arrive one cycle after the address (synchronous read with enable).
"""

from __future__ import annotations

from amaranth.lib import data, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from . import isa
from .config import AccelConfig

__all__ = [
    "buffer_write_signature",
    "buffer_read_signature",
    "ParamWriteSignature",
    "ParamReadSignature",
    "param_words",
]


def buffer_write_signature(depth: int, width: int) -> wiring.Signature:
    """What a writer of a ``depth`` x ``width``-bit memory drives: ``addr``, ``data``, ``en``."""
    return WritePort.Signature(addr_width=ceil_log2(depth), shape=width).flip()


def buffer_read_signature(depth: int, width: int) -> wiring.Signature:
    """What a reader of a ``depth`` x ``width``-bit memory drives (``addr``, ``en``) and
    gets back (``data``, one cycle after ``addr``)."""
    return ReadPort.Signature(addr_width=ceil_log2(depth), shape=width).flip()


def param_words(config: AccelConfig) -> int:
    """Words of each parameter memory: one per requantiser transfer of each group
    (``pp_lanes`` channels wide), ``param_depth * cols / pp_lanes``."""
    return config.param_depth * (config.cols // config.pp_lanes)


class ParamWriteSignature(wiring.Signature):
    """The decoder's parameter writes (members from the writer's side).

    ``group`` (< param_depth), ``lane`` (channel 0 .. cols-1); ``en[f]`` writes
    field f of `isa.PARAM_FIELDS` (bias, multiplier, shift) from ``data[f]``
    (32 bits; the shift memory keeps the low `isa.SHIFT_BITS`).
    """

    def __init__(self, config: AccelConfig) -> None:
        n = len(isa.PARAM_FIELDS)
        super().__init__(
            {
                "group": Out(range(config.param_depth)),
                "lane": Out(range(config.cols)),
                "data": Out(data.ArrayLayout(32, n)),
                "en": Out(n),
            }
        )


class ParamReadSignature(wiring.Signature):
    """The store's parameter reads (members from the reader's side).

    ``addr`` = ``group * passes + pass`` (`param_words` words); one cycle later
    one member per field of `isa.PARAM_FIELDS` (``bias``, ``multiplier``,
    ``shift``) with `isa.PARAM_FIELD_BITS` bits for each of the ``pp_lanes`` channels
    of that transfer, lane 0 in the low bits.
    """

    def __init__(self, config: AccelConfig) -> None:
        lanes = config.pp_lanes
        members = {"addr": Out(range(param_words(config)))}
        members |= {name: In(bits * lanes) for name, bits in isa.PARAM_FIELD_BITS.items()}
        super().__init__(members)
