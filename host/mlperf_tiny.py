"""The four MLPerf Tiny reference shapes as float ONNX graphs, built in code (no downloads).

* ``resnet8`` -- image classification: 32x32x3 input, a 3x3 conv of 16 channels, three
  residual stacks of 16 / 32 / 64 channels (the second and third stride 2 with a 1x1
  shortcut conv), 8x8 average pooling, a dense layer of 10 and softmax.
* ``ds_cnn`` -- keyword spotting: 49x10x1 MFCC input, a 10x4 stride-2 conv of 64
  channels, four depthwise-separable blocks (3x3 depthwise + 1x1 pointwise, 64
  channels), global average pooling, a dense layer of 12 and softmax.
* ``mobilenet_v1_025`` -- visual wake words: 96x96x3 input, MobileNetV1 at width 0.25
  (a 3x3 stride-2 conv of 8 channels, 13 depthwise-separable blocks up to 256
  channels), ReLU6, global average pooling, a dense layer of 2 and softmax.
* ``fc_autoencoder`` -- anomaly detection: 640 inputs, dense 128 x4, 8, 128 x4, 640.

Convolutions and dense layers (but the last) are followed by BatchNormalization and
ReLU (ReLU6 in MobileNet), as the Keras reference models are; the weights are seeded
random (He-scaled), so the graphs have the real shapes, not the trained accuracy.
Padding is TensorFlow's ``same`` (asymmetric for stride 2), written out as explicit pads.

`reference_network` returns the float model and an input generator;
`quantize_model` quantises a float model as a user would: onnxruntime's
``quant_pre_process`` then ``quantize_static`` (QDQ, int8, per-channel weights).
onnx is needed to build, onnxruntime to quantise (imported when called).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["NETWORKS", "ReferenceNetwork", "reference_network", "quantize_model"]

#: Network names `reference_network` accepts.
NETWORKS = ("resnet8", "ds_cnn", "mobilenet_v1_025", "fc_autoencoder")

#: ONNX opset and IR version of the generated models.
OPSET, IR_VERSION = 13, 8


@dataclass(frozen=True)
class ReferenceNetwork:
    """A float reference model and how to feed it.

    Attributes
    ----------
    name : str
    model : onnx.ModelProto      float graph, one input (batch dimension symbolic)
    input_name : str
    input_shape : tuple[int, ...]  per-sample shape (NCHW without the batch)
    inputs : Callable[[int, int], np.ndarray]
        ``inputs(n, seed)`` -> float32 batch of ``n`` samples (calibration or test data)
    """

    name: str
    model: object
    input_name: str
    input_shape: tuple[int, ...]
    inputs: Callable[[int, int], np.ndarray]


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow ``padding='same'``: (before, after) for one spatial axis."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class _Builder:
    """Appends nodes and seeded initializers; tracks the (C, H, W) or (F,) shape."""

    def __init__(self, seed: int, shape: tuple[int, ...]) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self.count: dict[str, int] = {}
        self.shapes: dict[str, tuple[int, ...]] = {"x": shape}

    def _name(self, prefix: str) -> str:
        self.count[prefix] = self.count.get(prefix, 0) + 1
        return f"{prefix}{self.count[prefix]}"

    def _init(self, name: str, value) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def _node(self, op: str, inputs, name: str, shape, **attrs) -> str:
        from onnx import helper

        out = f"{name}_out"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=name, **attrs))
        self.shapes[out] = tuple(shape)
        return out

    def _bn(self, x: str, c: int) -> str:
        name = self._name("bn")
        r = self.rng
        params = [
            self._init(f"{name}_gamma", r.uniform(0.6, 1.4, c)),
            self._init(f"{name}_beta", r.normal(0.0, 0.1, c)),
            self._init(f"{name}_mean", r.normal(0.0, 0.1, c)),
            self._init(f"{name}_var", r.uniform(0.6, 1.4, c)),
        ]
        return self._node("BatchNormalization", [x, *params], name, self.shapes[x], epsilon=1e-3)

    def _act(self, x: str, act: str) -> str:
        if act == "relu":
            return self._node("Relu", [x], self._name("relu"), self.shapes[x])
        if act == "relu6":
            name = self._name("relu6_")
            lo, hi = self._init(f"{name}_min", 0.0), self._init(f"{name}_max", 6.0)
            return self._node("Clip", [x, lo, hi], name, self.shapes[x])
        return x

    def conv(self, x, c_out, k, stride=1, *, depthwise=False, bn=True, act="relu") -> str:
        c, h, w = self.shapes[x]
        kh, kw = (k, k) if isinstance(k, int) else k
        name = self._name("dwconv" if depthwise else "conv")
        fan_in = kh * kw * (1 if depthwise else c)
        o = c if depthwise else c_out
        wt = self.rng.normal(0.0, np.sqrt(2.0 / fan_in), (o, 1 if depthwise else c, kh, kw))
        (t, b), (left, r) = _same_pads(h, kh, stride), _same_pads(w, kw, stride)
        out = self._node(
            "Conv",
            [x, self._init(f"{name}_w", wt), self._init(f"{name}_b", self.rng.normal(0, 0.05, o))],
            name,
            (o, -(-h // stride), -(-w // stride)),
            kernel_shape=[kh, kw],
            strides=[stride, stride],
            pads=[t, left, b, r],
            group=c if depthwise else 1,
        )
        return self._act(self._bn(out, o) if bn else out, act)

    def dense(self, x, n, *, bn=True, act="relu") -> str:
        """Gemm with a bias; with ``bn``, a bias-free MatMul then BatchNormalization (which
        provides the shift), the form onnxruntime's optimiser folds into a Gemm."""
        (k,) = self.shapes[x]
        name = self._name("fc")
        wt = self.rng.normal(0.0, np.sqrt(2.0 / k), (n, k))
        if bn:
            out = self._node("MatMul", [x, self._init(f"{name}_w", wt.T)], name, (n,))
            return self._act(self._bn(out, n), act)
        out = self._node(
            "Gemm",
            [x, self._init(f"{name}_w", wt), self._init(f"{name}_b", self.rng.normal(0, 0.05, n))],
            name,
            (n,),
            transB=1,
        )
        return self._act(out, act)

    def add(self, a: str, b: str, act="relu") -> str:
        return self._act(self._node("Add", [a, b], self._name("add"), self.shapes[a]), act)

    def avg_pool(self, x: str, k: int) -> str:
        c, h, w = self.shapes[x]
        return self._node(
            "AveragePool",
            [x],
            self._name("avgpool"),
            (c, h // k, w // k),
            kernel_shape=[k, k],
            strides=[k, k],
        )

    def global_avg_pool(self, x: str) -> str:
        return self._node("GlobalAveragePool", [x], self._name("gap"), (self.shapes[x][0], 1, 1))

    def flatten(self, x: str) -> str:
        n = int(np.prod(self.shapes[x]))
        return self._node("Flatten", [x], self._name("flatten"), (n,), axis=1)

    def softmax(self, x: str) -> str:
        return self._node("Softmax", [x], "softmax", self.shapes[x], axis=-1)

    def model(self, name: str, y: str):
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            self.nodes,
            name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *self.shapes["x"]])],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", *self.shapes[y]])],
            self.inits,
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = IR_VERSION
        return m


