"""transpiler.data: npz loading, shape checks against the model inputs, the seeded split."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from onnx import TensorProto, helper

from transpiler.data import DEFAULT_SPLIT, Dataset, input_specs, load_dataset
from transpiler.errors import DataError


def _save(tmp_path: Path, name: str = "d.npz", **arrays: np.ndarray) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_loads_x_and_y_as_float32_and_int64(tmp_path: Path) -> None:
    x = np.arange(5 * 4, dtype=np.float64).reshape(5, 1, 2, 2)
    y = np.array([0, 1, 2, 1, 0], dtype=np.int32)
    ds = load_dataset(_save(tmp_path, x=x, y=y), {"input": (1, 2, 2)})
    assert len(ds) == 5
    assert ds.names == ["input"]
    assert ds.x.dtype == np.float32 and ds.x.shape == (5, 1, 2, 2)
    assert ds.labels is not None and ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.labels, y)
    np.testing.assert_array_equal(ds.x, x.astype(np.float32))
    assert ds.source == str(tmp_path / "d.npz")


def test_size_one_axes_may_differ(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(3, 28, 28))
    ds = load_dataset(_save(tmp_path, x=x), {"input": (1, 28, 28)})
    assert ds.x.shape == (3, 1, 28, 28)
    np.testing.assert_array_equal(ds.x[:, 0], x.astype(np.float32))
    # the batch-1 axis kept in the data: [n, 1, 1, 28, 28]
    ds2 = load_dataset(_save(tmp_path, "e.npz", x=x[:, None, None]), {"input": (1, 28, 28)})
    assert ds2.x.shape == (3, 1, 28, 28)


def test_ambiguous_reshape_is_rejected_with_file_key_and_shapes(tmp_path: Path) -> None:
    path = _save(tmp_path, x=np.zeros((4, 784)))
    with pytest.raises(DataError) as info:
        load_dataset(path, {"input": (1, 28, 28)})
    text = info.value.render()
    assert "d.npz" in text and "'x'" in text and "[784]" in text and "[1, 28, 28]" in text
    assert info.value.hint and "[n, 1, 28, 28]" in info.value.hint


@pytest.mark.parametrize(("stored", "expected", "call"), [
    ((32, 32, 3), (3, 32, 32), "np.moveaxis(x, -1, 1)"),        # NHWC data, NCHW model
    ((3, 32, 32), (32, 32, 3), "np.moveaxis(x, 1, -1)"),        # NCHW data, NHWC model (tf2onnx)
    ((128, 3), (3, 128), "np.swapaxes(x, 1, 2)"),               # 1-D sensor windows, time first
])
def test_channel_last_data_for_channel_first_input_says_so_and_how_to_fix(
        tmp_path: Path, stored: tuple[int, ...], expected: tuple[int, ...], call: str) -> None:
    x = np.random.default_rng(0).normal(size=(4, *stored))
    with pytest.raises(DataError) as info:
        load_dataset(_save(tmp_path, x=x), {"input": expected})
    text = info.value.render()
    assert ("channel-last" in text and "channel-first" in text) or "the other way round" in text
    assert info.value.hint and call in info.value.hint
    # the fix the hint gives loads
    fixed = eval(call, {"np": np, "x": x})  # noqa: S307 - the hint's own expression
    assert load_dataset(_save(tmp_path, "f.npz", x=fixed), {"input": expected}).x.shape == (4, *expected)


def test_cube_shaped_sample_gets_no_layout_guess(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_dataset(_save(tmp_path, x=np.zeros((2, 4, 3, 3))), {"input": (3, 3, 4, 1)})
    assert "channel-last" not in info.value.render()


def test_multi_input_uses_input_names(tmp_path: Path) -> None:
    path = _save(tmp_path, a=np.ones((2, 3)), b=np.zeros((2, 4, 1)), y=np.array([1, 0]))
    ds = load_dataset(path, {"a": (3,), "b": (4,)})
    assert ds.names == ["a", "b"]
    assert ds.inputs["b"].shape == (2, 4)
    feed = ds.inputs_for(1)
    assert feed["a"].shape == (1, 3) and feed["b"].shape == (1, 4)
    with pytest.raises(DataError, match="no array for model input 'c'") as info:
        load_dataset(path, {"a": (3,), "c": (4,)})
    assert "a, c" in (info.value.hint or "")


def test_single_input_may_use_its_name(tmp_path: Path) -> None:
    ds = load_dataset(_save(tmp_path, **{"input.1": np.ones((2, 5))}), {"input.1": (5,)})
    assert ds.x.shape == (2, 5)


@pytest.mark.parametrize("arrays", [
    {"X": np.ones((3, 5)), "Y": np.array([0, 1, 2])},                      # scikit-learn's names
    {"images": np.ones((3, 5)), "labels": np.array([0, 1, 2])},            # the only other array
    {"features": np.ones((3, 5)), "y": np.array([0, 1, 2]), "split": np.array([0, 1, 2])},
])
def test_single_input_keys_and_label_keys(tmp_path: Path, arrays: dict[str, np.ndarray]) -> None:
    ds = load_dataset(_save(tmp_path, **arrays), {"input": (5,)})
    assert ds.x.shape == (3, 5) and ds.labels is not None and ds.labels.tolist() == [0, 1, 2]


def test_two_candidate_arrays_are_not_guessed(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no array for model input 'input'") as info:
        load_dataset(_save(tmp_path, a=np.ones((3, 5)), b=np.ones((3, 5))), {"input": (5,)})
    assert "'input' or 'x'" in (info.value.hint or "")


def test_npy_file_holds_a_single_input_models_inputs(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.ones((4, 2, 3)))
    ds = load_dataset(path, {"input": (2, 3)})
    assert ds.x.shape == (4, 2, 3) and ds.labels is None
    with pytest.raises(DataError, match="a .npy file holds one array; the model has 2 inputs"):
        load_dataset(path, {"a": (2, 3), "b": (2, 3)})


def test_a_csv_or_pickle_given_as_data_is_named_with_how_to_convert_it(tmp_path: Path) -> None:
    """np.load's own error for a CSV speaks of pickled object data; the user gets what the file looks
    like, what --data reads and the lines that convert it."""
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n0.5,1.0,1\n0.1,0.2,0\n")
    with pytest.raises(DataError, match=r"not a readable .npz or .npy file \(a text file: CSV\?\)") as info:
        load_dataset(csv, {"input": (2,)})
    assert "numpy.loadtxt" in (info.value.hint or "") and "numpy.savez" in (info.value.hint or "")
    pickled = tmp_path / "d.pkl"
    pickled.write_bytes(pickle.dumps({"x": [1.0, 2.0]}))
    with pytest.raises(DataError, match="a Python pickle"):
        load_dataset(pickled, {"input": (2,)})


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.ones((3, 2)), "y": np.ones(4)}, "labels 'y' have 4 rows"),
    ({"x": np.array([[np.nan, 1.0]])}, "non-finite"),
    ({"z": np.ones((3, 2)), "w": np.ones((3, 2))}, "no array for model input"),
    ({"x": np.array(["a", "b"])}, "expected numbers"),
])
def test_bad_files(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset(_save(tmp_path, **arrays), {"input": (2,)})


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "nope.npz", {"input": (2,)})
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(DataError, match="readable"):
        load_dataset(bad, {"input": (2,)})


def test_one_hot_labels_become_indices() -> None:
    y = np.eye(4)[[3, 0, 2]]
    ds = Dataset.from_arrays({"x": np.zeros((3, 2))}, y)
    np.testing.assert_array_equal(ds.labels, [3, 0, 2])


def _dataset(n: int) -> Dataset:
    return Dataset.from_arrays({"x": np.arange(n, dtype=np.float32).reshape(n, 1)}, np.arange(n) % 3)


def test_split_is_reproducible_disjoint_and_complete() -> None:
    ds = _dataset(101)
    a, b = ds.split(seed=7), ds.split(seed=7)
    assert list(a) == [name for name, _ in DEFAULT_SPLIT]
    for name in a:
        np.testing.assert_array_equal(a[name].x, b[name].x)
    sizes = {k: len(v) for k, v in a.items()}
    assert sizes == {"train": 61, "val": 20, "test": 20}  # round(cumsum * n) cuts: 61, 81, 101
    ids = np.concatenate([v.indices for v in a.values()])
    assert sorted(ids.tolist()) == list(range(101))
    # the values follow the indices, labels follow the samples, order inside a part is file order
    for part in a.values():
        np.testing.assert_array_equal(part.x[:, 0], part.indices)
        np.testing.assert_array_equal(part.labels, part.indices % 3)
        assert np.all(np.diff(part.indices) > 0)
    c = ds.split(seed=8)
    assert not np.array_equal(a["train"].indices, c["train"].indices)
    # the documented permutation
    perm = np.random.default_rng(7).permutation(101)
    np.testing.assert_array_equal(a["val"].indices, np.sort(perm[61:81]))


def test_split_custom_fractions_and_errors() -> None:
    parts = _dataset(10).split(seed=0, fractions=(("a", 0.5), ("b", 0.5)))
    assert [len(p) for p in parts.values()] == [5, 5]
    tiny = _dataset(2).split()
    assert sum(len(p) for p in tiny.values()) == 2
    with pytest.raises(DataError, match="sum to 1"):
        _dataset(10).split(fractions=(("a", 0.5), ("b", 0.6)))
    with pytest.raises(DataError, match="unique"):
        _dataset(10).split(fractions=(("a", 0.5), ("a", 0.5)))


def test_batches_subset_take_and_calibration_part() -> None:
    ds = _dataset(10)
    sizes = [len(b) for b in ds.batches(4)]
    assert sizes == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b.x for b in ds.batches(4)]), ds.x)
    assert len(ds.take(3)) == 3 and len(ds.take(30)) == 10
    assert ds.inputs_for(2)["x"].shape == (1, 1)
    with pytest.raises(IndexError):
        ds.inputs_for(10)
    assert len(ds.calibration_part()) == 10          # train part would be 6 < 20 samples
    assert len(_dataset(100).calibration_part()) == 60
    with pytest.raises(ValueError):
        list(ds.batches(0))


def test_inconsistent_arrays_rejected() -> None:
    with pytest.raises(DataError, match="different sample counts"):
        Dataset.from_arrays({"a": np.zeros((2, 1)), "b": np.zeros((3, 1))})


def test_input_specs_from_graph() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, 8])])
    g = gs.import_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert input_specs(g) == {"x": (3, 8)}
    g.inputs[0].shape = [1, "n", 8]
    with pytest.raises(DataError, match="dynamic"):
        input_specs(g)


def _marked(n_train: int, n_val: int, n_test: int, as_ints: bool = False) -> Dataset:
    marks = ["test"] * n_test + ["val"] * n_val + ["train"] * n_train
    arr = np.array([("train", "val", "test").index(m) for m in marks]) if as_ints else np.array(marks)
    n = len(marks)
    return Dataset.from_arrays({"x": np.arange(n, dtype=np.float32).reshape(n, 1)}, np.arange(n) % 3, marks=arr)


@pytest.mark.parametrize("as_ints", [False, True])
def test_split_honours_the_files_test_and_val_marks(as_ints: bool) -> None:
    parts = _marked(40, 6, 4, as_ints).split(seed=3)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [40, 6, 4]
    assert parts["test"].indices.tolist() == [0, 1, 2, 3]
    assert parts["val"].indices.tolist() == [4, 5, 6, 7, 8, 9]
    assert set(parts["train"].marks.tolist()) == {"train"}
    # the marks follow subsets, and the same seed gives the same parts
    assert parts["val"].subset([1]).marks.tolist() == ["val"]
    again = _marked(40, 6, 4, as_ints).split(seed=3)
    assert all(np.array_equal(parts[k].indices, again[k].indices) for k in parts)


def test_split_carves_val_from_the_pool_when_only_test_is_marked() -> None:
    ds = _marked(80, 0, 20)
    parts = ds.split(seed=1)
    assert parts["test"].indices.tolist() == list(range(20))
    assert len(parts["train"]) == 60 and len(parts["val"]) == 20     # 0.6 / 0.2 renormalised to 0.75 / 0.25
    assert not set(parts["train"].indices) & set(parts["val"].indices)
    assert min(parts["val"].indices) >= 20
    perm = 20 + np.random.default_rng(1).permutation(80)
    np.testing.assert_array_equal(parts["train"].indices, np.sort(perm[:60]))
    # without a "test" part the test samples are left out, never used for anything else
    two = ds.split(seed=1, fractions=(("fit", 0.5), ("check", 0.5)))
    assert sorted(np.concatenate([p.indices for p in two.values()]).tolist()) == list(range(20, 100))
    # the calibration part is the train part: no test sample in it
    assert min(ds.calibration_part(seed=1).indices) >= 20


def test_split_marks_are_checked(tmp_path: Path) -> None:
    x = np.zeros((3, 2))
    with pytest.raises(DataError, match="'split' has shape"):
        load_dataset(_save(tmp_path, x=x, split=np.array(["test", "train"])), {"input": (2,)})
    with pytest.raises(DataError, match="'holdout', not one of train, val, test"):
        load_dataset(_save(tmp_path, x=x, split=np.array(["test", "train", "holdout"])), {"input": (2,)})
    with pytest.raises(DataError, match="holds 7"):
        load_dataset(_save(tmp_path, x=x, split=np.array([0, 2, 7])), {"input": (2,)})
    ds = load_dataset(_save(tmp_path, x=x, split=np.array([2, 0, 0])), {"input": (2,)})
    assert ds.marks.tolist() == ["test", "train", "train"] and ds.split()["test"].indices.tolist() == [0]
    # a model input named 'split' is an input, not marks
    ds = load_dataset(_save(tmp_path, x=x, split=np.ones((3, 1))), {"x": (2,), "split": (1,)})
    assert ds.marks is None and ds.names == ["x", "split"]


def test_parts_stored_as_separate_arrays_are_joined_and_marked(tmp_path: Path) -> None:
    """keras.datasets' layout: x_train / y_train / x_test / y_test (no 'x', no 'split')."""
    rng = np.random.default_rng(0)
    x_train, x_test = rng.normal(size=(6, 4)), rng.normal(size=(3, 4))
    y_train, y_test = np.arange(6) % 2, np.arange(3) % 2
    path = _save(tmp_path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    ds = load_dataset(path, {"input": (4,)})
    np.testing.assert_array_equal(ds.x, np.concatenate([x_train, x_test]).astype(np.float32))
    assert ds.labels is not None
    np.testing.assert_array_equal(ds.labels, np.concatenate([y_train, y_test]))
    parts = ds.split()
    np.testing.assert_array_equal(parts["test"].x, x_test.astype(np.float32))
    assert len(parts["train"]) + len(parts["val"]) == 6
    np.testing.assert_array_equal(ds.held_out().x, x_test.astype(np.float32))


def test_parts_with_a_validation_part_and_an_input_name(tmp_path: Path) -> None:
    a = {p: np.full((n, 2), i, dtype=np.float32) for i, (p, n) in enumerate((("train", 4), ("valid", 2), ("test", 1)))}
    path = _save(tmp_path, **{f"audio_{p}": v for p, v in a.items()})
    ds = load_dataset(path, {"audio": (2,)})
    assert ds.marks is not None and ds.marks.tolist() == ["train"] * 4 + ["val"] * 2 + ["test"]
    np.testing.assert_array_equal(ds.split()["val"].x, a["valid"])


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": np.zeros((4, 2)), "y_train": np.zeros(3)}, "'y_train' has 3 samples"),
    ({"x_train": np.zeros((4, 2)), "x_test": np.zeros((1, 2)), "y_train": np.zeros(4)}, "'y' has the parts"),
    ({"x_train": np.zeros((4, 2)), "split": np.array(["train"] * 4)}, "both a 'split' array"),
    ({"x_train": np.zeros((4, 2)), "x": np.zeros((4, 2))}, "'x' and also 'x' per part"),
])
def test_inconsistent_parts_are_rejected(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_dataset(_save(tmp_path, **arrays), {"input": (2,)})


def test_class_values_become_indices_of_the_models_classes() -> None:
    from transpiler.data import class_indices

    np.testing.assert_array_equal(class_indices(np.array(["dog", "cat", "dog"]), ["cat", "dog"]), [1, 0, 1])
    np.testing.assert_array_equal(class_indices(np.array([-1, 1, 1]), [-1, 1]), [0, 1, 1])
    np.testing.assert_array_equal(class_indices(np.array([3.0, 7.0]), [3, 5, 7]), [0, 2])
    np.testing.assert_array_equal(class_indices(np.array([b"b", b"a"]), ["a", "b"]), [1, 0])
    # indices already (not every one is a class value): kept
    np.testing.assert_array_equal(class_indices(np.array([0, 2, 1]), ["x", "y", "z"]), [0, 2, 1])
    with pytest.raises(DataError, match=r"label 'yak' in 'y' is not one of the model's 2 classes \(cat, dog\)"):
        class_indices(np.array(["cat", "yak"]), ["cat", "dog"])
    with pytest.raises(DataError, match="label 4 in 'y'"):
        class_indices(np.array([1, 4]), [1, 2])
    ds = Dataset.from_arrays({"x": np.zeros((2, 1))}, labels=np.array(["b", "a"]))
    assert ds.with_classes(None) is ds
    np.testing.assert_array_equal(ds.with_classes(["a", "b"]).labels, [1, 0])
