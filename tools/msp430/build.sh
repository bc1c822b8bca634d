#!/usr/bin/env bash
# Copied from shared/toolchains/msp430/build.sh (the freeml-tx project's msp430 toolchain bundle) so that
# tools/msp430-toolchain.sh can rebuild the toolchain when neither the bundle nor its tarball is
# at hand. Unchanged apart from this note; the simulator patch is sim-fram-count.patch beside it.
# build.sh - build a relocatable msp430-elf toolchain from Debian bookworm source packages.
#
#   binutils 2.40          (Debian package binutils-source)
#   GCC 12.2.0, C only     (gcc-12-source) + libgcc for every multilib (430, 430X, large, ...)
#   msp430-elf-run         (the GNU msp430 simulator from gdb-source 13.1) with our patch
#                          sim-fram-count.patch: instruction/cycle statistics and power-failure
#                          injection (see README.md next to this script)
#
# Usage:
#   ./build.sh [PREFIX [TARBALL]]
#     PREFIX   install prefix (default /opt/msp430-elf). The installed tree is relocatable:
#              it may be moved or unpacked anywhere afterwards.
#     TARBALL  optional: also pack PREFIX into this .tar.xz (top-level directory = basename PREFIX)
#
# Environment knobs (all optional):
#   BUILD_DIR=/tmp/msp430-elf-build   scratch directory (sources + build trees, ~1.8 GB)
#   JOBS=$(nproc)                     parallel make jobs
#   SKIP_APT=1                        do not call apt-get (packages must already be installed)
#   KEEP_BUILD=1                      keep BUILD_DIR afterwards (default: delete it on success)
#   PATCH=<file>                      simulator patch (default: sim-fram-count.patch next to this script)
#
# Needs: Debian bookworm (or a derivative with the same source packages), about 2.5 GB free disk,
# root (or sudo) for apt-get. No network access beyond the Debian archive.
# Takes 12-14 minutes on 2 cores (binutils 2 min, GCC 7.5-9 min, libgcc 1 min, simulator 1 min).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=${1:-/opt/msp430-elf}
TARBALL=${2:-${TARBALL:-}}
BUILD_DIR=${BUILD_DIR:-/tmp/msp430-elf-build}
JOBS=${JOBS:-$(nproc)}
PATCH=${PATCH:-$SCRIPT_DIR/sim-fram-count.patch}
TARGET=msp430-elf

# Resolve to absolute paths (configure --prefix needs one; the tree is relocatable afterwards).
mkdir -p "$PREFIX" "$BUILD_DIR"
PREFIX=$(cd "$PREFIX" && pwd)
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
if [ -n "$TARBALL" ]; then
  mkdir -p "$(dirname "$TARBALL")"
  TARBALL=$(cd "$(dirname "$TARBALL")" && pwd)/$(basename "$TARBALL")
fi
[ -f "$PATCH" ] || { echo "build.sh: simulator patch not found: $PATCH" >&2; exit 1; }
PATCH=$(cd "$(dirname "$PATCH")" && pwd)/$(basename "$PATCH")

T_START=$(date +%s)
log() { printf '[build.sh %4ds] %s\n' "$(( $(date +%s) - T_START ))" "$*"; }

# Run a long command with its output in a log file; on failure show the tail of the log.
run_logged() {
  local name=$1; shift
  if ! "$@" > "$BUILD_DIR/$name.log" 2>&1; then
    echo "build.sh: step '$name' failed; last lines of $BUILD_DIR/$name.log:" >&2
    tail -n 40 "$BUILD_DIR/$name.log" >&2
    exit 1
  fi
}

# ---------------------------------------------------------------------------------------------
# 1. Debian packages: the three source packages plus the host build dependencies.
# ---------------------------------------------------------------------------------------------
PKGS="binutils-source gcc-12-source gdb-source texinfo bison flex libgmp-dev libmpfr-dev libmpc-dev
      build-essential zlib1g-dev xz-utils patch file"
if [ "${SKIP_APT:-0}" != 1 ]; then
  missing=""
  for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    log "apt-get install:$missing"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
  fi
fi

