"""gNet on harvested power in the MSP430 simulator (transpiler/gnet_sim.py, main_gnet_sim.c): which
exit answered and its class == the host driver and the Python reference model, the answers == the LIR
interpreter bit for bit, the device's integer energy arithmetic == transpiler.gnet_energy.EnergyModel
bit for bit, power failures injected at the cycle the capacitor is empty and the interrupted
inference answered after the reboot from its saved exits; the energy program's lower-FRAM bytes
within the capacity check's reserve; ``run --on sim --energy-trace``.

Skipped, with the reason, only when the msp430-elf toolchain is not installed (the EnergyModel tests
always run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from transpiler import hostrun
from transpiler.cli import main
from transpiler.errors import DataError
from transpiler.gnet_energy import ENERGY_ONE, EnergyModel, EnergyTrace, load_trace, run_energy, simulate
from transpiler.gnet_sim import (ENERGY_HARNESS_BYTES, SimEnergyRun, run_energy_sim, running_segments, sim_capacity,
                                 sim_energy_text)
from transpiler.lir.interp import run_program, run_until
from transpiler.lir.ops import ON_DEMAND_OPS
from transpiler.lir.text import parse_program
from transpiler.msp430_size import parse_link_map, region_of
from transpiler.power import PowerSupply, parse_power
from transpiler.toolchain import find_msp430_toolchain_or_none

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
N = 12


@pytest.fixture(scope="module")
def toolchain() -> object:
    tc, reason = find_msp430_toolchain_or_none()
    if tc is None:
        pytest.skip(f"no msp430-elf toolchain: {reason}")
    return tc


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """cnn_digits with a gNet (every 2nd sample to train), and the last N samples (x, y)."""
    tmp = tmp_path_factory.mktemp("gnet_sim")
    with np.load(SAMPLES / "cnn_digits.npz") as d:
        np.savez(tmp / "d.npz", x=d["x"][::2], y=d["y"][::2])
        x, y = d["x"][-N:], d["y"][-N:]
    out = tmp / "build"
    assert main([str(SAMPLES / "cnn_digits.onnx"), "-o", str(out), "--data", str(tmp / "d.npz"), "--gnet",
                 "epochs=15,baseline=none"]) == 0
    return out, x, y


def low_power(path: Path) -> Path:
    path.write_text("time_s,power_W\n0,0.0001\n0.5,0.00002\n1.0,0.0002\n")   # far below the 1.5 mW load
    return path


def supply_for(g: dict[str, Any]) -> PowerSupply:
    """A full charge pays for 1.2x the cycles up to exit 2's answer: short of the whole model."""
    cycles = 1.2 * (sum(g["step_cycles"][:g["exit_steps"][1] + 1]) + g["exit_cycles"])
    cap = 2 * cycles * 1.5e-3 / 8e6 / (3.3 ** 2 - 1.8 ** 2)
    return parse_power(f"cap={cap * 1e6:.4f}uF,von=3.3V,voff=1.8V,active=1.5mW")


def check_device_arithmetic(run: SimEnergyRun) -> int:
    """Every sync point the device logged == EnergyModel's arithmetic from the one before (bit for
    bit); a boot after a failure starts when the capacitor, empty at the crossing, is full again.
    Returns how many were checked."""
    m = run.model
    checked = 0
    boots = sorted({s.boot for s in run.syncs})
    for b in boots:
        for s, first, last in running_segments(run.syncs, b):
            nxt = next(x for x in run.syncs if x.boot == b and x.frm == first and x.at == last)
            t = s.t + (last - first)
            if nxt.why in "la":          # the clock restarts where it stopped
                assert (nxt.t, nxt.e) == (t, m.running(s.e, s.t, t)[0]), nxt
                checked += 1
        if b > 1:
            before = [x for x in run.syncs if x.boot == b - 1][-1]
            empty = m.crossing(before.e, before.t)
            assert empty is not None
            first = next(x for x in run.syncs if x.boot == b)
            assert first.why == "b" and first.t == m.charge_to(m.full, 0, empty) and first.e == m.full
            checked += 1
    return checked


