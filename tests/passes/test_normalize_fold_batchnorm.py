"""`fold-batchnorm`: BN folded into Conv/Gemm, stand-alone BN -> Mul + Add, affine folding."""

from __future__ import annotations

import numpy as np
import pytest

from normalize_helpers import check_pass, ops, parse, rand, run_pass, static, torch_export, assert_same_outputs

from passes.fold_batchnorm import FoldBatchNorm
from passes.normalize_util import ORIGIN


def _bn_params(c: int, seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"g": (1 + 0.3 * rng.standard_normal(c)).astype(np.float32),
            "b": rng.standard_normal(c).astype(np.float32),
            "m": rng.standard_normal(c).astype(np.float32),
            "v": rng.uniform(0.5, 2, c).astype(np.float32)}


CONV_BN = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 5, 5] x) => (float[1, 3, 5, 5] y) {
    c = Conv <kernel_shape = [3, 3], pads = [1, 1, 1, 1]> (x, w, bias)
    y = BatchNormalization <epsilon = 0.001> (c, g, b, m, v)
}
"""


def test_conv_then_batchnorm_folds_into_the_conv() -> None:
    proto = parse(CONV_BN, w=rand(3, 2, 3, 3), bias=rand(3, seed=1), **_bn_params(3))
    result = check_pass(FoldBatchNorm, proto, {"x": rand(1, 2, 5, 5, seed=2)})
    assert ops(result.model) == ["Conv"]
    conv = result.model.graph.nodes[0]
    assert conv.outputs[0].name == "y"
    assert result.model.annotations.get(conv.name, ORIGIN) == ["Conv_0", "BatchNormalization_1"]
    assert result.stats["batchnorm-folded"] == 1


def test_conv_without_bias_and_gemm_fold() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 4] x) => (float[1, 3] y) {
        c = Conv <kernel_shape = [3]> (x, w)
        n = BatchNormalization (c, g, b, m, v)
        f = Flatten(n)
        d = Gemm <transB = 1> (f, fw, fb)
        y = BatchNormalization (d, g2, b2, m2, v2)
    }
    """, w=rand(3, 2, 3), fw=rand(3, 6, seed=4), fb=rand(3, seed=5), **_bn_params(3),
        **{k + "2": v for k, v in _bn_params(3, seed=9).items()})
    result = check_pass(FoldBatchNorm, proto, {"x": rand(1, 2, 4, seed=2)})
    assert ops(result.model) == ["Conv", "Flatten", "Gemm"]


def test_batchnorm_after_shared_conv_output_becomes_mul_add() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 5, 5] x) => (float[1, 2, 5, 5] y) {
        c = Conv <kernel_shape = [1, 1]> (x, w)
        n = BatchNormalization (c, g, b, m, v)
        y = Add(n, c)
    }
    """, w=rand(2, 2, 1, 1), **_bn_params(2))
    result = check_pass(FoldBatchNorm, proto, {"x": rand(1, 2, 5, 5, seed=2)})
    assert ops(result.model) == ["Conv", "Mul", "Add", "Add"]
    mul = result.model.graph.nodes[1]
    assert mul.inputs[1].shape == (2, 1, 1)
    assert result.stats["batchnorm-split"] == 1


def test_training_mode_batchnorm_is_left_alone() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 15]>
    g (float[1, 2, 3, 3] x) => (float[1, 2, 3, 3] y) {
        y, rm, rv = BatchNormalization <training_mode = 1> (x, g, b, m, v)
    }
    """, **_bn_params(2))
    result = run_pass(FoldBatchNorm, static(proto))
    assert ops(result.model) == ["BatchNormalization"] and not result.changed


def test_per_channel_mul_add_after_conv_fold_but_spatial_ones_do_not() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 3, 3] x) => (float[1, 2, 3, 3] y) {
        c = Conv <kernel_shape = [1, 1]> (x, w)
        s = Mul(c, k)
        t = Add(s, a)
        y = Add(t, e)
    }
    """, w=rand(2, 2, 1, 1), k=np.array([[[2.0]], [[-0.5]]], np.float32),
        a=np.array([1.0, 2.0], np.float32).reshape(1, 2, 1, 1), e=rand(3, 3, seed=8))
    result = check_pass(FoldBatchNorm, proto, {"x": rand(1, 2, 3, 3, seed=2)})
    assert ops(result.model) == ["Conv", "Add"]
    assert result.stats["folded-mul"] == 1 and result.stats["folded-add"] == 1


@pytest.mark.parametrize("depthwise", [False, True])
def test_torch_conv_batchnorm_kept_by_exporter(depthwise: bool) -> None:
    torch = pytest.importorskip("torch")
    groups = 4 if depthwise else 1
    module = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, padding=1, groups=groups), torch.nn.BatchNorm2d(4),
                                 torch.nn.ReLU())
    with torch.no_grad():
        module[1].running_mean.uniform_(-1, 1)
        module[1].running_var.uniform_(0.5, 2)
        module[1].weight.uniform_(0.5, 1.5)
    proto = torch_export(module, torch.randn(1, 4, 6, 6), do_constant_folding=False)
    assert "BatchNormalization" in ops(proto)
    model = static(proto)
    result = run_pass(FoldBatchNorm, model)
    assert ops(result.model) == ["Conv", "Relu"]
    assert_same_outputs(proto, result.model.to_proto(), {"input": rand(1, 4, 6, 6)})
