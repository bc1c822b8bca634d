"""Compile with compression, end to end: a sample that does not fit ``--fram`` is compressed
(separate/sparsify with fine-tuning), and the generated C still agrees with onnxruntime run on the
compressed ONNX (the package's normalized.onnx) on every sample of the data set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import import_all_passes

from passes.compress_size import model_size
from transpiler import hostrun
from transpiler.cli import main
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"

import_all_passes()


def _q15_bytes(path: Path) -> int:
    """The Q15 parameter bytes (passes/compress_size.py) of a normalized ONNX file."""
    model = OnnxModel.from_proto(onnx.load(str(path)), path.name)
    normalized, _ = run_pipeline(model, "normalize", PassContext(), verify=False)
    return model_size(normalized).total


@pytest.mark.parametrize(("name", "fram"), [("lenet5_mnist", "64KiB"), ("mlp_mnist_big", "256KiB")])
def test_a_compressed_sample_fits_and_verifies_against_onnxruntime_on_the_compressed_onnx(
        name: str, fram: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data = SAMPLES / f"{name}.onnx", SAMPLES / f"{name}.npz"
    if not model.is_file() or not data.is_file():
        pytest.skip(f"samples/{name} is absent (python samples/make_all.py makes it)")
    out = tmp_path / "build"
    code = main([str(model), "-o", str(out), "--data", str(data), "--fram", fram, "--max-drop", "1.0"])
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "Compression" in text or "sparsify" in text, text
    man = hostrun.load_manifest(out)
    assert "sparsify" in man["generator"]["pipeline"]
    assert 2 * _q15_bytes(out / "normalized.onnx") < _q15_bytes(model)    # the lowered model is the compressed one
    code = main(["verify", str(out), "--data", str(data), "--json"])
    text, err = capsys.readouterr()
    assert code == 0, text + err
    doc = json.loads(text)
    assert doc["pass"] and doc["samples"] == len(np.load(data)["x"])
    for row in doc["outputs"]:
        if "agreement" in row:
            assert row["agreement"] >= 0.995, row
