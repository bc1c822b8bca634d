"""The compile, build-lir, run and verify commands, end to end on the sample models."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from emit_c_helpers import import_all_passes

from transpiler import hostrun
from transpiler.cli import main
from transpiler.cli.compile_cmd import default_pipeline, parse_size

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
ALL = ("lenet5_mnist", "mlp_mnist_big", "cnn_digits", "mlp_digits_sklearn", "tiny_conv1d", "tiny_residual")

import_all_passes()


def sample(name: str) -> tuple[str, str]:
    model, data = SAMPLES / f"{name}.onnx", SAMPLES / f"{name}.npz"
    if not model.is_file() or not data.is_file():
        pytest.skip(f"samples/{name} is absent (python samples/make_all.py makes it)")
    return str(model), str(data)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def digests(root: Path) -> dict[str, str]:
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file()}


def test_compile_prints_the_summary_and_writes_the_package(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = sample("tiny_residual")
    out = tmp_path / "build"
    code, text, err = cli(capsys, model, "-o", str(out), "--data", data, "--print-pipeline")
    assert code == 0, err
    assert "pipeline: normalize,quantize,lower,plan-memory,emit-c" in text
    for word in ("ops ", "parameters", "FRAM", "weights", "descriptors", "SRAM", "peak activations",
                 "Q formats", "input 'input' q=", str(out / "report.txt")):
        assert word in text, word
    assert "warning" not in err
    for f in ("tiny_residual.c", "tiny_residual.h", "tiny_residual_weights.c", "Makefile", "main_host.c",
              "manifest.json", "final.lir", "report.txt", "normalized.onnx", "runtime/fx_kernels.h", "msp430.mk"):
        assert (out / f).is_file(), f
    man = hostrun.load_manifest(out)
    assert man["generator"]["pipeline"] == "normalize,quantize,lower,plan-memory,emit-c"
    assert man["generator"]["source_sha256"] == hashlib.sha256(Path(model).read_bytes()).hexdigest()
    assert man["generator"]["command"].startswith("freeml-tx ")
    r = subprocess.run(["make", "-C", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "tiny_residual_host").is_file()


def test_compile_json_and_warning_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, _ = sample("tiny_conv1d")
    code, text, err = cli(capsys, model, "-o", str(tmp_path / "b"), "--json", "--sram", "4KiB", "--stack", "512")
    assert code == 0, err
    doc = json.loads(text)
    assert doc["c_name"] == "tiny_conv1d" and doc["steps"] >= 3
    assert doc["sram"]["budget"] == 4096 and doc["sram"]["stack_reserve"] == 512
    assert doc["pipeline"] == "normalize,quantize,lower,plan-memory{stack=512},emit-c"
    assert set(doc["fram"]) == {"weights", "biases", "descriptors", "activations", "hifram", "hifram_activations"}
    assert doc["calibration"].startswith("weight-derived")
    assert "warning: no --data" in err and "weight-derived" in err


def test_budget_error_exits_2_names_the_largest_buffers_and_leaves_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = sample("mlp_mnist_big")
    out = tmp_path / "build"
    code, text, err = cli(capsys, model, "-o", str(out), "--data", data, "--compress", "never")
    assert code == 2
    assert "plan-memory" in err and "HIFRAM (0x10000-0x43FFF" in err and "overflows by" in err and "largest buffers" in err
    assert "const %" in err and "used by" in err and "sparsify" in err and "--fram" in err
    assert not out.exists() and not any(tmp_path.iterdir())          # nothing left behind
    # an earlier output in -o survives a failed run untouched
    small, small_data = sample("tiny_conv1d")
    assert cli(capsys, small, "-o", str(out), "--data", small_data)[0] == 0
    before = digests(out)
    code, _, err = cli(capsys, model, "-o", str(out), "--data", data, "--compress", "never")
    assert code == 2 and digests(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]


def test_sram_only_budget_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = sample("lenet5_mnist")
    code, _, err = cli(capsys, model, "-o", str(tmp_path / "b"), "--data", data, "--sram-only")
    assert code == 2 and "of SRAM" in err and "reserved for the stack" in err
    assert "written by" in err and "--sram" in err and "tile the layer" in err
    assert not (tmp_path / "b").exists()


def test_budget_error_exit_code_through_the_console_script(tmp_path: Path) -> None:
    model, data = sample("lenet5_mnist")
    exe = shutil.which("freeml-tx")
    cmd = [exe] if exe else [sys.executable, "-m", "transpiler"]
    r = subprocess.run([*cmd, model, "-o", str(tmp_path / "b"), "--data", data, "--sram", "2KiB", "--sram-only"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "BudgetError" not in r.stderr and "error:" in r.stderr
    assert not (tmp_path / "b").exists()


def test_pipeline_without_emit_c_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, _ = sample("tiny_conv1d")
    code, _, err = cli(capsys, model, "-o", str(tmp_path / "b"), "--pipeline", "normalize,quantize,lower")
    assert code == 2 and "emit-c" in err
    assert not (tmp_path / "b").exists()


def test_same_input_gives_byte_identical_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = sample("cnn_digits")
    out = tmp_path / "b"
    assert cli(capsys, model, "-o", str(out), "--data", data)[0] == 0
    first = digests(out)
    assert cli(capsys, model, "-o", str(out), "--data", data)[0] == 0
    assert digests(out) == first and len(first) > 12
    # and in another process, with another string-hash seed (no set/dict-order leaks)
    exe = shutil.which("freeml-tx")
    cmd = [exe] if exe else [sys.executable, "-m", "transpiler"]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    kept = {f: (out / f).read_text() for f in ("manifest.json", "report.txt")}
    r = subprocess.run([*cmd, model, "-o", str(out), "--data", data], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    again = digests(out)
    if again != first:
        import difflib
        changed = sorted(f for f in first if again.get(f) != first[f])
        diff = [line for f in changed if f in kept for line in difflib.unified_diff(
            kept[f].splitlines(), (out / f).read_text().splitlines(), f, f, lineterm="", n=1)]
        raise AssertionError(f"files differ in another process: {changed}\n" + "\n".join(diff[:60]))


def test_build_lir_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = sample("tiny_residual")
    one, two, dumps = tmp_path / "one", tmp_path / "two", tmp_path / "dumps"
    assert cli(capsys, model, "-o", str(one), "--data", data, "--dump-dir", str(dumps))[0] == 0
    code, text, err = cli(capsys, "build-lir", str(one / "final.lir"), "-o", str(two))
    assert code == 0, err
    assert "pipeline    emit-c" in text                     # planned already: no re-planning
    for f in ("tiny_residual.c", "tiny_residual_weights.c", "tiny_residual.h", "final.lir"):
        a = [x for x in (one / f).read_text().splitlines() if "command:" not in x and "pipeline:" not in x]
        b = [x for x in (two / f).read_text().splitlines() if "command:" not in x and "pipeline:" not in x]
        assert a == b, f
    # a dump from before plan-memory gets planned
    lowered = sorted(dumps.glob("*-lower.lir"))
    assert lowered, sorted(p.name for p in dumps.iterdir())
    code, text, err = cli(capsys, "build-lir", str(lowered[0]), "-o", str(tmp_path / "three"), "--name", "t3")
    assert code == 0, err
    assert "plan-memory" in text and (tmp_path / "three" / "t3.c").is_file()
    xs = np.random.default_rng(0).integers(-32768, 32768, (5, hostrun.load_manifest(one)["api"]["in_size"]))
    ys = [hostrun.run_raw(hostrun.build(d, cc="gcc"), hostrun.load_manifest(d), xs)
          for d in (one, two, tmp_path / "three")]
    assert np.array_equal(ys[0], ys[1]) and np.array_equal(ys[0], ys[2])


def test_run_prints_outputs_and_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = sample("mlp_digits_sklearn")
    out = tmp_path / "b"
    assert cli(capsys, model, "-o", str(out), "--data", data)[0] == 0
    d = np.load(data)
    np.save(tmp_path / "x.npy", d["x"][:1])
    code, text, err = cli(capsys, "run", str(out), "--input", str(tmp_path / "x.npy"),
                          "--output", str(tmp_path / "y.npy"))
    assert code == 0, err
    assert f"class {int(d['y'][0])}" in text
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (1, 10) and y.dtype == np.float32 and int(y.argmax()) == int(d["y"][0])
    np.save(tmp_path / "x3.npy", d["x"][:3])
    code, text, _ = cli(capsys, "run", str(out), "-i", str(tmp_path / "x3.npy"), "--json")
    doc = json.loads(text)
    scores = np.asarray(doc["outputs"][next(k for k in doc["outputs"] if k != "class")])
    assert doc["samples"] == 3 and doc["classes"] == scores.argmax(axis=1).tolist() == doc["outputs"]["class"]
    assert doc["labels"] == doc["classes"]                 # sklearn's labels are the digits 0..9
    np.save(tmp_path / "bad.npy", d["x"][:1, :10])
    code, _, err = cli(capsys, "run", str(out), "-i", str(tmp_path / "bad.npy"))
    assert code == 2 and "64" in err


def test_data_under_scikit_learn_names_and_as_npy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`X`/`Y` (scikit-learn's names) for compile and verify, a `.npy` of inputs for compile; verify
    reports the accuracy against `Y` as it does against `y`."""
    model, data = sample("mlp_digits_sklearn")
    d = np.load(data)
    np.savez(tmp_path / "sk.npz", X=d["x"], Y=d["y"], split=d["split"])
    np.save(tmp_path / "x.npy", d["x"])
    assert cli(capsys, model, "-o", str(tmp_path / "a"), "--data", str(tmp_path / "x.npy"))[0] == 0
    out = tmp_path / "b"
    assert cli(capsys, model, "-o", str(out), "--data", str(tmp_path / "sk.npz"))[0] == 0
    code, text, err = cli(capsys, "verify", str(out), "--data", str(tmp_path / "sk.npz"), "--json")
    assert code == 0, text + err
    with_y = cli(capsys, "verify", str(out), "--data", data, "--json")[1]
    accuracy = [row.get("accuracy_c") for row in json.loads(text)["outputs"]]
    assert any(a is not None for a in accuracy)
    assert accuracy == [row.get("accuracy_c") for row in json.loads(with_y)["outputs"]]


