"""`infer-shapes`: static shapes everywhere, batch -> 1, --input-shape, clear errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from normalize_helpers import assert_same_outputs, load, parse, rand, run_pass, torch_export
from transpiler.errors import InputError, UnsupportedError
from transpiler.pass_infra import PassContext

from passes.infer_shapes import InferShapes, missing_shapes
from passes.normalize_util import static_shape

CONV = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 2, H, W] x) => (float[N, 4, H2, W2] y) {
    c = Conv <kernel_shape = [3, 3], pads = [1, 1, 1, 1]> (x, w)
    y = Relu(c)
}
"""


def _conv(batch_only: bool = True) -> onnx.ModelProto:
    text = CONV.replace("float[N, 2, H, W] x", "float[N, 2, 6, 6] x") if batch_only else CONV
    return parse(text, w=rand(4, 2, 3, 3))


def test_dynamic_batch_becomes_one_and_every_tensor_is_static() -> None:
    proto = _conv()
    result = run_pass(InferShapes, load(proto))
    graph = result.model.graph
    assert static_shape(graph.inputs[0]) == (1, 2, 6, 6)
    assert static_shape(graph.outputs[0]) == (1, 4, 6, 6)
    assert not missing_shapes(graph)
    assert result.changed and result.stats["fixed-input-dims"] == 1
    assert_same_outputs(proto, result.model.to_proto(), {"x": rand(1, 2, 6, 6)})


def test_dynamic_spatial_dim_without_input_shape_names_input_dim_and_flag() -> None:
    with pytest.raises(UnsupportedError) as info:
        run_pass(InferShapes, load(_conv(batch_only=False)))
    text = info.value.render()
    assert "'x'" in text and "dimension 2" in text and "'H'" in text
    assert "--input-shape x=1x2x1x1" in text


def test_input_shape_fixes_dynamic_dims() -> None:
    proto = _conv(batch_only=False)
    context = PassContext(input_shapes={"x": (1, 2, 5, 7)})
    result = run_pass(InferShapes, load(proto), context=context)
    assert static_shape(result.model.graph.outputs[0]) == (1, 4, 5, 7)
    assert_same_outputs(proto, result.model.to_proto(), {"x": rand(1, 2, 5, 7)})


@pytest.mark.parametrize("shapes, words", [
    ({"image": (1, 2, 6, 6)}, ["'image'", "x [N,2,H,W]"]),
    ({"x": (1, 2, 6)}, ["rank 3", "rank 4"]),
    ({"x": (1, 3, 6, 6)}, ["dimension 1", "fixes it to 2"]),
    ({"x": (1, 2, 0, 6)}, ["< 1"]),
])
def test_bad_input_shapes_are_input_errors(shapes: dict[str, tuple[int, ...]], words: list[str]) -> None:
    with pytest.raises(InputError) as info:
        run_pass(InferShapes, load(_conv(batch_only=False)), context=PassContext(input_shapes=shapes))
    text = info.value.render()
    for word in words:
        assert word in text, text


def test_shape_that_the_layers_reject_is_an_error() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N, 1, H, W] x) => (float[N, 3] y) {
        f = Flatten(x)
        y = Gemm <transB = 1> (f, w)
    }
    """, w=rand(3, 16))
    run_pass(InferShapes, load(proto), context=PassContext(input_shapes={"x": (1, 1, 4, 4)}))
    with pytest.raises(InputError, match="shape inference failed"):
        run_pass(InferShapes, load(proto), context=PassContext(input_shapes={"x": (1, 1, 5, 5)}))


def test_stale_symbolic_value_info_is_replaced() -> None:
    proto = _conv()
    vi = proto.graph.value_info.add()
    vi.name = "c"
    vi.type.tensor_type.elem_type = 1
    for dim in ("N", "C", "H", "W"):
        vi.type.tensor_type.shape.dim.add().dim_param = dim
    result = run_pass(InferShapes, load(proto))
    assert static_shape(result.model.graph.tensors()["c"]) == (1, 4, 6, 6)


def test_torch_conv1d_with_dynamic_length() -> None:
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3), torch.nn.ReLU())
    proto = torch_export(module, torch.randn(1, 2, 10),
                         dynamic_axes={"input": {0: "batch", 2: "length"}, "output": {0: "batch", 2: "out_len"}})
    with pytest.raises(UnsupportedError, match="dimension 2"):
        run_pass(InferShapes, load(proto))
    result = run_pass(InferShapes, load(proto), context=PassContext(input_shapes={"input": (1, 2, 12)}))
    assert static_shape(result.model.graph.outputs[0]) == (1, 3, 10)
    x = np.random.default_rng(1).standard_normal((1, 2, 12)).astype(np.float32)
    assert_same_outputs(proto, result.model.to_proto(), {"input": x})


def test_require_static_lists_tensors_left_open() -> None:
    # NonZero's output length depends on the data: its shape cannot be static.
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (int64[2, K] y) {
        y = NonZero(x)
    }
    """)
    with pytest.raises(UnsupportedError) as info:
        run_pass(InferShapes, load(proto))
    assert "made by NonZero" in info.value.render()
