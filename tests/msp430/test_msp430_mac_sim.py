"""fx_mac_mpy32.h (RESLO/RESHI preload + MACS/OP2) computes what the portable FX_MAC does.

mac_sim_check.c uses only fx_mac.h, so this test does not depend on the kernels: host, MSP430
with FX_USE_MPY32 (small and large model) and MSP430 with the portable accumulator must print the
same lines, wrapping sums and empty chains included. The expected values are also computed here
in Python for two lines, so a bug shared by all builds would show.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from msp430_testlib import HERE, build_host, build_msp430, msp430_tc  # noqa: F401

from transpiler.sim import run_elf
from transpiler.toolchain import Msp430Toolchain

CHECK = HERE / "mac_sim_check.c"


@pytest.fixture(scope="module")
def host_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    exe = build_host([CHECK], tmp_path_factory.mktemp("mac-host") / "mac_check")
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_host_lines_are_right(host_lines: list[str]) -> None:
    values = dict(line.split("=") for line in host_lines)
    assert values["empty.bias"] == f"{-123456789 & 0xFFFFFFFF:08x}"
    assert values["wrap.minmin"] == "00000005"
    assert values["wrap.up"] == f"{(0x7FFFFFFF + 4 * 32767 * 32767) & 0xFFFFFFFF:08x}"
    assert values["pp.dot64"] == values["dot64.biasneg"] and values["pp.empty"] == "00000063"
    assert values["umul.max"] == f"{65535 * 32768:08x}" and values["umul.mid"] == f"{120000:08x}"
    assert values["halves.neg"] == f"{(32768 - 2 * 32767 * 32767) & 0xFFFFFFFF:08x}"
    assert values["halves.pos"] == f"{32768 + 2 * 12345 * 30000:08x}"
    assert len(host_lines) == 17


@pytest.mark.parametrize("flags", [["-DFX_USE_MPY32"], [], ["-DFX_USE_MPY32", "-mlarge"]],
                         ids=["mpy32", "portable", "mpy32-large"])
def test_msp430_mac_matches_host(flags: list[str], host_lines: list[str],
                                 msp430_tc: Msp430Toolchain, tmp_path: Path) -> None:  # noqa: F811
    elf = build_msp430(msp430_tc, [CHECK], tmp_path / "mac_check.elf", flags=flags)
    r = run_elf(elf, toolchain=msp430_tc, max_cycles=5_000_000).check()
    assert r.stdout.splitlines() == host_lines
