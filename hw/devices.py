"""Targets: every device fact the generator and the FPGA builds use, in one table.

`AccelConfig.target` names a `Device`; the config checks its DSP and memory
budgets against it, the generator picks DSP primitives and the requantiser
style from it, `fpga.build` reads the capacities (cell name and count) that
nextpnr's report is compared with, `fpga.clocks` the PLL cell, and the ASIC
export (`fpga.asic`) checks that none of the vendor cells named here
(`FPGA_PRIMITIVES`) reaches its Verilog.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Device", "DEVICES", "FPGA_PRIMITIVES", "device"]


@dataclass(frozen=True)
class Device:
    """One target.

    Attributes
    ----------
    target : str           `AccelConfig.target` key (``generic``, ``ice40-up5k``, ...)
    part : str | None      device name as boards and nextpnr call it (``iCE40UP5K``)
    memory_bits : int | None   on-chip RAM bits (block RAM + single-port RAM); None = no limit
    dsps : int | None      DSP multiplier blocks; None = no limit
    macs_per_dsp : int     int8 MACs one block computes per cycle
    dsps_per_requant_lane : int  blocks one 32x32 requantiser product takes (16x16 or 18x18)
    pp_mul_auto : str      requantiser multiplier style that ``pp_mul="auto"`` resolves to
    dsp_primitive : str | None  the block the generator instantiates by hand (None: inferred)
    pll_primitive : str | None  the PLL cell a board top instantiates (`fpga.clocks`)
    cells : dict[str, tuple[str, int]]  report key -> (nextpnr cell type, count available)
    """

    target: str
    part: str | None
    memory_bits: int | None
    dsps: int | None
    macs_per_dsp: int = 1
    dsps_per_requant_lane: int = 4
    pp_mul_auto: str = "dsp"
    dsp_primitive: str | None = None
    pll_primitive: str | None = None
    cells: tuple[tuple[str, str, int], ...] = ()

    @property
    def family(self) -> str | None:
        """FPGA family (``ice40``, ``ecp5``: the Yosys ``synth_<family>`` pass), None if generic."""
        return None if self.part is None else self.target.split("-")[0]

    @property
    def capacity(self) -> dict[str, tuple[str, int]]:
        """Report key (``luts``, ``dsps``, ...) -> (nextpnr cell type, count available)."""
        return {key: (cell, count) for key, cell, count in self.cells}

    @property
    def primitives(self) -> frozenset[str]:
        """Every vendor cell named for this device: DSP, PLL and the report's cell types."""
        named = {self.dsp_primitive, self.pll_primitive} | {cell for _, cell, _ in self.cells}
        return frozenset(named - {None})


def _ecp5(size: str, luts: int, dsps: int, brams: int) -> Device:
    # ECP5 MULT18X18D cannot be split into 9x9 multipliers with the open tools: one PE each
    return Device(
        target=f"ecp5-{size}",
        part=f"LFE5U-{size.upper()}",
        memory_bits=brams * 18432,
        dsps=dsps,
        pll_primitive="EHXPLLL",
        cells=(("luts", "LUT4", luts), ("dsps", "MULT18X18D", dsps), ("brams", "DP16KD", brams)),
    )


DEVICES: dict[str, Device] = {
    d.target: d
    for d in (
        Device(target="generic", part=None, memory_bits=None, dsps=None),
        # SB_MAC16 in MODE_8x8 holds two independent signed 8x8 multipliers; every block
        # is better spent on MACs, so the requantiser multiplies in logic
        Device(
            target="ice40-up5k",
            part="iCE40UP5K",
            memory_bits=30 * 4096 + 4 * 256 * 1024,
            dsps=8,
            macs_per_dsp=2,
            pp_mul_auto="lut",
            dsp_primitive="SB_MAC16",
            pll_primitive="SB_PLL40_PAD",
            cells=(
                ("luts", "SB_LUT4", 5280),
                ("dsps", "SB_MAC16", 8),
                ("brams", "SB_RAM40_4K", 30),
                ("sprams", "SB_SPRAM256KA", 4),
            ),
        ),
        _ecp5("25f", luts=24288, dsps=28, brams=56),
        _ecp5("45f", luts=43848, dsps=72, brams=108),
        _ecp5("85f", luts=83640, dsps=156, brams=208),
    )
}

#: Every FPGA primitive the device table names (none may appear in the ASIC export).
FPGA_PRIMITIVES: frozenset[str] = frozenset().union(*(d.primitives for d in DEVICES.values()))


def device(target: str) -> Device:
    """The `Device` of ``target``; unknown names raise a `ValueError` listing the known ones."""
    try:
        return DEVICES[target]
    except KeyError:
        raise ValueError(
            f"unknown target {target!r}; known targets: {', '.join(sorted(DEVICES))}"
        ) from None
