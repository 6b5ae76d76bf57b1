"""Import int8 ONNX models (onnxruntime ``quantize_static`` output) as a `QNetwork`.

Both formats onnxruntime writes are read:

* **QDQ**: float ops between ``QuantizeLinear`` / ``DequantizeLinear`` pairs,
  weights and biases as ``DequantizeLinear`` of int8 / int32 initializers.
* **QOperator**: ``QLinearConv``, ``QLinearMatMul``, ``QGemm`` (com.microsoft),
  int8 ``MaxPool`` / ``Flatten``.

Supported: a chain from one float input to one output of Conv (2-D, dilation
1, group 1), Gemm, MatMul, Add of a constant (a float bias is folded into the
GEMM; an int8 one is TFLite's int8 Add), Relu / Clip(0, 6) after them,
MaxPool, AveragePool, Flatten, Reshape to (batch, -1); QOperator's QLinearConv,
QLinearMatMul, QGemm, QLinearAdd. Activations
must be int8 with per-tensor parameters; weights int8 with zero point 0
(per-tensor or per-channel). Anything else is refused with a `ValueError`
naming the op and the node, before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .network import (
    AddConst,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    QNetwork,
    QuantParams,
)

__all__ = ["import_onnx", "ImportedModel", "SUPPORTED_OPS"]

SUPPORTED_OPS = (
    "QuantizeLinear",
    "DequantizeLinear",
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Relu",
    "Clip",
    "MaxPool",
    "AveragePool",
    "Flatten",
    "Reshape",
    "QLinearConv",
    "QLinearMatMul",
    "QGemm",
    "QLinearAdd",
)


@dataclass
class ImportedModel:
    network: QNetwork
    input_name: str
    output_name: str
    output_is_float: bool  #: the graph output is dequantised (float); else int8


@dataclass
class _QT:  # an int8 activation
    q: QuantParams


@dataclass
class _DQ:  # float view of an int8 activation
    q: QuantParams


@dataclass
class _Const:  # an initializer, possibly dequantised
    value: np.ndarray
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None


@dataclass
class _Pending:  # a float op waiting for its QuantizeLinear
    kind: str
    node: str
    in_q: QuantParams
    args: dict = field(default_factory=dict)
    activation: str = "none"


class _Importer:
    def __init__(self, model) -> None:
        from onnx import numpy_helper

        self.graph = model.graph
        self.values: dict[str, object] = {
            init.name: _Const(numpy_helper.to_array(init)) for init in self.graph.initializer
        }
        self.layers: list = []
        self.input_q: QuantParams | None = None
        inputs = [i for i in self.graph.input if i.name not in self.values]
        if len(inputs) != 1 or len(self.graph.output) != 1:
            raise ValueError("only models with one input and one output are supported")
        self.input_name = inputs[0].name
        self.output_name = self.graph.output[0].name
        dims = inputs[0].type.tensor_type.shape.dim
        self.input_shape = tuple(int(d.dim_value) for d in dims[1:])
        self.values[self.input_name] = "input"

    # -- helpers ------------------------------------------------------------------------
    def const(self, name: str, node) -> np.ndarray:
        v = self.values.get(name)
        if not isinstance(v, _Const):
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): input {name!r} must be a constant"
            )
        return v.value

    def qparams(self, node, scale_name: str, zp_name: str | None) -> QuantParams:
        scale = self.const(scale_name, node)
        zp = self.const(zp_name, node) if zp_name else np.zeros((), np.int8)
        if scale.size != 1:
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): activations need per-tensor quantisation"
            )
        if zp.dtype != np.int8:
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): activations must be int8, got {zp.dtype}"
            )
        return QuantParams(float(scale.reshape(())), int(zp.reshape(())))

    @staticmethod
    def attrs(node) -> dict:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def weight(self, node, value: _Const, n_out: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
        w = value.value
        if w.dtype != np.int8:
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): weights must be int8, got {w.dtype}"
            )
        if value.zero_point is not None and np.any(value.zero_point != 0):
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): weights must be symmetric (zero point 0)"
            )
        scale = np.broadcast_to(np.asarray(value.scale, dtype=np.float64).reshape(-1), (n_out,))
        return w, np.array(scale)

    def bias(self, node, value, n: int, in_q: QuantParams, w_scale: np.ndarray) -> np.ndarray:
        if value is None:
            return np.zeros(n, np.int32)
        if value.value.dtype == np.int32:
            if value.scale is not None:
                want = in_q.scale * w_scale
                if not np.allclose(np.broadcast_to(value.scale, (n,)), want, rtol=1e-5):
                    raise ValueError(f"node {node.name!r}: bias scale is not input x weight scale")
            return value.value.astype(np.int32).reshape(n)
        b = np.round(value.value.astype(np.float64).reshape(n) / (in_q.scale * w_scale))
        return np.clip(b, -(2**31), 2**31 - 1).astype(np.int32)

    def dq_input(self, node, name: str) -> QuantParams:
        v = self.values.get(name)
        if not isinstance(v, _DQ):
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): input {name!r} is not a "
                "dequantised int8 activation (unsupported graph structure)"
            )
        return v.q

    # -- the walk -------------------------------------------------------------------------
    def run(self) -> ImportedModel:
        for index, node in enumerate(self.graph.node):
            if not node.name:
                node.name = f"{node.op_type}_{index}"
            if node.op_type not in SUPPORTED_OPS:
                raise ValueError(f"unsupported op {node.op_type} in node {node.name!r}")
        if not any(n.op_type == "QuantizeLinear" for n in self.graph.node):
            raise ValueError(
                "the model is not int8-quantised (no QuantizeLinear); quantise it "
                "with onnxruntime.quantization.quantize_static"
            )
        for node in self.graph.node:
            getattr(self, f"op_{node.op_type}")(node)
        out = self.values.get(self.output_name)
        if isinstance(out, _DQ):
            float_out = True
        elif isinstance(out, _QT):
            float_out = False
        else:
            raise ValueError(f"graph output {self.output_name!r} is not a quantised tensor")
        if self.input_q is None:
            raise ValueError("the graph input is never quantised (QuantizeLinear missing)")
        net = QNetwork(input=self.input_q, input_shape=self.input_shape, layers=self.layers)
        return ImportedModel(net, self.input_name, self.output_name, float_out)

    def op_QuantizeLinear(self, node) -> None:  # noqa: N802
        src = self.values.get(node.input[0])
        q = self.qparams(node, node.input[1], node.input[2] if len(node.input) > 2 else None)
        if src == "input":
            if self.input_q is not None:
                raise ValueError(f"node {node.name!r}: the input is quantised twice")
            self.input_q = q
        elif isinstance(src, _Pending):
            self.emit(src, q)
        else:
            raise ValueError(
                f"node {node.name!r} (QuantizeLinear): unsupported input {node.input[0]!r}"
            )
        self.values[node.output[0]] = _QT(q)

    def op_DequantizeLinear(self, node) -> None:  # noqa: N802
        src = self.values.get(node.input[0])
        if isinstance(src, _QT):
            self.values[node.output[0]] = _DQ(src.q)
        elif isinstance(src, _Const):
            scale = self.const(node.input[1], node)
            zp = self.const(node.input[2], node) if len(node.input) > 2 else None
            self.values[node.output[0]] = _Const(src.value, scale, zp)
        else:
            raise ValueError(f"node {node.name!r} (DequantizeLinear): unsupported input")

    def _conv_args(self, node) -> dict:
        a = self.attrs(node)
        if any(d != 1 for d in a.get("dilations", [1, 1])) or a.get("group", 1) != 1:
            raise ValueError(f"node {node.name!r} (Conv): only dilation 1 and group 1")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
            raise ValueError(f"node {node.name!r} (Conv): auto_pad SAME is not supported")
        pads = a.get("pads", [0, 0, 0, 0])
        if len(pads) != 4:
            raise ValueError(f"node {node.name!r} (Conv): only 2-D convolutions")
        return {"stride": tuple(a.get("strides", [1, 1])), "pads": tuple(pads)}

    def op_Conv(self, node) -> None:  # noqa: N802
        in_q = self.dq_input(node, node.input[0])
        w = self.values.get(node.input[1])
        if not isinstance(w, _Const) or w.scale is None:
            raise ValueError(f"node {node.name!r} (Conv): weights must be dequantised int8")
        b = self.values.get(node.input[2]) if len(node.input) > 2 else None
        n = w.value.shape[0]
        wq, ws = self.weight(node, w, n, 0)
        self.values[node.output[0]] = _Pending(
            "conv",
            node.name,
            in_q,
            {
                "weight": wq,
                "w_scale": ws,
                "bias": self.bias(node, b, n, in_q, ws),
                **self._conv_args(node),
            },
        )

    def _dense(self, node, in_q, w: _Const, trans_b: bool, b) -> _Pending:
        if not isinstance(w, _Const) or w.scale is None:
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): weights must be dequantised int8"
            )
        wmat = w.value if trans_b else w.value.T
        n = wmat.shape[0]
        wq, ws = self.weight(node, _Const(np.ascontiguousarray(wmat), w.scale, w.zero_point), n, 0)
        return _Pending(
            "dense",
            node.name,
            in_q,
            {"weight": wq, "w_scale": ws, "bias": self.bias(node, b, n, in_q, ws)},
        )

    def op_Gemm(self, node) -> None:  # noqa: N802
        a = self.attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise ValueError(f"node {node.name!r} (Gemm): only transA=0, alpha=beta=1")
        in_q = self.dq_input(node, node.input[0])
        b = self.values.get(node.input[2]) if len(node.input) > 2 else None
        self.values[node.output[0]] = self._dense(
            node, in_q, self.values.get(node.input[1]), bool(a.get("transB", 0)), b
        )

    def op_MatMul(self, node) -> None:  # noqa: N802
        in_q = self.dq_input(node, node.input[0])
        self.values[node.output[0]] = self._dense(
            node, in_q, self.values.get(node.input[1]), False, None
        )

    def op_Add(self, node) -> None:  # noqa: N802
        p = self.values.get(node.input[0])
        b = self.values.get(node.input[1])
        if isinstance(b, _DQ) and isinstance(p, _Const):
            p, b = b, p
        if (
            isinstance(p, _Pending)
            and p.kind == "dense"
            and isinstance(b, _Const)
            and b.scale is None
            and not p.args["bias"].any()
        ):
            # MatMul followed by a float bias: fold it into the GEMM's int32 bias
            n = p.args["weight"].shape[0]
            p.args["bias"] = self.bias(node, b, n, p.in_q, p.args["w_scale"])
            self.values[node.output[0]] = p
        elif isinstance(p, _DQ) and isinstance(b, _Const) and b.scale is not None:
            self.values[node.output[0]] = _Pending(
                "add", node.name, p.q, {"const": self._add_const(node, b)}
            )
        else:
            raise ValueError(
                f"node {node.name!r} (Add): only a constant operand (bias) is "
                "supported, not the sum of two activations"
            )

    def _add_const(self, node, b: _Const) -> tuple[np.ndarray, QuantParams]:
        if b.value.dtype != np.int8 or np.size(b.scale) != 1:
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): the constant must be int8 "
                "with per-tensor quantisation"
            )
        zp = int(np.asarray(b.zero_point).reshape(())) if b.zero_point is not None else 0
        return b.value, QuantParams(float(np.asarray(b.scale).reshape(())), zp)

    def op_QLinearAdd(self, node) -> None:  # noqa: N802
        i = node.input
        a_is_const = isinstance(self.values.get(i[0]), _Const)
        act, const = (3, 0) if a_is_const else (0, 3)
        self._qt_input(node, i[act])  # checks the activation operand is int8
        c = _Const(
            self.const(i[const], node),
            self.const(i[const + 1], node),
            self.const(i[const + 2], node),
        )
        out_q = self.qparams(node, i[6], i[7])
        value, cq = self._add_const(node, c)
        self.layers.append(AddConst(node.name, value, cq, out_q))
        self.values[node.output[0]] = _QT(out_q)

    def _activation(self, node, kind: str) -> None:
        p = self.values.get(node.input[0])
        if (
            not isinstance(p, _Pending)
            or p.kind not in ("conv", "dense", "add")
            or p.activation != "none"
        ):
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): only directly after Conv/Gemm/MatMul"
            )
        p.activation = kind
        self.values[node.output[0]] = p

    def op_Relu(self, node) -> None:  # noqa: N802
        self._activation(node, "relu")

    def op_Clip(self, node) -> None:  # noqa: N802
        lo = float(self.const(node.input[1], node)) if len(node.input) > 1 else None
        hi = float(self.const(node.input[2], node)) if len(node.input) > 2 else None
        if lo == 0.0 and hi == 6.0:
            self._activation(node, "relu6")
        elif lo == 0.0 and hi is None:
            self._activation(node, "relu")
        else:
            raise ValueError(f"node {node.name!r} (Clip): only Clip(0, 6) and Clip(0)")

    def _pool_args(self, node) -> dict:
        a = self.attrs(node)
        if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])):
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): ceil_mode and dilations are not supported"
            )
        if node.op_type == "AveragePool" and a.get("count_include_pad", 0):
            raise ValueError(
                f"node {node.name!r} (AveragePool): count_include_pad=1 is not supported"
            )
        k = tuple(a["kernel_shape"])
        return {
            "kernel": k,
            "stride": tuple(a.get("strides", [1, 1])),
            "pads": tuple(a.get("pads", [0, 0, 0, 0])),
        }

    def _host_op(self, node, kind: str, args: dict) -> None:
        src = self.values.get(node.input[0])
        if isinstance(src, _QT):  # QOperator: int8 in, int8 out
            self.layers.append(self._host_layer(kind, node.name, args))
            self.values[node.output[0]] = _QT(src.q)
        else:
            in_q = self.dq_input(node, node.input[0])
            self.values[node.output[0]] = _Pending(kind, node.name, in_q, args)

    @staticmethod
    def _host_layer(kind, name, args):
        if kind == "maxpool":
            return MaxPool2D(name, args["kernel"], args["stride"], args["pads"])
        if kind == "avgpool":
            return AvgPool2D(name, args["kernel"], args["stride"], args["pads"])
        return Flatten(name)

    def op_MaxPool(self, node) -> None:  # noqa: N802
        self._host_op(node, "maxpool", self._pool_args(node))

    def op_AveragePool(self, node) -> None:  # noqa: N802
        self._host_op(node, "avgpool", self._pool_args(node))

    def op_Flatten(self, node) -> None:  # noqa: N802
        if self.attrs(node).get("axis", 1) != 1:
            raise ValueError(f"node {node.name!r} (Flatten): only axis=1")
        self._host_op(node, "flatten", {})

    def op_Reshape(self, node) -> None:  # noqa: N802
        shape = self.const(node.input[1], node).tolist()
        if len(shape) != 2 or shape[1] != -1 and shape[0] not in (-1, 0, 1):
            raise ValueError(f"node {node.name!r} (Reshape): only to (batch, -1)")
        self._host_op(node, "flatten", {})

    def emit(self, p: _Pending, out_q: QuantParams) -> None:
        if p.kind == "conv":
            self.layers.append(
                Conv2D(
                    p.node,
                    p.args["weight"],
                    p.args["bias"],
                    p.args["w_scale"],
                    out_q,
                    p.args["stride"],
                    p.args["pads"],
                    p.activation,
                )
            )
        elif p.kind == "dense":
            self.layers.append(
                Dense(
                    p.node, p.args["weight"], p.args["bias"], p.args["w_scale"], out_q, p.activation
                )
            )
        elif p.kind == "add":
            value, cq = p.args["const"]
            self.layers.append(AddConst(p.node, value, cq, out_q, p.activation))
        else:
            if out_q != p.in_q:
                raise ValueError(
                    f"node {p.node!r}: {p.kind} must keep its input's "
                    "quantisation (scale and zero point)"
                )
            self.layers.append(self._host_layer(p.kind, p.node, p.args))

    # -- QOperator --------------------------------------------------------------------------
    def _qt_input(self, node, name) -> QuantParams:
        v = self.values.get(name)
        if not isinstance(v, _QT):
            raise ValueError(f"node {node.name!r} ({node.op_type}): input {name!r} is not int8")
        return v.q

    def op_QLinearConv(self, node) -> None:  # noqa: N802
        i = node.input
        in_q = self._qt_input(node, i[0])
        w = _Const(self.const(i[3], node), self.const(i[4], node), self.const(i[5], node))
        out_q = self.qparams(node, i[6], i[7])
        n = w.value.shape[0]
        wq, ws = self.weight(node, w, n, 0)
        b = _Const(self.const(i[8], node)) if len(i) > 8 and i[8] else None
        args = self._conv_args(node)
        self.layers.append(
            Conv2D(
                node.name,
                wq,
                self.bias(node, b, n, in_q, ws),
                ws,
                out_q,
                args["stride"],
                args["pads"],
            )
        )
        self.values[node.output[0]] = _QT(out_q)

    def op_QLinearMatMul(self, node) -> None:  # noqa: N802
        i = node.input
        in_q = self._qt_input(node, i[0])
        w = _Const(self.const(i[3], node), self.const(i[4], node), self.const(i[5], node))
        out_q = self.qparams(node, i[6], i[7])
        p = self._dense(node, in_q, w, False, None)
        self.layers.append(
            Dense(node.name, p.args["weight"], p.args["bias"], p.args["w_scale"], out_q)
        )
        self.values[node.output[0]] = _QT(out_q)

    def op_QGemm(self, node) -> None:  # noqa: N802
        a = self.attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
            raise ValueError(f"node {node.name!r} (QGemm): only transA=0, alpha=1")
        i = node.input
        in_q = self._qt_input(node, i[0])
        w = _Const(self.const(i[3], node), self.const(i[4], node), self.const(i[5], node))
        b = _Const(self.const(i[6], node)) if len(i) > 6 and i[6] else None
        if len(i) < 9:
            raise ValueError(f"node {node.name!r} (QGemm): float output is not supported")
        out_q = self.qparams(node, i[7], i[8])
        p = self._dense(node, in_q, w, bool(a.get("transB", 0)), b)
        self.layers.append(
            Dense(node.name, p.args["weight"], p.args["bias"], p.args["w_scale"], out_q)
        )
        self.values[node.output[0]] = _QT(out_q)


def import_onnx(path: str | Path) -> ImportedModel:
    """Read an int8 ONNX model; `ValueError` with the op and node for anything unsupported."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises several types for a bad file
        raise ValueError(f"cannot read ONNX model {str(path)!r}: {exc}") from None
    return _Importer(model).run()
