"""backends/c/msp430_mk.py: the text of msp430.mk and the runtime files it needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.c.msp430_mk import (LOWER_FRAM_BYTES, MSP430_RUNTIME_FILES, copy_msp430_runtime,
                                  msp430_makefile, needs_large_model, runtime_c_dir)
from transpiler.errors import InputError


def test_flags_and_targets() -> None:
    mk = msp430_makefile("lenet5_mnist", ["lenet5_mnist.c", "runtime/fx_conv.c"], False)
    for flag in ("-mmcu=msp430fr5994", "-ffreestanding", "-DFX_USE_MPY32", "-Wall", "-Wextra",
                 "-Werror", "--param=min-pagesize=0", "-nostdlib", "-nostartfiles",
                 "-Wl,--gc-sections", "-lgcc -lmul_f5", "MSP430_OPT ?= -O2"):
        assert flag in mk, flag
    assert "\nmsp430: $(MSP430_ELF)" in mk and "MSP430_ELF := lenet5_mnist.elf" in mk
    assert "MSP430_LARGE := \n" in mk and "-mlarge" not in mk.split("MSP430_LARGE :=")[1].split("\n")[0]
    assert "MSP430_GCC_ROOT ?=" in mk and "$(MSP430_GCC_ROOT)/bin/" in mk
    assert "-DFX_MODEL_HEADER='\"lenet5_mnist.h\"' -DFX_RUN=fx_lenet5_mnist_run" in mk
    assert "-DFX_INPUT_LEN=FX_LENET5_MNIST_IN_SIZE -DFX_OUTPUT_LEN=FX_LENET5_MNIST_OUT_SIZE" in mk
    assert "-T $(MSP430_LDSCRIPT)" in mk and "runtime/platform/msp430/fr5994.ld" in mk
    for obj in ("lenet5_mnist.o", "runtime__fx_conv.o", "runtime__platform__msp430__main_sim.o",
                "sim_input.o", "crt0.o"):
        assert f"$(MSP430_OBJDIR)/{obj}" in mk
    assert "-DFX_SIM_NEW_INPUT" not in mk


def test_large_and_options() -> None:
    mk = msp430_makefile("m", ["m.c"], True, runtime_dir="rt", input_len=784, output_len=10,
                         run_symbol="my_run", header="hdr.h", new_input_symbol="fx_m_reset",
                         command_line="freeml-tx m.onnx -o build")
    assert "MSP430_LARGE := -mlarge" in mk
    assert "-DFX_INPUT_LEN=784 -DFX_OUTPUT_LEN=10" in mk and "-DFX_RUN=my_run" in mk
    assert "'\"hdr.h\"'" in mk and "-DFX_SIM_NEW_INPUT=fx_m_reset" in mk
    assert "rt/platform/msp430/crt0.S" in mk and "-Irt -Irt/platform/msp430" in mk
    assert "# command line: freeml-tx m.onnx -o build" in mk


@pytest.mark.parametrize("name, sources", [("bad-name", ["a.c"]), ("m", ["/abs/a.c"]),
                                           ("m", ["../a.c"]), ("m", ["a b.c"]), ("m", ["a.cpp"])])
def test_rejects_names_a_makefile_cannot_carry(name: str, sources: list[str]) -> None:
    with pytest.raises(InputError):
        msp430_makefile(name, sources, False)


def test_needs_large_model() -> None:
    assert not needs_large_model(10_000)
    assert needs_large_model(LOWER_FRAM_BYTES)
    assert needs_large_model(40_000) and not needs_large_model(40_000, code_reserve=4096)
    assert needs_large_model(32_768, largest_object=32_768, code_reserve=1024)
    assert not needs_large_model(32_767, largest_object=32_767, code_reserve=1024)


def test_copy_runtime(tmp_path: Path) -> None:
    written = copy_msp430_runtime(tmp_path / "runtime")
    assert [p.relative_to(tmp_path / "runtime").as_posix() for p in written] == list(MSP430_RUNTIME_FILES)
    src = runtime_c_dir()
    for rel in MSP430_RUNTIME_FILES:
        assert (tmp_path / "runtime" / rel).read_bytes() == (src / rel).read_bytes()
    with pytest.raises(InputError, match="missing"):
        copy_msp430_runtime(tmp_path / "x", runtime=tmp_path / "empty")
