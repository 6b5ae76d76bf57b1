"""The four MLPerf Tiny reference shapes (host/mlperf_tiny.py): built in code, quantised by
onnxruntime (quant_pre_process + quantize_static, QDQ, per-channel), run through
``macforge run`` on the RTL (bit-exact with sim.golden), and checked against onnxruntime
layer by layer: every layer, fed onnxruntime's own int8 inputs, is within 1 LSB of
onnxruntime's int8 output. The network output end to end (our int8 chain vs
onnxruntime's, where the 1-LSB differences of early layers propagate) is printed.

Measured on 2 shared cores, config ``default`` (8x8), one inference: resnet8 ~11 s,
ds_cnn ~10 s, fc_autoencoder ~12 s, mobilenet_v1_025 ~27 s (model build cached).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from macforge.host.mlperf_tiny import NETWORKS, quantize_model, reference_network  # noqa: E402
from macforge.host.network import NETWORK_INPUT  # noqa: E402
from macforge.host.onnx_import import import_onnx  # noqa: E402
from macforge.sim.reference import golden_forward, golden_layer  # noqa: E402

#: the kinds of layer each network must import to (the ops it exercises)
KINDS = {
    "resnet8": {"conv2d", "add2", "avgpool", "flatten", "dense", "softmax"},
    "ds_cnn": {"conv2d", "depthwise", "globalavgpool", "flatten", "dense", "softmax"},
    "mobilenet_v1_025": {"conv2d", "depthwise", "globalavgpool", "flatten", "dense", "softmax"},
    "fc_autoencoder": {"dense"},
}


def ort_layer_outputs(path, imported, x) -> dict[str, np.ndarray]:
    """onnxruntime's int8 tensor of every layer (and of the quantised input) by layer name."""
    model = onnx.load(str(path))
    names = dict(imported.layer_tensors)
    del model.graph.output[:]
    for tensor in names.values():
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.INT8, None)
        )
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {imported.input_name: x})
    return dict(zip(names, outs, strict=True))


def per_layer_diffs(imported, ort_out) -> dict[str, np.ndarray]:
    """|golden - onnxruntime| per layer, each layer fed onnxruntime's int8 inputs."""
    net = imported.network
    qp = net.quant_params()
    diffs = {}
    for layer, ins in zip(net.layers, net.resolved_inputs(), strict=True):
        got = golden_layer(layer, [ort_out[i] for i in ins], [qp[i] for i in ins])
        want = ort_out[layer.name].reshape(got.shape)
        diffs[layer.name] = np.abs(got.astype(np.int64) - want)
    return diffs


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n == "mobilenet_v1_025" else n for n in NETWORKS],
)
def test_reference_network_on_rtl(tmp_path, name):
    net = reference_network(name, seed=0)
    path = quantize_model(net.model, tmp_path / f"{name}.onnx", net.inputs(32, 1))
    imported = import_onnx(path)
    assert {layer.kind for layer in imported.network.layers} == KINDS[name]
    assert not any(n.op_type == "BatchNormalization" for n in onnx.load(str(path)).graph.node)

    x = net.inputs(1, 2)
    np.save(tmp_path / "x.npy", x)
    started = time.monotonic()
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
            "--config",
            "default",
            "--report",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["golden_match"] is True
    accel = [row for row in report["layers"] if row["where"] == "accelerator"]
    assert accel and all(0 < row["utilization"] <= 1 for row in accel)

    # layer by layer against onnxruntime (on more samples: no RTL involved)
    xs = net.inputs(8, 3)
    ort_out = ort_layer_outputs(path, imported, xs)
    diffs = per_layer_diffs(imported, ort_out)
    worst = {k: int(d.max()) for k, d in diffs.items()}
    assert max(worst.values()) <= 1, worst

    # the network output end to end (printed; differences accumulate through the layers)
    net_q = imported.network
    xq = ort_out[NETWORK_INPUT]
    y = golden_forward(net_q, xq).astype(np.int64)
    y_ort = ort_out[net_q.layers[-1].name].reshape(y.shape)
    end = np.abs(y - y_ort)
    hw_out = np.load(tmp_path / "y.npy")
    want = net_q.output.dequantize(golden_forward(net_q, net_q.input.quantize(x)))
    assert np.array_equal(hw_out, want.astype(np.float32))
    exact = np.mean([(d == 0).mean() for d in diffs.values()])
    print(
        f"{name}: macforge run {seconds:.1f} s, {report['cycles']} cycles, utilization "
        f"{report['utilization']:.3f}; per layer max |diff| vs onnxruntime "
        f"{max(worst.values())} LSB (exact {exact:.4f}); "
        f"network output end to end max {end.max()} LSB, exact {(end == 0).mean():.4f}"
    )


def test_unknown_network_is_refused():
    with pytest.raises(ValueError, match="unknown reference network 'lenet'"):
        reference_network("lenet")


def test_builders_are_deterministic():
    a = reference_network("ds_cnn", seed=4).model.SerializeToString()
    b = reference_network("ds_cnn", seed=4).model.SerializeToString()
    assert a == b != reference_network("ds_cnn", seed=5).model.SerializeToString()
    net = reference_network("resnet8")
    assert net.input_shape == (3, 32, 32) and net.inputs(2, 0).shape == (2, 3, 32, 32)
    assert np.array_equal(net.inputs(2, 0), net.inputs(2, 0))
