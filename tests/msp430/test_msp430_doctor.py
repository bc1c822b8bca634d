"""``freeml-tx doctor``: clear lines for what is found and what is missing; exit status 0."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path

import pytest

from transpiler.cli import doctor_cmd


def _fake_prefix(root: Path, *, patched: bool = True) -> Path:
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("msp430-elf-gcc", 'echo "msp430-elf-gcc (fake) 12.2.0"'),
                       ("msp430-elf-run", 'echo "GNU simulator (SIM) 13.1"\n'
                        + ("# MSP430_SIM_STATS MSP430_SIM_POWER_FAIL" if patched else ""))):
        p = bin_dir / name
        p.write_text("#!/bin/sh\n" + text + "\n")
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return root


def _lines(checks: list[doctor_cmd.Check]) -> str:
    return doctor_cmd.render(checks)


def test_msp430_found_via_root(tmp_path: Path) -> None:
    root = _fake_prefix(tmp_path / "tc")
    text = _lines(doctor_cmd.msp430_checks({"MSP430_GCC_ROOT": str(root), "PATH": ""}, roots=[]))
    assert f"{root}/bin/msp430-elf-gcc (via MSP430_GCC_ROOT): msp430-elf-gcc (fake) 12.2.0" in text
    assert f"{root}/bin/msp430-elf-run: GNU simulator (SIM) 13.1" in text
    assert "simulator patch            yes" in text
    assert "MISSING" not in text


def test_msp430_missing_gives_install_hint(tmp_path: Path) -> None:
    checks = doctor_cmd.msp430_checks({"PATH": "/nonexistent"}, roots=[tmp_path / "opt"])
    text = _lines(checks)
    assert "MISSING msp430-elf-gcc" in text
    assert "hint: install it with tools/msp430-toolchain.sh" in text
    assert "summary: missing msp430-elf-gcc" in text


def test_unpatched_simulator_is_flagged(tmp_path: Path) -> None:
    root = _fake_prefix(tmp_path / "tc", patched=False)
    text = _lines(doctor_cmd.msp430_checks({"MSP430_GCC_ROOT": str(root), "PATH": ""}, roots=[]))
    assert "MISSING simulator patch" in text and "tools/msp430-toolchain.sh" in text


def test_python_and_host_sections() -> None:
    checks = doctor_cmd.python_checks() + doctor_cmd.host_checks({"PATH": "/nonexistent"})
    names = {c.name for c in checks}
    assert {"python", "numpy", "onnx", "lark"} <= names
    numpy_check = next(c for c in checks if c.name == "numpy")
    assert numpy_check.ok and numpy_check.detail[0].isdigit()
    cc = next(c for c in checks if c.name == "cc")
    assert not cc.ok and cc.hint == "apt-get install gcc"
    valgrind = next(c for c in checks if c.name == "valgrind")
    assert valgrind.optional and "--  " in _lines([valgrind])


def test_run_prints_report_and_exits_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MSP430_GCC_ROOT", str(tmp_path / "missing"))
    parser = argparse.ArgumentParser()
    doctor_cmd.add_parser(parser.add_subparsers())
    args = parser.parse_args(["doctor"])
    assert doctor_cmd.run(args) == 0
    out = capsys.readouterr().out
    for title in ("Python:", "host tools:", "MSP430 toolchain:", "summary:"):
        assert title in out
    assert "MISSING msp430-elf-gcc" in out and "MSP430_GCC_ROOT=" in out
    assert doctor_cmd.run(parser.parse_args(["doctor", "--json"])) == 0
    data = json.loads(capsys.readouterr().out)
    assert any(c["name"] == "msp430-elf-gcc" and not c["ok"] for c in data)


def test_doctor_is_a_cli_command(capsys: pytest.CaptureFixture[str]) -> None:
    from transpiler import cli

    assert "doctor_cmd" in cli.COMMAND_MODULES
    args = cli.build_parser().parse_args(["doctor"])
    assert args._command_module is doctor_cmd
    assert doctor_cmd.run(args) == 0
    assert "summary:" in capsys.readouterr().out
