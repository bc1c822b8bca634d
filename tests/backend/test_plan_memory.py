"""The `plan-memory` pass: placement rules, reuse by liveness, spilling, budgets and their errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from passes.plan_memory import (HIFRAM_START, LOWER_FRAM_BYTES, VECTOR_BYTES, Lifetime, PlanMemory, PlanMemoryOptions, _Item, is_planned,
                                fmt_bytes, lifetimes, memory_summary, pack, uses_large_model,
                                SPARSE_LONG_STACK, estimate_rodata_bytes, estimate_code_bytes, step_code_bytes)
from transpiler.errors import BudgetError, PassError
from transpiler.lir.ir import DTYPES, Buffer, Port, Program, Step
from transpiler.lir.liveness import liveness, overlaps
from transpiler.lir.verify import verify_program
from transpiler.pass_infra import PassContext

sys.path.append(str(Path(__file__).resolve().parents[1] / "lir"))
from strategies_lir import programs  # noqa: E402


def act(p: Program, name: str, shape: tuple[int, ...], q: int = 8) -> str:
    p.add(Buffer(name, "i16", shape, q=q))
    return name


def const(p: Program, name: str, dtype: str, shape: tuple[int, ...], q: object = None) -> str:
    info = np.iinfo(np.dtype({"i16": "<i2", "i32": "<i4"}[dtype]))
    data = np.random.default_rng(len(p.buffers)).integers(-100, 100, size=shape).clip(info.min, info.max)
    p.add(Buffer(name, dtype, shape, q=q, data=data.astype({"i16": "<i2", "i32": "<i4"}[dtype])))
    return name


def act_chain(n: int, size: int = 256) -> Program:
    """x -> act -> t1 -> act -> t2 ... -> tn, every buffer `size` int16."""
    p = Program("chain")
    prev = act(p, "x", (size,))
    p.inputs.append(Port("in", prev))
    for i in range(1, n + 1):
        cur = act(p, f"t{i}", (size,))
        p.steps.append(Step("act", f"a{i}", [prev], [cur], {"act": "relu"}))
        prev = cur
    p.outputs.append(Port("out", prev))
    return p


def lenet_like() -> Program:
    """conv 1x28x28 -> 6x24x24, maxpool -> 6x12x12, flatten (alias), fc 864 -> 10."""
    p = Program("lenet_like")
    x = act(p, "x", (1, 28, 28), 12)
    w = const(p, "w1", "i16", (6, 1, 5, 5), [14] * 6)
    b = const(p, "b1", "i32", (6,))
    t1 = act(p, "t1", (6, 24, 24), 10)
    t2 = act(p, "t2", (6, 12, 12), 10)
    p.add(Buffer("t2f", "i16", (864,), q=10, alias="t2"))
    w2 = const(p, "w2", "i16", (10, 864), [12] * 10)
    b2 = const(p, "b2", "i32", (10,))
    y = act(p, "y", (10,), 9)
    conv_attrs = {"act": "relu", "dilation": [1, 1], "group": 1, "pads": [0, 0, 0, 0], "shift": [16] * 6,
                  "stride": [1, 1]}
    p.steps.append(Step("conv", "conv1", [x, w, b], [t1], conv_attrs, origin=["/conv1/Conv"]))
    p.steps.append(Step("maxpool", "pool1", [t1], [t2], {"kernel": [2, 2], "stride": [2, 2], "pads": [0, 0, 0, 0],
                                                         "dilation": [1, 1]}))
    p.steps.append(Step("fc", "fc1", ["t2f", w2, b2], [y], {"act": "none", "shift": [13] * 10}))
    p.inputs.append(Port("input", x))
    p.outputs.append(Port("logits", y))
    return p


def gemm_chain(dims: list[int]) -> Program:
    """fc dims[0] -> dims[1] -> ... (i16 weights [n, k], i32 biases), ReLU between."""
    p = Program("gemm_chain")
    prev = act(p, "x", (dims[0],))
    p.inputs.append(Port("in", prev))
    for i, (k, n) in enumerate(zip(dims, dims[1:]), 1):
        w = const(p, f"w{i}", "i16", (n, k), [12] * n)
        b = const(p, f"b{i}", "i32", (n,))
        y = act(p, f"y{i}", (n,))
        p.steps.append(Step("fc", f"fc{i}", [prev, w, b], [y], {"act": "relu", "shift": [13] * n}))
        prev = y
    p.outputs.append(Port("out", prev))
    return p


def plan(p: Program, **opts: object) -> tuple[Program, dict]:
    """plan-memory with ``opts``; without the application's reserve unless given (the tests below do
    the arithmetic of lower FRAM with LOWER_FRAM_BYTES)."""
    opts.setdefault("app_reserve", 0)
    ctx = PassContext()
    result = PlanMemory(PlanMemoryOptions(**opts), ctx).run(p)  # type: ignore[arg-type]
    return result.model, result.stats


def assert_no_shared_live_bytes(p: Program) -> None:
    live = liveness(p)
    placed = [b for b in p.buffers.values() if b.alias is None]
    for i, a in enumerate(placed):
        for b in placed[i + 1:]:
            if a.space == b.space and overlaps(live[a.name], live[b.name]):
                assert a.offset + a.nbytes <= b.offset or b.offset + b.nbytes <= a.offset, (a.name, b.name)


def test_lenet_like_places_everything_and_verifies() -> None:
    p, stats = plan(lenet_like())
    assert is_planned(p)
    verify_program(p)                       # includes the verifier's own overlap check
    assert_no_shared_live_bytes(p)
    assert p.buffers["t2f"].space is None and p.buffers["t2f"].offset is None   # aliases own nothing
    for name in ("w1", "b1", "w2", "b2"):
        assert p.buffers[name].space in ("fram", "hifram")
    for b in p.buffers.values():
        if b.offset is not None:
            assert b.offset % max(2, b.data.dtype.itemsize if b.data is not None else 2) == 0
    # x (1568 B) + t1 (6912 B) do not fit 8 KiB - 1 KiB stack: the larger one, live at the peak, spills
    assert stats["spilled_to_fram"] == ["t1"]
    assert p.buffers["t1"].space == "fram" and p.buffers["x"].space == "sram"
    assert stats["sram_peak"] <= 7 * 1024 and stats["stack_reserve"] == 1024
    assert stats["fram_weights"] == (150 + 8640) * 2 and stats["fram_bias"] == 16 * 4


def test_reuse_by_liveness_needs_two_slots_for_a_chain() -> None:
    p, stats = plan(act_chain(6, 256))
    assert stats["sram_peak"] == 2 * 512          # each step reads one slot and writes the other
    assert stats["reuse_savings_sram"] == 7 * 512 - 2 * 512
    assert_no_shared_live_bytes(p)
    p2, stats2 = plan(act_chain(6, 256), reuse=False)
    assert stats2["sram_peak"] == 7 * 512 and stats2["reuse_savings_sram"] == 0


def test_alias_extends_the_lifetime_of_its_storage() -> None:
    p = act_chain(3, 64)
    # read t1 again at the end, through an alias: t1 must stay live, so t3 cannot take its bytes
    p.add(Buffer("t1v", "i16", (8, 8), q=8, alias="t1"))
    p.add(Buffer("t1w", "i16", (64,), q=8, alias="t1v" if False else "t1"))
    p.add(Buffer("s", "i16", (64,), q=8))
    p.steps.append(Step("add", "late", ["t3", "t1w"], ["s"], {"shift_a": 0, "shift_b": 0, "shift": 0, "act": "none"}))
    p.outputs[0] = Port("out", "s")
    lives = lifetimes(p)
    assert lives["t1"].end == 3 and 3 in lives["t1"].readers
    p, _ = plan(p)
    assert_no_shared_live_bytes(p)
    t1, t3 = p.buffers["t1"], p.buffers["t3"]
    assert t1.offset + t1.nbytes <= t3.offset or t3.offset + t3.nbytes <= t1.offset


def test_sram_only_budget_error_names_the_largest_buffers_and_what_helps() -> None:
    with pytest.raises(BudgetError) as info:
        plan(lenet_like(), fram_activations=False)
    err = info.value
    text = err.render()
    # the peak is at pool1: t1 (6912 B, written by conv1) and t2 (1728 B) live together
    assert "%t1  6.8 KiB (6912 B)" in text and "%t2" in text and "written by 'conv1'" in text
    assert err.location.node == "pool1"
    assert "--sram 10KiB" in (err.hint or "")         # 6912 + 1728 + 1024 stack = 9664 B
    assert "FRAM" in (err.hint or "") and "tile" in (err.hint or "")
    assert err.location.pass_name == "plan-memory"


def test_persistent_puts_every_activation_in_fram() -> None:
    p, stats = plan(lenet_like(), persistent=True)
    acts = [b for b in p.buffers.values() if b.alias is None and not b.is_const]
    assert acts and all(b.space == "fram" for b in acts)
    assert stats["sram_peak"] == 0 and stats["fram_activations"] > 0
    assert_no_shared_live_bytes(p)
    # constants follow the activation arena in the fram space
    arena_end = max(b.offset + b.nbytes for b in acts)
    assert all(b.offset >= arena_end for b in p.buffers.values() if b.is_const and b.space == "fram")


def test_large_constants_go_to_hifram_small_ones_stay_low() -> None:
    p, stats = plan(lenet_like(), hifram_threshold=1024)
    assert p.buffers["w2"].space == "hifram"          # 17280 B > 1 KiB
    assert p.buffers["w1"].space == "fram" and p.buffers["b1"].space == "fram"
    assert stats["hifram_bytes"] == 17280
    p2, _ = plan(lenet_like(), hifram_threshold=1 << 20)
    assert p2.buffers["w2"].space == "fram"


def test_lower_fram_overflow_moves_constants_to_hifram() -> None:
    p = lenet_like()
    p, stats = plan(p, sram=16 * 1024, hifram_threshold=1 << 20, code=LOWER_FRAM_BYTES - 4000)
    assert p.buffers["w2"].space == "hifram" and p.buffers["w1"].space == "fram"
    assert stats["lower_fram_used"] <= stats["lower_fram_capacity"]


def test_lower_fram_keeps_the_application_reserve_free() -> None:
    # code that leaves the small constants (786 B with w1's 300 B) room in lower FRAM only if they
    # take 200 B of the reserve: without it they stay there and fill lower FRAM to 2048 - 200 B of its end,
    # where the simulator harness (main_sim.c, CIO: ~1.9 KiB) then overflowed at link time
    code = LOWER_FRAM_BYTES - 2048 - 786 + 200
    p0, stats0 = plan(lenet_like(), sram=16 * 1024, hifram_threshold=1 << 20, code=code, app_reserve=0)
    assert p0.buffers["w1"].space == "fram"
    assert stats0["lower_fram_used"] > LOWER_FRAM_BYTES - PlanMemoryOptions().app_reserve
    p, stats = plan(lenet_like(), sram=16 * 1024, hifram_threshold=1 << 20, code=code,
                    app_reserve=PlanMemoryOptions().app_reserve)
    assert stats["lower_fram_capacity"] == LOWER_FRAM_BYTES - 2048
    assert stats["lower_fram_used"] <= LOWER_FRAM_BYTES - 2048
    assert p.buffers["w1"].space == "hifram"


HIFRAM_256K = 256 * 1024 - LOWER_FRAM_BYTES - VECTOR_BYTES     # 0x10000-0x43FFF


def test_hifram_overflow_moves_large_constants_into_free_lower_fram() -> None:
    # six 40 KiB weights (243 KiB of constants): all above hifram_threshold, but only five fit HIFRAM
    p = gemm_chain([128, 160, 128, 160, 128, 160, 128])
    weights = sum(b.nbytes for b in p.buffers.values() if b.is_const)
    assert HIFRAM_256K < weights < 256 * 1024
    p, stats = plan(p)
    assert is_planned(p)
    in_lower = [b for b in p.buffers.values() if b.is_const and b.space == "fram"]
    assert any(b.nbytes > 8192 for b in in_lower)
    assert stats["hifram_bytes"] <= HIFRAM_256K and stats["lower_fram_used"] <= stats["lower_fram_capacity"]
    assert stats["memory_model"] == "large"
    assert_no_shared_live_bytes(p)
    for b in p.buffers.values():
        if b.is_const:
            assert b.offset % max(2, DTYPES[b.dtype].itemsize) == 0
            if b.space == "hifram":
                assert b.offset + b.nbytes <= HIFRAM_256K


def test_hifram_full_of_small_constants_fits_a_large_one_in_lower_fram() -> None:
    # the budget's HIFRAM (17 KiB) cannot take w2 (17280 B) next to the rest, lower FRAM can
    p, stats = plan(lenet_like(), fram=LOWER_FRAM_BYTES + VECTOR_BYTES + 17 * 1024, hifram_threshold=64)
    assert p.buffers["w2"].space == "fram"
    assert stats["lower_fram_used"] <= stats["lower_fram_capacity"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3000), st.sampled_from(["i16", "i32"])), min_size=1, max_size=8),
       st.integers(0, 8000), st.integers(0, 12000), st.integers(0, 1 << 14))
def test_constants_fit_exactly_when_some_split_of_them_fits(sizes: list[tuple[int, str]], lower_free: int,
                                                            hifram: int, threshold: int) -> None:
    p = act_chain(1, size=2)
    for i, (n, dtype) in enumerate(sizes):
        const(p, f"c{i}", dtype, (n,))
    fixed = 256 + 64          # the descriptor and step table estimate of one act step is below this
    code = LOWER_FRAM_BYTES - lower_free - fixed
    budget = LOWER_FRAM_BYTES + VECTOR_BYTES + hifram
    consts = [b for b in p.buffers.values() if b.is_const]
    try:
        p, stats = plan(p, code=code, fram=budget, hifram_threshold=threshold)
    except BudgetError as exc:
        free = LOWER_FRAM_BYTES - code - fixed
        # no split of the constants fits lower FRAM's free bytes (at least ``free``) and HIFRAM
        fits = any(sum(b.nbytes for j, b in enumerate(consts) if m >> j & 1) <= free and
                   sum(b.nbytes for j, b in enumerate(consts) if not m >> j & 1) <= hifram
                   for m in range(1 << len(consts)))
        assert not fits, exc.render()
        assert "overflows by" in exc.message
        return
    assert stats["lower_fram_used"] <= stats["lower_fram_capacity"]
    assert stats["hifram_bytes"] <= hifram
    for b in consts:
        assert b.offset % max(2, DTYPES[b.dtype].itemsize) == 0
    assert_no_shared_live_bytes(p)


def test_fram_budget_error_names_the_overflowing_region_and_the_largest_constant() -> None:
    with pytest.raises(BudgetError) as info:     # lower FRAM keeps ~11 KiB free: w1, b1, b2 but not w2
        plan(lenet_like(), sram=16 * 1024, fram=LOWER_FRAM_BYTES + VECTOR_BYTES + 1024, code=LOWER_FRAM_BYTES - 12000)
    text = info.value.render()
    assert info.value.message.startswith(f"HIFRAM (0x{HIFRAM_START:X}-0x{HIFRAM_START + 1023:X}, 1.0 KiB")
    assert f"overflows by {fmt_bytes(17280 - 1024)}" in info.value.message   # w2 alone is left for HIFRAM
    assert "w2" in text and "fc1" in text and "17280" in text
    assert "sparsify" in (info.value.hint or "") and "--fram" in (info.value.hint or "")


def test_constants_that_fit_as_bytes_but_not_as_objects_say_so() -> None:
    # three 75 KiB weights: 227.5 KiB < 256 KiB, but two fill HIFRAM and the third is larger than lower FRAM
    p = gemm_chain([160, 240, 160, 240])
    weights = sorted(b.nbytes for b in p.buffers.values() if b.is_const and b.dtype == "i16")
    with pytest.raises(BudgetError) as info:
        plan(p)
    msg = info.value.message
    assert msg.startswith("HIFRAM (0x10000-0x43FFF, 208.0 KiB")
    assert f"overflows by {fmt_bytes(sum(weights) - HIFRAM_256K)}" in msg
    assert "not as whole objects" in info.value.render() and "%w1" in info.value.render()
    assert f"--fram {(256 * 1024 + sum(weights) - HIFRAM_256K + 1023) // 1024}KiB" in (info.value.hint or "")


def test_no_hifram_budget_names_lower_fram() -> None:
    with pytest.raises(BudgetError) as info:
        plan(lenet_like(), fram=LOWER_FRAM_BYTES, code=LOWER_FRAM_BYTES - 12000)
    assert info.value.message.startswith("lower FRAM (0x4000-0xFF7F") and "overflows by" in info.value.message


def test_lower_fram_too_small_for_code_and_fram_activations() -> None:
    with pytest.raises(BudgetError) as info:
        plan(lenet_like(), code=LOWER_FRAM_BYTES - 2048, hifram_activations=False)
    assert "lower FRAM" in info.value.message and "%t1" in info.value.render()
    assert "--sram 15KiB" in (info.value.hint or "")   # 8192 + 6912
    assert "hifram-activations=false" in (info.value.hint or "")
    with pytest.raises(BudgetError) as info:          # a budget without HIFRAM: say how much would do
        plan(lenet_like(), code=LOWER_FRAM_BYTES - 2048, fram=LOWER_FRAM_BYTES + VECTOR_BYTES)
    assert f"--fram {(LOWER_FRAM_BYTES + VECTOR_BYTES + 6912 + 1023) // 1024}KiB" in (info.value.hint or "")


def test_code_overflow_counts_the_steps_and_lists_readers_briefly() -> None:
    """Too much code for lower FRAM: the error says how many steps make it and what per step, and
    a constant read by many steps (the time steps of an unrolled recurrent layer) lists four."""
    p = act_chain(3)
    w = const(p, "w", "i16", (4, 256), [12] * 4)
    b = const(p, "b", "i32", (4,))
    for i in range(9):
        y = act(p, f"y{i}", (4,))
        p.steps.append(Step("fc", f"fc{i}", ["t3", w, b], [y], {"shift": [8] * 4, "act": "none"}))
        p.outputs.append(Port(f"out{i}", y))
    verify_program(p)
    with pytest.raises(BudgetError) as info:
        plan(p, code=LOWER_FRAM_BYTES)
    text = info.value.render()
    assert "cannot hold the code" in info.value.message and "12 steps, each with its own code" in text
    assert "'fc0', 'fc1', 'fc2', 'fc3' and 5 more steps" in text and "'fc4'" not in text
    assert "fewer steps" in (info.value.hint or "")


def test_step_functions_move_to_hifram_only_when_lower_fram_cannot_hold_the_code() -> None:
    """Hundreds of steps (an unrolled recurrence): the step functions go to HIFRAM in the large
    model, the run loop, kernels and descriptors stay in lower FRAM; a program that fits keeps
    them there in the small model."""
    small, stats = plan(act_chain(100, size=16), fram=256 * 1024)
    assert "step-code" not in small.meta and stats["step_code"] == "fram" and stats["hifram_code"] == 0
    assert stats["memory_model"] == "small" and not uses_large_model(small)
    big = act_chain(600, size=16)
    assert estimate_code_bytes(big) + estimate_rodata_bytes(big) > LOWER_FRAM_BYTES
    p, stats = plan(big, fram=256 * 1024)
    verify_program(p)
    assert p.meta["step-code"] == "hifram" and stats["step_code"] == "hifram"
    assert stats["memory_model"] == "large" and uses_large_model(p)
    assert stats["hifram_code"] == step_code_bytes(p, large=True) > LOWER_FRAM_BYTES // 2
    assert stats["code_estimate"] == estimate_code_bytes(p, large=True)
    # the activations stay in SRAM; lower FRAM holds the rest of the code and the descriptors
    assert {b.space for b in p.buffers.values()} == {"sram"}
    assert stats["lower_fram_used"] == stats["code_estimate"] - stats["hifram_code"] + stats["rodata_estimate"]
    # planning again (the pass is idempotent) keeps the placement; a smaller program drops the mark
    again, _ = plan(p, fram=256 * 1024)
    assert again.meta["step-code"] == "hifram"
    p.steps = p.steps[:50]
    p.outputs = [Port("out", p.steps[-1].outputs[0])]
    for name in [n for n in p.buffers if n.startswith("t") and int(n[1:]) > 50]:
        del p.buffers[name]
    fewer, stats = plan(p, fram=256 * 1024)
    assert "step-code" not in fewer.meta and stats["memory_model"] == "small"


def test_step_functions_that_do_not_fit_hifram_either_are_an_error() -> None:
    big = act_chain(600, size=16)
    code = step_code_bytes(big, large=True)
    fram = LOWER_FRAM_BYTES + VECTOR_BYTES + code - 1024
    with pytest.raises(BudgetError) as info:
        plan(big, fram=fram)
    msg = info.value.message
    assert msg.startswith(f"HIFRAM (0x{HIFRAM_START:X}-") and "overflows by 1.0 KiB (1024 B)" in msg
    assert "the step functions of the 600 steps" in msg and fmt_bytes(code) in msg
    assert "fewer steps" in (info.value.hint or "")
    assert plan(act_chain(600, size=16), fram=fram + 1024)[1]["step_code"] == "hifram"
    with pytest.raises(BudgetError) as info:       # forbidden: the lower FRAM error, with the way out
        plan(act_chain(600, size=16), fram=256 * 1024, hifram_code=False)
    assert "cannot hold the code" in info.value.message
    assert "hifram-code=false" in (info.value.hint or "")
    with pytest.raises(BudgetError) as info:       # a budget without HIFRAM: how much would do
        plan(act_chain(600, size=16), fram=LOWER_FRAM_BYTES + VECTOR_BYTES)
    assert "a FRAM budget with HIFRAM for the step functions (--fram" in (info.value.hint or "")


def test_fram_activations_that_do_not_fit_lower_fram_move_to_hifram() -> None:
    p, stats = plan(lenet_like(), code=LOWER_FRAM_BYTES - 2048, hifram_threshold=1024)
    verify_program(p)
    assert_no_shared_live_bytes(p)
    t1 = p.buffers["t1"]
    assert (t1.space, t1.offset) == ("hifram", 0) and stats["spilled_to_hifram"] == ["t1"]
    assert stats["hifram_activations"] == 6912 and stats["fram_activations"] == 0
    assert stats["memory_model"] == "large"
    # the constants in HIFRAM follow its activation arena; HIFRAM holds both
    hi_consts = [b for b in p.buffers.values() if b.is_const and b.space == "hifram"]
    assert [b.name for b in hi_consts] == ["w2"] and hi_consts[0].offset >= 6912
    assert stats["hifram_bytes"] == 6912 + 17280
    assert uses_large_model(p)


def test_hifram_activations_spill_only_what_lower_fram_cannot_hold() -> None:
    # lower FRAM keeps 6 KiB for activations: of a chain of 4 KiB buffers (two live at a time)
    # one moves, and only one: each step then has one operand in each arena
    p = act_chain(6, 2048)
    p, stats = plan(p, sram=2048, code=LOWER_FRAM_BYTES - 6 * 1024 - 256)
    assert_no_shared_live_bytes(p)
    verify_program(p)
    spaces = {b.space for b in p.buffers.values() if b.alias is None and not b.is_const}
    assert spaces == {"fram", "hifram"}
    assert stats["fram_activations"] <= 6 * 1024 - 256
    assert stats["hifram_activations"] == 4096      # the moved buffers share one slot by lifetime
    p2, stats2 = plan(act_chain(6, 2048), sram=2048)  # room enough: the small model, no HIFRAM
    assert stats2["spilled_to_hifram"] == [] and stats2["memory_model"] == "small"
    assert not uses_large_model(p2)


def x_act_fc(sparse: bool) -> Program:
    """x (4 KiB) -> concat(x, x) -> t1 (8 KiB) -> fc (sparse or dense) -> y: x and t1 live together."""
    from transpiler.lir import kernels as K

    p = Program("sparse_input")
    x = act(p, "x", (2048,))
    t1 = act(p, "t1", (4096,))
    y = act(p, "y", (4,))
    p.steps.append(Step("concat", "cat", [x, x], [t1], {"shifts": [0, 0]}))
    w = np.zeros((4, 4096), dtype=np.int16)
    w[:, ::512] = 7
    b = const(p, "b", "i32", (4,))
    if sparse:
        values, deltas, rowptr = K.csr_from_dense(w)
        for name, dtype, data in (("v", "i16", values), ("d", "u16", deltas), ("r", "u16", rowptr)):
            p.add(Buffer(name, dtype, tuple(data.shape), q=[12] * 4 if name == "v" else None, data=data))
        p.steps.append(Step("fc_sparse", "fc", [t1, "v", "d", "r", b], [y], {"act": "none", "shift": [13] * 4}))
    else:
        p.add(Buffer("w", "i16", w.shape, q=[12] * 4, data=w))
        p.steps.append(Step("fc", "fc", [t1, "w", b], [y], {"act": "none", "shift": [13] * 4}))
    p.inputs.append(Port("in", x))
    p.outputs.append(Port("out", y))
    return p


@pytest.mark.parametrize("sparse", [False, True])
def test_inputs_of_sparse_steps_move_to_hifram_last(sparse: bool) -> None:
    """fx_sparse.c's fast paths need their input below 64 KiB: with room for one of x and t1 in
    lower FRAM, the larger t1 moves unless a sparse step reads it; then x does."""
    p = x_act_fc(sparse)
    room = 9 * 1024
    p, stats = plan(p, sram=1024, code=LOWER_FRAM_BYTES - room - estimate_rodata_bytes(p, large=True))
    verify_program(p)
    assert stats["spilled_to_hifram"] == (["x"] if sparse else ["t1"])
    assert p.buffers["t1"].space == ("fram" if sparse else "hifram")


def test_persistent_activations_spill_to_hifram_too() -> None:
    p, stats = plan(lenet_like(), persistent=True, code=LOWER_FRAM_BYTES - 4096)
    acts = [b for b in p.buffers.values() if b.alias is None and not b.is_const]
    assert {b.space for b in acts} == {"fram", "hifram"}
    assert stats["spilled_to_hifram"] == ["t1"] and stats["sram_peak"] == 0
    assert_no_shared_live_bytes(p)


def test_hifram_overflow_with_activations_names_them_and_what_helps() -> None:
    # two live 120 KiB feature maps (240 KiB) cannot share the 208 KiB of HIFRAM
    with pytest.raises(BudgetError) as info:
        plan(act_chain(2, 60 * 1024))
    err = info.value
    text = err.render()
    assert err.message.startswith("HIFRAM (0x10000-0x43FFF, 208.0 KiB")
    assert f"overflows by {fmt_bytes(2 * 120 * 1024 - HIFRAM_256K)}" in err.message
    assert f"need {fmt_bytes(2 * 120 * 1024)} there" in err.message
    assert "HIFRAM activations live at step" in text and "%t1  120.0 KiB" in text and "written by 'a1'" in text
    assert "smaller feature maps" in (err.hint or "") and "--fram" in (err.hint or "")


def test_stack_larger_than_sram_is_an_error() -> None:
    with pytest.raises(PassError, match="stack reserve"):
        plan(act_chain(1), sram=1024, stack=2048)


def test_context_budgets_are_the_defaults() -> None:
    ctx = PassContext(sram_bytes=16 * 1024)
    stats = PlanMemory(PlanMemoryOptions(), ctx).run(lenet_like()).stats
    assert stats["spilled_to_fram"] == [] and stats["sram_budget"] == 16 * 1024
    assert ctx.extra["plan-memory"]["sram_peak"] == stats["sram_peak"]


def test_memory_summary_matches_the_placement() -> None:
    p, _ = plan(lenet_like())
    s = memory_summary(p)
    assert s["parameters"] == 150 + 6 + 8640 + 10
    assert s["fram_constants"] == s["fram_weights"] + s["fram_bias"] + s["fram_other"]
    assert s["sram_peak"] == max(b.offset + b.nbytes for b in p.buffers.values() if b.space == "sram")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 9), st.integers(0, 9), st.sampled_from([2, 4])),
                min_size=1, max_size=12))
def test_pack_never_overlaps_and_is_at_least_the_peak(raw: list[tuple[int, int, int, int]]) -> None:
    items = [_Item(f"b{i}", -(-size // align) * align, align, Lifetime(min(a, b), max(a, b)))
             for i, (size, a, b, align) in enumerate(raw)]
    packing = pack(items)
    for it in items:
        assert it.offset % it.align == 0
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            if a.life.overlaps(b.life):
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
    peak = max(sum(it.size for it in items if it.life.start <= t <= it.life.end) for t in range(10))
    assert peak <= packing.total <= packing.unshared


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(planned=False), st.sampled_from([None, 64, 256]))
def test_random_programs_plan_and_verify(p: Program, lower_room: int | None) -> None:
    """Also with 64 B of SRAM and 64 or 256 B of lower FRAM for activations (the drawn buffers have
    up to a few hundred bytes): the SRAM, FRAM and HIFRAM arenas all in use."""
    opts: dict[str, object] = {} if lower_room is None else {
        "sram": 64, "stack": 0, "code": LOWER_FRAM_BYTES - lower_room - estimate_rodata_bytes(p, large=True)}
    p, stats = plan(p, **opts)
    assert is_planned(p)
    verify_program(p)
    assert_no_shared_live_bytes(p)
    assert stats["sram_peak"] <= stats["sram_available"]
    assert stats["lower_fram_used"] <= stats["lower_fram_capacity"]
    assert (stats["hifram_activations"] > 0) == bool(stats["spilled_to_hifram"])


@pytest.mark.parametrize("taps, extra", [(32, 0), (33, SPARSE_LONG_STACK)])
def test_sparse_convs_with_wide_channels_reserve_more_stack(taps: int, extra: int) -> None:
    """A conv_sparse channel of more than FX_SPARSE_RUN_TAPS (32) stored taps may take
    fx_sparse_long, whose frame is deeper than the fast path's: plan-memory reserves
    SPARSE_LONG_STACK more SRAM for the stack, and the activations get that much less."""
    from transpiler.lir import kernels as K

    p = Program("wide_sparse")
    x = act(p, "x", (8, 4, 4))
    y = act(p, "y", (2, 4, 4))
    w = np.zeros((2, 8, 3, 3), dtype=np.int16)
    w.reshape(2, -1)[0, :taps] = 5
    values, offsets, chanptr = K.conv_sparse_from_dense(w, (4, 4))
    for name, dtype, data in (("v", "i16", values), ("o", "u16", offsets), ("c", "u16", chanptr)):
        p.add(Buffer(name, dtype, tuple(data.shape), q=[12] * 2 if name == "v" else None, data=data))
    b = const(p, "b", "i32", (2,))
    p.steps.append(Step("conv_sparse", "conv", [x, "v", "o", "c", b], [y],
                        {"kernel": [3, 3], "stride": [1, 1], "pads": [1, 1, 1, 1], "dilation": [1, 1],
                         "group": 1, "shift": [13, 13], "act": "relu"}))
    p.inputs.append(Port("in", x))
    p.outputs.append(Port("out", y))
    _, stats = plan(p, sram=4096)
    assert stats["stack_reserve"] == 1024 + extra
    assert stats["sram_available"] == 4096 - 1024 - extra
