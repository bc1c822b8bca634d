"""Spatial crops (a constant-bounds Slice of a feature map's spatial axes, e.g. a U-net's centre
crop) as one-hot depthwise convolutions (crop-to-conv): normalize keeps onnxruntime's outputs, the
C equals the interpreter bit for bit and agrees with onnxruntime, with and without steps
(``x[:, :, ::2, 1::2]``: a strided one-hot conv); a flip (negative step) is still rejected by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter
from onnx import TensorProto, helper, numpy_helper
from test_activations_e2e import TOP1, against_onnxruntime, compile_program

from transpiler import ort
from transpiler.data import Dataset
from transpiler.errors import FreemlError
from transpiler.lir.qio import quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext


def cropped_model(spatial: list[int], starts: list[int], ends: list[int], axes: list[int],
                  steps: list[int] | None = None) -> onnx.ModelProto:
    """conv (same padding) -> relu -> Slice(starts, ends, axes[, steps]) -> flatten -> gemm."""
    rng = np.random.default_rng(len(spatial))
    k = [3] * len(spatial)
    x = np.zeros([1, 3, *spatial])
    kept = x
    for a, s, e, st in zip(axes, starts, ends, steps or [1] * len(axes)):
        key = [slice(None)] * x.ndim
        key[a] = slice(s, e, st)
        kept = kept[tuple(key)]
    inits = {"W": rng.normal(0, 0.5, (3, 3, *k)), "B": rng.normal(0, 0.1, 3),
             "starts": np.array(starts, np.int64), "ends": np.array(ends, np.int64), "axes": np.array(axes, np.int64),
             "G": rng.normal(0, 0.3, (4, kept.size)), "C": rng.normal(0, 0.1, 4)}
    slice_inputs = ["r", "starts", "ends", "axes"]
    if steps is not None:
        inits["steps"] = np.array(steps, np.int64)
        slice_inputs.append("steps")
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1] * 2 * len(spatial), kernel_shape=k),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Slice", slice_inputs, ["s"], name="crop"),
             helper.make_node("Flatten", ["s"], ["f"]),
             helper.make_node("Gemm", ["f", "G", "C"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "crop", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *spatial])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(np.asarray(v, np.float32 if v.dtype.kind == "f" else v.dtype), n)
                               for n, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto


@pytest.mark.parametrize(("spatial", "starts", "ends", "axes", "steps"), [
    ([7, 6], [1, 2], [-1, 5], [2, 3], None),            # asymmetric 2-D crop, a negative end
    ([12], [3], [-2], [-1], None),                      # 1-D crop on the last axis
    ([8, 8], [0, 1], [8, 8], [2, 3], [2, 2]),           # x[:, :, ::2, 1::2]
    ([9, 7], [1, 0], [8, 7], [2, 3], [3, 2]),           # x[:, :, 1:8:3, ::2]: an end before the last row
    ([13], [2], [12], [2], [4]),                        # 1-D, a step that does not divide the length
], ids=["2d", "1d", "2d-step2", "2d-step3x2", "1d-step4"])
def test_spatial_crop_compiles_and_agrees(spatial: list[int], starts: list[int], ends: list[int], axes: list[int],
                                          steps: list[int] | None, tmp_path: Path) -> None:
    proto = cropped_model(spatial, starts, ends, axes, steps)
    xs = np.random.default_rng(5).standard_normal((100, 3, *spatial)).astype(np.float32)
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    assert "Slice" not in [n.op for n in normalized.graph.nodes]
    for x in xs[:10]:
        feed = {"x": x[None]}
        np.testing.assert_allclose(ort.session(normalized).run(None, feed)[0], ort.session(proto).run(None, feed)[0],
                                   rtol=1e-5, atol=1e-6)
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    assert sum(s.op.startswith("conv") for s in program.steps) == 2       # the layer and the crop
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, "x")
    assert figures["top1"] >= TOP1, figures
    inputs = [quantize_inputs(program, {"x": x[None]}) for x in xs[:20]]
    label = f"crop_{len(spatial)}d_step{'x'.join(map(str, steps or [1]))}"
    check_c_equals_interpreter(program, tmp_path / "c", inputs, label)


def test_a_flip_is_still_rejected_by_name() -> None:
    proto = cropped_model([8, 8], [-1, 0], [-9, 8], [2, 3], steps=[-1, 1])
    with pytest.raises(FreemlError) as info:
        run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)
    assert "'crop'" in info.value.render() and "Slice" in info.value.render()


def gathered_model(spatial: list[int], axis: int, index: int, scalar: bool) -> onnx.ModelProto:
    """conv (same padding) -> relu -> Gather(index) {axis} (a scalar index drops the axis) -> flatten
    -> gemm: the last step of a TCN, ``y[:, :, -1]``."""
    rng = np.random.default_rng(len(spatial) + axis)
    k = [3] * len(spatial)
    kept = int(np.prod(spatial)) * 3 // spatial[axis - 2]
    inits = {"W": rng.normal(0, 0.5, (3, 3, *k)), "B": rng.normal(0, 0.1, 3),
             "i": np.array(index if scalar else [index], np.int64),
             "G": rng.normal(0, 0.3, (4, kept)), "C": rng.normal(0, 0.1, 4)}
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1] * 2 * len(spatial), kernel_shape=k),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Gather", ["r", "i"], ["s"], name="last", axis=axis),
             helper.make_node("Flatten", ["s"], ["f"]),
             helper.make_node("Gemm", ["f", "G", "C"], ["y"], transB=1)]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *spatial])]
    graph = helper.make_graph(nodes, "gather", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(np.asarray(v, np.float32 if v.dtype.kind == "f" else v.dtype), n)
                               for n, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto


@pytest.mark.parametrize(("spatial", "axis", "index", "scalar"), [
    ([16], 2, -1, True),            # y[:, :, -1] of a [1, C, L] map: [1, C]
    ([6, 5], 3, 2, True),           # y[:, :, :, 2]: [1, C, H]
    ([6, 5], 2, 4, False),          # y[:, :, [4]]: the axis kept
], ids=["1d-last", "2d-column", "2d-row-kept"])
def test_a_gather_on_a_spatial_axis_is_a_crop(spatial: list[int], axis: int, index: int, scalar: bool,
                                              tmp_path: Path) -> None:
    proto = gathered_model(spatial, axis, index, scalar)
    xs = np.random.default_rng(6).standard_normal((100, 3, *spatial)).astype(np.float32)
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    assert not {"Gather", "Slice"} & {n.op for n in normalized.graph.nodes}
    for x in xs[:10]:
        feed = {"x": x[None]}
        np.testing.assert_allclose(ort.session(normalized).run(None, feed)[0], ort.session(proto).run(None, feed)[0],
                                   rtol=1e-5, atol=1e-6)
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, "x")
    assert figures["top1"] >= TOP1, figures
    inputs = [quantize_inputs(program, {"x": x[None]}) for x in xs[:20]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"gather_{len(spatial)}d_axis{axis}")
