"""Without labels, compression bounds the accuracy the original model expects of the compressed one;
an unsure original (random weights) expects about as much of any answer, so the compressed model may
agree with it on few samples. The summary then says so, with the agreement measured on val."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from transpiler.cli import main


def _random_mlp(path: Path, scale: float) -> None:
    rng = np.random.default_rng(0)
    w1 = (rng.normal(size=(256, 64)) * scale).astype(np.float32)
    w2 = (rng.normal(size=(10, 256)) * scale).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
                              [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_an_unsure_original_gets_the_agreement_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _random_mlp(tmp_path / "m.onnx", 0.05)       # logits within about +-1: nearly flat probabilities
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(1).normal(size=(600, 64)).astype(np.float32))
    args = [str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out"), "--data", str(tmp_path / "d.npz"),
            "--fram", "24KiB"]
    assert main(args + ["--json"]) == 0
    compression = json.loads(capsys.readouterr().out)["compression"]
    assert compression["original_confidence"] < 0.3
    assert compression["agreement_after"] < 0.98
    report = (tmp_path / "out" / "report.txt").read_text()
    assert "note: the compressed model's top-1 agrees with the original's on" in report
    assert "give labels ('y') to bound the real drop" in report
