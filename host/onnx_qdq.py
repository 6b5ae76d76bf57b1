"""ONNX QDQ format: float ops between QuantizeLinear / DequantizeLinear pairs, lowered to
int8 layers when their output is quantised; plus the int8 pooling and reshaping ops that
both formats share."""

from __future__ import annotations

from .network import NETWORK_INPUT, AvgPool2D, Flatten, MaxPool2D
from .onnx_graph import CLAMPABLE_KINDS, DQ, GEMM_KINDS, QT, Const, GraphReader, Pending

__all__ = ["QdqOps"]


class QdqOps(GraphReader):
    """Handlers ``op_<OpType>`` of the QDQ ops and the shared int8 host ops."""

    def op_QuantizeLinear(self, node) -> None:  # noqa: N802
        src = self.values.get(node.input[0])
        q = self.qparams(node, node.input[1], node.input[2] if len(node.input) > 2 else None)
        if src == "input":
            if self.input_q is not None:
                raise ValueError(f"node {node.name!r}: the input is quantised twice")
            self.input_q = q
            self.layer_tensors[NETWORK_INPUT] = node.output[0]
            self.values[node.output[0]] = QT(q, NETWORK_INPUT, node.output[0])
        elif isinstance(src, Pending):
            self.values[node.output[0]] = self.emit(src, q, node.output[0])
        else:
            raise ValueError(
                f"node {node.name!r} (QuantizeLinear): unsupported input {node.input[0]!r}"
            )

    def op_DequantizeLinear(self, node) -> None:  # noqa: N802
        src = self.values.get(node.input[0])
        if isinstance(src, QT):
            self.values[node.output[0]] = DQ(src.q, src.src, src.tensor)
        elif isinstance(src, Const):
            scale = self.const(node.input[1], node)
            zp = self.const(node.input[2], node) if len(node.input) > 2 else None
            self.values[node.output[0]] = Const(src.value, scale, zp)
        else:
            raise ValueError(f"node {node.name!r} (DequantizeLinear): unsupported input")

    def op_Conv(self, node) -> None:  # noqa: N802
        x = self.dq_value(node, node.input[0])
        w = self.values.get(node.input[1])
        if not isinstance(w, Const) or w.scale is None:
            raise ValueError(f"node {node.name!r} (Conv): weights must be dequantised int8")
        kind = self.conv_kind(node, w.value.shape)
        b = self.values.get(node.input[2]) if len(node.input) > 2 else None
        n = w.value.shape[0]
        wq, ws = self.weight(node, w, n, 0)
        self.values[node.output[0]] = Pending(
            kind,
            node.name,
            x.q,
            {
                "weight": wq,
                "w_scale": ws,
                "bias": self.bias(node, b, n, x.q, ws),
                **self._conv_args(node),
            },
            srcs=(x.src,),
        )

    def op_Gemm(self, node) -> None:  # noqa: N802
        a = self.attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise ValueError(f"node {node.name!r} (Gemm): only transA=0, alpha=beta=1")
        x = self.dq_value(node, node.input[0])
        b = self.values.get(node.input[2]) if len(node.input) > 2 else None
        p = self._dense(node, x.q, self.values.get(node.input[1]), bool(a.get("transB", 0)), b)
        p.srcs = (x.src,)
        self.values[node.output[0]] = p

    def op_MatMul(self, node) -> None:  # noqa: N802
        x = self.dq_value(node, node.input[0])
        p = self._dense(node, x.q, self.values.get(node.input[1]), False, None)
        p.srcs = (x.src,)
        self.values[node.output[0]] = p

    def op_Add(self, node) -> None:  # noqa: N802
        p = self.values.get(node.input[0])
        b = self.values.get(node.input[1])
        if isinstance(b, DQ) and isinstance(p, Const):
            p, b = b, p
        if (
            isinstance(p, Pending)
            and p.kind == "dense"
            and isinstance(b, Const)
            and b.scale is None
            and not p.args["bias"].any()
        ):
            # MatMul followed by a float bias: fold it into the GEMM's int32 bias
            n = p.args["weight"].shape[0]
            p.args["bias"] = self.bias(node, b, n, p.in_q, p.args["w_scale"])
            self.values[node.output[0]] = p
        elif isinstance(p, DQ) and isinstance(b, Const) and b.scale is not None:
            self.values[node.output[0]] = Pending(
                "add", node.name, p.q, {"const": self._add_const(node, b)}, srcs=(p.src,)
            )
        elif isinstance(p, DQ) and isinstance(b, DQ):  # two activations: a residual rejoin
            self.values[node.output[0]] = Pending("add2", node.name, p.q, srcs=(p.src, b.src))
        else:
            raise ValueError(
                f"node {node.name!r} (Add): operands must be int8 activations or an int8 "
                "constant (or a float bias right after MatMul)"
            )

    def op_BatchNormalization(self, node) -> None:  # noqa: N802
        p = self.values.get(node.input[0])
        if isinstance(p, DQ):  # the conv/gemm output was quantised first
            p = self.pending_of_layer(node, p)
        if not isinstance(p, Pending) or p.kind not in GEMM_KINDS or p.activation != "none":
            raise ValueError(
                f"node {node.name!r} (BatchNormalization): only directly after a "
                "Conv/Gemm/MatMul (it is folded into that layer)"
            )
        self.values[node.output[0]] = self.fold_batchnorm(node, p)

    def op_GlobalAveragePool(self, node) -> None:  # noqa: N802
        self._host_op(node, "globalavgpool", {})

    def op_Softmax(self, node) -> None:  # noqa: N802
        axis = self.attrs(node).get("axis", -1 if self.opset >= 13 else 1)
        if axis not in (-1, 1):
            raise ValueError(
                f"node {node.name!r} (Softmax): only over the features of a (batch, features) "
                f"tensor (axis -1 or 1), got axis {axis}"
            )
        self._host_op(node, "softmax", {})

    def _activation(self, node, kind: str) -> None:
        p = self.values.get(node.input[0])
        if not isinstance(p, Pending) or p.kind not in CLAMPABLE_KINDS or p.activation != "none":
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): only directly after Conv/Gemm/MatMul/Add"
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
        if isinstance(src, QT) and kind in ("maxpool", "flatten"):  # QOperator: int8 in and out
            layer = self._host_layer(kind, node.name, args)
            self.values[node.output[0]] = self.add_layer(layer, (src.src,), src.q, node.output[0])
        else:
            x = self.dq_value(node, node.input[0])
            self.values[node.output[0]] = Pending(kind, node.name, x.q, args, srcs=(x.src,))

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
