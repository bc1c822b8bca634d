"""The MSP430FR5994 build of a generated C package: ``msp430.mk``.

The host ``Makefile`` that the C emitter writes ends with ``-include msp430.mk``; then

    make -C build msp430                      # -> build/<model>.elf (needs msp430-elf-gcc)
    make -C build msp430 MSP430_COUNTERS=1    # the same with per-step cycle counts
    make -C build msp430-run                  # run it in msp430-elf-run, stats in <model>.stats.json
    make -C build msp430 MSP430_RUN_COUNTERS=1   # only main_sim.c counts: a "run" line per input,
                                              # the model's code is exactly that of a plain build

The link also writes ``<model>.map`` (GNU ld map): ``freeml-tx report`` reads it to split the ELF's
sections into the model's bytes and the simulator harness's (transpiler/msp430_size.py).

The toolchain comes from ``MSP430_GCC_ROOT`` (``$MSP430_GCC_ROOT/bin/msp430-elf-gcc``) or ``PATH``, and
as a last resort from the places ``tools/msp430-toolchain.sh`` installs to (/opt/msp430-elf,
~/.local/msp430-elf). Without it ``make msp430`` stops with a message saying how to get it; the
host targets never need it.

The program is ``runtime_c/platform/msp430/main_sim.c`` around the generated model: it includes the
model header (``-DFX_MODEL_HEADER``), runs ``FX_RUN`` on each input of ``sim_input.c`` (written by
:func:`transpiler.sim.write_sim_input`) and prints the outputs through CIO. Objects go to
``msp430-obj/`` so they never mix with the host build's; a stamp of the flags rebuilds them when
``MSP430_COUNTERS`` or other flags change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from transpiler.errors import InputError

#: Bytes of lower FRAM (0x4000-0xFF7F) that code, constants and .persistent share.
LOWER_FRAM_BYTES = 0xBF80
#: Bytes of HIFRAM (0x10000-0x43FFF), reachable only in the large memory model (-mlarge).
HIFRAM_BYTES = 0x34000
#: Lower FRAM kept free for code, the runtime, CIO and sim_input when deciding on -mlarge.
DEFAULT_CODE_RESERVE = 16 * 1024

#: Compiler flags of every MSP430 object (the -mlarge flag is added by msp430_makefile).
MSP430_BASE_CFLAGS = (
    "-mmcu=msp430fr5994", "-O2", "-ffreestanding", "-DFX_USE_MPY32",
    "-Wall", "-Wextra", "-Werror", "--param=min-pagesize=0",
    "-ffunction-sections", "-fdata-sections",
)
#: Link flags (before the objects); the libraries come after them.
MSP430_BASE_LDFLAGS = (
    "-mmcu=msp430fr5994", "-nostdlib", "-nostartfiles", "-Wl,--gc-sections",
    "-Wl,--no-warn-rwx-segments", "-Wl,--orphan-handling=error",
)
MSP430_LDLIBS = ("-lgcc", "-lmul_f5")

#: Files of runtime_c/ (relative to it) that an MSP430 build needs besides the kernels.
MSP430_RUNTIME_FILES = (
    "fx_mac.h", "fx_mac_mpy32.h", "fx_platform.h",
    "platform/msp430/fr5994.ld", "platform/msp430/crt0.S",
    "platform/msp430/cio.c", "platform/msp430/cio.h",
    "platform/msp430/fx_platform_msp430.c", "platform/msp430/fx_platform_msp430.h",
    "platform/msp430/main_sim.c", "platform/msp430/main_gnet_sim.c",
)

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SOURCE_RE = re.compile(r"^[A-Za-z0-9_./+-]+\.(c|S)$")


#: The largest object the small memory model can declare (its size_t is 16 bits: GCC rejects
#: ``int16_t w[16384]`` with "size '32768' of array 'w' exceeds maximum object size '32767'").
SMALL_MODEL_MAX_OBJECT = 32767


def needs_large_model(fram_bytes: int, *, largest_object: int = 0,
                      code_reserve: int = DEFAULT_CODE_RESERVE) -> bool:
    """True when the model needs ``-mlarge``.

    That is when its FRAM data (constants and FRAM-resident buffers, ``fram_bytes``) does not fit
    lower FRAM beside ``code_reserve`` bytes of code, or when one table is larger than the small
    model can declare (``largest_object`` > 32767 bytes). The generated code must then mark its
    big tables ``__attribute__((upper))`` (const, -> .upper.rodata) or
    ``__attribute__((section(".upper.persistent")))`` (writable, FRAM), which places them in HIFRAM.
    """
    return (fram_bytes + code_reserve > LOWER_FRAM_BYTES
            or largest_object > SMALL_MODEL_MAX_OBJECT)


def _object_name(source: str) -> str:
    """``runtime/fx_conv.c`` -> ``msp430-obj/runtime__fx_conv.o`` (flat, no clashes)."""
    stem = source.rsplit(".", 1)[0]
    return "$(MSP430_OBJDIR)/" + stem.replace("/", "__").replace(".", "_") + ".o"


def _check_source(path: str) -> None:
    if not _SOURCE_RE.match(path) or path.startswith("/") or ".." in path.split("/"):
        raise InputError(
            f"msp430.mk: source path {path!r} is not a relative .c/.S path of plain characters",
            hint="pass paths relative to the build directory, e.g. 'runtime/fx_conv.c'")


def msp430_makefile(model_name: str, sources: Sequence[str], large: bool, *,
                    runtime_dir: str = "runtime",
                    header: str | None = None,
                    run_symbol: str | None = None,
                    input_len: int | str | None = None,
                    output_len: int | str | None = None,
                    sim_input: str = "sim_input.c",
                    new_input_symbol: str | None = None,
                    include_dirs: Sequence[str] = (".",),
                    command_line: str | None = None,
                    gnet: bool = False,
                    sim_energy: str = "sim_energy.c") -> str:
    """Return the text of ``msp430.mk`` for a generated package.

    Args:
        model_name: the model's C name (``lenet5_mnist``); the ELF is ``<model_name>.elf``.
        sources: C files of the model and of the runtime kernels, relative to the build directory
            (``lenet5_mnist.c``, ``runtime/fx_conv.c``, ...). The platform files (crt0.S, cio.c,
            fx_platform_msp430.c, main_sim.c) and ``sim_input`` are added here; do not list them.
        large: build with ``-mlarge`` (20-bit pointers; needed when tables live in HIFRAM, see
            :func:`needs_large_model`).
        runtime_dir: where the emitter copied runtime_c/ (its files listed in
            :data:`MSP430_RUNTIME_FILES` must be there, same relative layout).
        header: the generated header (default ``<model_name>.h``).
        run_symbol: ``int run(const int16_t *in, int16_t *out)`` (default ``fx_<model_name>_run``).
        input_len, output_len: int16 elements of one input / output, as numbers or as macro names
            defined in the header (default ``FX_<MODEL_NAME>_IN_SIZE`` / ``..._OUT_SIZE``, what
            the C emitter's header defines).
        sim_input: the generated inputs file (see :func:`transpiler.sim.write_sim_input`).
        new_input_symbol: ``void fn(void)`` that main_sim.c calls once before the first FX_RUN
            call of each input (not again when the run resumes after a power failure), e.g. the
            model's progress reset; None when FX_RUN starts a new inference by itself.
        include_dirs: extra include directories (the build directory by default).
        command_line: the freeml-tx command line, written into the header comment.
        gnet: the model has a gNet: ``make msp430 MSP430_GNET=1`` (with its own MSP430_OBJDIR and
            MSP430_ELF) builds the energy-trace program instead, ``main_gnet_sim.c`` with the
            generated trace ``sim_energy`` (transpiler/gnet_sim.py writes both the file and the
            power-failure schedule), the model compiled with the energy hooks (``MSP430_GNET_LEVEL=``:
            without fx_energy_level, a device that cannot read its energy).

    Raises:
        InputError: a name or path that cannot appear in a Makefile.
    """
    if not _NAME_RE.match(model_name):
        raise InputError(f"msp430.mk: model name {model_name!r} is not a C identifier",
                         hint="the emitter must sanitize the model name (letters, digits, _)")
    for src in list(sources) + [sim_input] + ([sim_energy] if gnet else []):
        _check_source(src)
    upper = model_name.upper()
    header = header or f"{model_name}.h"
    run_symbol = run_symbol or f"fx_{model_name}_run"
    in_len = str(input_len) if input_len is not None else f"FX_{upper}_IN_SIZE"
    out_len = str(output_len) if output_len is not None else f"FX_{upper}_OUT_SIZE"
    for what, value in (("header", header), ("run_symbol", run_symbol), ("input_len", in_len),
                        ("output_len", out_len), ("new_input_symbol", new_input_symbol or "")):
        if value and not re.match(r"^[A-Za-z0-9_./+-]+$", value):
            raise InputError(f"msp430.mk: {what} {value!r} contains characters a Makefile cannot carry")
    rt = runtime_dir.rstrip("/") or "."
    plat = f"{rt}/platform/msp430"

    all_sources: list[str] = list(dict.fromkeys(list(sources) + [
        f"{plat}/cio.c", f"{plat}/fx_platform_msp430.c", f"{plat}/main_sim.c", sim_input]))
    includes = " ".join(f"-I{d}" for d in list(include_dirs) + [rt, plat])
    gnet_sources = [f"{plat}/main_gnet_sim.c", sim_energy] if gnet else []
    main_obj = _object_name(f"{plat}/main_sim.c")

    out: list[str] = []
    w = out.append
    w(f"# msp430.mk - MSP430FR5994 build of {model_name} (generated by freeml-tx; do not edit).")
    if command_line:
        w(f"# command line: {command_line}")
    w("#")
    w("#   make msp430                    build $(MSP430_ELF) for the FR5994 / msp430-elf-run")
    w("#   make msp430 MSP430_COUNTERS=1  ... with FX_SIM_COUNTERS: run and per-step cycle counts")
    w("#   make msp430 MSP430_RUN_COUNTERS=1  ... counts in main_sim.c only (run lines, no step hooks)")
    w("#   make msp430-run                run it in the simulator (stats: $(MSP430_STATS))")
    w("#   make msp430-size msp430-clean")
    w("#")
    w("# The toolchain: $MSP430_GCC_ROOT/bin/msp430-elf-gcc, else msp430-elf-gcc on PATH, else")
    w("# /opt/msp430-elf or ~/.local/msp430-elf (tools/msp430-toolchain.sh installs it there).")
    w("")
    w("MSP430_GCC_ROOT ?=")
    w("msp430_find_bin = $(strip $(if $(MSP430_GCC_ROOT),$(MSP430_GCC_ROOT)/bin/,"
      "$(if $(shell command -v msp430-elf-gcc 2>/dev/null),,"
      "$(firstword $(dir $(wildcard /opt/msp430-elf/bin/msp430-elf-gcc "
      "$(HOME)/.local/msp430-elf/bin/msp430-elf-gcc))))))")
    w("# Evaluated once, when first used (the host targets never pay for the lookup).")
    w("MSP430_BIN = $(eval MSP430_BIN := $(msp430_find_bin))$(MSP430_BIN)")
    w("MSP430_CC = $(MSP430_BIN)msp430-elf-gcc")
    w("MSP430_RUN = $(MSP430_BIN)msp430-elf-run")
    w("MSP430_SIZE = $(MSP430_BIN)msp430-elf-size")
    w("")
    w(f"MSP430_ELF := {model_name}.elf")
    w(f"MSP430_STATS := {model_name}.stats.json")
    w("MSP430_MAP = $(basename $(MSP430_ELF)).map")
    w("MSP430_OBJDIR := msp430-obj")
    w(f"MSP430_LDSCRIPT := {plat}/fr5994.ld")
    w("MSP430_LARGE := " + ("-mlarge" if large else ""))
    w("MSP430_OPT ?= -O2")
    w("MSP430_CFLAGS_EXTRA ?=")
    w("MSP430_COUNTERS ?=")
    w("MSP430_RUN_COUNTERS ?=")
    if gnet:
        w("MSP430_GNET ?=")
        w("# MSP430_GNET_LEVEL= : the energy program for a device that cannot read its energy level")
        w("MSP430_GNET_LEVEL ?= -DFX_ENERGY_LEVEL_HOOK")
    w("MSP430_CFLAGS = " + " ".join(f for f in MSP430_BASE_CFLAGS if f != "-O2")
      + " $(MSP430_OPT) $(MSP430_LARGE) " + includes
      + " $(if $(MSP430_COUNTERS),-DFX_SIM_COUNTERS,) $(MSP430_CFLAGS_EXTRA)"
      + (" $(if $(MSP430_GNET),$(MSP430_GNET_LEVEL) -DFX_ENERGY_WAIT_HOOK,)" if gnet else ""))
    w("MSP430_LDFLAGS = " + " ".join(MSP430_BASE_LDFLAGS)
      + " $(MSP430_LARGE) -T $(MSP430_LDSCRIPT)")
    w("MSP430_LDLIBS = " + " ".join(MSP430_LDLIBS))
    w(f"MSP430_MAIN_DEFS = -DFX_MODEL_HEADER='\"{header}\"' -DFX_RUN={run_symbol} "
      f"-DFX_INPUT_LEN={in_len} -DFX_OUTPUT_LEN={out_len}"
      + (f" -DFX_SIM_NEW_INPUT={new_input_symbol}" if new_input_symbol else "")
      + (f" -DFX_RECOVER=fx_{model_name}_recover" if gnet else "")
      + " $(if $(MSP430_RUN_COUNTERS),-DFX_SIM_COUNTERS,)")
    objs = [f"$(MSP430_OBJDIR)/crt0.o"] + [_object_name(s) for s in all_sources]
    if gnet:     # MSP430_GNET=1: the energy-trace program in place of main_sim.c
        at = objs.index(main_obj)
        objs[at] = f"$(if $(MSP430_GNET),{' '.join(_object_name(s) for s in gnet_sources)},{main_obj})"
    w("MSP430_OBJS = " + " \\\n    ".join(objs))
    w("")
    w(".PHONY: msp430 msp430-run msp430-size msp430-clean msp430-toolchain FORCE")
    w("msp430: $(MSP430_ELF)")
    w("FORCE:")
    w("")
    w("msp430-toolchain:")
    w("\t@command -v $(MSP430_CC) >/dev/null 2>&1 || { echo \"msp430.mk: $(MSP430_CC) not found: put "
      "msp430-elf-gcc on PATH or set MSP430_GCC_ROOT=/path/to/msp430-elf (install it with "
      "tools/msp430-toolchain.sh; freeml-tx doctor shows what is found)\" >&2; exit 1; }")
    w("")
    w("# Rebuild every object when the flags change (MSP430_COUNTERS=1, MSP430_OPT=...).")
    w("$(MSP430_OBJDIR)/flags.stamp: FORCE | msp430-toolchain")
    w("\t@mkdir -p $(MSP430_OBJDIR)")
    w("\t@echo '$(MSP430_CC) $(MSP430_CFLAGS) $(MSP430_MAIN_DEFS)' | cmp -s - $@ "
      "|| echo '$(MSP430_CC) $(MSP430_CFLAGS) $(MSP430_MAIN_DEFS)' > $@")
    w("")
    w(f"$(MSP430_OBJDIR)/crt0.o: {plat}/crt0.S $(MSP430_OBJDIR)/flags.stamp")
    w("\t$(MSP430_CC) -mmcu=msp430fr5994 $(MSP430_LARGE) -c $< -o $@")
    for src in all_sources + gnet_sources:
        obj = _object_name(src)
        extra = " $(MSP430_MAIN_DEFS)" if src in (f"{plat}/main_sim.c", f"{plat}/main_gnet_sim.c") else ""
        if src == f"{plat}/main_gnet_sim.c":
            # the energy model reads the cycle counter; with -mlarge its code goes to HIFRAM, beside
            # a model that fills lower FRAM (libgcc's 64-bit division, which it calls, stays below);
            # its arithmetic runs with the clock stopped, so it is built for size (-Os)
            extra += " -DFX_SIM_COUNTERS -Os $(if $(MSP430_LARGE),-mcode-region=upper,)"
        w(f"{obj}: {src} $(MSP430_OBJDIR)/flags.stamp")
        w(f"\t$(MSP430_CC) $(MSP430_CFLAGS){extra} -MMD -MP -c $< -o $@")
    w("")
    w(f"{sim_input}:")
    w(f"\t@echo \"msp430.mk: {sim_input} is missing: write it with "
      "transpiler.sim.write_sim_input() (the emitter writes a zero input)\" >&2; exit 1")
    w("")
    if gnet:
        w(f"{sim_energy}:")
        w(f"\t@echo \"msp430.mk: {sim_energy} is missing: transpiler.gnet_sim.run_energy_sim() writes it "
          "(freeml-tx run DIR --on sim --energy-trace T.csv)\" >&2; exit 1")
        w("")
    w("$(MSP430_ELF): $(MSP430_OBJS) $(MSP430_LDSCRIPT)")
    w("\t$(MSP430_CC) $(MSP430_LDFLAGS) -Wl,-Map,$(MSP430_MAP) $(MSP430_OBJS) $(MSP430_LDLIBS) -o $@")
    w("\t@$(MSP430_SIZE) $@")
    w("")
    w("msp430-run: $(MSP430_ELF)")
    w("\tMSP430_SIM_STATS=$(MSP430_STATS) $(MSP430_RUN) $(MSP430_ELF)")
    w("\t@cat $(MSP430_STATS); echo")
    w("")
    w("msp430-size: $(MSP430_ELF)")
    w("\t$(MSP430_SIZE) -A $(MSP430_ELF)")
    w("")
    w("msp430-clean:")
    w("\trm -rf $(MSP430_OBJDIR) $(MSP430_ELF) $(MSP430_STATS) $(MSP430_MAP)")
    w("")
    w("-include $(wildcard $(MSP430_OBJDIR)/*.d)")
    return "\n".join(out) + "\n"


def runtime_c_dir() -> Path:
    """The runtime_c/ directory (backends.c.runtime_files.runtime_dir: beside this code, else the package's)."""
    from backends.c.runtime_files import runtime_dir

    return runtime_dir()


def copy_msp430_runtime(dest: Path, *, runtime: Path | None = None) -> list[Path]:
    """Copy :data:`MSP430_RUNTIME_FILES` from runtime_c/ to ``dest`` (same layout); return them."""
    src_root = runtime or runtime_c_dir()
    written: list[Path] = []
    for rel in MSP430_RUNTIME_FILES:
        src = src_root / rel
        if not src.is_file():
            raise InputError(f"runtime file {src} is missing",
                             hint="reinstall freeml-tx; runtime_c/ must ship with the package")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(src.read_bytes())
        written.append(target)
    return written