# Source tarballs shipped by those packages (bookworm: binutils 2.40, gcc 12.2.0, gdb 13.1).
BU_TAR=$(ls /usr/src/binutils/binutils-*.tar.xz | head -n1)
GCC_TAR=$(ls /usr/src/gcc-12/gcc-12.*-dfsg.tar.xz | head -n1)
GDB_TAR=/usr/src/gdb.tar.xz
for f in "$BU_TAR" "$GCC_TAR" "$GDB_TAR"; do
  [ -f "$f" ] || { echo "build.sh: missing source tarball $f" >&2; exit 1; }
done
log "sources: $(basename "$BU_TAR") $(basename "$GCC_TAR") gdb.tar.xz ($(dpkg-query -W -f='${Version}' gdb-source))"
log "prefix: $PREFIX   build dir: $BUILD_DIR   jobs: $JOBS"

export PATH="$PREFIX/bin:$PATH"
# Host compiler flags: no debug info (faster build, smaller binaries). GCC itself is built at -O1,
# which roughly halves its build time and does not matter for compiling small MCU programs;
# binutils and the simulator (whose speed matters for tests) are built at -O2.
HOST_O2="-O2 -g0"
HOST_O1="-O1 -g0"

# ---------------------------------------------------------------------------------------------
# 2. binutils 2.40 for msp430-elf (~2 min)
# ---------------------------------------------------------------------------------------------
if [ ! -f "$BUILD_DIR/.done-binutils" ]; then
  log "binutils: unpack"
  rm -rf "$BUILD_DIR/binutils-src" "$BUILD_DIR/binutils-build"
  mkdir -p "$BUILD_DIR/binutils-src" "$BUILD_DIR/binutils-build"
  tar -xf "$BU_TAR" -C "$BUILD_DIR/binutils-src" --strip-components=1
  cd "$BUILD_DIR/binutils-build"
  log "binutils: configure + make"
  run_logged binutils-configure ../binutils-src/configure --target=$TARGET --prefix="$PREFIX" \
      --disable-nls --disable-werror --disable-gdb --disable-gdbserver --disable-sim \
      --disable-gprofng --disable-readline --disable-libdecnumber \
      CFLAGS="$HOST_O2" CXXFLAGS="$HOST_O2"
  run_logged binutils-make make -j"$JOBS"
  run_logged binutils-install make install
  touch "$BUILD_DIR/.done-binutils"
fi

# ---------------------------------------------------------------------------------------------
# 3. GCC 12.2, C only, with libgcc for all multilibs (~12 min)
#    No --with-as/--with-ld: gcc then finds as/ld relative to its own location
#    (PREFIX/msp430-elf/bin), which keeps the installed tree relocatable.
# ---------------------------------------------------------------------------------------------
if [ ! -f "$BUILD_DIR/.done-gcc" ]; then
  log "gcc: unpack"
  rm -rf "$BUILD_DIR/gcc-src" "$BUILD_DIR/gcc-build"
  mkdir -p "$BUILD_DIR/gcc-src" "$BUILD_DIR/gcc-build"
  tar -xf "$GCC_TAR" -C "$BUILD_DIR/gcc-src" --strip-components=1
  GCC_VER=$(cat "$BUILD_DIR/gcc-src/gcc/BASE-VER")
  cd "$BUILD_DIR/gcc-build"
  log "gcc $GCC_VER: configure"
  run_logged gcc-configure ../gcc-src/configure --target=$TARGET --prefix="$PREFIX" \
      --enable-languages=c --without-headers --with-newlib \
      --disable-nls --disable-shared --disable-threads --disable-bootstrap \
      --disable-libssp --disable-libquadmath --disable-libgomp --disable-libatomic \
      --disable-lto --disable-plugin --disable-libcc1 \
      --with-pkgversion="freeml-tx msp430 toolchain, Debian gcc-12-source $(dpkg-query -W -f='${Version}' gcc-12-source)" \
      CFLAGS="$HOST_O1" CXXFLAGS="$HOST_O1"
  # Workaround: Debian's -dfsg tarball lacks the GFDL documentation (gcc/doc/tm.texi.in's
  # companions), and genhooks then fails with "No place specified to document hook".
  # Pretending the tm.texi check already ran skips it. It must be touched again before
  # install-gcc, which re-checks the stamp.
  mkdir -p gcc && touch gcc/s-tm-texi
  log "gcc: make all-gcc (the long step)"
  run_logged gcc-make make -j"$JOBS" all-gcc MAKEINFO=true
  touch gcc/s-tm-texi
  run_logged gcc-install make install-gcc MAKEINFO=true
  log "gcc: libgcc (all multilibs)"
  run_logged libgcc-make make -j"$JOBS" all-target-libgcc MAKEINFO=true
  run_logged libgcc-install make install-target-libgcc MAKEINFO=true
  touch "$BUILD_DIR/.done-gcc"
