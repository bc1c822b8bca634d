#!/usr/bin/env bash
# msp430-toolchain.sh - install the msp430-elf toolchain (GCC 12, binutils, the patched simulator)
# that freeml-tx uses for the MSP430FR5994 target, on a Debian machine.
#
# Usage: tools/msp430-toolchain.sh [--prefix DIR] [--tarball FILE] [--build] [--force]
#   --prefix DIR     where to install (default: /opt/msp430-elf when /opt is writable, else
#                    $HOME/.local/msp430-elf; or $MSP430_PREFIX)
#   --tarball FILE   the prebuilt, relocatable toolchain (default: $MSP430_TOOLCHAIN_TARBALL, else
#                    ../shared/toolchains/msp430/msp430-elf-toolchain.tar.xz beside the project)
#   --build          build from Debian source packages instead (12-14 min on 2 cores): runs the
#                    bundle's build.sh, or tools/msp430/build.sh (a copy of it) without the bundle
#   --force          install even when a working toolchain is already there
#
# Idempotent: when a working toolchain (compiler runs, simulator with freeml-tx's patch) is
# already found - $MSP430_GCC_ROOT, PATH, the prefix, /opt/msp430-elf, ~/.local/msp430-elf - it
# says where and exits 0. Installs the runtime libraries libmpc3/libmpfr6 with apt-get when they
# are missing. Afterwards: export PATH=<prefix>/bin:$PATH (or MSP430_GCC_ROOT=<prefix>).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$here/.." && pwd)
bundle="$project/../shared/toolchains/msp430"

prefix=${MSP430_PREFIX:-}
tarball=${MSP430_TOOLCHAIN_TARBALL:-}
build=0
force=0
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --tarball) tarball=${2:?--tarball needs a file}; shift 2 ;;
        --tarball=*) tarball=${1#--tarball=}; shift ;;
        --build) build=1; shift ;;
        --force) force=1; shift ;;
        -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "msp430-toolchain: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

say() { printf 'msp430-toolchain: %s\n' "$*"; }
die() { printf 'msp430-toolchain: error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

LDCONFIG=$(command -v ldconfig 2>/dev/null || echo /sbin/ldconfig)

# The runtime libraries GCC's cc1 links against (libzstd1 is always present).
ensure_runtime_libs() {
    local missing=() lib pkg
    for pair in libmpc.so.3:libmpc3 libmpfr.so.6:libmpfr6 libgmp.so.10:libgmp10; do
        lib=${pair%%:*}; pkg=${pair#*:}
        if ! "$LDCONFIG" -p 2>/dev/null | grep -q "$lib"; then missing+=("$pkg"); fi
    done
    if [ ${#missing[@]} -eq 0 ]; then return 0; fi
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install them by hand"
    say "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
        $SUDO apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >/dev/null; }
}

# works DIR: DIR/bin has a compiler that runs and the patched simulator.
works() {
    local bin=$1/bin
    [ -x "$bin/msp430-elf-gcc" ] && [ -x "$bin/msp430-elf-run" ] || return 1
    "$bin/msp430-elf-gcc" --version >/dev/null 2>&1 || return 1
    grep -q MSP430_SIM_STATS "$bin/msp430-elf-run" 2>/dev/null || return 1
}

# Candidate prefixes, in the order freeml-tx searches them (transpiler/toolchain.py).
candidates=()
[ -n "${MSP430_GCC_ROOT:-}" ] && candidates+=("$MSP430_GCC_ROOT")
if gcc_on_path=$(command -v msp430-elf-gcc 2>/dev/null); then
    candidates+=("$(cd "$(dirname "$(readlink -f "$gcc_on_path")")/.." && pwd)")
fi
[ -n "$prefix" ] && candidates+=("$prefix")
candidates+=(/opt/msp430-elf "$HOME/.local/msp430-elf")

if [ "$force" = 0 ]; then
    for c in "${candidates[@]}"; do
        if [ -x "$c/bin/msp430-elf-gcc" ] && ! "$c/bin/msp430-elf-gcc" --version >/dev/null 2>&1; then
            ensure_runtime_libs    # installed but cc1's libraries are missing (a fresh machine)
        fi
        if works "$c"; then
            say "already installed: $c ($("$c/bin/msp430-elf-gcc" --version | head -n1))"
            case ":$PATH:" in *":$c/bin:"*) ;; *) say "to use it: export PATH=$c/bin:\$PATH" ;; esac
            exit 0
        fi
    done
fi

if [ -z "$prefix" ]; then
    if { [ -d /opt ] && [ -w /opt ]; } || { [ ! -e /opt ] && [ -w / ]; }; then
        prefix=/opt/msp430-elf
    else
        prefix=$HOME/.local/msp430-elf
    fi
fi
case "$prefix" in /*) ;; *) prefix=$(pwd)/$prefix ;; esac

if [ "$build" = 0 ]; then
    [ -n "$tarball" ] || tarball=$bundle/msp430-elf-toolchain.tar.xz
    if [ ! -f "$tarball" ]; then
        say "no tarball at $tarball: building from Debian source packages instead"
        build=1
    fi
fi

if [ "$build" = 1 ]; then
    if [ -x "$bundle/build.sh" ] || [ -f "$bundle/build.sh" ]; then
        say "building with $bundle/build.sh into $prefix (12-14 minutes)"
        bash "$bundle/build.sh" "$prefix"
    else
        say "building with tools/msp430/build.sh into $prefix (12-14 minutes)"
        PATCH=$here/msp430/sim-fram-count.patch bash "$here/msp430/build.sh" "$prefix"
    fi
else
    say "unpacking $tarball into $prefix"
    parent=$(dirname "$prefix")
    mkdir -p "$parent" || die "cannot create $parent (try --prefix \$HOME/.local/msp430-elf)"
    tmp=$(mktemp -d "$parent/.msp430-elf-unpack.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    tar -xJf "$tarball" -C "$tmp"
    [ -x "$tmp/msp430-elf/bin/msp430-elf-gcc" ] || die "$tarball does not hold msp430-elf/bin/msp430-elf-gcc"
    rm -rf "$prefix"
    mv "$tmp/msp430-elf" "$prefix"
fi

ensure_runtime_libs
works "$prefix" || die "$prefix/bin/msp430-elf-gcc does not run or the simulator lacks the patch: $("$prefix/bin/msp430-elf-gcc" --version 2>&1 | head -n1)"
say "installed: $prefix ($("$prefix/bin/msp430-elf-gcc" --version | head -n1))"
say "simulator: $("$prefix/bin/msp430-elf-run" --version 2>&1 | head -n1), with freeml-tx's patch"
say "to use it: export PATH=$prefix/bin:\$PATH   (or MSP430_GCC_ROOT=$prefix)"
