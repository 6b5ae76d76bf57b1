"""Named accelerator configurations: one per board, plus small ones for tests and demos."""

from __future__ import annotations

from .config import AccelConfig

__all__ = ["PRESETS", "preset"]


#: Named presets. ``tiny`` has a deliberately narrow accumulator (22 bits) so
#: tests at its largest K fill the accumulator to within 1 % of overflow.
PRESETS: dict[str, AccelConfig] = {
    "tiny": AccelConfig(
        rows=2,
        cols=2,
        acc_width=22,
        max_k=127,
        bus_bytes=4,
        a_depth=256,
        b_depth=256,
        param_depth=16,
        name="tiny",
    ),
    "default": AccelConfig(rows=8, cols=8, acc_width=32, max_k=4096, name="default"),
    # iCE40 UP5K: 16 MACs on the 8 SB_MAC16 (two per block in 8x8 mode); the
    # requantiser multiplies in logic (pp_mul resolves to "lut") so no block is lost.
    "icebreaker": AccelConfig(
        rows=4,
        cols=4,
        acc_width=24,
        max_k=511,
        bus_bytes=4,
        a_depth=512,
        b_depth=512,
        param_depth=16,
        pp_lanes=1,
        target="ice40-up5k",
        name="icebreaker",
    ),
    # ECP5-85F: 256 MACs, 148 on MULT18X18D and 108 in LUTs, plus two DSP requantiser
    # lanes (8 blocks): 156/156.
    "ulx3s": AccelConfig(
        rows=16,
        cols=16,
        acc_width=32,
        max_k=4096,
        bus_bytes=16,
        pp_lanes=2,
        target="ecp5-85f",
        name="ulx3s",
    ),
    # ECP5-45F: 64 MACs + two requantiser lanes = 72/72 MULT18X18D.
    "ulx3s-45f": AccelConfig(
        rows=8, cols=8, acc_width=32, max_k=4096, pp_lanes=2, target="ecp5-45f", name="ulx3s-45f"
    ),
    # ECP5-25F: 24 MACs + one requantiser lane = 28/28 MULT18X18D.
    "ulx3s-25f": AccelConfig(
        rows=4,
        cols=6,
        acc_width=32,
        max_k=4096,
        bus_bytes=8,
        a_depth=512,
        b_depth=512,
        pp_lanes=1,
        target="ecp5-25f",
        name="ulx3s-25f",
    ),
}


def preset(name: str) -> AccelConfig:
    """The named preset; unknown names raise a `ValueError` listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown config {name!r}; known configs: {', '.join(sorted(PRESETS))}"
        ) from None
