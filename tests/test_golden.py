"""macforge.sim.golden.matmul against plain Python integer arithmetic, edge cases included."""

import numpy as np
import pytest

from macforge.sim import golden


def _ref(a, b):
    m, k = a.shape
    n = b.shape[1]
    return [
        [sum(int(a[i, t]) * int(b[t, j]) for t in range(k)) for j in range(n)] for i in range(m)
    ]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_python_ints(seed):
    rng = np.random.default_rng(seed)
    m, k, n = rng.integers(1, 12, size=3)
    a = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
    b = rng.integers(-128, 128, size=(k, n), dtype=np.int8)
    c = golden.matmul(a, b)
    assert c.dtype == np.int32
    assert c.tolist() == _ref(a, b)


def test_extremes_no_int8_wrap():
    a = np.full((2, 3), -128, dtype=np.int8)
    b = np.full((3, 2), -128, dtype=np.int8)
    assert golden.matmul(a, b).tolist() == [[49152, 49152]] * 2


def test_overflow_is_an_error_not_a_wrap():
    k = 131072  # one more than a 32-bit accumulator holds for -128 * -128
    a = np.full((1, k), -128, dtype=np.int8)
    b = np.full((k, 1), -128, dtype=np.int8)
    with pytest.raises(OverflowError):
        golden.matmul(a, b)
    assert golden.matmul(a[:, :-1], b[:-1, :])[0, 0] == 131071 * 16384
    with pytest.raises(OverflowError):
        golden.matmul(a[:, :128], b[:128, :], acc_bits=22)


@pytest.mark.parametrize(
    "a, b, match",
    [
        (np.zeros((2, 2), np.int16), np.zeros((2, 2), np.int8), "dtype int8"),
        (np.zeros((2,), np.int8), np.zeros((2, 2), np.int8), "2-D"),
        (np.zeros((2, 3), np.int8), np.zeros((2, 2), np.int8), "inner dimensions"),
    ],
)
def test_bad_inputs(a, b, match):
    with pytest.raises(ValueError, match=match):
        golden.matmul(a, b)


# -- requantisation: a scalar transcription of the C reference, with C integer semantics --


def _c_div(a: int, b: int) -> int:  # C division: truncate toward zero
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _srdhm(a: int, b: int) -> int:
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    return _c_div(ab + nudge, 1 << 31)


def _rdbp(x: int, e: int) -> int:
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def _sat(x: int) -> int:
    return max(-(2**31), min(2**31 - 1, x))


def _requant_scalar(acc, bias, mult, shift, zp, lo, hi):
    x = _sat(acc + bias)
    x = _sat(x * (1 << max(shift, 0)))
    x = _rdbp(_srdhm(x, mult), max(-shift, 0))
    return max(lo, min(hi, x + zp))


def test_srdhm_known_values():
    i32min, i32max = -(2**31), 2**31 - 1
    cases = [
        (i32min, i32min, i32max),  # the one saturating case
        (i32min, i32max, -i32max),
        (i32max, i32max, i32max - 1),
        (1 << 30, 1 << 30, 1 << 29),
        (3, 1 << 30, 2),  # 1.5 -> 2
        (-3, 1 << 30, -1),  # -1.5 -> -1: the nudge + truncation rounds ties upward
        (1, 1 << 30, 1),  # 0.5 -> 1
        (-1, 1 << 30, 0),  # -0.5 -> 0
        (-5, 1 << 30, -2),  # -2.5 -> -2
        (0, 12345, 0),
    ]
    for a, b, want in cases:
        assert _srdhm(a, b) == want, (a, b)
        assert int(golden.saturating_rounding_doubling_high_mul(a, b)) == want, (a, b)


def test_rounding_divide_by_pot_ties():
    for x, e, want in [
        (5, 1, 3),
        (-5, 1, -3),
        (3, 1, 2),
        (-3, 1, -2),
        (6, 2, 2),
        (-6, 2, -2),
        (7, 2, 2),
        (-7, 2, -2),
        (5, 2, 1),
        (-5, 2, -1),
        (-1, 31, 0),
        (-(2**31), 31, -1),
        (2**31 - 1, 31, 1),
        (12345, 0, 12345),
    ]:
        assert _rdbp(x, e) == want, (x, e)
        assert int(golden.rounding_divide_by_pot(x, e)) == want, (x, e)


@pytest.mark.parametrize("seed", range(5))
def test_requantize_matches_scalar_reference(seed):
    rng = np.random.default_rng(100 + seed)
    n = 16
    acc = rng.integers(-(2**31), 2**31, size=(40, n), dtype=np.int64)
    acc[:, :4] = rng.integers(-5000, 5000, size=(40, 4))
    acc[0, :] = -(2**31)
    acc[1, :] = 2**31 - 1
    bias = rng.integers(-(2**31), 2**31, size=n, dtype=np.int64)
    bias[:8] = rng.integers(-1000, 1000, size=8)
    mult = rng.integers(-(2**31), 2**31, size=n, dtype=np.int64)
    mult[0] = -(2**31)
    mult[1:6] = rng.integers(2**30, 2**31, size=5)
    shift = rng.integers(-31, 32, size=n)
    shift[1:6] = [-1, -7, 0, 1, 3]
    zp, lo, hi = int(rng.integers(-128, 128)), -128, 127
    out = golden.requantize(acc, bias, mult, shift, zp, lo, hi)
    for i in range(acc.shape[0]):
        for c in range(n):
            want = _requant_scalar(
                int(acc[i, c]), int(bias[c]), int(mult[c]), int(shift[c]), zp, lo, hi
            )
            assert int(out[i, c]) == want, (i, c)


def test_requantize_clamps_and_validation():
    acc = np.array([[1000, -1000, 0]])
    out = golden.requantize(
        acc, [0, 0, 0], [2**30] * 3, [0, 0, 0], zero_point=0, act_min=0, act_max=6
    )
    assert out.tolist() == [[6, 0, 0]]  # ReLU6-style clamp
    with pytest.raises(ValueError, match="shift"):
        golden.requantize(acc, [0, 0, 0], [1, 1, 1], [0, 40, 0])
    with pytest.raises(ValueError, match="act_min"):
        golden.requantize(acc, [0, 0, 0], [1, 1, 1], [0, 0, 0], act_min=5, act_max=1)
    with pytest.raises(ValueError, match="bias"):
        golden.requantize(acc, [0, 0], [1, 1, 1], [0, 0, 0])