def check_answers(out: Path, man: dict[str, Any], xq: np.ndarray, run: SimEnergyRun) -> None:
    """Answered samples: the class (and the whole model's outputs) == the LIR interpreter's."""
    p = parse_program((out / "final.lir").read_text())
    shape = p.buffers[p.inputs[0].buffer].shape
    cls_at = next(pt["offset"] for pt in man["outputs"] if pt["name"] == "class")
    seq = [s for s in p.steps if s.op not in ON_DEMAND_OPS]
    exit_steps = man["gnet"]["exit_steps"]
    for i, status in enumerate(run.status.tolist()):
        if status == 0:
            ref = run_program(p, {"input": xq[i].reshape(shape)})
            flat = np.concatenate([ref[pt["name"]].reshape(-1) for pt in man["outputs"]])
            np.testing.assert_array_equal(run.outputs[i], flat)
        elif status > 0:
            # the policy stopped before the step after exit k's feature step
            stop = p.steps.index(seq[exit_steps[status - 1] + 1])
            ans = run_until(p, {"input": xq[i].reshape(shape)}, stop)
            assert ans.exit == status and run.outputs[i, cls_at] == ans.cls


@pytest.mark.parametrize("start, level", [(None, True), (150_000, True), (None, False)])
def test_sim_energy_run_matches_host_driver_reference_and_interpreter(digits: tuple[Path, np.ndarray, np.ndarray],
                                                                     toolchain: object, tmp_path: Path,
                                                                     start: int | None, level: bool) -> None:
    """start=None: inferences wait until exit 1 is affordable (no failure); 150,000: they start too
    early and the power fails before exit 1 every other sample (failures injected by the simulator);
    level=False: a device that cannot read its energy runs until the power fails, and the reboot
    answers from the exits the inference saved."""
    out, x, _ = digits
    man = hostrun.load_manifest(out)
    g = man["gnet"]
    xq = hostrun.quantize(man, {"input": x})
    trace = load_trace(low_power(tmp_path / "t.csv"))
    supply = supply_for(g)
    sim = run_energy_sim(out, xq, trace, supply, 0.05, start_cycles=start, energy_level=level)
    host = run_energy(out, xq, trace, supply, 0.05, start_cycles=start, energy_level=level)
    ref, _ = simulate(parse_program((out / "final.lir").read_text()), xq, trace, supply, 0.05, g["step_cycles"],
                      g["exit_cycles"], start_cycles=g["start_cycles"] if start is None else start, answers=False,
                      energy_level=level)
    np.testing.assert_array_equal(sim.status, host.status)
    np.testing.assert_array_equal(sim.status, ref)
    answered = sim.status >= 0
    np.testing.assert_array_equal(sim.outputs[answered], host.outputs[answered])   # the C on both, bit for bit
    check_answers(out, man, xq, sim)
    assert check_device_arithmetic(sim) > 0
    assert sim.runs == len(sim.failures) + 1 and sim.result.power_failures == len(sim.failures)
    if not level:        # every inference ran into a failure after exit 1 and answered from its exits
        assert len(sim.failures) == N and answered.all() and (sim.status > 0).all()
    elif start is None:
        assert sim.failures == [] and answered.all() and len(set(sim.status.tolist())) > 1
        # the calibrated cost of an early answer (head, argmax, copies) vs the simulator's cycles
        mine = [s for s in sim.syncs if s.boot == 1]
        answers = [last - first for (s, first, last), nxt in zip(running_segments(sim.syncs, 1), mine[1:])
                   if s.why == "l" and nxt.why == "a"]
        assert len(answers) == N and all(abs(a - g["exit_cycles"]) <= 0.05 * a for a in answers), \
            (answers, g["exit_cycles"])
        # the energy program's lower FRAM (main_gnet_sim.c and the libgcc members it pulls in) is
        # within the reserve that sim_capacity keeps for it
        assert energy_program_bytes(sim.elf.with_suffix(".map")) <= ENERGY_HARNESS_BYTES
    else:
        assert len(sim.failures) == int((~answered).sum()) > 0 and answered.any()


def energy_program_bytes(map_file: Path) -> int:
    """Lower-FRAM bytes of main_gnet_sim.c's object and of the libgcc members it pulls in."""
    lm = parse_link_map(map_file.read_text())
    mine = {i.source for i in lm.inputs if "main_gnet_sim" in i.source}
    while True:
        more = {m for m, by in lm.members.items() if m not in mine and by in mine}
        if not more:
            break
        mine |= more
    assert any("udivdi3" in m for m in mine)             # the 64-bit division is counted
    return sum(i.size for i in lm.inputs if i.source in mine and region_of(i.address) == "fram")