def _resnet8(seed: int):
    g = _Builder(seed, (3, 32, 32))
    x = g.conv("x", 16, 3)
    for c, stride in ((16, 1), (32, 2), (64, 2)):
        y = g.conv(x, c, 3, stride)
        y = g.conv(y, c, 3, 1, act="none")
        if stride != 1:
            x = g.conv(x, c, 1, stride, bn=False, act="none")  # projection shortcut
        x = g.add(x, y)
    x = g.flatten(g.avg_pool(x, 8))
    return g.model("resnet8", g.softmax(g.dense(x, 10, bn=False, act="none")))


def _ds_cnn(seed: int):
    g = _Builder(seed, (1, 49, 10))
    x = g.conv("x", 64, (10, 4), 2)
    for _ in range(4):
        x = g.conv(g.conv(x, 64, 3, depthwise=True), 64, 1)
    x = g.flatten(g.global_avg_pool(x))
    return g.model("ds_cnn", g.softmax(g.dense(x, 12, bn=False, act="none")))


def _mobilenet_v1_025(seed: int):
    g = _Builder(seed, (3, 96, 96))
    x = g.conv("x", 8, 3, 2, act="relu6")
    blocks = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)]
    blocks += [(128, 1)] * 5 + [(256, 2), (256, 1)]
    for c, stride in blocks:
        x = g.conv(x, 0, 3, stride, depthwise=True, act="relu6")
        x = g.conv(x, c, 1, act="relu6")
    x = g.flatten(g.global_avg_pool(x))
    return g.model("mobilenet_v1_025", g.softmax(g.dense(x, 2, bn=False, act="none")))


