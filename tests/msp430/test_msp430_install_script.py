"""tools/msp430-toolchain.sh: unpacks the bundle's tarball to a prefix, then is idempotent."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from msp430_testlib import REPO

SCRIPT = REPO / "tools" / "msp430-toolchain.sh"
TARBALL = Path(os.environ.get("MSP430_TOOLCHAIN_TARBALL")
               or REPO.parent / "shared" / "toolchains" / "msp430" / "msp430-elf-toolchain.tar.xz")


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


def _clean_env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path / "home")}


def test_usage(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    r = _run("--help", env=env)
    assert r.returncode == 0 and "--prefix DIR" in r.stdout
    r = _run("--bogus", env=env)
    assert r.returncode == 2 and "unknown argument" in r.stderr


def test_unpack_then_idempotent(tmp_path: Path) -> None:
    if not TARBALL.is_file():
        pytest.skip(f"no toolchain tarball at {TARBALL}")
    env = _clean_env(tmp_path)
    prefix = tmp_path / "inst" / "msp430-elf"
    r = _run("--force", "--prefix", str(prefix), "--tarball", str(TARBALL), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"installed: {prefix}" in r.stdout and "with freeml-tx's patch" in r.stdout
    gcc = prefix / "bin" / "msp430-elf-gcc"
    assert subprocess.run([str(gcc), "--version"], capture_output=True, check=False).returncode == 0
    assert not list((tmp_path / "inst").glob(".msp430-elf-unpack.*")), "temporary directory left"
    # second run: finds it and does nothing
    r = _run("--prefix", str(prefix), env=env)
    assert r.returncode == 0 and f"already installed: {prefix}" in r.stdout
    assert f"export PATH={prefix}/bin" in r.stdout
    # MSP430_GCC_ROOT is searched first
    r = _run(env={**env, "MSP430_GCC_ROOT": str(prefix)})
    assert r.returncode == 0 and f"already installed: {prefix}" in r.stdout


def test_bad_tarball_fails_clearly(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    (tmp_path / "junk").mkdir()
    bad = tmp_path / "bad.tar.xz"
    subprocess.run(["tar", "-cJf", str(bad), "-C", str(tmp_path), "junk"], check=True)
    r = _run("--force", "--prefix", str(tmp_path / "p" / "msp430-elf"), "--tarball", str(bad), env=env)
    assert r.returncode != 0 and "does not hold msp430-elf/bin/msp430-elf-gcc" in r.stderr
