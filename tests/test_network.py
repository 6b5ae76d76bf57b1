"""Quantised layers on the RTL accelerator vs the golden TFLite kernels, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from macforge.host.inference import run_network
from macforge.host.kernels import avg_pool_int8, im2col, max_pool_int8, quantize_multiplier
from macforge.host.network import (
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    QNetwork,
    QuantParams,
)
from macforge.hw.presets import preset
from macforge.sim import golden, runner
from macforge.sim.reference import golden_add, golden_forward
from macforge.sim.transport import SimTransport


def random_conv(rng, name, o, c, k, out_scale, **kw):
    return Conv2D(
        name,
        rng.integers(-127, 128, size=(o, c, k, k), dtype=np.int8),
        rng.integers(-3000, 3000, size=o).astype(np.int32),
        rng.uniform(0.002, 0.02, size=o),
        QuantParams(out_scale, int(rng.integers(-20, 20))),
        **kw,
    )


def small_cnn(rng) -> QNetwork:
    return QNetwork(
        input=QuantParams(0.05, -3),
        input_shape=(2, 9, 9),
        layers=[
            random_conv(
                rng, "conv1", 6, 2, 3, 0.5, stride=(1, 1), pads=(1, 1, 1, 1), activation="relu"
            ),
            MaxPool2D("pool1", (2, 2), (2, 2)),
            random_conv(
                rng, "conv2", 5, 6, 3, 0.4, stride=(2, 2), pads=(0, 1, 1, 0), activation="relu6"
            ),
            AvgPool2D("pool2", (2, 2), (1, 1), pads=(0, 0, 1, 1)),
            Flatten("flatten"),
            Dense(
                "fc",
                rng.integers(-127, 128, size=(7, 5 * 2 * 2), dtype=np.int8),
                rng.integers(-2000, 2000, size=7).astype(np.int32),
                rng.uniform(0.002, 0.02, size=7),
                QuantParams(0.3, 4),
            ),
        ],
    )


@pytest.mark.parametrize("cfg_name", ["tiny", "default", "icebreaker"])
def test_cnn_bit_exact_on_rtl(cfg_name):
    cfg = preset(cfg_name)
    seed = runner.test_seed(f"cnn:{cfg_name}")
    rng = np.random.default_rng(seed)
    net = small_cnn(rng)
    x = rng.integers(-128, 128, size=(3, 2, 9, 9), dtype=np.int8)
    transport = SimTransport(cfg, idle_prob=0.1, stall_prob=0.1, seed=seed)
    out, stats = run_network(net, x, cfg, transport)
    want = golden_forward(net, x)
    assert out.shape == want.shape == (3, 7)
    assert np.array_equal(out, want), f"seed {seed}"
    on_acc = [s for s in stats if s.where == "accelerator"]
    assert [s.name for s in on_acc] == ["conv1", "conv2", "fc"]
    assert all(s.cycles > 0 and 0 < s.utilization <= 1 for s in on_acc)


def test_host_kernels_match_golden():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(2, 3, 7, 6), dtype=np.int8)
    for kernel, stride, pads in [
        ((2, 2), (2, 2), (0, 0, 0, 0)),
        ((3, 3), (1, 2), (1, 1, 1, 1)),
        ((2, 3), (1, 1), (0, 2, 1, 0)),
    ]:
        assert np.array_equal(
            max_pool_int8(x, kernel, stride, pads), golden.max_pool(x, kernel, stride, pads)
        )
        assert np.array_equal(
            avg_pool_int8(x, kernel, stride, pads), golden.avg_pool(x, kernel, stride, pads)
        )
    # avg-pool ties: 1.5 -> 2 and -1.5 -> -2 (half away from zero)
    t = np.array([[[[1, 2]], [[-1, -2]]]], dtype=np.int8)
    assert golden.avg_pool(t, (1, 2), (1, 1)).ravel().tolist() == [2, -2]
    assert avg_pool_int8(t, (1, 2), (1, 1)).ravel().tolist() == [2, -2]


def test_im2col_conv_equals_direct_conv():
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, size=(2, 3, 6, 5), dtype=np.int8)
    w = rng.integers(-128, 128, size=(4, 3, 3, 2), dtype=np.int8)
    zp = -7
    cols, (ho, wo) = im2col(x, (3, 2), (2, 1), (1, 0, 1, 1), zp)
    acc = (cols.astype(np.int64) - zp) @ w.reshape(4, -1).T.astype(np.int64)
    n = 4
    direct = golden.conv2d(
        x,
        w,
        np.zeros(n),
        zp,
        [1 << 30] * n,
        [0] * n,
        0,
        -128,
        127,
        stride=(2, 1),
        pads=(1, 0, 1, 1),
    )
    via = golden.requantize(acc, np.zeros(n), [1 << 30] * n, [0] * n, 0, -128, 127)
    assert np.array_equal(via.reshape(2, ho, wo, n).transpose(0, 3, 1, 2), direct)


def test_quantize_multiplier():
    for real in [0.5, 0.25, 0.0123, 1.5, 0.999999999, 3e-5]:
        q, s = quantize_multiplier(real)
        assert 2**30 <= q < 2**31
        assert abs(q * 2.0 ** (s - 31) - real) <= real * 2**-30
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1e-12) == (0, 0)


def test_network_input_errors():
    rng = np.random.default_rng(0)
    net = small_cnn(rng)
    with pytest.raises(ValueError, match="must be int8"):
        run_network(net, np.zeros((1, 2, 9, 9), np.float32), preset("tiny"), None)
    with pytest.raises(ValueError, match="must have shape"):
        run_network(net, np.zeros((1, 2, 8, 9), np.int8), preset("tiny"), None)


def test_add_host_kernel_matches_golden():
    from macforge.host.kernels import add_int8, add_params

    rng = np.random.default_rng(9)
    x1 = rng.integers(-128, 128, size=(50, 16), dtype=np.int8)
    x2 = rng.integers(-128, 128, size=(16,), dtype=np.int8)
    for s1, z1, s2, z2, so, zo in [
        (0.02, -5, 0.05, 3, 0.07, -10),
        (0.1, 0, 0.1, 0, 0.2, 0),
        (0.003, 127, 0.9, -128, 0.5, 20),
    ]:
        p = add_params(s1, z1, s2, z2, so, zo, -100, 120)
        got = add_int8(x1, x2[None], p)
        want = golden_add(x1, x2[None], p)
        assert np.array_equal(got, want)
        real = (x1.astype(float) - z1) * s1 + (x2.astype(float) - z2) * s2
        approx = np.clip(np.round(real / so) + zo, -100, 120)
        assert np.abs(approx - want).max() <= 1  # the float meaning, within one LSB


def test_post_training_quantisation_tracks_float():
    """quantize_network: int8 scales/zero points, int32 bias, and outputs close to float."""
    from macforge.host.quantize import (
        FloatConv2D,
        FloatDense,
        activation_params,
        float_forward,
        quantize_network,
    )

    q = activation_params(0.2, 3.0)  # range widened to include 0
    assert q.zero_point == -128 and q.scale == pytest.approx(3.0 / 255)
    q = activation_params(-1.0, 1.0)
    assert q.dequantize(q.quantize(np.array([0.0])))[0] == 0.0  # 0.0 is exact
    rng = np.random.default_rng(21)
    layers = [
        FloatConv2D(
            "c1",
            rng.normal(0, 0.4, (4, 1, 3, 3)),
            rng.normal(0, 0.1, 4),
            pads=(1, 1, 1, 1),
            activation="relu",
        ),
        MaxPool2D("p1", (2, 2), (2, 2)),
        Flatten("f"),
        FloatDense("fc", rng.normal(0, 0.3, (5, 16)), rng.normal(0, 0.1, 5)),
    ]
    x = rng.uniform(0, 1, (64, 1, 4, 4))
    net = quantize_network(layers, x)  # calibrated on the data it is checked on
    conv = net.layers[0]
    assert conv.weight.dtype == np.int8 and np.abs(conv.weight).max() == 127
    assert conv.bias.dtype == np.int32
    y = net.output.dequantize(golden_forward(net, net.input.quantize(x)))
    ref = float_forward(layers, x)
    err = np.abs(y - ref)
    assert err.mean() < 0.02 * np.abs(ref).max() and err.max() < 0.1 * np.abs(ref).max()
    assert (y.argmax(axis=1) == ref.argmax(axis=1)).mean() >= 0.9


# -- DAG networks: residual Add, depthwise, global average pooling, softmax -----------------
def residual_net(rng) -> QNetwork:
    """conv -> [depthwise -> conv] + conv's output (Add) -> depthwise stride 2 -> GAP
    (requantised) -> flatten -> dense -> softmax."""
    from macforge.host.network import Add, DepthwiseConv2D, GlobalAvgPool2D, Softmax

    def dw(name, c, k, **kw):
        return DepthwiseConv2D(
            name,
            rng.integers(-127, 128, size=(c, 1, k, k), dtype=np.int8),
            rng.integers(-3000, 3000, size=c).astype(np.int32),
            rng.uniform(0.002, 0.02, size=c),
            QuantParams(0.3, int(rng.integers(-20, 20))),
            **kw,
        )

    return QNetwork(
        input=QuantParams(0.05, -3),
        input_shape=(2, 8, 7),
        layers=[
            random_conv(rng, "stem", 5, 2, 3, 0.5, pads=(1, 1, 1, 1), activation="relu"),
            dw("dw1", 5, 3, pads=(1, 1, 1, 1), activation="relu6"),
            random_conv(rng, "pw1", 5, 5, 1, 0.4),
            Add("res", ("stem", "pw1"), QuantParams(0.6, -10), activation="relu"),
            dw("dw2", 5, 3, stride=(2, 2), pads=(0, 1, 1, 0)),
            GlobalAvgPool2D("gap", QuantParams(0.2, 3)),
            Flatten("flatten"),
            Dense(
                "fc",
                rng.integers(-127, 128, size=(6, 5), dtype=np.int8),
                rng.integers(-2000, 2000, size=6).astype(np.int32),
                rng.uniform(0.002, 0.02, size=6),
                QuantParams(0.1, 4),
            ),
            Softmax("softmax"),
        ],
    )


@pytest.mark.parametrize("cfg_name", ["tiny", "default"])
def test_residual_depthwise_network_bit_exact_on_rtl(cfg_name):
    cfg = preset(cfg_name)
    seed = runner.test_seed(f"residual:{cfg_name}")
    rng = np.random.default_rng(seed)
    net = residual_net(rng)
    x = rng.integers(-128, 128, size=(3, 2, 8, 7), dtype=np.int8)
    record, want_record = {}, {}
    transport = SimTransport(cfg, idle_prob=0.1, stall_prob=0.1, seed=seed)
    out, stats = run_network(net, x, cfg, transport, record=record)
    want = golden_forward(net, x, record=want_record)
    assert out.shape == want.shape == (3, 6)
    for name in want_record:
        assert np.array_equal(record[name], want_record[name]), f"{name}, seed {seed}"
    where = {s.name: s.where for s in stats}
    assert [n for n, w in where.items() if w == "accelerator"] == [
        "stem",
        "dw1",
        "pw1",
        "dw2",
        "fc",
    ]
    dw = [s for s in stats if s.kind == "depthwise"]
    assert all(0 < s.utilization <= 1 / cfg.cols for s in dw)
    assert net.output == QuantParams(1 / 256, -128)


def test_network_graph_is_checked():
    from macforge.host.network import Add, Softmax

    rng = np.random.default_rng(1)
    conv = random_conv(rng, "c", 2, 2, 1, 0.5)
    q = QuantParams(0.1, 0)
    cases = [
        ([conv, Add("a", ("c", "nope"), q)], "reads 'nope', which is not an earlier layer"),
        ([conv, Add("a", ("c",), q)], r"needs 2 input\(s\)"),
        ([conv, Flatten("c")], "used twice"),
        ([Softmax("s"), Flatten("f")], "must be the last layer"),
        ([conv, Flatten("f", inputs=("<input>",))], "output of layer 'c' is never used"),
    ]
    for layers, needle in cases:
        net = QNetwork(input=q, input_shape=(2, 3, 3), layers=layers)
        with pytest.raises(ValueError, match=needle):
            net.resolved_inputs()


def test_new_host_kernels_match_golden():
    from macforge.host.kernels import avg_pool_requant_int8, softmax_int8
    from macforge.host.layer_params import avg_pool_params, softmax_params

    rng = np.random.default_rng(12)
    for s_in, out_q in [
        (0.02, QuantParams(1 / 256, -128)),
        (0.15, QuantParams(1 / 255, -128)),
        (0.7, QuantParams(1 / 128, -100)),
    ]:
        x = rng.integers(-128, 128, size=(200, 11), dtype=np.int8)
        p = softmax_params(QuantParams(s_in, 5), out_q)
        want = golden.softmax(
            x,
            p["input_multiplier"],
            p["input_left_shift"],
            p["diff_min"],
            p["output_zp"],
            p["output_multiplier"],
            p["output_shift"],
        )
        assert np.array_equal(softmax_int8(x, p), want)
        # the float meaning, within one LSB (TFLite's fixed-point exp and reciprocal)
        d = (x.astype(np.float64) - x.max(axis=1, keepdims=True)) * s_in
        prob = np.exp(d) / np.exp(d).sum(axis=1, keepdims=True)
        approx = np.clip(np.round(prob / out_q.scale) + out_q.zero_point, -128, 127)
        assert np.abs(approx - want).max() <= 1
    x = rng.integers(-128, 128, size=(2, 3, 7, 6), dtype=np.int8)
    qi, qo = QuantParams(0.1, 5), QuantParams(0.03, -7)
    mult, shift = avg_pool_params(qi, qo, 42)
    for kernel, stride, pads in [((3, 3), (2, 2), (1, 1, 1, 1)), ((7, 6), (1, 1), (0, 0, 0, 0))]:
        got = avg_pool_requant_int8(x, kernel, stride, pads, 5, mult, shift, -7)
        want = golden.avg_pool_requant(x, kernel, stride, pads, 5, mult, shift, -7)
        assert np.array_equal(got, want)
    mean = (x.astype(np.float64) - 5).mean(axis=(2, 3)) * 0.1
    want = golden.avg_pool_requant(x, (7, 6), (1, 1), (0, 0, 0, 0), 5, mult, shift, -7)
    assert np.abs(np.round(mean / 0.03) - 7 - want[:, :, 0, 0]).max() <= 1


def test_depthwise_golden_equals_per_channel_conv():
    rng = np.random.default_rng(13)
    x = rng.integers(-128, 128, size=(2, 4, 6, 5), dtype=np.int8)
    w = rng.integers(-127, 128, size=(4, 1, 3, 2), dtype=np.int8)
    bias = rng.integers(-500, 500, size=4)
    mult, shift = [1 << 30] * 4, [-6, -5, -7, -6]
    kw = {"stride": (2, 1), "pads": (1, 0, 1, 1)}
    got = golden.depthwise_conv2d(x, w, bias, -3, mult, shift, 2, -128, 127, **kw)
    for c in range(4):
        one = golden.conv2d(
            x[:, c : c + 1],
            w[c : c + 1],
            bias[c : c + 1],
            -3,
            mult[c : c + 1],
            shift[c : c + 1],
            2,
            -128,
            127,
            **kw,
        )
        assert np.array_equal(got[:, c : c + 1], one)


def test_k_chunks():
    from macforge.host.inference import k_chunks

    assert k_chunks(127, 127) == [slice(0, 127)]
    assert k_chunks(640, 511) == [slice(0, 320), slice(320, 640)]
    for k, max_k in ((128, 127), (300, 127), (1000, 7), (5, 1)):
        parts = k_chunks(k, max_k)
        assert len(parts) == -(-k // max_k) and parts[0].start == 0 and parts[-1].stop == k
        assert all(p.stop == q.start for p, q in zip(parts, parts[1:], strict=False))
        assert all(0 < p.stop - p.start <= max_k for p in parts)


def test_layers_longer_than_max_k_split_on_rtl():
    """K > max_k (here `tiny`'s 127): raw GEMMs over K chunks, summed and requantised on
    the host; bit-exact with golden (the full-K TFLite layer), edge values included, and
    the performance model predicts the session's cycles exactly."""
    from macforge.sim.perfmodel import estimate_network

    cfg = preset("tiny")
    seed = runner.test_seed("split-k")
    rng = np.random.default_rng(seed)
    conv = random_conv(rng, "conv", 3, 16, 3, 0.8, pads=(1, 1, 1, 1), activation="relu")
    w = rng.integers(-128, 128, size=(5, 298), dtype=np.int8)
    w[0], w[1] = 127, -128  # channels at the largest sums

    def dense(k):
        bias = rng.integers(-(2**20), 2**20, size=5).astype(np.int32)
        return Dense("fc", w[:, :k], bias, rng.uniform(0.0005, 0.01, 5), QuantParams(0.5, -7))

    q_in = QuantParams(0.05, -3)
    # conv: K = 16 * 3 * 3 = 144 > 127 (two chunks); the wide dense: K = 298 (three)
    net = QNetwork(q_in, (16, 4, 4), [conv, Flatten("flatten"), dense(48)])
    wide = QNetwork(q_in, (298,), [dense(298)])
    for network, shape in ((net, (2, 16, 4, 4)), (wide, (3, 298))):
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        x[0] = -128
        transport = SimTransport(cfg, seed=seed)
        out, stats = run_network(network, x, cfg, transport)
        assert np.array_equal(out, golden_forward(network, x)), f"seed {seed}"
        est = estimate_network(network, cfg, batch=shape[0])
        on_acc = [s for s in stats if s.where == "accelerator"]
        assert [e.cycles for e in est.layers if e.where == "accelerator"] == [
            s.cycles for s in on_acc
        ]


def test_host_requantize_matches_golden():
    """`kernels.requantize_int8` (the split-K output stage) equals `golden.requantize` on
    random and edge parameters: accumulators past int32, INT32_MIN multipliers, shifts
    -31..31, narrow clamps."""
    from macforge.host.kernels import requantize_int8

    seed = runner.test_seed("host-requant")
    rng = np.random.default_rng(seed)
    for case in range(500):
        n = int(rng.integers(1, 9))
        span = 2**33 if case % 2 else 2**20
        acc = rng.integers(-span, span, size=(6, n))
        bias = rng.integers(-(2**31), 2**31, size=n)
        mult = rng.integers(-(2**31), 2**31, size=n)
        if case % 5 == 0:
            mult[0] = -(2**31)
        shift = rng.integers(-31, 32, size=n)
        zp, lo, hi = (
            int(rng.integers(-128, 128)),
            int(rng.integers(-128, 0)),
            int(rng.integers(0, 128)),
        )
        got = requantize_int8(acc, bias, mult, shift, zp, lo, hi)
        want = golden.requantize(acc, bias, mult, shift, zp, lo, hi)
        assert np.array_equal(got, want), f"seed {seed}, case {case}"