@pytest.mark.parametrize("name", ALL)
def test_verify_top1_agreement_on_the_sample_test_sets(name: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    model, data = sample(name)
    out = tmp_path / "b"
    extra = ["--fram", "1MiB"] if name == "mlp_mnist_big" else []   # it needs sparsify for a real part
    assert cli(capsys, model, "-o", str(out), "--data", data, *extra)[0] == 0
    code, text, err = cli(capsys, "verify", str(out), "--data", data, "--json")
    assert code == 0, text + err
    doc = json.loads(text)
    assert doc["pass"] and doc["samples"] == len(np.load(data)["x"])
    for row in doc["outputs"]:
        if "agreement" in row:
            assert row["agreement"] >= 0.995, row
        if "max_abs_error" in row:
            assert row["max_abs_error"] <= 0.05 * max(1.0, row["max_abs_reference"]), row
    if name == "lenet5_mnist":
        code, text, _ = cli(capsys, "verify", str(out), "--data", data, "--min-agreement", "1.01", "--limit", "20")
        assert code == 1 and "FAIL" in text and "top-1 agreement" in text


def test_verify_judges_a_regressor_on_its_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # skl2onnx LinearRegression (ai.onnx.ml LinearRegressor) with one target: no top-1 to compare, so
    # verify must check the values; a reference that differs must fail it
    pytest.importorskip("skl2onnx")
    import onnx
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(60, 5)) * 3 + 1).astype(np.float32)
    reg = LinearRegression().fit(x, x @ rng.normal(size=5) + 2)
    proto = to_onnx(reg, initial_types=[("input", FloatTensorType([None, 5]))], target_opset={"": 13, "ai.onnx.ml": 1})
    onnx.save(proto, str(tmp_path / "reg.onnx"))
    np.savez(tmp_path / "reg.npz", x=x)
    out, data = tmp_path / "b", str(tmp_path / "reg.npz")
    assert cli(capsys, str(tmp_path / "reg.onnx"), "-o", str(out), "--data", data)[0] == 0
    code, text, err = cli(capsys, "verify", str(out), "--data", data, "--json")
    assert code == 0, text + err
    (row,) = json.loads(text)["outputs"]
    assert row["kind"] == "values" and "agreement" not in row
    assert row["max_abs_error"] <= row["error_bound"] < 0.06 * row["max_abs_reference"]
    normalized = onnx.load(str(out / "normalized.onnx"))
    for init in normalized.graph.initializer:  # the float model's weights x 1.2: the C now disagrees
        if len(init.dims) == 2:
            init.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(init) * 1.2, init.name))
    onnx.save(normalized, str(out / "normalized.onnx"))
    code, text, _ = cli(capsys, "verify", str(out), "--data", data)
    assert code == 1 and "FAIL" in text and "output 'variable' max abs error" in text and "> bound" in text


