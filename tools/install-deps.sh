#!/usr/bin/env bash
# Installs everything freeml-tx's tests need on a fresh Debian machine:
#   - the Python package with its test and sample extras (torch CPU 2.13.0 from the local wheel),
#   - host C compilers (gcc, clang) and valgrind,
#   - the msp430-elf toolchain + simulator (tools/msp430-toolchain.sh).
# Idempotent: what is already there is kept.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

need_apt=()
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v valgrind >/dev/null 2>&1 || need_apt+=(valgrind)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "install-deps: apt-get install ${need_apt[*]}"
    $SUDO apt-get install -y "${need_apt[@]}" >/dev/null 2>&1 || {
        $SUDO apt-get update >/dev/null && $SUDO apt-get install -y "${need_apt[@]}" >/dev/null; }
fi

echo "install-deps: pip install -e .[test,samples]"
python3 -m pip install --quiet --disable-pip-version-check "torch==2.13.0" 2>/dev/null \
    || echo "install-deps: torch 2.13.0 not available; torch-based tests will be skipped"
python3 -m pip install --quiet --disable-pip-version-check -e ".[test,samples]"

if [ -x tools/msp430-toolchain.sh ]; then
    bash tools/msp430-toolchain.sh || echo "install-deps: msp430 toolchain unavailable; simulator tests will be skipped"
fi