fi

# ---------------------------------------------------------------------------------------------
# 4. GNU msp430 simulator from gdb 13.1, patched (~5 min)
# ---------------------------------------------------------------------------------------------
if [ ! -f "$BUILD_DIR/.done-sim" ]; then
  log "sim: unpack gdb source"
  rm -rf "$BUILD_DIR/gdb-src" "$BUILD_DIR/sim-build"
  mkdir -p "$BUILD_DIR/gdb-src" "$BUILD_DIR/sim-build"
  tar -xf "$GDB_TAR" -C "$BUILD_DIR/gdb-src" --strip-components=1
  log "sim: apply $(basename "$PATCH")"
  patch -d "$BUILD_DIR/gdb-src" -p1 --forward < "$PATCH"
  cd "$BUILD_DIR/sim-build"
  log "sim: configure + make"
  run_logged sim-configure ../gdb-src/configure --target=$TARGET --prefix="$PREFIX" \
      --enable-sim --disable-gdb --disable-gdbserver --disable-ld --disable-gas \
      --disable-binutils --disable-gprof --disable-gprofng --disable-nls --disable-werror \
      --disable-readline --disable-libdecnumber --without-python \
      CFLAGS="$HOST_O2" CXXFLAGS="$HOST_O2"
  run_logged sim-make make -j"$JOBS" all-sim MAKEINFO=true
  run_logged sim-install make install-sim MAKEINFO=true
  touch "$BUILD_DIR/.done-sim"
fi

# ---------------------------------------------------------------------------------------------
# 5. Trim and strip the installed tree
# ---------------------------------------------------------------------------------------------
log "strip + trim $PREFIX"
# Documentation that is not needed for a build tool (the dfsg sources have no GCC manuals anyway).
rm -rf "$PREFIX/share/info" "$PREFIX/share/man" "$PREFIX/share/locale"
rm -rf "$PREFIX"/lib/gcc/$TARGET/*/install-tools "$PREFIX"/libexec/gcc/$TARGET/*/install-tools
# The simulator's embedding library and headers (for linking it into gdb), not needed.
rm -rf "$PREFIX/include/sim" "$PREFIX/lib/lib$TARGET-sim.a"
rmdir "$PREFIX/include" 2>/dev/null || true
find "$PREFIX" -name '*.la' -delete
# Host executables and shared objects: strip everything that is an x86-64 (host) ELF file.
find "$PREFIX" -type f | while read -r f; do
  case "$(file -b "$f")" in
    ELF*executable*|ELF*shared\ object*)
      # 'file' also reports msp430 ELF executables; only strip host binaries here.
      if file -b "$f" | grep -q 'TI msp430'; then continue; fi
      strip --strip-unneeded "$f" 2>/dev/null || strip "$f" ;;
  esac
done
# Target libraries and start files: drop debug info only (symbols are needed for linking).
find "$PREFIX/lib/gcc/$TARGET" -type f \( -name '*.a' -o -name '*.o' \) \
  -exec "$PREFIX/bin/$TARGET-strip" --strip-debug {} +