@pytest.mark.parametrize("targets", [1, 3])
def test_mlp_regressor_outputs_match_the_original_model(targets: int, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    # skl2onnx ends a multi-target MLPRegressor in Reshape(y[1, T], [-1, 1]) (output [T, 1] per
    # sample): a final relabelling of the output, which keeps its values' order
    pytest.importorskip("skl2onnx")
    import onnx
    import onnxruntime as ort
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype(np.float32)
    y = np.maximum(x @ rng.normal(size=(4, targets)), 0) * 3 + 1
    reg = MLPRegressor(hidden_layer_sizes=(12,), max_iter=300, random_state=0).fit(x, y[:, 0] if targets == 1 else y)
    proto = to_onnx(reg, initial_types=[("input", FloatTensorType([None, 4]))], target_opset={"": 13, "ai.onnx.ml": 1})
    onnx.save(proto, str(tmp_path / "reg.onnx"))
    np.savez(tmp_path / "reg.npz", x=x)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "b"
    assert cli(capsys, str(tmp_path / "reg.onnx"), "-o", str(out), "--data", str(tmp_path / "reg.npz"))[0] == 0
    code, text, err = cli(capsys, "run", str(out), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npz"))
    assert code == 0, err
    got = np.load(tmp_path / "y.npz")["variable"]
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    want = np.stack([session.run(None, {"input": row[None]})[0] for row in x])
    assert want.shape == ((len(x), targets, 1) if targets > 1 else (len(x), 1, 1)) and got.size == want.size
    assert np.abs(got.reshape(len(x), -1) - want.reshape(len(x), -1)).max() <= 0.01 * np.abs(want).max()


@pytest.mark.parametrize("estimator", ["logreg", "mlp"])
def test_tabular_features_of_different_scales_keep_their_precision(estimator: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Breast-cancer features span 0.001 .. 4254: behind a StandardScaler one input Q format (q=3)
    rounded the small ones away and the C agreed with onnxruntime on 81 % (logistic regression) and
    69 % (MLP) of the samples. The scaler folds into the first layer (fold-into-next) and each
    feature gets its own format (quantize's feature-shift): the manifest, the header and `run`
    carry the shifts, and the C agrees with onnxruntime."""
    pytest.importorskip("skl2onnx")
    import onnx
    from skl2onnx import to_onnx
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)
    head = LogisticRegression(max_iter=3000) if estimator == "logreg" else MLPClassifier((16,), max_iter=800,
                                                                                          random_state=0)
    pipe = make_pipeline(StandardScaler(), head).fit(x, y)
    onnx.save(to_onnx(pipe, x[:1], target_opset={"": 13, "ai.onnx.ml": 1}), str(tmp_path / "m.onnx"))
    np.savez(tmp_path / "d.npz", x=x, y=y)
    out, data = tmp_path / "b", str(tmp_path / "d.npz")
    assert cli(capsys, str(tmp_path / "m.onnx"), "-o", str(out), "--data", data)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    (port,) = manifest["inputs"]
    shifts = port["feature_shift"]["shifts"]
    assert port["feature_shift"]["axis"] == 1 and len(shifts) == 30 and min(shifts) == 0 and max(shifts) >= 8
    assert f"_SHIFTS {{{', '.join(map(str, shifts))}}}" in (out / f"{manifest['c_name']}.h").read_text()
    assert subprocess.run(["make", "-C", str(out)], capture_output=True).returncode == 0
    code, text, err = cli(capsys, "verify", str(out), "--data", data, "--json")
    assert code == 0, text + err
    rows = json.loads(text)["outputs"]
    assert min(row["agreement"] for row in rows if "agreement" in row) >= 0.995
    assert all(row["max_abs_error"] <= row["error_bound"] for row in rows if "max_abs_error" in row)
    # the interpreter quantises the features like the package does and computes the same bits
    from transpiler.cli.run_cmd import execute
    from transpiler.lir.interp import run_program
    from transpiler.lir.qio import quantize_inputs
    from transpiler.lir.text import load_lir

    program = load_lir(out / "final.lir")
    _, raw, _ = execute(str(out), {port["name"]: x[:40]})
    for i in range(40):
        feed = quantize_inputs(program, {port["name"]: x[i:i + 1]})
        np.testing.assert_array_equal(feed[port["name"]].reshape(-1), hostrun.quantize(manifest, {port["name"]: x[i]})[0])
        got = run_program(program, feed)
        for name, values in raw.items():
            np.testing.assert_array_equal(np.asarray(got[name]).reshape(-1), values[i].reshape(-1))


def test_verify_needs_the_normalized_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = sample("tiny_conv1d")
    assert cli(capsys, model, "-o", str(tmp_path / "a"), "--data", data)[0] == 0
    assert cli(capsys, "build-lir", str(tmp_path / "a" / "final.lir"), "-o", str(tmp_path / "b"))[0] == 0
    code, _, err = cli(capsys, "verify", str(tmp_path / "b"), "--data", data)
    assert code == 2 and "normalized.onnx" in err


def test_flags_make_the_pipeline_and_sizes_parse() -> None:
    class Args:
        stack = None
        persistent = True
        sram_only = True

    assert default_pipeline(Args()) == \
        "normalize,quantize,lower,plan-memory{persistent=true,fram-activations=false},emit-c"
    assert parse_size("8KiB") == 8192 and parse_size("256KB") == 256 * 1024 and parse_size("100") == 100
    assert parse_size("1MiB") == 1 << 20


def test_verify_judges_a_map_output_on_its_values_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A conv whose output is a [4, 6, 6] map: the argmax over its 144 values is no class (a random
    net's near-ties flipped it on 1 % of the samples while every value was within its bound), so
    verify reports no top-1 for it and passes on the values."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["x"], ["b"]),
         helper.make_node("Sub", ["a", "b"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])],
        [numpy_helper.from_array(rng.normal(0, 0.3, (4, 4, 3, 3)).astype(np.float32), "w")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    onnx.save(proto, str(tmp_path / "m.onnx"))
    np.savez(tmp_path / "d.npz", x=rng.uniform(0.1, 2, (100, 4, 6, 6)).astype(np.float32))
    out, data = tmp_path / "b", str(tmp_path / "d.npz")
    assert cli(capsys, str(tmp_path / "m.onnx"), "-o", str(out), "--data", data)[0] == 0
    code, text, err = cli(capsys, "verify", str(out), "--data", data, "--json")
    assert code == 0, text + err
    (row,) = json.loads(text)["outputs"]
    assert "agreement" not in row and row["max_abs_error"] <= row["error_bound"]
