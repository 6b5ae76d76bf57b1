"""ONNX graph reading shared by both quantised formats: the values flowing between
nodes (int8 activations, their float views, constants, pending float ops), the helpers
that read initializers, quantisation parameters, weights and biases, and the lowering of
a finished conv / dense / add to an int8 layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .network import AddConst, Conv2D, Dense, QuantParams

__all__ = ["QT", "DQ", "Const", "Pending", "GraphReader"]


@dataclass
class QT:  # an int8 activation
    q: QuantParams


@dataclass
class DQ:  # float view of an int8 activation
    q: QuantParams


@dataclass
class Const:  # an initializer, possibly dequantised
    value: np.ndarray
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None


@dataclass
class Pending:  # a float op waiting for its QuantizeLinear
    kind: str
    node: str
    in_q: QuantParams
    args: dict = field(default_factory=dict)
    activation: str = "none"


class GraphReader:
    """State of one import (values by tensor name, layers so far, the input's
    quantisation), the helpers every op handler uses and the layer lowering."""

    def __init__(self, model) -> None:
        from onnx import numpy_helper

        self.graph = model.graph
        self.values: dict[str, object] = {
            init.name: Const(numpy_helper.to_array(init)) for init in self.graph.initializer
        }
        self.layers: list = []
        self.input_q: QuantParams | None = None
        inputs = [i for i in self.graph.input if i.name not in self.values]
        if len(inputs) != 1 or len(self.graph.output) != 1:
            raise ValueError("only models with one input and one output are supported")
        self.input_name = inputs[0].name
        self.output_name = self.graph.output[0].name
        dims = inputs[0].type.tensor_type.shape.dim
        if not dims:
            raise ValueError(f"model input {self.input_name!r} has no shape")
        for i, d in enumerate(dims[1:], start=1):
            if not d.HasField("dim_value") or d.dim_value <= 0:
                what = repr(d.dim_param) if d.dim_param else "unknown"
                raise ValueError(
                    f"model input {self.input_name!r}: dimension {i} is {what}, not a fixed "
                    "size (only the batch dimension may be symbolic; fix the shape when exporting)"
                )
        self.input_shape = tuple(int(d.dim_value) for d in dims[1:])
        self.values[self.input_name] = "input"

    def const(self, name: str, node) -> np.ndarray:
        v = self.values.get(name)
        if not isinstance(v, Const):
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

    def weight(self, node, value: Const, n_out: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
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
        if not isinstance(v, DQ):
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): input {name!r} is not a "
                "dequantised int8 activation (unsupported graph structure)"
            )
        return v.q

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

    def _dense(self, node, in_q, w: Const, trans_b: bool, b) -> Pending:
        if not isinstance(w, Const) or w.scale is None:
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): weights must be dequantised int8"
            )
        wmat = w.value if trans_b else w.value.T
        n = wmat.shape[0]
        wq, ws = self.weight(node, Const(np.ascontiguousarray(wmat), w.scale, w.zero_point), n, 0)
        return Pending(
            "dense",
            node.name,
            in_q,
            {"weight": wq, "w_scale": ws, "bias": self.bias(node, b, n, in_q, ws)},
        )

    def _add_const(self, node, b: Const) -> tuple[np.ndarray, QuantParams]:
        if b.value.dtype != np.int8 or np.size(b.scale) != 1:
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): the constant must be int8 "
                "with per-tensor quantisation"
            )
        zp = int(np.asarray(b.zero_point).reshape(())) if b.zero_point is not None else 0
        return b.value, QuantParams(float(np.asarray(b.scale).reshape(())), zp)

    def emit(self, p: Pending, out_q: QuantParams) -> None:
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
