"""AccelConfig validation: every invalid field is a ValueError naming it."""

import pytest

from macforge.hw.config import AccelConfig, max_k_for
from macforge.hw.presets import PRESETS, preset


@pytest.mark.parametrize(
    "field, value",
    [
        ("rows", 0),
        ("rows", 65),
        ("rows", 2.0),
        ("rows", True),
        ("cols", 0),
        ("cols", 100),
        ("cols", "8"),
        ("input_width", 4),
        ("input_width", 16),
        ("acc_width", 8),
        ("acc_width", 64),
        ("max_k", 0),
        ("max_k", -5),
        ("name", ""),
        ("name", "a b"),
        ("name", 3),
        ("bus_bytes", 5),
        ("bus_bytes", True),
        ("a_depth", 8),
        ("b_depth", 70000),
        ("param_depth", 0),
        ("pp_lanes", 3),
        ("pp_lanes", -1),
        ("dsp_pes", -2),
        ("dsp_pes", 65),
        ("target", "virtex"),
    ],
)
def test_invalid_field_is_value_error(field, value):
    with pytest.raises(ValueError, match=field):
        AccelConfig(**{field: value})


def test_narrow_accumulator_names_both_numbers():
    with pytest.raises(ValueError) as err:
        AccelConfig(acc_width=20, max_k=100)
    msg = str(err.value)
    assert "acc_width=20" in msg and "max_k=100" in msg and "K <= 31" in msg


def test_max_k_bound_is_tight():
    # 32-bit: 131071 * 16384 = 2**31 - 16384 fits; one more would not.
    assert max_k_for(32) == 131071
    assert 131071 * 16384 <= 2**31 - 1 < 131072 * 16384
    AccelConfig(acc_width=32, max_k=131071)
    with pytest.raises(ValueError):
        AccelConfig(acc_width=32, max_k=131072)
    assert AccelConfig(acc_width=32, max_k=2).min_acc_width_for(131072) == 33


def test_presets_and_unknown_name():
    assert preset("tiny").rows == 2 and preset("tiny").cols == 2
    assert preset("default").rows == 8 and preset("default").cols == 8
    with pytest.raises(ValueError, match="known configs: .*default.*tiny"):
        preset("huge")
    for name, cfg in PRESETS.items():
        assert cfg.name == name


def test_frozen_and_roundtrip():
    cfg = preset("default")
    with pytest.raises(AttributeError):
        cfg.rows = 4  # type: ignore[misc]
    assert AccelConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        AccelConfig.from_dict({"rows": 2, "bogus": 1})
    assert cfg.replace(rows=4).rows == 4


def test_target_budgets():
    up5k = dict(target="ice40-up5k", a_depth=64, b_depth=64)
    with pytest.raises(ValueError, match="need 16 DSP blocks but target ice40-up5k has 8"):
        AccelConfig(rows=4, cols=4, pp_mul="dsp", **up5k)
    # DSP requantiser lane (4 blocks): 4 blocks left carry 8 PEs, two per SB_MAC16
    cfg = AccelConfig(rows=4, cols=4, pp_lanes=1, pp_mul="dsp", **up5k)
    assert cfg.dsp_pes == 8 and cfg.dsps == 8  # the rest of the PEs multiply in LUTs
    with pytest.raises(ValueError, match=r"dsp_pes=9 \(5 DSP blocks\) plus 4"):
        AccelConfig(rows=4, cols=4, pp_lanes=1, pp_mul="dsp", dsp_pes=9, **up5k)
    # iCE40 default: the requantiser multiplies in logic, all 8 blocks carry 16 MACs
    cfg = AccelConfig(rows=4, cols=5, pp_lanes=1, **up5k)
    assert cfg.pp_mul == "lut" and cfg.dsp_pes == 16 and cfg.dsps == 8
    with pytest.raises(ValueError, match="pp_mul must be one of"):
        AccelConfig(pp_mul="fast")
    with pytest.raises(ValueError, match="buffers need .* bits but target ice40-up5k"):
        AccelConfig(rows=8, cols=8, pp_lanes=1, target="ice40-up5k", a_depth=65536)
    assert AccelConfig().pp_lanes == 8 and AccelConfig().dsp_pes == 64
    for name in PRESETS:
        cfg = preset(name)
        assert cfg.dsps * cfg.macs_per_dsp >= cfg.dsp_pes
