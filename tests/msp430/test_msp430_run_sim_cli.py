"""End to end on the command line: ``freeml-tx MODEL -o DIR --target msp430fr5994``, ``make -C DIR
msp430`` with only MSP430_GCC_ROOT, and ``freeml-tx run DIR --on sim`` against ``--on host``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from msp430_testlib import REPO, msp430_tc  # noqa: F401

from transpiler.cli import main
from transpiler.toolchain import Msp430Toolchain

SAMPLE = "cnn_digits"   # a classifier with a class-index output, small memory model


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, msp430_tc: Msp430Toolchain) -> Path:  # noqa: F811
    if not (REPO / "samples" / f"{SAMPLE}.onnx").is_file():
        pytest.skip(f"samples/{SAMPLE}.onnx is absent (python samples/make_all.py makes it)")
    out = tmp_path_factory.mktemp("cli") / "build"
    rc = main([str(REPO / "samples" / f"{SAMPLE}.onnx"), "-o", str(out), "--target", "msp430fr5994",
               "--data", str(REPO / "samples" / f"{SAMPLE}.npz")])
    assert rc == 0
    return out


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["run", *args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_make_msp430_with_only_the_root_variable(package: Path, msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    env = {k: v for k, v in os.environ.items() if k != "MSP430_GCC_ROOT"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not (Path(p) / "msp430-elf-gcc").exists())
    env["MSP430_GCC_ROOT"] = str(msp430_tc.root)
    proc = subprocess.run(["make", "-C", str(package), "msp430"], capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    man = json.loads((package / "manifest.json").read_text())
    assert (package / f"{man['c_name']}.elf").is_file() and (package / f"{man['c_name']}.map").is_file()
    assert man["target"] == "msp430fr5994" and man["plan"]["memory_model"] == "small"


def test_run_on_sim_equals_host(package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = np.load(REPO / "samples" / f"{SAMPLE}.npz")["x"][:3]
    np.save(tmp_path / "x3.npy", x)
    rc, host_js, err = _run(capsys, str(package), "--input", str(tmp_path / "x3.npy"), "--json")
    assert rc == 0, err
    rc, sim_js, err = _run(capsys, str(package), "--on", "sim", "--input", str(tmp_path / "x3.npy"), "--json")
    assert rc == 0, err
    host, sim = json.loads(host_js), json.loads(sim_js)
    assert sim["outputs"] == host["outputs"] and sim["classes"] == host["classes"] and sim["samples"] == 3
    s = sim["sim"]
    assert s["inferences"] == 3 and len(s["cycles"]) == 3 and len(s["instructions"]) == 3
    assert all(0 < i < c for c, i in zip(s["cycles"], s["instructions"]))
    assert s["total_cycles"] > sum(s["cycles"])
    assert "sim" not in host

    np.save(tmp_path / "x1.npy", x[:1])
    rc, text, err = _run(capsys, str(package), "--on", "sim", "--input", str(tmp_path / "x1.npy"),
                         "--output", str(tmp_path / "y.npy"))
    assert rc == 0, err
    assert "instructions per inference" in text and f"class {host['classes'][0]}" in text
    assert f"{s['cycles'][0]:,} cycles" in text     # the same input costs the same cycles
    y = np.load(tmp_path / "y.npy")
    assert np.array_equal(y.reshape(-1), np.asarray(host["outputs"]["/fc/Gemm_output_0"][0]).reshape(-1))


def test_run_on_sim_without_toolchain(package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    np.save(tmp_path / "x.npy", np.load(REPO / "samples" / f"{SAMPLE}.npz")["x"][:1])
    monkeypatch.setenv("MSP430_GCC_ROOT", str(tmp_path / "none"))
    rc, _out, err = _run(capsys, str(package), "--on", "sim", "--input", str(tmp_path / "x.npy"))
    assert rc == 2 and "msp430-elf-gcc" in err and "hint:" in err


def test_compile_target_checks_the_part(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([str(REPO / "samples" / f"{SAMPLE}.onnx"), "-o", str(tmp_path / "o"), "--target", "msp430fr5994",
               "--fram", "512KiB"])
    err = capsys.readouterr().err
    assert rc == 2 and "more than the MSP430FR5994 has" in err and not (tmp_path / "o").exists()
