"""Parameter buffer: bias, multiplier and shift of every output channel of every group.

Three memories, one per field of `isa.PARAM_FIELDS`, each word holding the
``pp_lanes`` channels one requantiser transfer needs, so a time-shared
requantiser reads narrow words (no wide muxes, fewer block RAMs): channel ``ch``
of group ``g`` lives in word ``g * passes + ch // pp_lanes``, slot
``ch % pp_lanes`` (``passes = cols / pp_lanes``). Writes are per channel (byte
enables of the slot); reads are synchronous, always enabled, data one cycle
after the address.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from .arith import const_mul
from .config import AccelConfig
from .isa import PARAM_FIELD_BITS
from .ports import ParamReadSignature, ParamWriteSignature, param_words

__all__ = ["ParamBuffer"]


class ParamBuffer(wiring.Component):
    """Attributes
    ----------
    write : In(ParamWriteSignature(config))  from the decoder
    read : In(ParamReadSignature(config))    from the store unit
    """

    def __init__(self, config: AccelConfig) -> None:
        self.config = config
        super().__init__(
            {"write": In(ParamWriteSignature(config)), "read": In(ParamReadSignature(config))}
        )

    def elaborate(self, platform):
        c = self.config
        m = Module()
        lanes, passes = c.pp_lanes, c.cols // c.pp_lanes
        depth = param_words(c)
        w, rd = self.write, self.read
        wr_pass = Signal(range(passes), name="p_wr_pass")
        wr_slot = Signal(range(lanes), name="p_wr_slot")
        with m.Switch(w.lane):
            for ch in range(c.cols):
                with m.Case(ch):
                    m.d.comb += [wr_pass.eq(ch // lanes), wr_slot.eq(ch % lanes)]
        wr_addr = Signal(range(depth), name="p_wr_addr")
        m.d.comb += wr_addr.eq(const_mul(w.group, passes) + wr_pass)
        for field, (name, width) in enumerate(PARAM_FIELD_BITS.items()):
            m.submodules[f"{name}_mem"] = mem = Memory(shape=width * lanes, depth=depth, init=[])
            wp = mem.write_port(granularity=width)
            rp = mem.read_port()
            m.d.comb += [
                wp.addr.eq(wr_addr),
                wp.data.eq(Cat(*[w.data[field][:width]] * lanes)),
                rp.addr.eq(rd.addr),
                rp.en.eq(1),
                getattr(rd, name).eq(rp.data),
            ]
            for slot in range(lanes):
                m.d.comb += wp.en[slot].eq(w.en[field] & (wr_slot == slot))
        return m