def test_run_command_on_sim_with_an_energy_trace(digits: tuple[Path, np.ndarray, np.ndarray], toolchain: object,
                                                 tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, x, y = digits
    np.savez(tmp_path / "x.npz", x=x[:6], y=y[:6])
    trace = low_power(tmp_path / "t.csv")
    cap = supply_for(hostrun.load_manifest(out)["gnet"]).cap_f
    args = ["run", str(out), "--input", str(tmp_path / "x.npz"), "--energy-trace", str(trace),
            "--energy-supply", f"cap={cap * 1e6:.4f}uF,von=3.3V,voff=1.8V,active=1.5mW"]
    assert main([*args, "--on", "sim", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert main([*args, "--json"]) == 0
    host = json.loads(capsys.readouterr().out)
    assert doc["on"] == "sim" and host["on"] == "host" and doc["sim"]["power_failures"] == 0
    assert doc["status"] == host["status"] and doc["classes"] == host["classes"]
    assert all(c > 0 for c in doc["cycles"]) and doc["accuracy_of_answers"] == host["accuracy_of_answers"]
    assert main([*args, "--on", "sim"]) == 0
    text = capsys.readouterr().out
    assert "simulator (msp430-elf-run): 0 power failures" in text and "answered 6/6" in text


def test_energy_model() -> None:
    """The integer model: quantisation, a running CPU's energy and failure cycle, charging asleep."""
    trace = EnergyTrace(np.array([0.0, 1.0, 2.0]), np.array([0.0005, 0.003, 0.0]))
    supply = parse_power("cap=100uF,von=3.3V,voff=1.8V,active=1.5mW")
    m = EnergyModel.of(trace, supply, 0.05)
    assert m.times == (0, 8_000_000, 16_000_000) and m.powers == (21845, 131072, 0) and m.period == 400_000
    assert m.full == supply.cycles_per_power_cycle * ENERGY_ONE and m.level(m.full) == supply.cycles_per_power_cycle
    # row 0 drains 65536 - 21845 units a cycle: empty at the first cycle the energy would go below 0
    d = ENERGY_ONE - 21845
    fail = m.crossing(m.full, 0)
    assert fail == m.full // d + 1 and m.running(m.full, 0, fail - 1) == (m.full - d * (fail - 1), None)
    assert m.running(m.full, 0, fail) == (0, fail) and m.running(m.full, 0, 10 * fail) == (0, fail)
    # row 1 charges faster than it drains: capped at full; then row 2 (nothing harvested) drains it
    assert m.running(m.full // 2, 7_999_000, 9_999_999) == (m.full, None)
    assert m.crossing(m.full // 2, 7_999_000) == 16_000_000 + m.full // ENERGY_ONE + 1
    # asleep: only the harvest; charge_to finds the first cycle the target is reached
    assert m.asleep(0, 0, 1000) == 21845 * 1000 and m.asleep(0, 0, 10 ** 9) == m.full
    when = m.charge_to(m.full, 0, 0)
    assert when is not None and m.asleep(0, 0, when) == m.full and m.asleep(0, 0, when - 1) < m.full
    assert m.charge_to(m.full, 0, 16_000_000) is None                          # the last row gives nothing
    assert EnergyModel.of(EnergyTrace(np.array([0.0]), np.array([0.01])), parse_power(
        "cap=1uF,von=3.3V,voff=1.8V,active=1.5mW"), 0.0).crossing(1, 0) is None      # never empty
    # rows closer than a cycle: the later holds; the row holding at time 0 starts there
    m2 = EnergyModel.of(EnergyTrace(np.array([-1.0, 0.5, 0.5 + 1e-9, 2.0]), np.array([1e-3, 2e-3, 3e-4, 0.0])),
                        supply, 0.05)
    assert m2.times == (0, 4_000_000, 16_000_000) and m2.powers == (43691, 13107, 0)
    text = sim_energy_text(m)
    assert "const uint16_t fx_energy_rows = 3u;" in text and "0ull, 8000000ull, 16000000ull," in text
    assert "21845ul, 131072ul, 0ul," in text and f"fx_energy_full = {m.full}ull;" in text


def test_capacity_counts_the_trace(digits: tuple[Path, np.ndarray, np.ndarray]) -> None:
    """A longer trace leaves room for fewer inputs; one with no room left is a clear error."""
    man = hostrun.load_manifest(digits[0])
    assert sim_capacity(man, 3) > sim_capacity(man, 400) >= 1
    with pytest.raises(DataError, match="leaves no room for an input"):
        sim_capacity(man, 20_000)
