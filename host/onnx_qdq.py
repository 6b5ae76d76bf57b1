"""ONNX QDQ format: float ops between QuantizeLinear / DequantizeLinear pairs, lowered to
int8 layers when their output is quantised; plus the int8 pooling and reshaping ops that
both formats share."""

from __future__ import annotations

from .network import AvgPool2D, Flatten, MaxPool2D
from .onnx_graph import DQ, QT, Const, GraphReader, Pending

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
        elif isinstance(src, Pending):
            self.emit(src, q)
        else:
            raise ValueError(
                f"node {node.name!r} (QuantizeLinear): unsupported input {node.input[0]!r}"
            )
        self.values[node.output[0]] = QT(q)

    def op_DequantizeLinear(self, node) -> None:  # noqa: N802
        src = self.values.get(node.input[0])
        if isinstance(src, QT):
            self.values[node.output[0]] = DQ(src.q)
        elif isinstance(src, Const):
            scale = self.const(node.input[1], node)
            zp = self.const(node.input[2], node) if len(node.input) > 2 else None
            self.values[node.output[0]] = Const(src.value, scale, zp)
        else:
            raise ValueError(f"node {node.name!r} (DequantizeLinear): unsupported input")

    def op_Conv(self, node) -> None:  # noqa: N802
        in_q = self.dq_input(node, node.input[0])
        w = self.values.get(node.input[1])
        if not isinstance(w, Const) or w.scale is None:
            raise ValueError(f"node {node.name!r} (Conv): weights must be dequantised int8")
        b = self.values.get(node.input[2]) if len(node.input) > 2 else None
        n = w.value.shape[0]
        wq, ws = self.weight(node, w, n, 0)
        self.values[node.output[0]] = Pending(
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
                "add", node.name, p.q, {"const": self._add_const(node, b)}
            )
        else:
            raise ValueError(
                f"node {node.name!r} (Add): only a constant operand (bias) is "
                "supported, not the sum of two activations"
            )

    def _activation(self, node, kind: str) -> None:
        p = self.values.get(node.input[0])
        if (
            not isinstance(p, Pending)
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
        if isinstance(src, QT):  # QOperator: int8 in, int8 out
            self.layers.append(self._host_layer(kind, node.name, args))
            self.values[node.output[0]] = QT(src.q)
        else:
            in_q = self.dq_input(node, node.input[0])
            self.values[node.output[0]] = Pending(kind, node.name, in_q, args)

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
