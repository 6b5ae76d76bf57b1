"""ONNX graph reading shared by both quantised formats: the values flowing between
nodes (int8 activations, their float views, constants, pending float ops), the helpers
that read initializers, quantisation parameters, weights and biases, and the lowering of
a finished conv / dense / add to an int8 layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .network import (
    NETWORK_INPUT,
    Add,
    AddConst,
    AvgPool2D,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    GlobalAvgPool2D,
    QuantParams,
    Softmax,
)

__all__ = ["QT", "DQ", "Const", "Pending", "GraphReader"]


@dataclass
class QT:  # an int8 activation, output of layer ``src`` (or NETWORK_INPUT)
    q: QuantParams
    src: str = NETWORK_INPUT
    tensor: str = ""  #: the ONNX tensor holding it


@dataclass
class DQ:  # float view of an int8 activation
    q: QuantParams
    src: str = NETWORK_INPUT
    tensor: str = ""  #: the ONNX tensor of the int8 activation it dequantises


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
    srcs: tuple[str, ...] = (NETWORK_INPUT,)  #: the layers it reads


#: Pending kinds that become accelerator layers (weights, bias, a requantised output).
GEMM_KINDS = ("conv", "depthwise", "dense")
#: Pending kinds a ReLU / ReLU6 clamp may follow.
CLAMPABLE_KINDS = (*GEMM_KINDS, "add", "add2")


class GraphReader:
    """State of one import (values by tensor name, layers so far, the input's
    quantisation), the helpers every op handler uses and the layer lowering."""

    def __init__(self, model) -> None:
        from onnx import numpy_helper

        self.graph = model.graph
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13
        )
        self.values: dict[str, object] = {
            init.name: Const(numpy_helper.to_array(init)) for init in self.graph.initializer
        }
        self.layers: list = []
        self.layer_tensors: dict[str, str] = {}  #: layer name -> ONNX tensor of its output
        self.out_q: dict[str, QuantParams] = {}  #: layer name -> its output quantisation
        self.input_q: QuantParams | None = None
        self.consumers: dict[str, int] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers[name] = self.consumers.get(name, 0) + 1
        for out in self.graph.output:
            self.consumers[out.name] = self.consumers.get(out.name, 0) + 1
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

    def dq_value(self, node, name: str) -> DQ:
        v = self.values.get(name)
        if not isinstance(v, DQ):
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): input {name!r} is not a "
                "dequantised int8 activation (unsupported graph structure)"
            )
        return v

    def dq_input(self, node, name: str) -> QuantParams:
        return self.dq_value(node, name).q

    @staticmethod
    def conv_kind(node, weight_shape) -> str:
        """ "conv" (group 1) or "depthwise" (group = channels, depth multiplier 1), else
        a `ValueError` naming the node."""
        group = GraphReader.attrs(node).get("group", 1)
        if group == 1:
            return "conv"
        o, c_per_group = weight_shape[0], weight_shape[1]
        if c_per_group == 1 and o == group:
            return "depthwise"
        if c_per_group == 1 and o % group == 0:
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): depthwise conv with depth multiplier "
                f"{o // group} is not supported (only 1)"
            )
        raise ValueError(
            f"node {node.name!r} ({node.op_type}): grouped conv (group {group}) is not "
            "supported (only group 1, or depthwise with depth multiplier 1)"
        )

    def _conv_args(self, node) -> dict:
        a = self.attrs(node)
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise ValueError(f"node {node.name!r} ({node.op_type}): only dilation 1")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
            raise ValueError(f"node {node.name!r} ({node.op_type}): auto_pad SAME is not supported")
        pads = a.get("pads", [0, 0, 0, 0])
        if len(pads) != 4:
            raise ValueError(f"node {node.name!r} ({node.op_type}): only 2-D convolutions")
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

    def add_layer(self, layer, srcs, out_q: QuantParams, tensor: str) -> QT:
        """Append ``layer`` reading ``srcs``, its output in ONNX tensor ``tensor``; the QT."""
        layer.inputs = tuple(srcs)
        self.layers.append(layer)
        self.layer_tensors[layer.name] = tensor
        self.out_q[layer.name] = out_q
        return QT(out_q, layer.name, tensor)

    def emit(self, p: Pending, out_q: QuantParams, tensor: str) -> QT:
        """The layer of a pending float op whose output is quantised ``out_q`` into ``tensor``."""
        a = p.args
        if p.kind in ("conv", "depthwise"):
            cls = Conv2D if p.kind == "conv" else DepthwiseConv2D
            layer = cls(
                p.node,
                a["weight"],
                a["bias"],
                a["w_scale"],
                out_q,
                a["stride"],
                a["pads"],
                p.activation,
            )
        elif p.kind == "dense":
            layer = Dense(p.node, a["weight"], a["bias"], a["w_scale"], out_q, p.activation)
        elif p.kind == "add":
            value, cq = a["const"]
            layer = AddConst(p.node, value, cq, out_q, p.activation)
        elif p.kind == "add2":
            layer = Add(p.node, p.srcs, out_q, p.activation)
        elif p.kind == "softmax":
            layer = Softmax(p.node, out_q)
        elif p.kind == "globalavgpool":
            layer = GlobalAvgPool2D(p.node, None if out_q == p.in_q else out_q)
        elif p.kind == "avgpool":
            layer = AvgPool2D(
                p.node, a["kernel"], a["stride"], a["pads"], None if out_q == p.in_q else out_q
            )
        else:
            if out_q != p.in_q:
                raise ValueError(
                    f"node {p.node!r}: {p.kind} must keep its input's "
                    "quantisation (scale and zero point)"
                )
            layer = self._host_layer(p.kind, p.node, a)
        return self.add_layer(layer, p.srcs, out_q, tensor)

    def pending_of_layer(self, node, dq: DQ) -> Pending:
        """Undo the layer that produced ``dq`` (a conv/dense without activation whose
        output nothing else reads) into the pending op it came from, for a fold."""
        layer = next((x for x in self.layers if x.name == dq.src), None)
        if (
            not isinstance(layer, Conv2D | DepthwiseConv2D | Dense)
            or layer.activation != "none"
            or self.consumers.get(dq.tensor, 0) != 1
            or self.consumers.get(node.input[0], 0) != 1
        ):
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): only directly after a Conv/Gemm/MatMul "
                "whose output nothing else reads (it is folded into that layer)"
            )
        self.layers.remove(layer)
        kind = {Conv2D: "conv", DepthwiseConv2D: "depthwise", Dense: "dense"}[type(layer)]
        args = {"weight": layer.weight, "w_scale": layer.w_scale, "bias": layer.bias}
        if kind != "dense":
            args.update(stride=layer.stride, pads=layer.pads)
        (src,) = layer.inputs
        in_q = self.input_q if src == NETWORK_INPUT else self.out_q[src]
        return Pending(kind, layer.name, in_q, args, srcs=(src,))

    def fold_batchnorm(self, node, p: Pending) -> Pending:
        """BatchNormalization folded into the conv/dense ``p`` (per output channel c,
        g = gamma / sqrt(var + eps)): weight scale x |g|, weights negated where g < 0,
        bias (b - mean) g + beta, requantised to the new bias scale."""
        a = self.attrs(node)
        if a.get("training_mode", 0):
            raise ValueError(f"node {node.name!r} (BatchNormalization): training_mode=1")
        vals = []
        for name in node.input[1:5]:
            v = self.values.get(name)
            if not isinstance(v, Const):
                raise ValueError(
                    f"node {node.name!r} (BatchNormalization): input {name!r} must be a constant"
                )
            x = v.value.astype(np.float64)
            if v.scale is not None:  # a quantised gamma (or beta): dequantise it
                zp = 0 if v.zero_point is None else np.asarray(v.zero_point, np.float64)
                x = (x - zp) * np.asarray(v.scale, np.float64)
            vals.append(x.reshape(-1))
        gamma, beta, mean, var = vals
        n = p.args["weight"].shape[0]
        if any(v.shape != (n,) for v in vals):
            raise ValueError(
                f"node {node.name!r} (BatchNormalization): parameters must have {n} channels"
            )
        g = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
        w = p.args["weight"]
        if np.any((g < 0)[:, None] & (w.reshape(n, -1) == -128)):
            raise ValueError(
                f"node {node.name!r} (BatchNormalization): cannot fold a negative scale into "
                "weights holding -128"
            )
        sign = np.where(g < 0, -1, 1).reshape((n,) + (1,) * (w.ndim - 1))
        zero = np.abs(g) < 1e-30
        w_scale = np.asarray(p.args["w_scale"], np.float64)
        new_scale = np.where(zero, w_scale, w_scale * np.abs(g))
        bias_real = p.args["bias"].astype(np.float64) * p.in_q.scale * w_scale
        new_bias = (bias_real - mean) * g + beta
        q = np.round(new_bias / (p.in_q.scale * new_scale))
        weight = np.where(zero.reshape(sign.shape), 0, w.astype(np.int16) * sign).astype(np.int8)
        args = {
            **p.args,
            "weight": weight,
            "w_scale": new_scale,
            "bias": np.clip(q, -(2**31), 2**31 - 1).astype(np.int32),
        }
        return Pending(p.kind, p.node, p.in_q, args, srcs=p.srcs)
