"""Import int8 ONNX models (onnxruntime ``quantize_static`` output) as a `QNetwork`.

Both formats onnxruntime writes are read:

* **QDQ**: float ops between ``QuantizeLinear`` / ``DequantizeLinear`` pairs,
  weights and biases as ``DequantizeLinear`` of int8 / int32 initializers.
* **QOperator**: ``QLinearConv``, ``QLinearMatMul``, ``QGemm`` (com.microsoft),
  int8 ``MaxPool`` / ``Flatten``.

Supported: a graph (branches may fork and rejoin) from one float input to one
output of Conv (2-D, dilation 1; group 1, or depthwise with depth multiplier 1),
Gemm, MatMul, Add (of two int8 activations, TFLite's int8 Add; of an int8
constant; or a float bias folded into the GEMM), BatchNormalization folded into the
Conv/Gemm/MatMul before it, Relu / Clip(0, 6) after them, MaxPool, AveragePool,
GlobalAveragePool, Flatten, Reshape to (batch, -1), Softmax as the last layer;
QOperator's QLinearConv, QLinearMatMul, QGemm, QLinearAdd, QLinearAveragePool,
QLinearGlobalAveragePool, QLinearSoftmax. Activations must be int8 with per-tensor
parameters; weights int8 with zero point 0 (per-tensor or per-channel). Anything
else is refused with a `ValueError` naming the op and the node, before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .network import QNetwork, Softmax
from .onnx_graph import DQ, QT
from .onnx_qdq import QdqOps
from .onnx_qoperator import QOperatorOps

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
    "BatchNormalization",
    "GlobalAveragePool",
    "Softmax",
    "QLinearAveragePool",
    "QLinearGlobalAveragePool",
    "QLinearSoftmax",
)


@dataclass
class ImportedModel:
    network: QNetwork
    input_name: str
    output_name: str
    output_is_float: bool  #: the graph output is dequantised (float); else int8
    #: layer name (and `network.NETWORK_INPUT`) -> the ONNX tensor holding its int8 output
    layer_tensors: dict[str, str] = field(default_factory=dict)


class _Importer(QdqOps, QOperatorOps):
    """One import: reads the graph node by node through the format handlers."""

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
        if isinstance(out, DQ):
            float_out = True
        elif isinstance(out, QT):
            float_out = False
        else:
            raise ValueError(f"graph output {self.output_name!r} is not a quantised tensor")
        if self.input_q is None:
            raise ValueError("the graph input is never quantised (QuantizeLinear missing)")
        for layer in self.layers[:-1]:
            if isinstance(layer, Softmax):
                raise ValueError(
                    f"node {layer.name!r} (Softmax): only supported as the last layer of the "
                    "model (its output feeds other nodes)"
                )
        if not self.layers or out.src != self.layers[-1].name:
            raise ValueError(f"graph output {self.output_name!r} is not the last layer's output")
        net = QNetwork(input=self.input_q, input_shape=self.input_shape, layers=self.layers)
        net.resolved_inputs()  # checks the graph: every layer used, inputs in order
        return ImportedModel(net, self.input_name, self.output_name, float_out, self.layer_tensors)


def import_onnx(path: str | Path) -> ImportedModel:
    """Read an int8 ONNX model; `ValueError` with the op and node for anything unsupported."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises several types for a bad file
        raise ValueError(f"cannot read ONNX model {str(path)!r}: {exc}") from None
    return _Importer(model).run()
