"""The ONNX front end: one clear InputError, naming the file, for each way an input can be wrong."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

import transpiler as fx
from transpiler.errors import FreemlError, InputError
from transpiler.loader import describe_inputs, describe_outputs
from transpiler.model import OnnxModel


def load_error(path: Path, **kwargs: Any) -> InputError:
    with pytest.raises(InputError) as info:
        fx.load(path, **kwargs)
    assert str(path) in info.value.render()  # every error names the file
    return info.value


def test_loads_a_valid_model(tiny_model: Any) -> None:
    path = tiny_model("mlp")
    model = fx.load(path)
    assert model.opset == 13 and model.source == str(path)
    assert [n.op for n in model.graph.nodes] == ["MatMul", "Add", "Relu"]
    assert describe_inputs(model) == ["x: float32[N,4]"]
    assert describe_outputs(model) == ["y: float32[N,3]"]


def test_missing_path_and_directory(tmp_path: Path) -> None:
    assert "no such file" in load_error(tmp_path / "nope.onnx").message
    assert "not a file" in load_error(tmp_path).message


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (np.random.default_rng(0).bytes(300), "not an ONNX model"),
    (b"hello, this is a text file\n", "not an ONNX model"),
    (b"PK\x03\x04" + b"\0" * 40, "PyTorch"),
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 40, "HDF5"),
])
def test_not_onnx(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    err = load_error(path)
    assert words in err.message
    assert err.hint


def test_onnx_text_gets_a_parser_hint(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_text('<ir_version: 8, opset_import: ["" : 13]>\nagraph (float[N] x) => (float[N] y) {y = Relu(x)}')
    assert "onnx.parser" in (load_error(path).hint or "")


def test_truncated(tiny_model: Any) -> None:
    path = tiny_model("conv")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    err = load_error(path)
    assert "truncated" in err.message and "'graph'" in err.message


def test_old_opsets_are_read(tiny_model: Any) -> None:
    # normalize converts them (upgrade-opset): the ONNX model zoo's opset-8 MNIST, skl2onnx's opset 9
    for kind in ("conv", "mlp"):
        model = fx.load(tiny_model(kind, opset=8, ir_version=4))
        assert model.opset == 8


def test_checker_message_is_shown(tmp_path: Path) -> None:
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["missing"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    path = tmp_path / "invalid.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)], ir_version=8),
              str(path))
    err = load_error(path)
    assert "not valid ONNX" in err.message and "missing" in err.render()


def save_external(proto: onnx.ModelProto, path: Path, location: str) -> None:
    onnx.save(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location=location, size_threshold=0)


def test_external_data(tiny_model: Any, tmp_path: Path) -> None:
    proto = onnx.load(str(tiny_model("mlp")))
    folder = tmp_path / "ext"
    folder.mkdir()
    save_external(proto, folder / "model.onnx", "weights.bin")
    model = fx.load(folder / "model.onnx")
    assert model.graph.tensors()["W"].values.shape == (4, 3)
    os.unlink(folder / "weights.bin")
    err = load_error(folder / "model.onnx")
    assert "weights.bin" in err.message and "missing" in err.message
    assert any("W" in d for d in err.details)


def test_external_data_outside_the_model_folder(tiny_model: Any, tmp_path: Path) -> None:
    proto = onnx.load(str(tiny_model("mlp")))
    for tensor in proto.graph.initializer:
        onnx.external_data_helper.set_external_data(tensor, "../../secret.bin")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
    path = tmp_path / "escape.onnx"
    path.write_bytes(proto.SerializeToString())
    assert "outside the model's folder" in load_error(path).message


def test_several_inputs_are_fine_and_listed(tiny_model: Any) -> None:
    model = fx.load(tiny_model("two-inputs"))
    assert describe_inputs(model) == ["a: float32[1,4]", "b: float32[1,4]"]


@pytest.mark.parametrize("shapes, words", [
    ({"z": (1, 4)}, ["'z'", "not an input", "x: float32[N,4]"]),
    ({"x": (1, 1, 4)}, ["rank 3", "rank 2"]),
    ({"x": (1, 5)}, ["size 5 on axis 1", "fixes it to 4"]),
])
def test_input_shapes_are_checked(tiny_model: Any, shapes: dict[str, tuple[int, ...]],
                                  words: list[str]) -> None:
    err = load_error(tiny_model("mlp"), input_shapes=shapes)
    for word in words:
        assert word in err.render()


def test_input_shape_for_a_symbolic_dimension_is_accepted(tiny_model: Any) -> None:
    assert fx.load(tiny_model("mlp"), input_shapes={"x": (1, 4)}).graph.nodes


def test_save_round_trip_is_atomic(tiny_model: Any, tmp_path: Path) -> None:
    model = fx.load(tiny_model("conv"))
    out = tmp_path / "out" / "saved.onnx"
    out.parent.mkdir()
    fx.save(model, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["saved.onnx"]
    again = fx.load(out)
    assert np.array_equal(again.graph.tensors()["W"].values, model.graph.tensors()["W"].values)
    with pytest.raises(FreemlError, match="does not exist"):
        fx.save(model, tmp_path / "nowhere" / "m.onnx")


def test_string_initializers_survive_to_proto() -> None:
    # skl2onnx keeps string class labels in initializers; onnx-graphsurgeon cannot write them itself
    labels = onnx.helper.make_tensor("labels", onnx.TensorProto.STRING, [3], [b"ant", b"bee", b"cow"])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"]), onnx.helper.make_node("Identity", ["labels"], ["l"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3]),
         onnx.helper.make_tensor_value_info("l", onnx.TensorProto.STRING, [3])], initializer=[labels])
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)], ir_version=8)
    model = OnnxModel.from_proto(proto, "labels.onnx")
    back = model.to_proto()
    onnx.checker.check_model(back)
    (init,) = back.graph.initializer
    assert list(init.string_data) == [b"ant", b"bee", b"cow"] and list(init.dims) == [3]
    kept = np.asarray(model.graph.tensors()["labels"].values).tolist()  # the graph itself is unchanged
    assert [v.decode() if isinstance(v, bytes) else v for v in kept] == ["ant", "bee", "cow"]
