"""`attention`: self-attention from exporters rebuilt per head on [1, T, .] tensors (onnxruntime gives
the same outputs), whatever layout ops carry the heads; other arrangements are left with a reason."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from normalize_helpers import assert_same_outputs, ops, rand, run_pass, static
from onnx import TensorProto, helper, numpy_helper
from transformer_models import transformer

from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

from passes.attention import Attention
from passes.fold_constants import FoldConstants
from passes.infer_shapes import InferShapes


def _prepared(proto: onnx.ModelProto) -> OnnxModel:
    """The model as normalize's rewrites see it: static shapes, constants folded."""
    return run_pass(InferShapes, run_pass(FoldConstants, static(proto)).model).model


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy17", "dynamo"])
@pytest.mark.parametrize("config", ["d16h1", "d32h2"])
def test_torch_multihead_attention_is_rebuilt_per_head(config: str, dynamo: bool) -> None:
    proto, shape = transformer(config, dynamo)
    heads = int(config[-1])
    model = _prepared(proto)
    result = run_pass(Attention, model)
    assert result.changed and result.stats["rewritten"] == 1
    after = result.model.to_proto()
    onnx.checker.check_model(after)
    assert_same_outputs(proto, after, {"x": rand(*shape, seed=4)})
    kinds = ops(result.model)
    assert kinds.count("Softmax") == heads and kinds.count("MatMul") >= 6 * heads
    for name in ("Gather", "Squeeze", "Unsqueeze"):
        assert name not in kinds
    again = run_pass(Attention, result.model)                     # the per-head form is left as it is
    assert not again.changed


def _separate(mask: bool) -> onnx.ModelProto:
    """x [1, 5, 6] -> q, k, v = x W + b (separate projections), Softmax(q k^T / 2 [+ mask]) v -> Wo."""
    rng = np.random.default_rng(2)
    inits = {n: rng.standard_normal(s).astype(np.float32) for n, s in
             (("wq", (6, 4)), ("wk", (6, 4)), ("wv", (6, 3)), ("bq", (4,)), ("bk", (4,)), ("bv", (3,)),
              ("wo", (3, 6)), ("bo", (6,)), ("mask", (5, 5)))}
    inits["half"] = np.float32(0.5)
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q0"]), helper.make_node("Add", ["q0", "bq"], ["q"]),
             helper.make_node("MatMul", ["x", "wk"], ["k0"]), helper.make_node("Add", ["k0", "bk"], ["k"]),
             helper.make_node("MatMul", ["x", "wv"], ["v0"]), helper.make_node("Add", ["v0", "bv"], ["v"]),
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["s0"]), helper.make_node("Mul", ["s0", "half"], ["s1"])]
    if mask:
        nodes.append(helper.make_node("Add", ["s1", "mask"], ["s"]))
    else:
        nodes.append(helper.make_node("Identity", ["s1"], ["s"]))
    nodes += [helper.make_node("Softmax", ["s"], ["p"], axis=-1), helper.make_node("MatMul", ["p", "v"], ["o"]),
              helper.make_node("MatMul", ["o", "wo"], ["u"]), helper.make_node("Add", ["u", "bo"], ["z"]),
              helper.make_node("Add", ["z", "x"], ["y"])]
    graph = helper.make_graph(nodes, "sep", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 6])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto


def test_separate_projections_and_a_scale_are_folded() -> None:
    proto = _separate(mask=False)
    result = run_pass(Attention, _prepared(proto))
    assert result.changed
    assert_same_outputs(proto, result.model.to_proto(), {"x": rand(1, 5, 6, seed=5)})
    assert "Mul" not in ops(result.model) and "Identity" not in ops(result.model)
    assert not run_pass(Attention, result.model).changed


def test_a_mask_between_scores_and_softmax_is_left_with_its_reason() -> None:
    result = run_pass(Attention, _prepared(_separate(mask=True)))
    assert not result.changed
    assert any("not between MatMul" in why for why in result.stats["left"])


