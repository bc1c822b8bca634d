"""The command line of intermittent execution: compile --power / --cycles-per-power-cycle and
run --power-fail on the host and on the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from intermittent_helpers import REPO

from transpiler.cli import main
from transpiler.toolchain import find_msp430_toolchain_or_none

MODEL = REPO / "samples" / "tiny_conv1d.onnx"
DATA = REPO / "samples" / "tiny_conv1d.npz"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """tiny_conv1d compiled for 20,000 cycles per power cycle and for continuous power, and an input."""
    if not MODEL.is_file() or not DATA.is_file():
        pytest.skip("samples/tiny_conv1d is absent")
    root = tmp_path_factory.mktemp("pf_cli")
    x = root / "x.npy"
    np.save(x, np.load(DATA)["x"][:2])
    assert main([str(MODEL), "-o", str(root / "pf"), "--data", str(DATA), "--cycles-per-power-cycle", "20000"]) == 0
    assert main([str(MODEL), "-o", str(root / "cont"), "--data", str(DATA)]) == 0
    return {"pf": root / "pf", "cont": root / "cont", "x": x, "root": root}


def test_compile_summary_and_pipeline(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = built["root"] / "pf_json"
    assert main([str(MODEL), "-o", str(out), "--data", str(DATA), "--power",
                 "cap=10uF,von=3.3V,voff=1.8V,active=1.5mW,harvest=0.2mW", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert "plan-memory{persistent=true,budget=204000},tile{budget=204000},emit-c" in s["pipeline"]
    pf = s["intermittent"]
    assert pf["budget"] == 204000 and pf["progress_fram_bytes"] == 16
    assert pf["predicted_seconds"] > pf["predicted_cycles"] / 8e6 or pf["predicted_power_failures"] == 0
    assert [st["step"] for st in pf["steps"]] == ["/conv/Conv", "/pool/AveragePool", "/act/LeakyRelu", "/fc/Gemm"]
    man = json.loads((out / "manifest.json").read_text())
    assert man["intermittent"]["budget"] == 204000
    # the text summary shows per layer its tile, tiles per commit and cycles per group
    assert main([str(MODEL), "-o", str(built["root"] / "pf_text"), "--data", str(DATA),
                 "--cycles-per-power-cycle", "20000"]) == 0
    text = capsys.readouterr().out
    assert "intermittent 20,000 cycles per power cycle" in text and "cycles/group" in text
    assert "/conv/Conv" in text and "predicted:" in text


def test_compile_flag_errors(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    root = built["root"]
    assert main([str(MODEL), "-o", str(root / "e1"), "--power", "cap=1uF,von=3.3V,voff=1.8V,active=1mW",
                 "--cycles-per-power-cycle", "5000"]) == 2
    assert "both give the budget" in capsys.readouterr().err
    assert main([str(MODEL), "-o", str(root / "e2"), "--data", str(DATA), "--cycles-per-power-cycle", "2500"]) == 2
    err = capsys.readouterr().err
    assert "cannot fit one power cycle" in err and "2500 cycles" in err and "hint: a budget of at least" in err
    assert not (root / "e2").exists()


def test_run_power_fail_on_the_host(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(built["pf"]), "--input", str(built["x"]), "--power-fail",
                 "random:seed=1,min=150,max=400"]) == 0
    out = capsys.readouterr().out
    assert "power failures (host, random:seed=1,min=150,max=400, counted in FRAM stores):" in out
    assert "re-executed work" in out and "identical to the uninterrupted run: yes" in out
    assert main(["run", str(built["pf"]), "--input", str(built["x"]), "--power-fail", "every:300", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["power_fail"]["power_failures"] > 0 and doc["power_fail"]["identical"]
    assert doc["power_fail"]["reexecuted_stores"] > 0
    # the outputs equal the plain run's
    assert main(["run", str(built["pf"]), "--input", str(built["x"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"] == doc["outputs"]


def test_run_power_fail_errors(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(built["cont"]), "--input", str(built["x"]), "--power-fail", "every:300"]) == 2
    assert "compiled for continuous power" in capsys.readouterr().err
    assert main(["run", str(built["pf"]), "--input", str(built["x"]), "--power-fail", "every:20",
                 "--max-failures", "50"]) == 2
    err = capsys.readouterr().err
    assert "cannot make progress" in err and "max_piece_stores" in err
    assert main(["run", str(built["pf"]), "--input", str(built["x"]), "--power-fail", "often"]) == 2
    assert "bad power-failure schedule" in capsys.readouterr().err


def test_run_power_fail_on_the_simulator(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    tc, reason = find_msp430_toolchain_or_none()
    if tc is None:
        pytest.skip(f"no msp430-elf toolchain: {reason}")
    assert main(["run", str(built["pf"]), "--on", "sim", "--input", str(built["x"]), "--power-fail",
                 "every:20000", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    pf = doc["power_fail"]
    assert pf["on"] == "sim" and pf["unit"] == "cycles" and pf["identical"]
    assert pf["cycles"] >= pf["uninterrupted_cycles"] and pf["reexecuted_cycles"] == pf["cycles"] - pf["uninterrupted_cycles"]
    assert main(["run", str(built["pf"]), "--input", str(built["x"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"] == doc["outputs"]
    # the host's random spelling works on the simulator too; failures every 1500 cycles cannot progress
    assert main(["run", str(built["pf"]), "--on", "sim", "--input", str(built["x"]), "--power-fail",
                 "every:1500", "--max-failures", "30"]) == 2
    err = capsys.readouterr().err
    assert "cannot make progress on the simulator" in err and "exit status 3" in err
