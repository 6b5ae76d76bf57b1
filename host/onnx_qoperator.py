"""ONNX QOperator format: QLinearConv, QLinearMatMul, QGemm (com.microsoft) and
QLinearAdd, whose quantisation parameters are inputs of the node itself."""

from __future__ import annotations

from .network import AddConst, Conv2D, Dense, QuantParams
from .onnx_graph import QT, Const, GraphReader

__all__ = ["QOperatorOps"]


class QOperatorOps(GraphReader):
    """Handlers ``op_<OpType>`` of the QOperator ops."""

    def _qt_input(self, node, name) -> QuantParams:
        v = self.values.get(name)
        if not isinstance(v, QT):
            raise ValueError(f"node {node.name!r} ({node.op_type}): input {name!r} is not int8")
        return v.q

    def op_QLinearConv(self, node) -> None:  # noqa: N802
        i = node.input
        in_q = self._qt_input(node, i[0])
        w = Const(self.const(i[3], node), self.const(i[4], node), self.const(i[5], node))
        out_q = self.qparams(node, i[6], i[7])
        n = w.value.shape[0]
        wq, ws = self.weight(node, w, n, 0)
        b = Const(self.const(i[8], node)) if len(i) > 8 and i[8] else None
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
        self.values[node.output[0]] = QT(out_q)

    def op_QLinearMatMul(self, node) -> None:  # noqa: N802
        i = node.input
        in_q = self._qt_input(node, i[0])
        w = Const(self.const(i[3], node), self.const(i[4], node), self.const(i[5], node))
        out_q = self.qparams(node, i[6], i[7])
        p = self._dense(node, in_q, w, False, None)
        self.layers.append(
            Dense(node.name, p.args["weight"], p.args["bias"], p.args["w_scale"], out_q)
        )
        self.values[node.output[0]] = QT(out_q)

    def op_QGemm(self, node) -> None:  # noqa: N802
        a = self.attrs(node)
        if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
            raise ValueError(f"node {node.name!r} (QGemm): only transA=0, alpha=1")
        i = node.input
        in_q = self._qt_input(node, i[0])
        w = Const(self.const(i[3], node), self.const(i[4], node), self.const(i[5], node))
        b = Const(self.const(i[6], node)) if len(i) > 6 and i[6] else None
        if len(i) < 9:
            raise ValueError(f"node {node.name!r} (QGemm): float output is not supported")
        out_q = self.qparams(node, i[7], i[8])
        p = self._dense(node, in_q, w, bool(a.get("transB", 0)), b)
        self.layers.append(
            Dense(node.name, p.args["weight"], p.args["bias"], p.args["w_scale"], out_q)
        )
        self.values[node.output[0]] = QT(out_q)

    def op_QLinearAdd(self, node) -> None:  # noqa: N802
        i = node.input
        a_is_const = isinstance(self.values.get(i[0]), Const)
        act, const = (3, 0) if a_is_const else (0, 3)
        self._qt_input(node, i[act])  # checks the activation operand is int8
        c = Const(
            self.const(i[const], node),
            self.const(i[const + 1], node),
            self.const(i[const + 2], node),
        )
        out_q = self.qparams(node, i[6], i[7])
        value, cq = self._add_const(node, c)
        self.layers.append(AddConst(node.name, value, cq, out_q))
        self.values[node.output[0]] = QT(out_q)
