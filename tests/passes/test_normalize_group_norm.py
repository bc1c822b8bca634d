"""`group-norm`: InstanceNormalization / GroupNormalization become a LayerNormalization over the
groups' rows and a per-channel affine; the semantics are kept (onnxruntime before and after)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.parser
import pytest
from onnx import numpy_helper
from normalize_helpers import check_pass, ops, parse, rand, run_pass, static

from passes.group_norm import GroupNorm
from passes.normalize_util import ORIGIN, opset_of


def _model(op: str, opset: int, shape: list[int], attrs: str, scale: np.ndarray,
           bias: np.ndarray) -> onnx.ModelProto:
    """x -> op(x, s, b) -> y, not run through onnx's checker (it refuses GroupNormalization-18, which
    opset 21 deprecated, but exporters write it and onnxruntime runs it)."""
    dims = ", ".join(str(d) for d in shape)
    model = onnx.parser.parse_model(f"""
    <ir_version: 10, opset_import: ["" : {opset}]>
    g (float[{dims}] x) => (float[{dims}] y) {{
        y = {op} {f"<{attrs}>" if attrs else ""} (x, s, b)
    }}
    """)
    model.graph.initializer.extend([numpy_helper.from_array(scale.astype(np.float32), "s"),
                                    numpy_helper.from_array(bias.astype(np.float32), "b")])
    return model


@pytest.mark.parametrize(("op", "opset", "shape", "attrs", "size", "want"), [
    ("InstanceNormalization", 13, [1, 4, 3, 5], "epsilon = 0.01", 4,
     ["Reshape", "LayerNormalization", "Reshape", "Mul", "Add"]),
    ("InstanceNormalization", 13, [1, 4, 7], "epsilon = 0.01", 4, ["LayerNormalization", "Mul", "Add"]),
    ("GroupNormalization", 18, [1, 6, 2, 3], "num_groups = 3, epsilon = 0.01", 3,
     ["Reshape", "LayerNormalization", "Reshape", "Mul", "Add"]),
    ("GroupNormalization", 21, [1, 6, 2, 3], "num_groups = 2, epsilon = 0.01", 6,
     ["Reshape", "LayerNormalization", "Reshape", "Mul", "Add"]),
    ("GroupNormalization", 21, [1, 6, 2, 3], "num_groups = 1, epsilon = 0.01", 6,
     ["Reshape", "LayerNormalization", "Reshape"]),
])
def test_normalisations_become_a_layer_normalization_over_the_groups(op: str, opset: int, shape: list[int],
                                                                    attrs: str, size: int, want: list[str]) -> None:
    proto = _model(op, opset, shape, attrs, rand(size, seed=1) + 1.0, rand(size, seed=2))
    result = check_pass(GroupNorm, proto, {"x": rand(*shape, seed=3) * 4.0 + 1.0})
    assert ops(result.model) == want
    (ln,) = [n for n in result.model.graph.nodes if n.op == "LayerNormalization"]
    assert ln.attrs["axis"] == -1 and ln.attrs["epsilon"] == pytest.approx(0.01)
    origins = {tuple(result.model.annotations.get(n.name, ORIGIN) or ()) for n in result.model.graph.nodes}
    assert len(origins) == 1 and len(next(iter(origins))) == 1, origins    # all from the one input node
    assert opset_of(result.model) == max(opset, 17) and result.stats["rewritten"] == 1


def test_an_identity_affine_leaves_only_the_layer_normalization() -> None:
    proto = _model("InstanceNormalization", 13, [1, 3, 8], "", np.ones(3), np.zeros(3))
    result = check_pass(GroupNorm, proto, {"x": rand(1, 3, 8, seed=4)})
    assert ops(result.model) == ["LayerNormalization"]


def test_a_scale_computed_at_run_time_is_left() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 8] x, float[3] s) => (float[1, 3, 8] y) {
        y = InstanceNormalization(x, s, b)
    }
    """, b=rand(3, seed=5))
    result = run_pass(GroupNorm, static(proto))
    assert not result.changed and ops(result.model) == ["InstanceNormalization"]
