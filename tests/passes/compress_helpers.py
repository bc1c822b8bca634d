"""Helpers for the separate / sparsify tests: small models, data and onnxruntime checks."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from transpiler import ort
from transpiler.data import Dataset, input_specs, load_dataset
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

from passes.normalize import Normalize
from passes.train import build_net

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@functools.lru_cache(maxsize=None)
def _normalized_sample(name: str) -> bytes:
    model = Normalize().run(OnnxModel.from_proto(onnx.load(str(SAMPLES / f"{name}.onnx")), f"{name}.onnx")).model
    return model.to_proto().SerializeToString()


def sample_model(name: str) -> OnnxModel:
    """A fresh normalized copy of samples/<name>.onnx."""
    return OnnxModel.from_proto(onnx.load_from_string(_normalized_sample(name)), f"{name}.onnx")


def sample_data(name: str, model: OnnxModel) -> Dataset:
    """samples/<name>.npz, all of it (train/val/test marks included)."""
    return load_dataset(SAMPLES / f"{name}.npz", input_specs(model.graph))


def context(data: Dataset | None, lines: list[str] | None = None, **kw: object) -> PassContext:
    """A PassContext with ``data`` whose progress lines go to ``lines``."""
    return PassContext(data=data, log=None if lines is None else lines.append, **kw)  # type: ignore[arg-type]


def make_model(nodes: list[onnx.NodeProto], x_shape: list[int], output: str,
               inits: Mapping[str, np.ndarray], opset: int = 13) -> OnnxModel:
    """A normalized model from nodes over input ``x`` and float initializers."""
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = 8
    proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    onnx.checker.check_model(proto)
    return Normalize().run(OnnxModel.from_proto(proto, "test.onnx")).model


def labelled_by(model: OnnxModel, x: np.ndarray, marks: np.ndarray | None = None) -> Dataset:
    """``x`` with the model's own argmax as labels (the reference then scores 100 %)."""
    net = build_net(model)
    logits = net.forward({"x": x.astype(np.float32)}, [net.logits])[net.logits]
    return Dataset.from_arrays({"x": x}, logits.reshape(len(x), -1).argmax(axis=1), marks=marks)


def ort_outputs(model: OnnxModel, x: np.ndarray) -> np.ndarray:
    """onnxruntime's first output for every sample of ``x`` (batch-1 model), stacked."""
    proto = model.to_proto()
    onnx.checker.check_model(proto)
    session = ort.session(proto)
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


def net_outputs(model: OnnxModel, x: np.ndarray) -> np.ndarray:
    """The training engine's first output for ``x``."""
    net = build_net(model)
    return net.forward({next(iter(net.inputs)): x.astype(np.float32)})[net.outputs[0]]
