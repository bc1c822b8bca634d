"""transpiler/sim.py: statistics and output parsing, sim_input.c, settings passed to the simulator."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from msp430_testlib import HERE, build_msp430, msp430_tc  # noqa: F401

from transpiler.errors import DataError, ToolchainError
from transpiler.sim import (SimResult, parse_cio_output, parse_stats, run_elf, sim_input_text,
                            validate_power_fail_spec, write_sim_input)
from transpiler.toolchain import Msp430Toolchain

STATS = {"instructions": 177619, "cycles": 375138, "power_failures": 74, "cycles_last_boot": 4786,
         "exit_reason": "halt", "power_fail_spec": "every:5000"}


# ---- parsing, no toolchain needed ----

def test_parse_stats() -> None:
    assert parse_stats(json.dumps(STATS)) == STATS
    with pytest.raises(ToolchainError, match="not JSON"):
        parse_stats("{instructions: 1")
    with pytest.raises(ToolchainError, match="lack cycles"):
        parse_stats(json.dumps({k: v for k, v in STATS.items() if k != "cycles"}))
    with pytest.raises(ToolchainError, match="not a JSON object"):
        parse_stats("[1, 2]")


def test_parse_cio_output() -> None:
    text = "\n".join([
        "step 0 cycles 3510 instructions 1925",
        "y 0 0 0000 7fff 8000 ffff 0001 0002 0003 0004",
        "y 0 8 fffe",
        "y 0 8 fffe",                      # repeated after a power failure: counts once
        "run 0 cycles 5444 instructions 3087",
        "y 1 0 1234",
        "hello",
        "error run returned -3",
        "done 2",
    ])
    out = parse_cio_output(text)
    assert out.outputs == {0: [0, 32767, -32768, -1, 1, 2, 3, 4, -2], 1: [0x1234]}
    assert out.runs[0].cycles == 5444 and out.runs[0].instructions == 3087
    assert [(s.index, s.cycles) for s in out.steps] == [(0, 3510)]
    assert out.step_cycles() == {0: 3510}
    assert out.done == 2 and out.errors == ["run returned -3"] and out.other == ["hello"]


def test_parse_cio_output_rejects_gaps_and_garbage() -> None:
    with pytest.raises(ToolchainError, match="gap at element 8"):
        parse_cio_output("y 0 0 0001 0002 0003 0004 0005 0006 0007 0008\ny 0 16 0001\n")
    with pytest.raises(ToolchainError, match="malformed"):
        parse_cio_output("y 0 0 zz\n")
    assert parse_cio_output("").done is None


@pytest.mark.parametrize("spec", ["every:5000", "at:1000,25000,25001", "random:7:4500:8000", " at:5 "])
def test_power_fail_specs_accepted(spec: str) -> None:
    assert validate_power_fail_spec(spec) == spec.strip()


@pytest.mark.parametrize("spec", ["sometimes", "every:", "every:0", "at:1,,2", "random:1:9:3",
                                  "random:1:2", "every:-5"])
def test_power_fail_specs_rejected(spec: str) -> None:
    with pytest.raises(ToolchainError) as err:
        validate_power_fail_spec(spec)
    assert err.value.hint and "every:N" in err.value.hint


def test_sim_input_text_and_write(tmp_path: Path) -> None:
    text = sim_input_text([[1, -2, 32767], [-32768, 0, 5]])
    assert "const uint16_t fx_sim_input_count = 2;" in text
    assert "const uint16_t fx_sim_input_len = 3;" in text
    assert "fx_sim_inputs[6] FX_SIM_INPUT_PLACE" in text
    assert "1, -2, 32767," in text and "-32768, 0, 5," in text
    p = tmp_path / "sim_input.c"
    assert write_sim_input(p, [[1, 2]]) is True
    mtime = p.stat().st_mtime_ns
    assert write_sim_input(p, [[1, 2]]) is False and p.stat().st_mtime_ns == mtime
    assert write_sim_input(p, [[1, 3]]) is True


@pytest.mark.parametrize("inputs, match", [([], "at least one"), ([[]], "at least one"),
                                           ([[1, 2], [3]], "input 1 has 1 elements"),
                                           ([[1, 40000]], "outside int16")])
def test_sim_input_rejects(inputs: list[list[int]], match: str) -> None:
    with pytest.raises(DataError, match=match):
        sim_input_text(inputs)


def test_check_raises_with_hint() -> None:
    r = SimResult(stdout="", stderr="giving up\n", returncode=3, exit_reason="max_failures",
                  instructions=10, cycles=20, power_failures=100, cycles_last_boot=5,
                  power_fail_spec="every:40")
    assert not r.halted
    with pytest.raises(ToolchainError) as err:
        r.check()
    assert "max_failures" in err.value.message and err.value.hint and "longer" in err.value.hint


# ---- fake simulators ----

def _fake_tc(tmp_path: Path, body: str) -> Msp430Toolchain:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("msp430-elf-gcc", "echo fake"), ("msp430-elf-run", body)):
        p = bin_dir / name
        p.write_text("#!/bin/sh\n" + text + "\n")
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return Msp430Toolchain(bin_dir=bin_dir, found_via="test")


def test_unpatched_simulator_is_explained(tmp_path: Path) -> None:
    tc = _fake_tc(tmp_path, "echo hi")
    elf = tmp_path / "x.elf"
    elf.write_bytes(b"\x7fELF")
    with pytest.raises(ToolchainError) as err:
        run_elf(elf, toolchain=tc)
    assert err.value.hint and "sim-fram-count.patch" in err.value.hint


def test_settings_and_environment_pass_through(tmp_path: Path) -> None:
    """The fake simulator echoes its MSP430_SIM_* variables and writes the stats file."""
    body = ('env | grep "^MSP430_SIM_" | grep -v STATS | sort\n'
            'printf \'{"instructions": 1, "cycles": 2, "power_failures": 0, '
            '"cycles_last_boot": 2, "exit_reason": "halt", "power_fail_spec": null}\' '
            '> "$MSP430_SIM_STATS"')
    tc = _fake_tc(tmp_path, body)
    elf = tmp_path / "x.elf"
    elf.write_bytes(b"\x7fELF")
    r = run_elf(elf, toolchain=tc, power_fail="random:1:10:20", max_failures=7, max_cycles=99,
                sram="0x1C00:0x2BFF", sram_fill="random", verbose=True,
                env={"MSP430_SIM_POWER_FAIL": "every:1", "MSP430_SIM_SRAM_FILL": "0", "PATH": "/usr/bin:/bin"})
    assert r.stdout.splitlines() == [
        "MSP430_SIM_MAX_CYCLES=99", "MSP430_SIM_MAX_FAILURES=7", "MSP430_SIM_POWER_FAIL=random:1:10:20",
        "MSP430_SIM_SRAM=0x1C00:0x2BFF", "MSP430_SIM_SRAM_FILL=random", "MSP430_SIM_VERBOSE=1"]
    assert r.halted and r.cycles == 2
    # inherited settings are dropped when not asked for
    r = run_elf(elf, toolchain=tc, env={"MSP430_SIM_POWER_FAIL": "every:1", "PATH": "/usr/bin:/bin"})
    assert r.stdout == ""


def test_timeout(tmp_path: Path) -> None:
    tc = _fake_tc(tmp_path, "exec sleep 5")
    elf = tmp_path / "x.elf"
    elf.write_bytes(b"\x7fELF")
    with pytest.raises(ToolchainError, match="longer than 0.3 s"):
        run_elf(elf, toolchain=tc, timeout=0.3)


def test_missing_elf(tmp_path: Path) -> None:
    tc = _fake_tc(tmp_path, "exit 0")
    with pytest.raises(ToolchainError, match="does not exist"):
        run_elf(tmp_path / "none.elf", toolchain=tc)


# ---- the real simulator ----

@pytest.fixture(scope="module")
def mac_elf(msp430_tc: Msp430Toolchain,  # noqa: F811
            tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_msp430(msp430_tc, [HERE / "mac_sim_check.c"],
                        tmp_path_factory.mktemp("runner") / "mac_check.elf", flags=["-DFX_USE_MPY32"])


def test_real_run_counts(mac_elf: Path, msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    r = run_elf(mac_elf, toolchain=msp430_tc).check()
    assert r.exit_reason == "halt" and r.power_failures == 0 and r.power_fail_spec is None
    assert 0 < r.instructions < r.cycles == r.cycles_last_boot
    assert len(r.stdout.splitlines()) == 17 and r.seconds > 0


def test_real_power_fail_spec_pass_through(mac_elf: Path,
                                           msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    clean = run_elf(mac_elf, toolchain=msp430_tc)
    # the program is not intermittent: each failure restarts it, the at: list is used up once
    r = run_elf(mac_elf, toolchain=msp430_tc, power_fail="at:1000,3000", verbose=True).check()
    assert r.power_failures == 2 and r.power_fail_spec == "at:1000,3000"
    assert r.cycles > clean.cycles and r.cycles_last_boot == clean.cycles
    assert r.stdout.splitlines()[-17:] == clean.stdout.splitlines()
    assert r.stderr.count("power failure") >= 2


def test_real_limits(mac_elf: Path, msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    r = run_elf(mac_elf, toolchain=msp430_tc, max_cycles=500)
    assert (r.exit_reason, r.returncode) == ("max_cycles", 4) and not r.halted
    r = run_elf(mac_elf, toolchain=msp430_tc, power_fail="every:300", max_failures=5)
    assert (r.exit_reason, r.returncode, r.power_failures) == ("max_failures", 3, 5)


def test_real_rejects_bad_settings(mac_elf: Path, msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    with pytest.raises(ToolchainError, match="rejected its settings"):
        run_elf(mac_elf, toolchain=msp430_tc, power_fail="sometimes", validate=False)
    with pytest.raises(ToolchainError, match="rejected its settings"):
        run_elf(mac_elf, toolchain=msp430_tc, sram="nonsense")