# Stripping copied the files that binutils installs twice as hard links
# (bin/msp430-elf-as == msp430-elf/bin/as, ...): link identical copies again.
for f in "$PREFIX/$TARGET"/bin/*; do
  g="$PREFIX/bin/$TARGET-$(basename "$f")"
  if [ -f "$g" ] && cmp -s "$f" "$g"; then ln -f "$g" "$f"; fi
done

# Build record + the simulator patch, inside the tree.
DOC="$PREFIX/share/doc/msp430-elf-toolchain"
mkdir -p "$DOC"
cp "$PATCH" "$DOC/sim-fram-count.patch"
{
  echo "msp430-elf toolchain built by build.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(. /etc/os-release && echo "$PRETTY_NAME") $(uname -m), $(gcc --version | head -n1)"
  for p in binutils-source gcc-12-source gdb-source; do
    echo "$p $(dpkg-query -W -f='${Version}' $p)"
  done
  echo "sim patch: sim-fram-count.patch sha256 $(sha256sum "$PATCH" | cut -d' ' -f1)"
  echo "gcc: $("$PREFIX/bin/$TARGET-gcc" --version | head -n1)"
  echo "binutils: $("$PREFIX/bin/$TARGET-ld" --version | head -n1)"
  echo "multilibs:"; "$PREFIX/bin/$TARGET-gcc" -print-multi-lib | sed 's/^/  /'
} > "$DOC/BUILDINFO"
log "installed size: $(du -sh "$PREFIX" | cut -f1)"

# ---------------------------------------------------------------------------------------------
# 6. Smoke test: compile, link and simulate a tiny program with the installed tools.
# ---------------------------------------------------------------------------------------------
SMOKE=$BUILD_DIR/smoke; rm -rf "$SMOKE"; mkdir -p "$SMOKE"; cd "$SMOKE"
cat > t.c <<'EOF'
volatile long a = 12345, b = 678, r;   /* volatile: forces a real 32-bit multiply (MPY32) */
int main (void) { r = a * b; return r != 8369910L; }
EOF
cat > start.S <<'EOF'
        .text
        .global _start
_start: mov     #0x3c00, r1
        call    #main
        cmp     #0, r12
        jne     .Lfail
.Lok:   jmp     .Lok            ; the simulator ends the run (exit 0) on a jump-to-self
.Lfail: mov     #0, r0          ; PC < 0x10: the simulator faults (exit 255)
EOF
cat > t.ld <<'EOF'
MEMORY { RAM (rw) : ORIGIN = 0x1C00, LENGTH = 0x2000
         FRAM (rx) : ORIGIN = 0x4000, LENGTH = 0xBF80 }
ENTRY(_start)
SECTIONS {
  .text : { *(.text*) *(.rodata*) } > FRAM
  .data : { *(.data*) } > FRAM      /* initialised data stays in FRAM: no copy loop needed */
  .bss  : { *(.bss*) *(COMMON) } > RAM
  /DISCARD/ : { *(.MSP430.attributes) }
}
EOF
"$PREFIX/bin/$TARGET-gcc" -mmcu=msp430fr5994 -O2 -ffreestanding -nostdlib -nostartfiles -T t.ld \
    start.S t.c -lgcc -lmul_f5 -Wl,--no-warn-rwx-segments -o t.elf
MSP430_SIM_STATS="$SMOKE/stats.json" "$PREFIX/bin/$TARGET-run" t.elf
grep -q '"instructions"' stats.json
log "smoke test passed: $(cat stats.json | tr -d '\n')"

# ---------------------------------------------------------------------------------------------
# 7. Optional tarball
# ---------------------------------------------------------------------------------------------
if [ -n "$TARBALL" ]; then
  log "pack $TARBALL"
  tar -C "$(dirname "$PREFIX")" --owner=0 --group=0 --numeric-owner --sort=name \
      -cf - "$(basename "$PREFIX")" | xz -9 -T"$JOBS" > "$TARBALL.tmp"
  mv "$TARBALL.tmp" "$TARBALL"
  log "tarball: $(du -h "$TARBALL" | cut -f1) ($(stat -c %s "$TARBALL") bytes)"
fi

if [ "${KEEP_BUILD:-0}" != 1 ]; then
  # Remove only what this script created there.
  cd "$BUILD_DIR" && rm -rf binutils-src binutils-build gcc-src gcc-build gdb-src sim-build smoke \
    ./*.log .done-binutils .done-gcc .done-sim
  cd / && rmdir "$BUILD_DIR" 2>/dev/null || true
fi
log "done"
