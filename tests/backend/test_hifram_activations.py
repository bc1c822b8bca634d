"""Activations in HIFRAM, end to end on the host: a CIFAR-shaped CNN whose first feature map does
not fit lower FRAM beside the code (3x32x32 input, conv 3->16: a 32 KiB feature map) compiles for
the MSP430FR5994 with that map in plan-memory's HIFRAM arena (before the arena it was a BudgetError),
its C equals the interpreter bit for bit (gcc -O2, clang with ASan+UBSan) and agrees with
onnxruntime; ``plan-memory{hifram-activations=false}`` gives the old error with a hint. The
simulator side (the large memory model, power failures) is in tests/msp430/test_msp430_hifram_sim.py
and tests/intermittent/test_intermittent_hifram.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter, import_all_passes, random_inputs
from tiny_models import cifar_like

from transpiler import hostrun
from transpiler.cli import main
from transpiler.data import Dataset
from transpiler.errors import BudgetError
from transpiler.lir.ir import Program
from transpiler.lir.qio import quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

import_all_passes()


@pytest.fixture(scope="module")
def cifar(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """The model file, its data file (200 random images) and the images."""
    root = tmp_path_factory.mktemp("cifar")
    proto, x = cifar_like(c1=16, c2=16, n=200, seed=1)
    onnx.save(proto, str(root / "cifar_like.onnx"))
    np.savez(root / "cifar_like.npz", x=x)
    return root / "cifar_like.onnx", root / "cifar_like.npz", x


def test_cifar_like_compiles_with_its_first_feature_map_in_hifram_and_verifies(
        cifar: tuple[Path, Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, data, x = cifar
    out = tmp_path / "build"
    code = main([str(model), "-o", str(out), "--data", str(data), "--target", "msp430fr5994", "--json"])
    text, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(text)
    assert doc["fram"]["hifram_activations"] == 16 * 32 * 32 * 2 and doc["sram"]["spilled_to_hifram"] == ["r1"]
    assert doc["msp430"]["memory_model"] == "large"
    man = hostrun.load_manifest(out)
    spaces = {b["name"]: b["space"] for b in man["buffers"] if b["kind"] == "activation"}
    assert spaces["r1"] == "hifram" and "hifram" not in {spaces[n] for n in spaces if n != "r1"}
    assert man["sizes"]["hifram_activations"] == 32768 and man["needs_hifram"]
    c = (out / "cifar_like.c").read_text()
    assert "static int16_t fx_cifar_like_hifram[16384] FX_HIPERSISTENT = {0};" in c
    assert "-mlarge" in (out / "msp430.mk").read_text()
    assert "HIFRAM activations        32.0 KiB" in (out / "report.txt").read_text()
    code = main(["verify", str(out), "--data", str(data), "--json"])
    text, err = capsys.readouterr()
    assert code == 0, text + err
    doc = json.loads(text)
    assert doc["pass"] and doc["samples"] == len(x)
    assert all(row["agreement"] >= 0.995 for row in doc["outputs"] if "agreement" in row), doc["outputs"]


def test_cifar_like_c_equals_interpreter(cifar: tuple[Path, Path, np.ndarray], tmp_path: Path) -> None:
    _model, _data, x = cifar
    proto, _ = cifar_like(c1=16, c2=16, n=0, seed=1)
    ctx = PassContext(data=Dataset.from_arrays({"x": x}), fram_bytes=256 * 1024)
    program, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize,quantize,lower,plan-memory", ctx,
                              verify=False)
    assert isinstance(program, Program)
    assert program.buffers["r1"].space == "hifram"
    inputs = [quantize_inputs(program, {"x": x[i:i + 1]}) for i in range(6)] + random_inputs(program, 3, seed=5)
    check_c_equals_interpreter(program, tmp_path / "c", inputs, "hifram_activations/cifar_like")


def test_without_hifram_activations_the_feature_map_is_a_budget_error(cifar: tuple[Path, Path, np.ndarray]) -> None:
    _model, _data, x = cifar
    proto, _ = cifar_like(c1=16, c2=16, n=0, seed=1)
    ctx = PassContext(data=Dataset.from_arrays({"x": x[:4]}), fram_bytes=256 * 1024)
    with pytest.raises(BudgetError) as info:
        run_pipeline(OnnxModel.from_proto(proto), "normalize,quantize,lower,plan-memory{hifram-activations=false}",
                     ctx, verify=False)
    err = info.value
    assert err.message.startswith("lower FRAM (0x4000-0xFF7F") and "FRAM activations" in err.message
    assert "%r1  32.0 KiB (32768 B)  i16[16,32,32]" in err.render()
    assert "hifram-activations=false" in (err.hint or "")


def test_a_fram_budget_too_small_for_the_hifram_arena_names_it(cifar: tuple[Path, Path, np.ndarray], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """--fram counts the HIFRAM arena: at 64 KiB, HIFRAM has 16 KiB for a 32 KiB feature map (and
    compression is not tried: the code and the activations alone fill the budget)."""
    model, data, _x = cifar
    out = tmp_path / "build"
    code = main([str(model), "-o", str(out), "--data", str(data), "--target", "msp430fr5994", "--fram", "64KiB"])
    _text, err = capsys.readouterr()
    assert code == 2 and not out.exists()
    assert "HIFRAM (0x10000-0x13FFF, 16.0 KiB (16384 B)) overflows by 16.0 KiB (16384 B)" in err
    assert "%r1  32.0 KiB (32768 B)  i16[16,32,32]" in err and "written by 'conv1'" in err
    assert "--fram 80KiB" in err and "smaller feature maps" in err
