"""The tile pass with a budget, the intermittent plan in the LIR, the schedule prediction, the power
spec, and the emitted loop's structure (no C compiler needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from intermittent_helpers import REPO

from transpiler.errors import BudgetError, FreemlError, PassError
from transpiler.intermittent import (META_KEY, IntermittentPlan, Piece, commit_pieces, plan_of,
                                     simulate_power_cycles)
from transpiler.lir.cost import (BOOT_CYCLES, COMMIT_CYCLES, STEP_CYCLES, call_cycles, step_cycles, step_work,
                                 tile_unit_count)
from transpiler.lir.ir import Program
from transpiler.lir.text import parse_program, print_program
from transpiler.pass_infra import PassContext, registry
from transpiler.power import parse_power


def _lowered(name: str = "lenet5_mnist", persistent: bool = True) -> Program:
    from transpiler.data import input_specs, load_dataset
    from transpiler.loader import load
    from transpiler.manager import run_pipeline

    registry()
    model = load(str(REPO / "samples" / f"{name}.onnx"))
    ds = load_dataset(REPO / "samples" / f"{name}.npz", input_specs(model.graph))
    plan = "plan-memory{persistent=true}" if persistent else "plan-memory"
    program, _ = run_pipeline(model, f"normalize,quantize,lower,{plan}", PassContext(data=ds), verify=False)
    return program


@pytest.fixture(scope="module")
def lenet() -> Program:
    if not (REPO / "samples" / "lenet5_mnist.onnx").is_file():
        pytest.skip("samples/lenet5_mnist.onnx is absent")
    return _lowered()


def _tile(program: Program, budget: int, margin: float = 0.2) -> tuple[Program, dict]:
    from passes.tile import Tile, TileOptions

    p = parse_program(print_program(program))      # a copy
    res = Tile(TileOptions(budget=budget, margin=margin), PassContext()).run(p)
    return res.model, res.stats


@pytest.mark.parametrize("budget", [25000, 50000, 300000])
def test_every_group_fits_the_budget(lenet: Program, budget: int) -> None:
    p, stats = _tile(lenet, budget)
    usable = budget * 0.8
    for step in p.steps:
        work = step_work(p, step)
        tile = tile_unit_count(p, step)
        group = tile * step.tile.per_commit
        for u in range(0, work.units, group):       # every group, its calls where they start
            n = min(group, work.units - u)
            calls = sum(call_cycles(p, step, start) for start in range(u, u + n, tile))
            worst = n * work.cycles_per_unit + calls + COMMIT_CYCLES + BOOT_CYCLES
            assert worst <= usable, (step.name, u, worst, usable)
        assert 1 <= group <= work.units
    plan = plan_of(p)
    assert plan is not None and plan.budget == budget and plan.margin == 0.2
    assert stats["max_group_cycles"] + BOOT_CYCLES <= usable
    # bigger budgets mean fewer commits (hyper-tile batching)
    assert stats["commits"] >= len(p.steps) + 1


def _tile_overhead(program: Program, budget: int, overhead: float) -> tuple[Program, dict]:
    from passes.tile import Tile, TileOptions

    p = parse_program(print_program(program))
    res = Tile(TileOptions(budget=budget, overhead=overhead), PassContext()).run(p)
    return res.model, res.stats


def test_cheap_groups_fill_a_power_cycle_two_at_a_time(lenet: Program) -> None:
    from passes.tile import PACKED_GROUPS

    largest, big = _tile_overhead(lenet, 50000, 0.0)
    lean, small = _tile_overhead(lenet, 50000, 0.05)
    pack = 50000 * 0.9 - BOOT_CYCLES - STEP_CYCLES
    changed = 0
    for a, b in zip(largest.steps, lean.steps):
        ga, gb = tile_unit_count(largest, a) * a.tile.per_commit, tile_unit_count(lean, b) * b.tile.per_commit
        assert gb <= ga
        if gb < ga:      # a smaller group: its call and commit within 5 % of its work, two fill the pack
            changed += 1
            work = step_work(lean, b)
            calls = call_cycles(lean, b, 1) + COMMIT_CYCLES
            assert calls <= 0.05 * gb * work.cycles_per_unit
            assert PACKED_GROUPS * (gb * work.cycles_per_unit + calls) <= pack
            if b.op not in ("conv", "conv_sparse"):      # (a conv group may be whole channels)
                assert PACKED_GROUPS * ((gb + 1) * work.cycles_per_unit + calls) > pack
    assert changed >= 1                    # the fc layers (cheap calls)
    # fewer cycles lost under a failure every budget cycles, for a few more commits
    assert small["predicted_cycles"] < big["predicted_cycles"]
    assert small["commits"] > big["commits"]
    assert small["predicted_continuous_cycles"] < 1.01 * big["predicted_continuous_cycles"]


def test_bigger_budget_fewer_commits(lenet: Program) -> None:
    commits = [_tile(lenet, b)[1]["commits"] for b in (25000, 60000, 400000)]
    assert commits[0] > commits[1] > commits[2]


def test_plan_survives_the_text_form(lenet: Program) -> None:
    p, _ = _tile(lenet, 50000)
    again = parse_program(print_program(p))
    assert plan_of(again) == plan_of(p)
    assert [s.tile for s in again.steps] == [s.tile for s in p.steps]
    assert json.loads(again.meta[META_KEY])["budget"] == 50000


def test_malformed_plan_is_a_pass_error() -> None:
    with pytest.raises(PassError, match="not an intermittent plan"):
        IntermittentPlan.from_meta("{budget: 3")
    with pytest.raises(PassError, match="out-of-range"):
        IntermittentPlan.from_meta('{"budget": 0, "margin": 0.2, "input_per_commit": 1}')


def test_budget_too_small_for_one_unit_names_layer_budget_and_need(lenet: Program) -> None:
    with pytest.raises(BudgetError) as info:
        _tile(lenet, 3000)
    err = info.value
    assert err.location is not None and err.location.node == "/conv1/Conv" and err.location.pass_name == "tile"
    text = err.render()
    assert "3000 cycles" in text and "/conv1/Conv" in text
    need = int(text.split("needs ")[1].split(" cycles")[0])
    # the finest unit of a dense conv: one output column of one channel (its rows split into columns)
    assert "one output column of one channel" in text
    work = step_work(lenet, lenet.steps[0], cols=1)
    assert need >= work.cycles_per_unit and step_work(lenet, lenet.steps[0]).cycles_per_unit > 3000
    # the hint's budget is enough
    hint_budget = int(err.hint.split("at least ")[1].split(" cycles")[0])
    _tile(lenet, hint_budget)


def test_prediction_replays_failures() -> None:
    pieces = [Piece("a", 1, 400.0), Piece("b", 1, 400.0), Piece("c", 2, 300.0)]
    # continuous: one boot and the work
    cont = simulate_power_cycles(pieces, 0, 100)
    assert cont.total_cycles == 1200 and cont.power_failures == 0
    # 1000-cycle power cycles: boot+a+b = 900, c does not fit (lost 100), boot+c = 400
    run = simulate_power_cycles(pieces, 1000, 100)
    assert run.power_failures == 1 and run.lost_cycles == 100 and run.total_cycles == 1000 + 400
    # a piece that never fits
    stuck = simulate_power_cycles([Piece("big", 1, 950.0)], 1000, 100)
    assert stuck.stuck


def test_predicted_latency_includes_recharge(lenet: Program) -> None:
    from passes.tile import Tile, TileOptions

    supply = parse_power("cap=10uF,von=3.3V,voff=1.8V,active=1.5mW,freq=8MHz,harvest=0.1mW")
    p = parse_program(print_program(lenet))
    ctx = PassContext(extra={"power": supply, "cycles_per_power_cycle": supply.cycles_per_power_cycle})
    stats = Tile(TileOptions(), ctx).run(p).stats
    assert stats["budget"] == supply.cycles_per_power_cycle == 204000
    expected = stats["predicted_cycles"] / 8e6 + stats["predicted_power_failures"] * supply.recharge_s
    assert math.isclose(stats["predicted_seconds"], expected, rel_tol=1e-4)
    assert stats["predicted_power_failures"] >= 1


def test_pieces_cover_the_whole_inference(lenet: Program) -> None:
    p, stats = _tile(lenet, 50000)
    pieces = commit_pieces(p, plan_of(p))
    assert pieces[0].what == "input copy" and pieces[-1].what == "output copy"
    commits = sum(1 for pc in pieces if pc.what != "output copy")
    assert commits == stats["commits"]
    kernel = sum(step_cycles(p, s) for s in p.steps)
    assert sum(pc.cycles for pc in pieces) >= kernel


def test_one_call_step_pays_no_extra_call(lenet: Program) -> None:
    """A step done in one call costs its step_cycles (fitted on one call per step, its set-up
    included), its loop entry and its commit; only further calls add cost.OpCost.call."""
    p, _ = _tile(lenet, 10**7)
    pieces = commit_pieces(p, plan_of(p))
    for i, step in enumerate(p.steps):
        mine = [pc for pc in pieces if pc.step == i + 1]
        assert len(mine) == 1 and tile_unit_count(p, step) == step_work(p, step).units, step.name
        assert math.isclose(mine[0].cycles, STEP_CYCLES + step_cycles(p, step) + COMMIT_CYCLES), step.name


def test_sram_activations_refused_for_intermittent(tmp_path: Path) -> None:
    if not (REPO / "samples" / "tiny_conv1d.onnx").is_file():
        pytest.skip("samples/tiny_conv1d.onnx is absent")
    from backends.emit_c import EmitC, EmitCOptions

    p, _ = _tile(_lowered("tiny_conv1d", persistent=False), 50000)
    assert any(b.space == "sram" for b in p.buffers.values() if not b.is_const and b.alias is None)
    with pytest.raises(PassError, match="every activation in FRAM") as info:
        EmitC(EmitCOptions(), PassContext(out_dir=str(tmp_path))).run(p)
    assert "persistent=true" in (info.value.hint or "")


def test_power_spec_errors() -> None:
    with pytest.raises(FreemlError, match="missing active"):
        parse_power("cap=100uF,von=3.3V,voff=1.8V")
    with pytest.raises(FreemlError, match="above voff"):
        parse_power("cap=100uF,von=1.8V,voff=3.3V,active=1mW")
    assert parse_power("cap=100uF,von=3.3V,voff=1.8V,active=1.5mW").cycles_per_power_cycle == 2040000


def test_emitted_loop_commits_per_group_and_at_step_ends(lenet: Program, tmp_path: Path) -> None:
    from backends.emit_c import EmitC, EmitCOptions

    p, _ = _tile(lenet, 50000)
    EmitC(EmitCOptions(name="m"), PassContext(out_dir=str(tmp_path))).run(p)
    c = (tmp_path / "m.c").read_text()
    h = (tmp_path / "m.h").read_text()
    run = c[c.index("int fx_m_run("):]
    assert "fx_progress_load(&fx_m_progress_rec, &s, &u)" in run
    assert "fx_progress_commit(&fx_m_progress_rec, s, u)" in run                      # after a group
    assert "fx_progress_commit(&fx_m_progress_rec, (uint16_t)(s + 1u), 0u)" in run   # at a step end
    assert run.index("fx_m_copy_outputs(out)") > run.rindex("fx_progress_commit")   # after the last commit
    assert "static fx_progress_t fx_m_progress_rec FX_PERSISTENT" in c
    assert "#define FX_M_INTERMITTENT 1" in h and "void fx_m_reset(void);" in h
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["intermittent"]["budget"] == 50000 and man["api"]["reset"] == "fx_m_reset"
    mk = (tmp_path / "Makefile").read_text()
    assert "host-intermittent:" in mk and "-DFX_HOST_POWER_FAIL" in mk
    assert (tmp_path / "runtime" / "platform" / "host" / "fx_power_host.c").is_file()
    assert "-DFX_SIM_NEW_INPUT=fx_m_reset" in (tmp_path / "msp430.mk").read_text()
    assert "intermittent execution" in (tmp_path / "report.txt").read_text()


def test_continuous_build_has_no_progress_record(lenet: Program, tmp_path: Path) -> None:
    from backends.emit_c import EmitC, EmitCOptions

    EmitC(EmitCOptions(name="m"), PassContext(out_dir=str(tmp_path))).run(lenet)
    c = (tmp_path / "m.c").read_text()
    assert "fx_progress" not in c and "void fx_m_reset(void)" in c
    assert "#define FX_M_INTERMITTENT 0" in (tmp_path / "m.h").read_text()
    assert json.loads((tmp_path / "manifest.json").read_text())["intermittent"] is None
    assert "host-intermittent" not in (tmp_path / "Makefile").read_text()
