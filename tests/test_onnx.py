"""ONNX models quantised by onnxruntime: macforge on the RTL vs golden (exact) and vs onnxruntime.

onnxruntime requantises in float and rounds half to even; TFLite's fixed point
(our contract) rounds SRDHM halves upward and RoundingDivideByPOT halves away
from zero, and the multiplier itself is a 31-bit approximation of the float
scale. So outputs may differ by one LSB where a value lands on (or within
rounding of) a half; the tests assert max |diff| <= 1 LSB and print the
exact-match rate, while macforge vs `sim.golden` stays bit-exact.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnxruntime.quantization import (  # noqa: E402
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)

from macforge.host.inference import run_network  # noqa: E402
from macforge.host.onnx_import import import_onnx  # noqa: E402
from macforge.hw.presets import preset  # noqa: E402
from macforge.sim.reference import golden_forward  # noqa: E402
from macforge.sim.transport import SimTransport  # noqa: E402

CFG = preset("default")


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def cnn_model(rng):
    """Conv(pad 1) + Relu, MaxPool 2x2, Conv(stride 2, asymmetric pads) + Relu, Flatten, Gemm."""
    inits = [
        _init("w1", rng.normal(0, 0.3, (4, 2, 3, 3))),
        _init("b1", rng.normal(0, 0.1, 4)),
        _init("w2", rng.normal(0, 0.2, (6, 4, 3, 3))),
        _init("b2", rng.normal(0, 0.1, 6)),
        _init("w3", rng.normal(0, 0.2, (10, 24))),
        _init("b3", rng.normal(0, 0.1, 10)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node(
            "MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node(
            "Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", strides=[2, 2], pads=[0, 0, 1, 1]
        ),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Flatten", ["r2"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1),
    ]
    return _model(nodes, inits, [None, 2, 10, 10], [None, 10])


def mlp_model(rng):
    """MatMul + Add + Relu, then MatMul + Add (a Keras-style dense stack)."""
    inits = [
        _init("w1", rng.normal(0, 0.3, (20, 16))),
        _init("b1", rng.normal(0, 0.1, 16)),
        _init("w2", rng.normal(0, 0.3, (16, 5))),
        _init("b2", rng.normal(0, 0.1, 5)),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["m1"], name="mm1"),
        helper.make_node("Add", ["m1", "b1"], ["a1"], name="add1"),
        helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
        helper.make_node("MatMul", ["r1", "w2"], ["m2"], name="mm2"),
        helper.make_node("Add", ["m2", "b2"], ["y"], name="add2"),
    ]
    return _model(nodes, inits, [None, 20], [None, 5])


def _model(nodes, inits, in_shape, out_shape):
    graph = helper.make_graph(
        nodes,
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


class _Reader(CalibrationDataReader):
    def __init__(self, data):
        self._it = iter([{"x": d[None]} for d in data])

    def get_next(self):
        return next(self._it, None)


def quantised(tmp_path, model, calib, fmt, per_channel):
    f = tmp_path / "float.onnx"
    q = tmp_path / f"q_{fmt.name}_{per_channel}.onnx"
    onnx.save(model, str(f))
    quantize_static(
        str(f),
        str(q),
        _Reader(calib),
        quant_format=fmt,
        per_channel=per_channel,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
    return q


CASES = [
    ("cnn", QuantFormat.QDQ, True),
    ("cnn", QuantFormat.QDQ, False),
    ("cnn", QuantFormat.QOperator, True),
    ("mlp", QuantFormat.QDQ, True),
    ("mlp", QuantFormat.QOperator, False),
]


@pytest.mark.parametrize(
    "kind, fmt, per_channel",
    CASES,
    ids=[f"{k}-{f.name}-{'pc' if p else 'pt'}" for k, f, p in CASES],
)
def test_onnxruntime_vs_macforge(tmp_path, kind, fmt, per_channel):
    rng = np.random.default_rng(11)
    model = cnn_model(rng) if kind == "cnn" else mlp_model(rng)
    shape = (2, 10, 10) if kind == "cnn" else (20,)
    calib = rng.uniform(-1, 1, size=(32, *shape)).astype(np.float32)
    x = rng.uniform(-1, 1, size=(24, *shape)).astype(np.float32)
    path = quantised(tmp_path, model, calib, fmt, per_channel)

    imported = import_onnx(path)
    net = imported.network
    xq = net.input.quantize(x)
    y, stats = run_network(net, xq, CFG, SimTransport(CFG))
    assert np.array_equal(y, golden_forward(net, xq)), "RTL differs from the golden model"

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y_ort = sess.run(None, {imported.input_name: x})[0]
    oq = net.output
    ort_q = np.clip(np.round(y_ort / oq.scale) + oq.zero_point, -128, 127).astype(np.int64)
    diff = np.abs(ort_q - y.astype(np.int64))
    rate = float((diff == 0).mean())
    print(
        f"{kind} {fmt.name} per_channel={per_channel}: max |diff| {diff.max()} LSB, "
        f"exact-match rate {rate:.4f}"
    )
    assert diff.max() <= 1, f"max |diff| {diff.max()} LSB vs onnxruntime"
    assert rate >= 0.9


def test_unsupported_op_is_refused(tmp_path):
    rng = np.random.default_rng(2)
    model = mlp_model(rng)
    model.graph.node.append(helper.make_node("Sigmoid", ["y"], ["s"], name="squash"))
    model.graph.output[0].name = "s"
    path = quantised(
        tmp_path, model, rng.uniform(-1, 1, (8, 20)).astype(np.float32), QuantFormat.QDQ, False
    )
    with pytest.raises(ValueError, match="unsupported op Sigmoid in node 'squash"):
        import_onnx(path)
    np.save(tmp_path / "x.npy", np.zeros((2, 20), np.float32))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "macforge",
            "run",
            str(path),
            "--input",
            str(tmp_path / "x.npy"),
            "--output",
            str(tmp_path / "y.npy"),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "unsupported op Sigmoid" in lines[0]
    assert not (tmp_path / "y.npy").exists()


def test_float_model_is_refused(tmp_path):
    path = tmp_path / "f.onnx"
    onnx.save(mlp_model(np.random.default_rng(0)), str(path))
    with pytest.raises(ValueError, match="not int8-quantised"):
        import_onnx(path)
