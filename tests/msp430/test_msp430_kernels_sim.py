"""The runtime's fixed-point kernels give the host's bytes on the MSP430 simulator.

kernel_sim_harness.c runs fx_conv, fx_fc, fx_maxpool, fx_avgpool, fx_add, fx_mul, fx_act, fx_lut,
fx_requant_copy, fx_requant and fx_argmax on deterministic pseudo-random cases (same LCG on both
sides) and prints checksums and first outputs. The host build (portable FX_MAC, ASan/UBSan when
available) is the reference; the MSP430 builds must print exactly the same: with the MPY32
multiply-accumulate (FX_USE_MPY32), with the portable C fallback, and in the large memory model,
there also with the inputs, weights and outputs in HIFRAM (above 64 KiB: where plan-memory puts
activations that do not fit lower FRAM).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from msp430_testlib import (HERE, build_host, build_msp430, host_cc, kernel_sources,
                            msp430_tc, sanitizers_work)  # noqa: F401

from transpiler.sim import run_elf
from transpiler.toolchain import Msp430Toolchain

HARNESS = HERE / "kernel_sim_harness.c"

VARIANTS = {
    "mpy32": ["-DFX_USE_MPY32"],
    "portable": [],
    "mpy32-large": ["-DFX_USE_MPY32", "-mlarge"],
    "mpy32-large-hifram": ["-DFX_USE_MPY32", "-mlarge", "-DH_HIFRAM"],
}


@pytest.fixture(scope="module")
def host_reference(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The harness's output on the host."""
    tmp = tmp_path_factory.mktemp("harness-host")
    exe = build_host([HARNESS, *kernel_sources()], tmp / "harness",
                     sanitize=sanitizers_work(host_cc(), tmp))
    proc = subprocess.run([str(exe)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_host_reference_is_complete(host_reference: str) -> None:
    lines = host_reference.splitlines()
    assert lines[-2].startswith("cases=") and int(lines[-2].split("=")[1], 16) >= 30
    assert lines[-1] == "tile_failures=00000000", "a tiled kernel call differs from the untiled one"
    names = {ln.split()[0].split(".")[0] for ln in lines[:-2]}
    assert {"fc", "conv", "maxpool", "avgpool", "add", "mul", "act", "lut", "argmax", "requant"} <= names


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_msp430_kernels_match_host(variant: str, host_reference: str,
                                   msp430_tc: Msp430Toolchain, tmp_path: Path) -> None:  # noqa: F811
    elf = build_msp430(msp430_tc, [HARNESS, *kernel_sources()], tmp_path / f"harness-{variant}.elf",
                       flags=VARIANTS[variant])
    syms = subprocess.run([str(msp430_tc.tool("nm")), str(elf)], capture_output=True, text=True,
                          check=True).stdout.split("\n")
    where = {ln.split()[-1]: int(ln.split()[0], 16) for ln in syms if ln.strip()}
    for buf in ("hx", "hx2", "hw", "hy", "hy2"):    # HIFRAM starts at 0x10000
        assert (where[buf] >= 0x10000) == ("hifram" in variant), (variant, buf, hex(where[buf]))
    r = run_elf(elf, toolchain=msp430_tc, max_cycles=200_000_000, timeout=300).check()
    assert r.power_failures == 0
    sim_lines = r.stdout.splitlines()
    host_lines = host_reference.splitlines()
    diffs = [f"host: {h}\nsim:  {s}" for h, s in zip(host_lines, sim_lines) if h != s]
    assert not diffs and len(sim_lines) == len(host_lines), (
        f"{variant}: {len(diffs)} of {len(host_lines)} lines differ\n" + "\n".join(diffs[:5]))


def test_mpy32_build_uses_the_multiplier(msp430_tc: Msp430Toolchain,  # noqa: F811
                                         tmp_path: Path) -> None:
    """FX_USE_MPY32 really routes the kernels' MACs through MACS/OP2 (and the fallback does not)."""
    fc = next(p for p in kernel_sources() if p.name == "fx_fc.c")
    for variant, flags in (("mpy32", ["-DFX_USE_MPY32"]), ("portable", [])):
        obj = tmp_path / f"fc-{variant}.o"
        subprocess.run([str(msp430_tc.gcc), "-mmcu=msp430fr5994", "-O2", "-ffreestanding",
                        *flags, f"-I{fc.parent}", "-c", str(fc), "-o", str(obj)], check=True)
        syms = subprocess.run([str(msp430_tc.tool("nm")), str(obj)], capture_output=True,
                              text=True, check=True).stdout
        undefined = {ln.split()[-1] for ln in syms.splitlines() if " U " in ln}
        if variant == "mpy32":
            assert {"MACS", "OP2", "RESLO", "RESHI"} <= undefined, undefined
        else:
            assert not {"MACS", "OP2"} & undefined, undefined
