"""Toolchain discovery (transpiler/toolchain.py): order, errors with hints, versions, the patch.

Most tests use fake toolchains (shell scripts named msp430-elf-gcc / msp430-elf-run in temporary
directories), so they run without the real one; the last ones check the real toolchain.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from msp430_testlib import msp430_tc  # noqa: F401

from transpiler.errors import ToolchainError
from transpiler.toolchain import (Msp430Toolchain, find_msp430_toolchain,
                                  find_msp430_toolchain_or_none, tool_version,
                                  toolchain_candidates)


def _script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def fake_toolchain(root: Path, *, tag: str, sim: bool = True, patched: bool = True,
                   gcc_body: str | None = None) -> Path:
    """A prefix with bin/msp430-elf-gcc (prints a version naming TAG) and optionally -run."""
    _script(root / "bin" / "msp430-elf-gcc",
            gcc_body or f'echo "msp430-elf-gcc ({tag}) 12.2.0"')
    if sim:
        marker = "# MSP430_SIM_STATS MSP430_SIM_POWER_FAIL" if patched else "# stock"
        _script(root / "bin" / "msp430-elf-run", f'echo "GNU simulator (SIM) 13.1"\n{marker}')
    return root


def test_msp430_gcc_root_wins(tmp_path: Path) -> None:
    a = fake_toolchain(tmp_path / "a", tag="root")
    b = fake_toolchain(tmp_path / "b", tag="path")
    c = fake_toolchain(tmp_path / "c", tag="default")
    env = {"MSP430_GCC_ROOT": str(a), "PATH": str(b / "bin")}
    tc = find_msp430_toolchain(env, roots=[c])
    assert tc.found_via == "MSP430_GCC_ROOT" and tc.root == a
    assert "(root)" in tc.gcc_version()
    assert tc.environ({"PATH": "/usr/bin"})["PATH"].startswith(str(a / "bin"))
    assert tc.environ({})["MSP430_GCC_ROOT"] == str(a)


def test_msp430_gcc_root_may_name_the_bin_directory(tmp_path: Path) -> None:
    a = fake_toolchain(tmp_path / "a", tag="root")
    tc = find_msp430_toolchain({"MSP430_GCC_ROOT": str(a / "bin"), "PATH": ""}, roots=[])
    assert tc.bin_dir == a / "bin"


def test_path_before_default_roots(tmp_path: Path) -> None:
    b = fake_toolchain(tmp_path / "b", tag="path")
    c = fake_toolchain(tmp_path / "c", tag="default")
    tc = find_msp430_toolchain({"PATH": f"/nonexistent:{b / 'bin'}"}, roots=[c])
    assert tc.found_via == "PATH" and tc.bin_dir == (b / "bin").resolve()


def test_default_roots_in_order(tmp_path: Path) -> None:
    opt = tmp_path / "opt" / "msp430-elf"
    local = fake_toolchain(tmp_path / "home" / ".local" / "msp430-elf", tag="local")
    tc = find_msp430_toolchain({"PATH": ""}, roots=[opt, local])
    assert tc.found_via == str(local)
    fake_toolchain(opt, tag="opt")
    assert find_msp430_toolchain({"PATH": ""}, roots=[opt, local]).found_via == str(opt)
    vias = [v for v, _ in toolchain_candidates({"PATH": "", "MSP430_GCC_ROOT": "/x"},
                                               roots=[opt, local])]
    assert vias == ["MSP430_GCC_ROOT", str(opt), str(local)]


def test_wrong_msp430_gcc_root_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    b = fake_toolchain(tmp_path / "b", tag="path")
    with pytest.raises(ToolchainError) as err:
        find_msp430_toolchain({"MSP430_GCC_ROOT": str(tmp_path / "nope"), "PATH": str(b / "bin")},
                              roots=[])
    assert "MSP430_GCC_ROOT" in err.value.message
    assert err.value.hint and "unset it" in err.value.hint


def test_nothing_found_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError) as err:
        find_msp430_toolchain({"PATH": "/nonexistent"}, roots=[tmp_path / "opt"])
    assert "not found" in err.value.message
    assert err.value.hint and "tools/msp430-toolchain.sh" in err.value.hint
    tc, reason = find_msp430_toolchain_or_none({"PATH": ""}, roots=[tmp_path / "opt"])
    assert tc is None and "tools/msp430-toolchain.sh" in reason


def test_simulator_required_beside_the_compiler(tmp_path: Path) -> None:
    a = fake_toolchain(tmp_path / "a", tag="nosim", sim=False)
    env = {"MSP430_GCC_ROOT": str(a), "PATH": ""}
    with pytest.raises(ToolchainError, match="msp430-elf-run is not beside it"):
        find_msp430_toolchain(env, roots=[])
    tc = find_msp430_toolchain(env, require_sim=False, roots=[])
    assert not tc.has_sim()


def test_patch_detection(tmp_path: Path) -> None:
    patched = find_msp430_toolchain({"MSP430_GCC_ROOT": str(fake_toolchain(tmp_path / "p", tag="p")),
                                     "PATH": ""}, roots=[])
    stock = find_msp430_toolchain({"MSP430_GCC_ROOT": str(fake_toolchain(tmp_path / "s", tag="s",
                                                                         patched=False)),
                                   "PATH": ""}, roots=[])
    assert patched.sim_patched() and not stock.sim_patched()
    assert patched.sim_version() == "GNU simulator (SIM) 13.1"


def test_compiler_that_does_not_start_names_the_libraries(tmp_path: Path) -> None:
    body = ('echo "cc1: error while loading shared libraries: libmpc.so.3: cannot open" >&2\n'
            "exit 127")
    a = fake_toolchain(tmp_path / "a", tag="broken", gcc_body=body)
    tc = find_msp430_toolchain({"MSP430_GCC_ROOT": str(a), "PATH": ""}, roots=[])
    with pytest.raises(ToolchainError) as err:
        tc.gcc_version()
    assert err.value.hint and "libmpc3" in err.value.hint
    none, reason = find_msp430_toolchain_or_none({"MSP430_GCC_ROOT": str(a), "PATH": ""}, roots=[])
    assert none is None and "libmpc3" in reason


def test_tool_version_of_a_missing_program(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError, match="not found"):
        tool_version(tmp_path / "msp430-elf-gcc")


def test_real_toolchain(msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    assert "msp430-elf-gcc" in msp430_tc.gcc_version() and "12." in msp430_tc.gcc_version()
    assert "simulator" in msp430_tc.sim_version().lower()
    assert msp430_tc.sim_patched(), "the freeml-tx bundle's simulator carries the patch"
    for tool in ("objdump", "size", "nm"):
        assert os.access(msp430_tc.tool(tool), os.X_OK)
    # MSP430_GCC_ROOT pointing at it finds the same directory
    again = find_msp430_toolchain({"MSP430_GCC_ROOT": str(msp430_tc.root), "PATH": ""}, roots=[])
    assert again.bin_dir == msp430_tc.bin_dir