def _hf_eager(heads: int = 2, t: int = 5, d: int = 8) -> onnx.ModelProto:
    """transformers' eager attention as the legacy exporter writes it (ViT, BERT without a mask): per
    projection Reshape [1, T, H, d/H] + Transpose into heads, ``MatMul(q, k^T) * c``, a Softmax computed
    in float32 and cast back (``softmax(..., dtype=float32).to(q.dtype)``: two float -> float Casts),
    the heads merged by Transpose + Reshape into the output projection."""
    rng = np.random.default_rng(6)
    inits = {n: rng.standard_normal((d, d)).astype(np.float32) for n in ("wq", "wk", "wv", "wo")}
    inits |= {f"b{n}": rng.standard_normal(d).astype(np.float32) for n in "qkvo"}
    inits["heads_shape"] = np.array([1, t, heads, d // heads], dtype=np.int64)
    inits["merged_shape"] = np.array([1, t, d], dtype=np.int64)
    inits["scale"] = np.float32((d // heads) ** -0.5)
    nodes = []
    for n, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
        nodes += [helper.make_node("MatMul", ["x", f"w{n}"], [f"{n}0"]),
                  helper.make_node("Add", [f"b{n}", f"{n}0"], [f"{n}1"]),
                  helper.make_node("Reshape", [f"{n}1", "heads_shape"], [f"{n}2"]),
                  helper.make_node("Transpose", [f"{n}2"], [f"{n}h"], perm=perm)]
    nodes += [helper.make_node("MatMul", ["qh", "kh"], ["s0"]), helper.make_node("Mul", ["s0", "scale"], ["s"]),
              helper.make_node("Softmax", ["s"], ["p0"], axis=-1),
              helper.make_node("Cast", ["p0"], ["p1"], to=TensorProto.FLOAT),
              helper.make_node("Cast", ["p1"], ["p"], to=TensorProto.FLOAT),
              helper.make_node("MatMul", ["p", "vh"], ["o0"]),
              helper.make_node("Transpose", ["o0"], ["o1"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["o1", "merged_shape"], ["o"]),
              helper.make_node("MatMul", ["o", "wo"], ["u"]), helper.make_node("Add", ["bo", "u"], ["y"])]
    graph = helper.make_graph(nodes, "hf", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t, d])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, t, d])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto


def test_transformers_eager_attention_with_float_casts_normalizes_per_head() -> None:
    """The no-op Casts after the Softmax are gone before `attention` looks (remove-noops runs first
    among the rewrites); before, the heads stayed [1, 2, T, T] MatMuls that check-supported refused."""
    proto = _hf_eager()
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    kinds = ops(normalized)
    assert kinds.count("Softmax") == 2 and "Cast" not in kinds
    assert_same_outputs(proto, normalized.to_proto(), {"x": rand(1, 5, 8, seed=7)})


def _timm_packed(heads: int = 2, t: int = 5, d: int = 8) -> onnx.ModelProto:
    """timm's Attention as the legacy exporter writes ``F.scaled_dot_product_attention`` at opset 17: one
    packed qkv projection, Reshape [1, T, 3, H, d/H], Transpose [2, 0, 3, 1, 4], ``unbind(0)`` as a Split
    and Squeezes, the scale's square root on q and on k^T, the heads merged into the output projection."""
    rng = np.random.default_rng(8)
    inits = {"wqkv": rng.standard_normal((d, 3 * d)).astype(np.float32),
             "bqkv": rng.standard_normal(3 * d).astype(np.float32),
             "wo": rng.standard_normal((d, d)).astype(np.float32), "bo": rng.standard_normal(d).astype(np.float32),
             "packed_shape": np.array([1, t, 3, heads, d // heads], dtype=np.int64),
             "merged_shape": np.array([1, t, d], dtype=np.int64), "zero": np.array([0], dtype=np.int64),
             "root": np.float32((d // heads) ** -0.25)}
    nodes = [helper.make_node("MatMul", ["x", "wqkv"], ["p0"]), helper.make_node("Add", ["p0", "bqkv"], ["p1"]),
             helper.make_node("Reshape", ["p1", "packed_shape"], ["p2"]),
             helper.make_node("Transpose", ["p2"], ["p3"], perm=[2, 0, 3, 1, 4]),
             helper.make_node("Split", ["p3"], ["q5", "k5", "v5"], axis=0)]
    nodes += [helper.make_node("Squeeze", [f"{n}5", "zero"], [f"{n}4"]) for n in "qkv"]
    nodes += [helper.make_node("Transpose", ["k4"], ["kt"], perm=[0, 1, 3, 2]),
              helper.make_node("Mul", ["q4", "root"], ["qs"]), helper.make_node("Mul", ["kt", "root"], ["ks"]),
              helper.make_node("MatMul", ["qs", "ks"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=-1),
              helper.make_node("MatMul", ["p", "v4"], ["o0"]),
              helper.make_node("Transpose", ["o0"], ["o1"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["o1", "merged_shape"], ["o"]),
              helper.make_node("MatMul", ["o", "wo"], ["u"]), helper.make_node("Add", ["u", "bo"], ["y"])]
    graph = helper.make_graph(nodes, "timm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, t, d])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, t, d])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto


def test_timm_packed_qkv_split_by_unbind_normalizes_per_head() -> None:
    """The packed q/k/v reach the scores through a Split: split-to-slices runs before `attention`,
    whose index tracing follows constant Slices; before, the heads stayed [1, 2, T, .] MatMuls."""
    proto = _timm_packed()
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    kinds = ops(normalized)
    assert kinds.count("Softmax") == 2 and "Split" not in kinds and "Slice" not in kinds
    assert_same_outputs(proto, normalized.to_proto(), {"x": rand(1, 5, 8, seed=9)})
