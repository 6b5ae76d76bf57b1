"""Hand-instantiated DSP blocks for the PE multipliers.

Yosys infers an iCE40 ``SB_MAC16`` only in 16x16 mode (one int8 product per
block). `SBMac16Dual8x8` instantiates the block in ``MODE_8x8`` instead, where
it holds two independent signed 8x8 multipliers, so the UP5K's 8 blocks carry
16 int8 MACs.
"""

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SBMac16Dual8x8"]


class SBMac16Dual8x8(wiring.Component):
    """Two registered signed 8x8 products on one iCE40 ``SB_MAC16`` (``MODE_8x8``).

    The block multiplies ``A[7:0] * B[7:0]`` on its bottom half (``G``, output
    ``O[15:0]`` with ``BOTOUTPUT_SELECT=2``) and ``A[15:8] * B[15:8]`` on its top
    half (``F``, ``O[31:16]`` with ``TOPOUTPUT_SELECT=2``), both signed
    (``A_SIGNED=B_SIGNED=1``). The operands enter unregistered (``A_REG=B_REG=0``);
    the products pass through the block's internal 8x8 product registers
    (``TOP_8x8_MULT_REG=BOT_8x8_MULT_REG=1``).

    Timing: one edge of the ``sync`` clock. ``p0``/``p1`` show ``a0*b0``/``a1*b1``
    as they were at the most recent edge where ``ce`` was high; while ``ce`` is low
    the products hold. The product registers are never reset (``IRSTTOP`` and
    ``IRSTBOT`` are tied low); the caller qualifies them with its own valid bits.
    `amaranth.hdl.EnableInserter` does not reach an ``Instance``: drive ``ce``
    with the stall enable instead.

    The Amaranth simulator cannot run this component; RTL simulation uses the
    Yosys cell model (see `sim.runner`).

    Attributes
    ----------
    a0, b0, a1, b1 : Signal(signed(8)), in
        Operands of product 0 (bottom half) and product 1 (top half).
    ce : Signal(1), in
        Clock enable of the product registers.
    p0, p1 : Signal(signed(16)), out
        The registered products (``-128 * -128 = 16384`` fits).
    """

    a0: In(signed(8))
    b0: In(signed(8))
    a1: In(signed(8))
    b1: In(signed(8))
    ce: In(1)
    p0: Out(signed(16))
    p1: Out(signed(16))

    #: Edges from operands to products.
    latency = 1

    def elaborate(self, platform):
        m = Module()
        zero16 = Const(0, 16)
        params = {
            "NEG_TRIGGER": 0,
            "C_REG": 0,
            "A_REG": 0,
            "B_REG": 0,
            "D_REG": 0,
            "TOP_8x8_MULT_REG": 1,
            "BOT_8x8_MULT_REG": 1,
            "PIPELINE_16x16_MULT_REG1": 0,
            "PIPELINE_16x16_MULT_REG2": 0,
            "TOPOUTPUT_SELECT": 2,
            "TOPADDSUB_LOWERINPUT": 0,
            "TOPADDSUB_UPPERINPUT": 0,
            "TOPADDSUB_CARRYSELECT": 0,
            "BOTOUTPUT_SELECT": 2,
            "BOTADDSUB_LOWERINPUT": 0,
            "BOTADDSUB_UPPERINPUT": 0,
            "BOTADDSUB_CARRYSELECT": 0,
            "MODE_8x8": 1,
            "A_SIGNED": 1,
            "B_SIGNED": 1,
        }
        widths = {"TOPOUTPUT_SELECT": 2, "TOPADDSUB_LOWERINPUT": 2, "TOPADDSUB_CARRYSELECT": 2}
        widths |= {"BOTOUTPUT_SELECT": 2, "BOTADDSUB_LOWERINPUT": 2, "BOTADDSUB_CARRYSELECT": 2}
        kwargs = {f"p_{k}": Const(v, widths.get(k, 1)) for k, v in params.items()}
        out = Signal(32, name="o")  # {top product F, bottom product G}
        tie0 = Const(0, 1)
        m.submodules.mac = Instance(
            "SB_MAC16",
            **kwargs,
            i_CLK=ClockSignal("sync"),
            i_CE=self.ce,
            i_A=Cat(self.a0, self.a1),  # A[7:0] bottom, A[15:8] top
            i_B=Cat(self.b0, self.b1),
            i_C=zero16,
            i_D=zero16,
            i_AHOLD=tie0,
            i_BHOLD=tie0,
            i_CHOLD=tie0,
            i_DHOLD=tie0,
            i_IRSTTOP=tie0,
            i_IRSTBOT=tie0,
            i_ORSTTOP=tie0,
            i_ORSTBOT=tie0,
            i_OLOADTOP=tie0,
            i_OLOADBOT=tie0,
            i_ADDSUBTOP=tie0,
            i_ADDSUBBOT=tie0,
            i_OHOLDTOP=tie0,
            i_OHOLDBOT=tie0,
            i_CI=tie0,
            i_ACCUMCI=tie0,
            i_SIGNEXTIN=tie0,
            o_O=out,
        )
        m.d.comb += [self.p0.eq(out[:16].as_signed()), self.p1.eq(out[16:].as_signed())]
        return m
