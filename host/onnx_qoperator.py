"""ONNX QOperator format: QLinearConv, QLinearMatMul, QGemm (com.microsoft), QLinearAdd,
QLinearAveragePool, QLinearGlobalAveragePool and QLinearSoftmax, whose quantisation
parameters are inputs of the node itself."""

from __future__ import annotations

from .network import AddConst, Conv2D, Dense, DepthwiseConv2D, QuantParams
from .onnx_graph import QT, Const, GraphReader, Pending

__all__ = ["QOperatorOps"]


class QOperatorOps(GraphReader):
    """Handlers ``op_<OpType>`` of the QOperator ops."""

    def _qt(self, node, name) -> QT:
        v = self.values.get(name)
        if not isinstance(v, QT):
            raise ValueError(f"node {node.name!r} ({node.op_type}): input {name!r} is not int8")
        return v

    def _qt_input(self, node, name) -> QuantParams:
        return self._qt(node, name).q

    def op_QLinearConv(self, node) -> None:  # noqa: N802
        i = node.input
        x = self._qt(node, i[0])
        w = Const(self.const(i[3], node), self.const(i[4], node), self.const(i[5], node))
        out_q = self.qparams(node, i[6], i[7])
        kind = self.conv_kind(node, w.value.shape)
        n = w.value.shape[0]
        wq, ws = self.weight(node, w, n, 0)
        b = Const(self.const(i[8], node)) if len(i) > 8 and i[8] else None
        args = self._conv_args(node)
        cls = Conv2D if kind == "conv" else DepthwiseConv2D
        layer = cls(
            node.name,
            wq,
            self.bias(node, b, n, x.q, ws),
            ws,
            out_q,
            args["stride"],
            args["pads"],
        )
        self.values[node.output[0]] = self.add_layer(layer, (x.src,), out_q, node.output[0])

    def op_QLinearMatMul(self, node) -> None:  # noqa: N802
        i = node.input
        x = self._qt(node, i[0])
        w = Const(self.const(i[3], node), self.const(i[4], node), self.const(i[5], node))
        out_q = self.qparams(node, i[6], i[7])
        p = self._dense(node, x.q, w, False, None)
        layer = Dense(node.name, p.args["weight"], p.args["bias"], p.args["w_scale"], out_q)
        self.values[node.output[0]] = self.add_layer(layer, (x.src,), out_q, node.output[0])

    def op_QGemm(self, node) -> None:  # noqa: N802
        a = self.attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
            raise ValueError(f"node {node.name!r} (QGemm): only transA=0, alpha=1")
        i = node.input
        x = self._qt(node, i[0])
        w = Const(self.const(i[3], node), self.const(i[4], node), self.const(i[5], node))
        b = Const(self.const(i[6], node)) if len(i) > 6 and i[6] else None
        if len(i) < 9:
            raise ValueError(f"node {node.name!r} (QGemm): float output is not supported")
        out_q = self.qparams(node, i[7], i[8])
        p = self._dense(node, x.q, w, bool(a.get("transB", 0)), b)
        layer = Dense(node.name, p.args["weight"], p.args["bias"], p.args["w_scale"], out_q)
        self.values[node.output[0]] = self.add_layer(layer, (x.src,), out_q, node.output[0])

    def op_QLinearAdd(self, node) -> None:  # noqa: N802
        i = node.input
        out_q = self.qparams(node, i[6], i[7])
        consts = [isinstance(self.values.get(i[k]), Const) for k in (0, 3)]
        if not any(consts):  # two activations: a residual rejoin
            a, b = self._qt(node, i[0]), self._qt(node, i[3])
            for k, v in ((1, a), (4, b)):
                if self.qparams(node, i[k], i[k + 1]) != v.q:
                    raise ValueError(
                        f"node {node.name!r} (QLinearAdd): operand quantisation differs "
                        "from its producer's"
                    )
            p = Pending("add2", node.name, a.q, srcs=(a.src, b.src))
            self.values[node.output[0]] = self.emit(p, out_q, node.output[0])
            return
        act, const = (3, 0) if consts[0] else (0, 3)
        x = self._qt(node, i[act])
        c = Const(
            self.const(i[const], node),
            self.const(i[const + 1], node),
            self.const(i[const + 2], node),
        )
        value, cq = self._add_const(node, c)
        layer = AddConst(node.name, value, cq, out_q)
        self.values[node.output[0]] = self.add_layer(layer, (x.src,), out_q, node.output[0])

    def _qlinear_host(self, node, kind: str, args: dict) -> None:
        """QLinear{Global}AveragePool / QLinearSoftmax: x, x_scale, x_zp, y_scale, y_zp."""
        if self.attrs(node).get("channels_last", 0):
            raise ValueError(f"node {node.name!r} ({node.op_type}): channels_last=1")
        i = node.input
        x = self._qt(node, i[0])
        if self.qparams(node, i[1], i[2]) != x.q:
            raise ValueError(
                f"node {node.name!r} ({node.op_type}): input quantisation differs from its "
                "producer's"
            )
        out_q = self.qparams(node, i[3], i[4])
        p = Pending(kind, node.name, x.q, args, srcs=(x.src,))
        self.values[node.output[0]] = self.emit(p, out_q, node.output[0])

    def op_QLinearGlobalAveragePool(self, node) -> None:  # noqa: N802
        self._qlinear_host(node, "globalavgpool", {})

    def op_QLinearAveragePool(self, node) -> None:  # noqa: N802
        self._qlinear_host(node, "avgpool", self._pool_args(node))

    def op_QLinearSoftmax(self, node) -> None:  # noqa: N802
        axis = self.attrs(node).get("axis", -1)
        if axis not in (-1, 1):
            raise ValueError(
                f"node {node.name!r} (QLinearSoftmax): only over the features of a (batch, "
                f"features) tensor (axis -1 or 1), got axis {axis}"
            )
        self._qlinear_host(node, "softmax", {})
