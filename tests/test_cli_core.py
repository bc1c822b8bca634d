"""The command line: exit codes, error output, `passes`, `inspect`, the default command, output dirs."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from transpiler import cli
from transpiler.cli import UsageError, _route_default_command, main
from transpiler.errors import FreemlError
from transpiler.outdir import MARKER, atomic_output_dir
from transpiler.pass_infra import Pass, PassResult


class ZeroBias(Pass):
    """Set the bias B to zero (test pass).

    Before -> after::  Add(h, B)  ->  Add(h, 0)
    """

    name = "t-zero-bias"

    def run(self, model: Any) -> PassResult[Any]:
        bias = model.graph.tensors()["B"]
        bias.values = np.zeros_like(bias.values)
        return PassResult(model, True, {"zeroed": int(bias.values.size)})


class Keep(Pass):
    """Keep the model as it is (test pass)."""

    name = "t-keep"
    preserves_semantics = True

    def run(self, model: Any) -> PassResult[Any]:
        return PassResult(model, False)


@pytest.fixture
def passes(register_passes: Any) -> None:
    register_passes(ZeroBias, Keep)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_passes_lists_name_level_summary(capsys: pytest.CaptureFixture[str], passes: None) -> None:
    code, out, _ = run_cli(capsys, "passes")
    assert code == 0
    line = next(l for l in out.splitlines() if l.startswith("t-zero-bias"))
    assert "onnx" in line and "Set the bias B to zero" in line
    code, out, _ = run_cli(capsys, "passes", "--verbose")
    assert "preserves semantics" in out


def test_inspect_prints_a_table_per_pass(capsys: pytest.CaptureFixture[str], passes: None, tiny_model: Any,
                                         tmp_path: Path) -> None:
    model = tiny_model("mlp")
    dump = tmp_path / "dump"
    code, out, err = run_cli(capsys, "inspect", str(model), "--pipeline", "t-keep,t-zero-bias",
                             "--print-pipeline", "--timing", "--dump-dir", str(dump), "--print-after-change")
    assert code == 0, err
    assert "inputs: x: float32[N,4]" in out and "pipeline: t-keep,t-zero-bias" in out
    rows = {l.split()[1]: l.split() for l in out.splitlines() if l[:1].isdigit()}
    assert rows["t-keep"][2] == "no" and rows["t-zero-bias"][2] == "yes"
    assert rows["t-zero-bias"][3:7] == ["3", "15", "12", "60"]  # nodes, params, non-zeros, bytes
    assert "zeroed: 3" in out and "timing:" in out and "after 2 t-zero-bias (changed)" in out
    assert "after 1 t-keep" not in out
    assert (dump / "02-t-zero-bias.onnx").is_file()


def test_inspect_stop_after(capsys: pytest.CaptureFixture[str], passes: None, tiny_model: Any) -> None:
    code, out, _ = run_cli(capsys, "inspect", str(tiny_model("mlp")), "--pipeline", "t-keep,t-zero-bias",
                           "--stop-after", "t-keep", "--print-pipeline")
    assert code == 0
    assert "pipeline: t-keep\n" in out and "t-zero-bias" not in out.split("pipeline:")[1]


@pytest.mark.parametrize("setup, args, words", [
    ("missing", [], "no such file"),
    ("garbage", [], "not an ONNX model"),
    ("truncated", [], "truncated"),
    ("ok", ["--pipeline", "t-keep,,"], "unexpected ','"),
    ("ok", ["--pipeline", "t-nope"], "unknown pass 't-nope'"),
    ("ok", ["--pipeline", "t-keep{x=1}"], "has no option 'x'"),
    ("ok", ["--input-shape", "x:1x4"], "NAME=DIMS"),
    ("ok", ["--input-shape", "q=1x4"], "not an input"),
    ("ok", ["--pipeline", "t-keep", "--stop-after", "t-zero-bias"], "--stop-after"),
    ("ok", ["--pipeline", "t-keep", "--data", "nope.npz"], "data file not found"),
])
def test_bad_inputs_exit_2_and_write_nothing(capsys: pytest.CaptureFixture[str], passes: None,
                                              tiny_model: Any, tmp_path: Path, setup: str,
                                              args: list[str], words: str) -> None:
    path = tmp_path / "model.onnx"
    if setup == "ok":
        path = tiny_model("mlp")
    elif setup == "garbage":
        path.write_bytes(b"\x07" * 64)
    elif setup == "truncated":
        data = tiny_model("conv").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    out_dir = tmp_path / "out"
    code, _out, err = run_cli(capsys, "inspect", str(path), "--dump-dir", str(out_dir), *args)
    assert code == 2
    assert err.startswith("error: ") and words in err
    assert "Traceback" not in err
    assert not out_dir.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_diagnostics_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _out, err = run_cli(capsys, "inspect", str(tmp_path / "nope.onnx"), "--diagnostics", "json")
    assert code == 2
    data = json.loads(err)
    assert data["kind"] == "InputError" and data["location"]["file"].endswith("nope.onnx")
    assert data["exit_code"] == 2 and data["hint"]


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _out, err = run_cli(capsys, "--debug", "inspect", str(tmp_path / "nope.onnx"))
    assert code == 2 and "Traceback" in err and "no such file" in err


def test_internal_errors_exit_1_without_traceback(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from transpiler.cli import inspect_cmd

    def broken(args: Any) -> int:
        raise RuntimeError("kaput")

    monkeypatch.setattr(inspect_cmd, "run", broken)
    code, _out, err = run_cli(capsys, "inspect", str(tmp_path / "m.onnx"))
    assert code == 1
    assert "internal error: RuntimeError: kaput (re-run with --debug)" in err and "Traceback" not in err


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_cli(capsys, "inspect", "--bogus", "m.onnx")
    assert code == 2 and "unrecognized arguments: --bogus" in err and "freeml-tx inspect --help" in err
    code, _out, err = run_cli(capsys)
    assert code == 2 and "COMMAND" in err
    code, out, _err = run_cli(capsys, "--version")
    assert code == 0 and out.startswith("freeml-tx ")


def test_model_without_command_runs_compile() -> None:
    assert _route_default_command(["m.onnx", "-o", "build"], ["compile", "inspect"]) == [
        "compile", "m.onnx", "-o", "build"]
    assert _route_default_command(["inspect", "m.onnx"], ["compile", "inspect"]) == ["inspect", "m.onnx"]
    with pytest.raises(UsageError, match="compile command"):
        _route_default_command(["m.onnx"], ["inspect"])


@pytest.mark.skipif(find_spec("transpiler.cli.compile_cmd") is not None, reason="compile exists")
def test_model_without_command_before_compile_exists(capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_cli(capsys, "m.onnx", "-o", "build")
    assert code == 2 and "compile command" in err


def test_command_modules_are_a_tuple_of_names() -> None:
    assert {"passes_cmd", "inspect_cmd", "compile_cmd"} <= set(cli.COMMAND_MODULES)
    names = [m.__name__.rsplit(".", 1)[1] for m in cli.command_modules()]
    assert names[:2] == ["passes_cmd", "inspect_cmd"]


def test_python_dash_m(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "transpiler", "inspect", str(tmp_path / "x.onnx")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no such file" in done.stderr


def test_atomic_output_dir(tmp_path: Path) -> None:
    target = tmp_path / "build"
    with atomic_output_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
        assert not target.exists()
    assert (target / "a.txt").read_text() == "1" and (target / MARKER).exists()
    with atomic_output_dir(target) as tmp:  # an earlier freeml-tx output is replaced
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "b.txt"]
    with pytest.raises(RuntimeError):
        with atomic_output_dir(target) as tmp:
            (tmp / "c.txt").write_text("half")
            raise RuntimeError("failed half-way")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "b.txt"]  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build"]  # no temp folders left
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(FreemlError, match="not made by freeml-tx"):
        with atomic_output_dir(foreign):
            pass
    assert (foreign / "thesis.tex").read_text() == "precious"


SAMPLES = ["lenet5_mnist", "mlp_mnist_big", "cnn_digits", "mlp_digits_sklearn", "tiny_conv1d", "tiny_residual"]


@pytest.mark.parametrize("name", SAMPLES)
def test_inspect_samples_with_normalize(capsys: pytest.CaptureFixture[str], samples_dir: Path, name: str) -> None:
    from transpiler.pass_infra import registry

    path = samples_dir / f"{name}.onnx"
    if not path.is_file():
        pytest.skip(f"{path} not built (python samples/make_all.py)")
    if "normalize" not in registry():
        pytest.skip("the normalize pass is not registered yet")
    code, out, err = run_cli(capsys, "inspect", str(path), "--print-pipeline")
    assert code == 0, err
    assert "pipeline: normalize" in out
    row = next(l.split() for l in out.splitlines() if l[:1].isdigit() and " normalize " in l)
    assert int(row[3]) > 0  # nodes left after normalize


def test_foreign_dump_dir_is_refused_before_anything_runs(capsys: pytest.CaptureFixture[str], passes: None,
                                                          tiny_model: Any, tmp_path: Path) -> None:
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    code, out, err = run_cli(capsys, "inspect", str(tiny_model("mlp")), "--pipeline", "t-keep",
                             "--dump-dir", str(foreign))
    assert code == 2 and "not made by freeml-tx" in err and out == ""
    assert sorted(p.name for p in foreign.iterdir()) == ["todo.txt"]


def test_dynamic_axes_after_the_batch_are_taken_from_data(capsys: pytest.CaptureFixture[str], tiny_model: Any,
                                                         tmp_path: Path) -> None:
    path = tiny_model(text="""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N, 2, L] x) => (float[N, 2, L] y) {
        y = Relu(x)
    }
    """)
    data = tmp_path / "d.npz"
    np.savez(data, x=np.ones((5, 2, 7), np.float32))
    code, out, err = run_cli(capsys, "inspect", str(path), "--data", str(data), "--pipeline", "normalize")
    assert code == 0, err
    assert "--input-shape x=1x2x7" in err and "normalize" in out
    code, _, err = run_cli(capsys, "inspect", str(path), "--pipeline", "normalize")
    assert code == 2 and "dynamic dimension 2" in err and "--input-shape x=" in err


def test_an_old_opset_model_is_converted(capsys: pytest.CaptureFixture[str], tiny_model: Any) -> None:
    code, out, err = run_cli(capsys, "inspect", str(tiny_model("conv", opset=8, ir_version=4)))
    assert code == 0, err
    assert "opset 8" in out and "upgrade-opset" in out


def test_compression_summary_without_sparsify_measurements() -> None:
    from transpiler.cli.compress_flags import format_compression

    # separate alone met the budget: sparsify measured nothing, separate's accuracy is shown
    lines = format_compression({"budget": 1000, "size_before": 900, "size_after": 900, "float32_bytes": 4000,
                                "measure": None, "steps": 0, "layers": [],
                                "separated": [{"node": "fc", "kind": "svd", "ranks": [8], "accuracy": 0.975,
                                               "drop": 0.5}]})
    text = "\n".join(lines)
    assert "None" not in text and "val samples" not in text
    assert "separated 'fc' (svd, rank 8): val 97.50 % (drop 0.5 points)" in text


@pytest.mark.parametrize("value, message", [("-1", "is not a number of points >= 0"),
                                            ("nan", "is not a number of points >= 0"),
                                            ("one", "is not a number of accuracy points")])
def test_a_bad_max_drop_is_refused_even_when_nothing_is_compressed(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                                   tiny_model: Any, value: str, message: str) -> None:
    """--max-drop -1 or nan compiled silently when the model fit (and failed inside sparsify when not)."""
    code, _, err = run_cli(capsys, str(tiny_model("conv")), "-o", str(tmp_path / "b"), "--max-drop", value)
    assert code == 2 and f"argument --max-drop: '{value}' {message}" in err, err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("val_samples, noted", [(200, True), (2000, False)])
def test_compression_summary_notes_a_val_part_too_small_for_the_bound(val_samples: int, noted: bool) -> None:
    """Every sparsify step is kept or rolled back on the same val samples; on 200 of them a top-1 accuracy
    near 95 % has a standard error of 1.5 points, more than a 1-point bound, and the drop on new data can
    exceed it (a dynamo CNN: 0.0 on val after 59 steps, 4.6 on its test digits). The summary says so and
    how many val samples would do; 2,000 samples (error 0.5) need no note."""
    from transpiler.cli.compress_flags import format_compression

    summary = {"budget": 1000, "size_before": 9000, "size_after": 990, "float32_bytes": 18000,
               "measure": "top-1 accuracy", "val_samples": val_samples, "accuracy_reference": 0.955,
               "accuracy_before": 0.955, "accuracy_after": 0.955, "drop": 0.0, "max_drop": 1.0, "steps": 59,
               "layers": []}
    text = "\n".join(format_compression(summary))
    note = (f"note: on {val_samples} val samples top-1 accuracy has a standard error of about 1.5 points (one "
            f"sample is 0.5), more than the 1-point bound, and they decided every one of the 59 steps")
    assert (note in text) == noted, text
    if noted:
        assert "a val part of about 1,800 samples" in text


def test_compression_summary_of_a_regressor_says_what_its_figures_are(tmp_path: Path) -> None:
    """An MLPRegressor that separate alone fits: the summary named no measure ("val 97.23 %"), so its
    R^2 read as an accuracy; it now names R^2 and what max-drop means for it."""
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor

    from transpiler.cli.compress_flags import compression_summary, format_compression
    from transpiler.data import Dataset
    from transpiler.manager import run_pipeline
    from transpiler.model import OnnxModel
    from transpiler.pass_infra import PassContext

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] - 0.5 * x[:, 1] * x[:, 2]).astype(np.float32)
    reg = MLPRegressor(hidden_layer_sizes=(64, 48), max_iter=200, random_state=0).fit(x, y)
    model = OnnxModel.from_proto(to_onnx(reg, x[:1], target_opset=13), "reg")
    spec = "normalize,separate{budget=4000,max-drop=2,epochs=1},sparsify{budget=4000,max-drop=2,epochs=1}"
    context = PassContext(data=Dataset.from_arrays({"X": x}, y))
    _, report = run_pipeline(model, spec, context, verify=False)
    summary = compression_summary(context, report)
    assert summary is not None
    text = "\n".join(format_compression(summary))
    assert "R^2 vs the labels" in text, text
    assert "max-drop 2 lets R^2 fall by 0.02" in text and "2 % of the targets' variance" in text, text
    # separate alone met the budget: sparsify recorded no measure and no max-drop; separate's are shown
    separated = SimpleNamespace(name="separate", pass_stats={
        "measure": "R^2 vs the labels", "max_drop": 2.0, "float32_bytes": 4000,
        "layers": [{"node": "fc", "kind": "svd", "ranks": [7], "accuracy": 0.9756, "drop": 0.457, "kept": True}]})
    quiet = SimpleNamespace(extra={"sparsify": {"budget": 1000, "size_before": 900, "size_after": 900, "layers": []}})
    text = "\n".join(format_compression(compression_summary(quiet, SimpleNamespace(records=[separated])) or {}))
    assert "separated 'fc' (svd, rank 7): R^2 vs the labels on val 97.56 % (drop 0.457 points)" in text, text
    assert "max-drop 2 lets R^2 fall by 0.02" in text, text


def test_an_unsupported_scikit_learn_model_fails_with_one_clear_error(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    # a three-class kernel SVM with probabilities (Platt scaling and pairwise coupling; a binary one
    # compiles) and its ZipMap output: the error names the SVM and what to train instead, without
    # onnx-graphsurgeon's [W] lines about the map type, and writes nothing
    pytest.importorskip("skl2onnx")
    import onnx
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    labels = (x[:, 0] > -0.4).astype(int) + (x[:, 0] > 0.4).astype(int)
    path = tmp_path / "svc.onnx"
    with warnings.catch_warnings():                   # sklearn's FutureWarnings about `probability`
        warnings.simplefilter("ignore")
        svc = SVC(kernel="linear", probability=True, random_state=0).fit(x, labels)
        onnx.save(to_onnx(svc, initial_types=[("input", FloatTensorType([None, 4]))],
                          target_opset={"": 13, "ai.onnx.ml": 1}), str(path))
    code, out, err = run_cli(capsys, str(path), "-o", str(tmp_path / "b"))
    assert code == 2 and not (tmp_path / "b").exists()
    assert err.startswith(f"error: {path}, pass 'check-supported'") and "'SVMc' (SVMClassifier" in err
    assert "probability=False" in err
    assert "[W]" not in out + err and "Traceback" not in err


def test_progress_lines_default_to_the_compression_steps_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """--progress prints every pass's lines, --no-progress none; by default a terminal sees the
    lines of the passes that fine-tune for minutes (separate, sparsify) and a pipe sees none."""
    import io

    from transpiler.cli.common import progress_log

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    lines = ["normalize: fold-constants", "sparsify: step 1: 'fc1' density 1.0000 -> 0.2500", "separate: 'fc1' kept"]
    for flag, stream, want in [(True, io.StringIO(), lines), (None, Terminal(), lines[1:]), (None, io.StringIO(), []),
                               (False, Terminal(), [])]:
        monkeypatch.setattr("sys.stderr", stream)
        log = progress_log(flag)
        for line in lines:
            if log is not None:
                log(line)
        assert stream.getvalue().splitlines() == want