def _fc_autoencoder(seed: int):
    g = _Builder(seed, (640,))
    x = "x"
    for n in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = g.dense(x, n)
    return g.model("fc_autoencoder", g.dense(x, 640, bn=False, act="none"))


def _images(shape):
    def gen(n: int, seed: int) -> np.ndarray:
        """Smooth random images in [0, 1] (neighbouring pixels correlate, as in photos)."""
        rng = np.random.default_rng(seed)
        c, h, w = shape
        coarse = rng.uniform(0, 1, (n, c, h // 4 + 1, w // 4 + 1))
        img = coarse.repeat(4, axis=2).repeat(4, axis=3)[:, :, :h, :w]
        return np.clip(img + rng.normal(0, 0.08, img.shape), 0, 1).astype(np.float32)

    return gen


def _features(shape, scale: float):
    def gen(n: int, seed: int) -> np.ndarray:
        """Normal features (MFCC / log-mel like), zero mean."""
        rng = np.random.default_rng(seed)
        return rng.normal(0.0, scale, (n, *shape)).astype(np.float32)

    return gen


_BUILDERS = {
    "resnet8": (_resnet8, _images((3, 32, 32))),
    "ds_cnn": (_ds_cnn, _features((1, 49, 10), 2.0)),
    "mobilenet_v1_025": (_mobilenet_v1_025, _images((3, 96, 96))),
    "fc_autoencoder": (_fc_autoencoder, _features((640,), 1.0)),
}


def reference_network(name: str, *, seed: int = 0) -> ReferenceNetwork:
    """The float ONNX model of reference network ``name`` (one of `NETWORKS`), weights
    drawn from ``seed``, and its input generator; `ValueError` for an unknown name."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown reference network {name!r}; known: {', '.join(NETWORKS)}")
    build, inputs = _BUILDERS[name]
    model = build(seed)
    dims = model.graph.input[0].type.tensor_type.shape.dim[1:]
    return ReferenceNetwork(
        name, model, model.graph.input[0].name, tuple(d.dim_value for d in dims), inputs
    )


def quantize_model(
    model,
    output: str | Path,
    calibration: np.ndarray,
    *,
    per_channel: bool = True,
    quant_format: str = "QDQ",
    preprocess: bool = True,
) -> Path:
    """Quantise a float ONNX model (ModelProto or path) to int8 as a user would.

    onnxruntime's ``quant_pre_process`` (shape inference and graph optimisation, which
    folds BatchNormalization into Conv; symbolic shape inference skipped) unless
    ``preprocess`` is False, then ``quantize_static`` with int8 activations and weights,
    ``quant_format`` "QDQ" or "QOperator", per-channel weights by default, calibrated on
    ``calibration`` (float32, batch first), one sample per calibration batch.
    Returns ``output``.
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    input_name = model.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{input_name: s[None]} for s in np.asarray(calibration, np.float32)])

        def get_next(self):
            return next(self._it, None)

    output = Path(output)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "float.onnx"
        onnx.save(model, str(src))
        if preprocess:
            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            src = pre
        quantize_static(
            str(src),
            str(output),
            Reader(),
            quant_format=QuantFormat.QDQ if quant_format == "QDQ" else QuantFormat.QOperator,
            per_channel=per_channel,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
        )
    return output
