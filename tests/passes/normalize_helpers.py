"""Helpers for the normalize tests: run models in onnxruntime, run passes, export torch modules."""

from __future__ import annotations

import io
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # for `import strategies_onnx` (tests/ has no __init__.py)
    sys.path.insert(0, str(TESTS))

from transpiler.model import OnnxModel  # noqa: E402
from transpiler.pass_infra import Pass, PassContext, PassResult  # noqa: E402

from passes.fold_constants import FoldConstants  # noqa: E402
from passes.infer_shapes import InferShapes, InferShapesOptions  # noqa: E402
from passes.name_nodes import NameNodes  # noqa: E402

SAMPLES = TESTS.parent / "samples"


def ort_run(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """All outputs by name; a ZipMap output (list of dicts) becomes a [batch, classes] array."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    values = session.run(None, feeds)
    out: dict[str, Any] = {}
    for meta, value in zip(session.get_outputs(), values):
        if isinstance(value, list) and value and isinstance(value[0], dict):
            value = np.array([[row[k] for k in sorted(row)] for row in value], dtype=np.float32)
        out[meta.name] = value
    return out


def assert_same_outputs(before: onnx.ModelProto, after: onnx.ModelProto, feeds: dict[str, np.ndarray],
                        rtol: float = 1e-4, atol: float = 1e-5, names: list[str] | None = None) -> None:
    """onnxruntime gives allclose outputs for ``before`` and ``after`` (all of ``after``'s outputs)."""
    a = ort_run(before, feeds)
    b = ort_run(after, feeds)
    for name in names or list(b):
        assert name in a, f"output {name} not in the original model ({sorted(a)})"
        np.testing.assert_allclose(np.asarray(b[name], dtype=np.float64), np.asarray(a[name], dtype=np.float64),
                                   rtol=rtol, atol=atol, err_msg=f"output {name}")


def load(proto: onnx.ModelProto, source: str = "test.onnx") -> OnnxModel:
    """An OnnxModel of a copy of ``proto``."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    return OnnxModel.from_proto(copy, source)


def run_pass(cls: type[Pass], model: OnnxModel, options: Any = None,
             context: PassContext | None = None) -> PassResult[OnnxModel]:
    """Run one pass directly (no manager)."""
    return cls(options, context).run(model)


def static(proto: onnx.ModelProto, input_shapes: dict[str, tuple[int, ...]] | None = None) -> OnnxModel:
    """The model named, with static shapes and constants folded: what sub-passes expect to start from."""
    model = run_pass(NameNodes, load(proto)).model
    context = PassContext(input_shapes=dict(input_shapes or {}))
    model = run_pass(InferShapes, model, InferShapesOptions(require_static=False), context=context).model
    model = run_pass(FoldConstants, model).model
    return run_pass(InferShapes, model, context=context).model


def check_pass(cls: type[Pass], proto: onnx.ModelProto, feeds: dict[str, np.ndarray],
               options: Any = None) -> PassResult[OnnxModel]:
    """Run one pass on the static form of ``proto``; assert outputs are unchanged; return the result."""
    model = static(proto)
    result = run_pass(cls, model, options)
    after = result.model.to_proto()
    onnx.checker.check_model(after)
    assert_same_outputs(proto, after, feeds)
    return result


def ops(model: OnnxModel | onnx.ModelProto) -> list[str]:
    """The op types of the nodes, in order."""
    if isinstance(model, OnnxModel):
        return [n.op for n in model.graph.nodes]
    return [n.op_type for n in model.graph.node]


def torch_export(module: Any, example: Any, dynamic_batch: bool = True, dynamo: bool = False,
                 **kwargs: Any) -> onnx.ModelProto:
    """Export a torch module to a ModelProto: with the legacy (TorchScript) exporter (inputs
    'input', outputs 'output'; `kwargs` go to it), or with dynamo (its own names; skipped when
    onnxscript is missing; `dynamic_batch` and `kwargs` do not apply)."""
    import pytest
    import torch

    module.eval()
    buffer = io.BytesIO()
    if dynamic_batch:
        kwargs.setdefault("dynamic_axes", {"input": {0: "batch"}, "output": {0: "batch"}})
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            pytest.importorskip("onnxscript")
            torch.onnx.export(module, (example,), dynamo=True).save(buffer)
        else:
            torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["input"],
                              output_names=["output"], **kwargs)
    return onnx.load_from_string(buffer.getvalue())


def parse(text: str, **initializers: np.ndarray) -> onnx.ModelProto:
    """A model from ONNX text (``onnx.parser``) plus numpy initializers, checked."""
    import onnx.parser

    model = onnx.parser.parse_model(text)
    for name, value in initializers.items():
        model.graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(value), name))
    onnx.checker.check_model(model)
    return model


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    """Seeded standard-normal float32 values."""
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
