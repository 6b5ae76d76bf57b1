"""sim.golden.matmul against plain Python integer arithmetic, edge cases included."""

import numpy as np
import pytest

from sim import golden


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
