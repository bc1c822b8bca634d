"""The MSP430 simulator build end to end: msp430.mk + main_sim.c + sim_input.c + the runner.

A toy model written here in the C emitter's shape (``<m>.h`` with FX_<M>_IN_SIZE/OUT_SIZE and
``int fx_<m>_run(const int16_t *in, int16_t *out)``, runtime files under ``runtime/``, a host
Makefile that does ``-include msp430.mk``) is built with ``make msp430`` and run through
:func:`transpiler.sim.run_model`. The toy is intermittent: it commits one output at a time to FRAM,
so under power failures it must print the same bytes, each line exactly once.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
from msp430_testlib import msp430_tc  # noqa: F401

from backends.c.msp430_mk import copy_msp430_runtime, msp430_makefile
from transpiler.errors import ToolchainError
from transpiler.sim import build_elf, run_model
from transpiler.toolchain import Msp430Toolchain

M = "toy"
K_IN, N_OUT, SHIFT = 24, 11, 17


def weights() -> list[list[int]]:
    rng = random.Random(5)
    return [[rng.randint(-32768, 32767) for _ in range(K_IN)] for _ in range(N_OUT)]


def biases() -> list[int]:
    return [(-1) ** n * n * 1_000_003 for n in range(N_OUT)]


def reference(x: list[int]) -> list[int]:
    """What the toy computes: sat16((bias + sum x*w) mod 2^32 >> SHIFT), floor shift."""
    out = []
    for w, b in zip(weights(), biases()):
        acc = (b + sum(a * c for a, c in zip(x, w))) & 0xFFFFFFFF
        acc = acc - (1 << 32) if acc >= 1 << 31 else acc
        out.append(max(-32768, min(32767, acc >> SHIFT)))
    return out


def toy_sources(large: bool) -> dict[str, str]:
    place = "FX_UPPER" if large else ""
    rows = ",\n".join("    {" + ", ".join(map(str, r)) + "}" for r in weights())
    header = f"""#ifndef FX_TOY_H
#define FX_TOY_H
#include <stdint.h>
#define FX_TOY_IN_SIZE {K_IN}u
#define FX_TOY_OUT_SIZE {N_OUT}u
int fx_toy_run(const int16_t *in, int16_t *out);
void fx_toy_reset(void);
#endif
"""
    source = f"""/* toy.c - an intermittent dense layer: one output per commit. */
#include "toy.h"
#include "fx_mac.h"
#include "fx_platform.h"

#if defined(__MSP430X_LARGE__)
#define FX_UPPER __attribute__((upper))
#define TOY_FRAM __attribute__((section(".upper.persistent")))
#elif defined(__MSP430__)
#define FX_UPPER
#define TOY_FRAM __attribute__((section(".persistent")))
#else
#define FX_UPPER
#define TOY_FRAM
#endif

static const int16_t toy_w[{N_OUT}][{K_IN}] {place} = {{
{rows}
}};
static const int32_t toy_b[{N_OUT}] = {{ {", ".join(f"{b}L" for b in biases())} }};
static int16_t toy_y[{N_OUT}] TOY_FRAM;
static volatile uint16_t toy_next __attribute__((section(".persistent")));

void fx_toy_reset(void) {{ toy_next = 0; }}

