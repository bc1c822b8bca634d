"""Helpers for the training-engine tests: small graphs, onnxruntime per sample, finite differences."""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # for `import strategies_onnx` (tests/ has no __init__.py)
    sys.path.insert(0, str(TESTS))

from transpiler import ort  # noqa: E402
from transpiler.data import Dataset, input_specs, load_dataset  # noqa: E402
from transpiler.model import OnnxModel  # noqa: E402

from passes.normalize import Normalize  # noqa: E402
from passes.train import Net  # noqa: E402

SAMPLES = TESTS.parent / "samples"
SAMPLE_NAMES = ("lenet5_mnist", "mlp_mnist_big", "cnn_digits", "mlp_digits_sklearn", "tiny_conv1d", "tiny_residual")


def to_model(proto: onnx.ModelProto, source: str = "test.onnx") -> OnnxModel:
    """An OnnxModel of a copy of ``proto``."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    return OnnxModel.from_proto(copy, source)


def normalized(proto: onnx.ModelProto, source: str = "test.onnx") -> OnnxModel:
    """``proto`` after the `normalize` pass."""
    return Normalize().run(to_model(proto, source)).model


@functools.lru_cache(maxsize=None)
def _sample_proto(name: str) -> bytes:
    model = Normalize().run(OnnxModel.from_proto(onnx.load(str(SAMPLES / f"{name}.onnx")), f"{name}.onnx")).model
    return model.to_proto().SerializeToString()


def sample_model(name: str) -> OnnxModel:
    """A fresh normalized copy of samples/<name>.onnx (normalized once per session)."""
    return OnnxModel.from_proto(onnx.load_from_string(_sample_proto(name)), f"{name}.onnx")


def sample_data(name: str, model: OnnxModel) -> Dataset:
    """The held-out images of samples/<name>.npz (its val/test marks: the images these tests were
    written for; the training images that follow them in the file are left out), checked against
    ``model``."""
    return load_dataset(SAMPLES / f"{name}.npz", input_specs(model.graph)).held_out()


def ort_batch(model: OnnxModel | onnx.ModelProto, feeds: Mapping[str, np.ndarray],
              names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """onnxruntime on a batch-1 model, one sample at a time, stacked along axis 0."""
    proto = model.to_proto() if isinstance(model, OnnxModel) else model
    if names is not None:
        proto = ort.with_outputs(proto, names)
    session = ort.session(proto)
    wanted = list(names) if names is not None else [o.name for o in session.get_outputs()]
    n = next(iter(feeds.values())).shape[0]
    rows = [session.run(wanted, {k: v[i:i + 1] for k, v in feeds.items()}) for i in range(n)]
    return {name: np.concatenate([row[j] for row in rows]) for j, name in enumerate(wanted)}


def make_model(nodes: list[onnx.NodeProto], inputs: dict[str, list[int]], output: str,
               inits: Mapping[str, np.ndarray], opset: int = 13) -> OnnxModel:
    """A batch-1 model from nodes, input shapes and float initializers, shapes inferred (strict)."""
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(k, TensorProto.FLOAT, v)
                                           for k, v in inputs.items()],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = 8
    proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    onnx.checker.check_model(proto)
    return to_model(proto)


def rand(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    """Seeded normal float32 values."""
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def batch_inputs(net: Net, n: int, seed: int) -> dict[str, np.ndarray]:
    """Random float32 inputs ``[n, ...]`` for every input of ``net``."""
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal((n, *shape)).astype(np.float32) for name, shape in net.inputs.items()}


# --------------------------------------------------------------------------- finite differences
def _projected_loss(net: Net, feeds: Mapping[str, np.ndarray], outputs: Sequence[str],
                    weights: Mapping[str, np.ndarray]) -> float:
    values = net.forward(feeds, outputs, keep=False)
    return float(sum((values[name] * weights[name]).sum() for name in outputs))


def check_gradients(net: Net, feeds: Mapping[str, np.ndarray], seed: int = 0, outputs: Sequence[str] | None = None,
                    eps: float = 1e-6, rtol: float = 1e-5) -> list[str]:
    """Compare the engine's gradients with central differences; returns the mismatches (empty: fine).

    The loss is ``sum_o <R_o, output_o>`` with fixed random ``R``. Each parameter and each input is
    checked along its own random direction. A mismatch is retried with a 10x smaller step before it
    is reported (a ReLU/max kink inside the step changes the difference quotient, a bug does not go
    away). ``net`` should compute in float64.
    """
    rng = np.random.default_rng(seed)
    outputs = list(outputs or net.outputs)
    feeds = {k: np.asarray(v, dtype=net.dtype) for k, v in feeds.items()}
    values = net.forward(feeds, outputs, keep=True)
    weights = {name: rng.standard_normal(values[name].shape) for name in outputs}
    grads = net.backward(weights, wrt=list(feeds))
    problems: list[str] = []
    live = net.params()

    def directional(name: str, direction: np.ndarray, step: float) -> float:
        if name in live:
            base = live[name].copy()
            net.set_params({name: base + step * direction})
            up = _projected_loss(net, feeds, outputs, weights)
            net.set_params({name: base - step * direction})
            down = _projected_loss(net, feeds, outputs, weights)
            net.set_params({name: base})
        else:
            up = _projected_loss(net, {**feeds, name: feeds[name] + step * direction}, outputs, weights)
            down = _projected_loss(net, {**feeds, name: feeds[name] - step * direction}, outputs, weights)
        return (up - down) / (2 * step)

    for name, grad in [*grads.params.items(), *grads.tensors.items()]:
        direction = rng.standard_normal(grad.shape)
        analytic = float((grad * direction).sum())
        ok = False
        numeric = 0.0
        for step in (eps, eps / 10):
            numeric = directional(name, direction, step)
            if abs(numeric - analytic) <= rtol * max(1.0, abs(analytic), abs(numeric)):
                ok = True
                break
        if not ok:
            problems.append(f"{name}: analytic {analytic:.9g}, finite differences {numeric:.9g}")
    return problems
