"""Formal property of every valid/ready stream the design produces: once ``valid`` is
offered and not taken, ``valid`` stays high and the payload stays the same until
``ready`` — whatever the consumer does (``ready`` is a free input).

One harness per module: its ``In`` ports are free inputs, the streams it consumes are
assumed to follow the same rule (their producers are the free environment), and every
stream it produces is asserted to. The broken variant gives the module a spurious
synchronous reset (a free input), which drops an offered transfer.
"""

from __future__ import annotations

from functools import reduce

from amaranth.hdl import Assume, Cover, Module, ResetInserter, Value
from amaranth.lib import stream, wiring

from .accelerator import Accelerator
from .array import SystolicArray
from .bridge import SerialBridge
from .config import AccelConfig
from .decoder import CommandDecoder
from .engine import MatmulEngine, StoreQueue
from .formal import FormalCheck, assert_stream_held, assume_stream_held, past, past_valid
from .frame_rx import FrameReceiver
from .frame_tx import FrameTransmitter
from .postproc import Requantizer
from .skid import SkidBuffer
from .store import LUT_MUL_BITS, StoreUnit

__all__ = ["StreamHarness", "decoder_environment", "formal_checks"]


def _lookup(obj, path):
    return reduce(lambda o, k: o[k] if isinstance(k, int) else getattr(o, k), path, obj)


def _is_read_port(member) -> bool:
    """Whether a port is the reader's side of a memory read port (``addr``, ``en`` out,
    ``data`` in)."""
    if not member.is_signature or member.flow != wiring.Out:
        return False
    names = member.signature.members
    return set(names) == {"addr", "data", "en"} and names["data"].flow == wiring.In


class StreamHarness(wiring.Component):
    """``dut`` with its ports exposed as the harness's ports (inputs free), the
    valid/ready rule assumed on its input streams and asserted on its output streams; the
    data of a memory read port it drives hold while its ``en`` is low (as a memory's do).

    Parameters
    ----------
    dut : wiring.Component      the module under test (fresh, not elaborated)
    broken : bool               add a free ``glitch`` input that resets the module
    environment : callable      ``environment(m, harness)`` adds the module's documented
                                input contract as `Assume` statements (None: none)
    covers : bool               cover a refused-then-taken transfer on every output stream
                                (off when a subclass's assumptions make that unreachable)
    """

    def __init__(
        self, dut: wiring.Component, broken: bool = False, environment=None, covers: bool = True
    ) -> None:
        self.dut, self.broken, self.environment, self.covers = dut, broken, environment, covers
        members = dict(dut.signature.members.items())
        if broken:
            members["glitch"] = wiring.In(1)
        super().__init__(members)

    def _streams(self):
        """(name, member) of every stream port of the module, inputs and outputs."""
        for name, member in self.dut.signature.members.items():
            if member.is_signature and isinstance(member.signature, stream.Signature):
                yield name, member

    def elaborate(self, platform):
        m = Module()
        dut = ResetInserter(self.glitch)(self.dut) if self.broken else self.dut
        m.submodules.dut = dut
        for path, member, value in self.dut.signature.flatten(self.dut):
            mine = _lookup(self, path)
            if member.flow == wiring.In:
                m.d.comb += value.eq(mine)
            else:
                m.d.comb += mine.eq(value)
        for name, member in self.dut.signature.members.items():
            if _is_read_port(member):  # a memory's synchronous read port: data hold without en
                port = getattr(self, name)
                same = port.data == past(m, port.data, name=f"{name}_data")
                with m.If(past_valid(m) & past(m, ~port.en, name=f"{name}_idle")):
                    m.d.comb += Assume(same)
        if self.environment is not None:
            self.environment(m, self)
        for name, member in self._streams():
            port = getattr(self, name)
            if member.flow == wiring.In:
                assume_stream_held(m, port, name)
            else:
                assert_stream_held(m, port, name)
                if not self.covers:
                    continue
                waited = past(m, port.valid & ~port.ready, name=f"{name}_cover")
                m.d.comb += Cover(past_valid(m) & waited & port.valid & port.ready)
        return m


def decoder_environment(m: Module, h: StreamHarness) -> None:
    """`CommandDecoder`: status word and counters hold while it is answering."""
    held = [Value.cast(v) == past(m, v, name="answer_source") for v in (h.status_word, h.counters)]
    with m.If(past_valid(m) & past(m, h.answering, name="answering")):
        m.d.comb += [Assume(same) for same in held]


def _check(
    module: str,
    name: str,
    factory,
    mode: str,
    depth: int,
    cover_depth: int = 0,
    environment=None,
):
    return FormalCheck(
        name=f"{module}.{name}_streams_held",
        module=f"hw/{module}.py",
        statement=f"{name}: every output stream holds valid and payload until ready",
        mode=mode,
        depth=depth,
        harness=lambda broken: StreamHarness(factory(), broken, environment),
        broken="a spurious synchronous reset of the module",
        cover_depth=cover_depth,
    )


def formal_checks(config: AccelConfig) -> list[FormalCheck]:
    """The stream properties of every module that produces a stream, for ``config``."""
    c = config
    bb = c.bus_bytes
    return [
        _check("skid", "SkidBuffer", lambda: SkidBuffer(8), "prove", 4),
        _check("engine", "StoreQueue", lambda: StoreQueue(), "prove", 4),
        _check("array", "SystolicArray", lambda: SystolicArray(c), "prove", 8, 12),
        _check(
            "postproc",
            "Requantizer",
            lambda: Requantizer(
                lanes=c.pp_lanes, acc_width=c.acc_width, mul=c.pp_mul, mul_bits=LUT_MUL_BITS
            ),
            "prove",
            10,
            14,
        ),
        _check(
            "decoder",
            "CommandDecoder",
            lambda: CommandDecoder(c),
            "prove",
            6,
            12,
            decoder_environment,
        ),
        _check("engine", "MatmulEngine", lambda: MatmulEngine(c), "prove", 6, 12),
        _check("store", "StoreUnit", lambda: StoreUnit(c), "prove", 8, 16),
        _check(
            "frame_rx",
            "FrameReceiver",
            lambda: FrameReceiver(bus_bytes=bb, max_words=4, timeout=50),
            "prove",
            6,
            24,
        ),
        _check(
            "frame_tx", "FrameTransmitter", lambda: FrameTransmitter(bus_bytes=bb), "bmc", 12, 30
        ),
        _check(
            "bridge",
            "SerialBridge",
            lambda: SerialBridge(bus_bytes=bb, max_words=4, timeout=50),
            "bmc",
            12,
            30,
        ),
        _check("accelerator", "Accelerator", lambda: Accelerator(c), "prove", 6, 20),
    ]