int fx_toy_run(const int16_t *in, int16_t *out)
{{
    uint16_t n, k;
    FX_STEP_BEGIN(0);
    for (n = toy_next; n < {N_OUT}u; n = toy_next) {{
        int32_t acc;
        const int16_t *w = toy_w[n];
        FX_MAC_BEGIN(toy_b[n]);
        for (k = 0; k < {K_IN}u; k++)
            FX_MAC(in[k], w[k]);
        acc = FX_MAC_END() >> {SHIFT};
        toy_y[n] = (int16_t)(acc > 32767 ? 32767 : acc < -32768 ? -32768 : acc);
        toy_next = (uint16_t)(n + 1u);   /* commit */
    }}
    FX_STEP_END(0);
    FX_STEP_BEGIN(1);
    for (n = 0; n < {N_OUT}u; n++)
        out[n] = toy_y[n];
    FX_STEP_END(1);
    return 0;
}}
"""
    return {"toy.h": header, "toy.c": source}


def make_build_dir(root: Path, large: bool = False) -> Path:
    build = root / ("build-large" if large else "build")
    (build / "runtime").mkdir(parents=True)
    for name, text in toy_sources(large).items():
        (build / name).write_text(text)
    copy_msp430_runtime(build / "runtime")
    (build / "Makefile").write_text("all:\n\t@echo host build\n\n-include msp430.mk\n")
    (build / "msp430.mk").write_text(msp430_makefile(M, ["toy.c"], large,
                                                     new_input_symbol="fx_toy_reset"))
    return build


def inputs(n: int) -> list[list[int]]:
    rng = random.Random(11)
    return [[rng.randint(-32768, 32767) for _ in range(K_IN)] for _ in range(n)]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_build_dir(tmp_path_factory.mktemp("toy"))


def test_run_model_outputs(build_dir: Path, msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    xs = inputs(3)
    r = run_model(build_dir, M, xs, toolchain=msp430_tc).check()
    out = r.output()
    assert out.outputs == {i: reference(x) for i, x in enumerate(xs)}
    assert out.done == 3 and not out.errors and not out.steps and not out.runs
    assert r.power_failures == 0 and r.cycles > r.instructions > 0
    assert r.cycles_last_boot == r.cycles


def test_counters_report_steps_and_runs(build_dir: Path,
                                        msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    xs = inputs(2)
    r = run_model(build_dir, M, xs, toolchain=msp430_tc, counters=True).check()
    out = r.output()
    assert out.outputs == {i: reference(x) for i, x in enumerate(xs)}
    assert sorted(out.runs) == [0, 1]
    assert [s.index for s in out.steps] == [0, 1, 0, 1]
    for i in (0, 1):
        run = out.runs[i]
        steps = out.steps[2 * i:2 * i + 2]
        # the steps lie inside the run; the dense step dominates (11 x 24 MACs)
        assert sum(s.cycles for s in steps) < run.cycles < r.cycles
        assert steps[0].cycles > 10 * steps[1].cycles
        assert run.instructions < run.cycles
        # at least 2 instructions (MACS, OP2 stores) per MAC
        assert steps[0].instructions >= 2 * K_IN * N_OUT
    # the same build without counters is smaller and prints no counts
    r2 = run_model(build_dir, M, xs, toolchain=msp430_tc, counters=False).check()
    assert not r2.output().runs and r2.cycles < r.cycles


@pytest.mark.parametrize("spec", ["every:4000", "random:3:3000:7000"])
def test_power_failures_give_the_same_output_once(build_dir: Path, spec: str,
                                                  msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    xs = inputs(3)
    r = run_model(build_dir, M, xs, toolchain=msp430_tc, power_fail=spec,
                  max_failures=3000).check()
    assert r.power_failures > 3, "the spec should interrupt the run several times"
    assert r.power_fail_spec == spec
    assert r.output().outputs == {i: reference(x) for i, x in enumerate(xs)}
    lines = r.stdout.splitlines()
    assert len(lines) == len(set(lines)) == 3 * 2 + 1, "every line exactly once"


def test_large_model_with_hifram_table(tmp_path: Path,
                                       msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    build = make_build_dir(tmp_path, large=True)
    xs = inputs(2)
    r = run_model(build, M, xs, toolchain=msp430_tc, make_vars={"MSP430_OPT": "-Os"}).check()
    assert r.output().outputs == {i: reference(x) for i, x in enumerate(xs)}
    assert "-Os" in (build / "msp430-obj" / "flags.stamp").read_text()
    syms = subprocess.run([str(msp430_tc.tool("nm")), str(build / "toy.elf")], capture_output=True,
                          text=True, check=True).stdout
    addr = {ln.split()[-1]: int(ln.split()[0], 16) for ln in syms.splitlines() if len(ln.split()) == 3}
    assert addr["toy_w"] >= 0x10000 and addr["toy_y"] >= 0x10000, "tables in HIFRAM"
    assert addr["fx_sim_inputs"] >= 0x10000
    assert 0x4000 <= addr["fx_cio_done_count"] < 0xFF80, "CIO bookkeeping in lower FRAM"


def test_input_length_mismatch_is_reported(build_dir: Path,
                                           msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    r = run_model(build_dir, M, [[1, 2, 3]], toolchain=msp430_tc)
    assert r.exit_reason == "fault" and r.returncode == 255
    assert r.output().errors == ["sim_input.c has inputs of length 3"]
    with pytest.raises(ToolchainError, match="did not finish"):
        r.check()


def test_make_msp430_without_toolchain_says_how_to_get_it(build_dir: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    env = {"PATH": "/usr/bin:/bin", "MSP430_GCC_ROOT": "/nonexistent/msp430", "HOME": "/nonexistent"}
    proc = subprocess.run(["make", "-C", str(build_dir), "msp430"], capture_output=True, text=True,
                          env=env, check=False)
    assert proc.returncode != 0
    assert "MSP430_GCC_ROOT" in proc.stderr and "tools/msp430-toolchain.sh" in proc.stderr
    # the host targets do not need the toolchain
    assert subprocess.run(["make", "-C", str(build_dir)], capture_output=True, env=env,
                          check=False).returncode == 0


def test_build_failure_raises_toolchain_error(tmp_path: Path,
                                              msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    build = make_build_dir(tmp_path)
    (build / "toy.c").write_text((build / "toy.c").read_text() + "\nstatic int unused_var;\n")
    (build / "sim_input.c").write_text("")
    with pytest.raises(ToolchainError) as err:
        build_elf(build, toolchain=msp430_tc)
    assert "unused_var" in "\n".join(err.value.details)
