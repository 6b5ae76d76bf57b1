"""Array configs every cocotb bench runs over (shared by the test modules)."""

from macforge.hw.config import AccelConfig
from macforge.hw.presets import preset

ARRAY_CONFIGS = {
    "1x1": AccelConfig(rows=1, cols=1, acc_width=20, max_k=31, name="t1x1"),
    "tiny": preset("tiny"),
    "4x4": AccelConfig(rows=4, cols=4, acc_width=24, max_k=511, name="t4x4"),
    "default": preset("default"),
    "2x8": AccelConfig(rows=2, cols=8, acc_width=32, max_k=300, name="t2x8"),
    # 6 PEs on DSP blocks, 10 multiplying in LUTs
    "4x4-mixed": AccelConfig(rows=4, cols=4, acc_width=24, max_k=200, dsp_pes=6, name="t4x4m"),
    # iCE40: all 16 PEs on 8 hand-instantiated SB_MAC16 in 8x8 mode (Yosys cell model)
    "4x4-ice40": AccelConfig(
        rows=4, cols=4, acc_width=24, max_k=511, target="ice40-up5k", name="t4x4i"
    ),
    # iCE40, odd dsp_pes: blocks pair PE(0,0)+(0,1) and PE(0,2)+(1,0) (across a row
    # boundary), PE(1,1) alone on a half-used block; 4 PEs multiply in LUTs
    "3x3-ice40-odd": AccelConfig(
        rows=3, cols=3, acc_width=21, max_k=63, dsp_pes=5, target="ice40-up5k", name="t3x3io"
    ),
}
