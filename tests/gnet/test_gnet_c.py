"""gNet end to end: compile --gnet, then every exit of the generated C (ASan+UBSan) == the LIR
interpreter bit for bit and == onnxruntime's gnet_exit_k top-1 (>= 99.5 %); the energy driver == the
Python reference model; the policy hook; run --energy-trace; the compile summary and report."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backends.c.runtime_files import runtime_dir
from transpiler import hostrun, ort
from transpiler.cli import main
from transpiler.gnet_energy import EnergyModel, EnergyTrace, load_trace, run_energy, run_exits, simulate
from transpiler.lir.interp import run_exits as interp_exits
from transpiler.lir.interp import run_program
from transpiler.lir.text import parse_program
from transpiler.model import OnnxModel
from transpiler.power import parse_power

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


def subset(name: str, path: Path, step: int) -> Path:
    """Every ``step``-th sample of samples/<name>.npz (x, y) as a new data file."""
    with np.load(SAMPLES / f"{name}.npz") as d:
        np.savez(path, x=d["x"][::step], y=d["y"][::step])
    return path


def compile_gnet(tmp: Path, name: str, step: int, *extra: str) -> tuple[Path, Path]:
    data = subset(name, tmp / f"{name}_data.npz", step)
    out = tmp / f"{name}_build"
    code = main([str(SAMPLES / f"{name}.onnx"), "-o", str(out), "--data", str(data), "--gnet", *extra])
    assert code == 0
    return out, data


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return compile_gnet(tmp_path_factory.mktemp("gnet"), "cnn_digits", 2, "epochs=15,baseline=none")


@pytest.fixture(scope="module")
def lenet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return compile_gnet(tmp_path_factory.mktemp("gnet"), "lenet5_mnist", 10, "epochs=8,baseline=none")


def program(out: Path) -> Any:
    return parse_program((out / "final.lir").read_text())


def check_exits(out: Path, data: Path, n: int) -> None:
    """C == interpreter (every exit, scores and class), C top-1 == onnxruntime's gnet_exit_k."""
    man = hostrun.load_manifest(out)
    g = man["gnet"]
    with np.load(data) as d:
        x = d["x"][:n]
    xq = hostrun.quantize(man, {"input": x})
    got = run_exits(out, xq, sanitize=True)
    p = program(out)
    in_shape = p.buffers[p.inputs[0].buffer].shape
    for i in range(n):
        outputs, answers = interp_exits(p, {"input": xq[i].reshape(in_shape)})
        assert [a.exit for a in answers] == list(got.exits[i]) == list(range(1, g["exits"] + 1))
        for k, a in enumerate(answers):
            assert got.classes[i, k] == a.cls
            np.testing.assert_array_equal(got.scores[i, k], a.scores)
        flat = np.concatenate([outputs[pt["name"]].reshape(-1) for pt in man["outputs"]])
        np.testing.assert_array_equal(got.outputs[i], flat)       # the backbone is not disturbed
    onnx = OnnxModel.from_proto(__import__("onnx").load(str(out / "normalized.onnx")))
    sess = ort.session(onnx)
    ref = np.stack([np.stack([o.reshape(-1) for o in sess.run(g["onnx_outputs"], {"input": x[i:i + 1]})])
                    for i in range(n)])                                   # [n, K, C]
    agree = (ref.argmax(axis=2) == got.classes).mean(axis=0)
    assert (agree >= 0.995).all(), agree


def test_every_exit_of_the_c_matches_interpreter_and_onnxruntime_digits(digits: tuple[Path, Path]) -> None:
    check_exits(*digits, n=300)


def test_every_exit_of_the_c_matches_interpreter_and_onnxruntime_lenet(lenet: tuple[Path, Path]) -> None:
    check_exits(*lenet, n=200)


def test_package_layout_and_report(digits: tuple[Path, Path]) -> None:
    out, _ = digits
    man = hostrun.load_manifest(out)
    g = man["gnet"]
    assert g["exits"] == 3 and g["classes"] == 10 and g["features"] == 256
    assert [man["steps"][s]["op"] for s in g["exit_steps"]] == ["gnet_feature"] * 3
    assert "gnet_exit" not in man["ops"] and len(g["step_cycles"]) == len(man["steps"])
    fbuf = next(b for b in man["buffers"] if b["name"] == "gnet_F")
    assert fbuf["space"] == "fram"                                    # persists across power failures
    header = (out / "cnn_digits.h").read_text()
    for decl in ("int fx_cnn_digits_exit(int16_t *scores, uint16_t *cls);", "void fx_cnn_digits_gnet_begin(void);",
                 "int fx_cnn_digits_policy(uint32_t next_cycles, uint32_t energy);", "uint32_t fx_energy_level(void);"):
        assert decl in header
    assert "gNet (one shared early exit)" in (out / "report.txt").read_text()
    # the plain host build runs the whole model (no energy hook): its outputs == the interpreter's
    with np.load(digits[1]) as d:
        x = d["x"][:5]
    xq = hostrun.quantize(man, {"input": x})
    y = hostrun.run_raw(hostrun.build(out), man, xq)
    p = program(out)
    for i in range(5):
        ref = run_program(p, {"input": xq[i].reshape(1, 8, 8)})
        np.testing.assert_array_equal(y[i], np.concatenate([ref[pt["name"]].reshape(-1) for pt in man["outputs"]]))


def supply_for(g: dict[str, Any]) -> Any:
    """A capacitor whose full charge pays for 1.2x the cycles up to exit 2 plus an answer (at 1.5 mW,
    8 MHz): short of the whole model, whatever the cost model's constants are."""
    cycles = 1.2 * (sum(g["step_cycles"][:g["exit_steps"][1] + 1]) + g["exit_cycles"])
    cap = 2 * cycles * 1.5e-3 / 8e6 / (3.3 ** 2 - 1.8 ** 2)
    return parse_power(f"cap={cap * 1e6:.4f}uF,von=3.3V,voff=1.8V,active=1.5mW")


def test_packages_are_deterministic(digits: tuple[Path, Path], tmp_path: Path) -> None:
    """The same command twice (training included) writes the same C, LIR and manifest."""
    out, data = digits
    again = tmp_path / "again"
    assert main([str(SAMPLES / "cnn_digits.onnx"), "-o", str(again), "--data", str(data), "--gnet",
                 "epochs=15,baseline=none"]) == 0
    for f in ("cnn_digits.c", "cnn_digits.h", "cnn_digits_weights.c", "main_gnet.c", "final.lir", "Makefile"):
        a = (out / f).read_text().replace(str(out), "OUT")
        b = (again / f).read_text().replace(str(again), "OUT")
        assert a == b, f
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (out, again))
    assert ma["gnet"] == mb["gnet"] and ma["gnet_training"] == mb["gnet_training"]


def trace_file(path: Path) -> Path:
    path.write_text("time_s,power_W\n0,0.0001\n0.5,0.00002\n1.0,0.0002\n")   # far below the 1.5 mW load
    return path


def test_energy_driver_matches_the_reference_model(digits: tuple[Path, Path], tmp_path: Path) -> None:
    out, data = digits
    man = hostrun.load_manifest(out)
    g = man["gnet"]
    with np.load(data) as d:
        x = d["x"][-60:]
    xq = hostrun.quantize(man, {"input": x})
    trace = load_trace(trace_file(tmp_path / "t.csv"))
    supply = supply_for(g)
    assert supply.cycles_per_power_cycle < sum(g["step_cycles"])   # the whole model never fits one charge
    run = run_energy(out, xq, trace, supply, 0.05, sanitize=True)
    status, answers = simulate(program(out), xq, trace, supply, 0.05, g["step_cycles"], g["exit_cycles"],
                               start_cycles=g["start_cycles"])
    np.testing.assert_array_equal(run.status, status)
    counts = run.counts(3)
    assert counts["full"] == 0 and counts["2"] > 0 and counts["none"] < len(x)
    cls_at = next(pt["offset"] for pt in man["outputs"] if pt["name"] == "class")
    for i, a in enumerate(answers):
        if a is not None:
            assert run.outputs[i, cls_at] == a.cls
    # -DFX_<M>_GNET_START_CYCLES: wait for a full charge before each inference
    full = sum(g["step_cycles"])
    waited = run_energy(out, xq, trace, supply, 0.05, start_cycles=full)
    ref, _ = simulate(program(out), xq, trace, supply, 0.05, g["step_cycles"], g["exit_cycles"], start_cycles=full,
                      answers=False)
    np.testing.assert_array_equal(waited.status, ref)
    assert (waited.status >= 0).all() and waited.end[-1] > run.end[-1]       # later, never dry
    # a device that cannot read its energy: every inference runs until the power fails, and the
    # reboot answers from the exits it saved (fx_<m>_recover), as the reference model says
    blind = run_energy(out, xq, trace, supply, 0.05, energy_level=False)
    ref, blind_answers = simulate(program(out), xq, trace, supply, 0.05, g["step_cycles"], g["exit_cycles"],
                                  start_cycles=g["start_cycles"], energy_level=False)
    np.testing.assert_array_equal(blind.status, ref)
    assert (blind.status > 0).all() and blind.counts(3)["full"] == 0
    assert all(blind.outputs[i, cls_at] == a.cls for i, a in enumerate(blind_answers))
    # plenty of energy: every inference runs the whole model
    rich = run_energy(out, xq[:5], EnergyTrace(np.array([0.0]), np.array([1.0])), parse_power(
        "cap=1F,von=3.3V,voff=1.8V,active=1.5mW"), 0.05)
    assert (rich.status == 0).all()


def test_policy_is_replaceable(digits: tuple[Path, Path], tmp_path: Path) -> None:
    """-DFX_<M>_POLICY and an own fx_<m>_policy: this one answers as soon as exit 1 is there."""
    out, data = digits
    man = hostrun.load_manifest(out)
    policy = tmp_path / "policy.c"
    policy.write_text("#include <stdint.h>\nint fx_cnn_digits_policy(uint32_t next_cycles, uint32_t energy)\n"
                      "{\n    (void)next_cycles;\n    (void)energy;\n    return 1;\n}\n")
    exe = tmp_path / "own_policy"
    sources = [str(out / "cnn_digits.c"), str(out / "cnn_digits_weights.c"), str(out / "main_gnet.c"), str(policy)]
    host = out / "runtime" / "platform" / "host"
    sources += [str(f) for f in sorted((out / "runtime").glob("*.c"))] + [str(host / "fx_host_io.c")]
    cmd = [hostrun.find_cc(), "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", "-DFX_STEP_HOOKS",
           "-DFX_ENERGY_LEVEL_HOOK", "-DFX_CNN_DIGITS_POLICY", f"-I{out}", f"-I{out / 'runtime'}", f"-I{host}",
           "-o", str(exe), *sources]
    subprocess.run(cmd, check=True, capture_output=True)
    with np.load(data) as d:
        xq = hostrun.quantize(man, {"input": d["x"][:4]})
    (tmp_path / "in.raw").write_bytes(np.ascontiguousarray(xq, dtype="<i2").tobytes())
    (tmp_path / "t.txt").write_text("0 65536000\n")                     # 1000x the load: never short
    proc = subprocess.run([str(exe), "energy", str(tmp_path / "in.raw"), str(tmp_path / "out.raw"), "4",
                           str(tmp_path / "t.txt"), str(1 << 40), "400000"], capture_output=True, text=True, check=True)
    assert [line.split()[3] for line in proc.stdout.splitlines()] == ["1"] * 4


def test_recover_after_a_failure_before_every_store(digits: tuple[Path, Path], tmp_path: Path) -> None:
    """A power failure before every FRAM store of one inference (tests/gnet/recover_harness.c, the
    package built with -DFX_HOST_POWER_FAIL and ASan+UBSan), then fx_<m>_recover: it answers from
    the k exits whose feature steps had finished (k = 0: no answer), its class and the head's
    scores == the interpreter's exit-k head bit for bit, also when the failure cut the next exit's
    feature step short (its slice half written), and it tries once."""
    out, data = digits
    man = hostrun.load_manifest(out)
    g = man["gnet"]
    m, c = man["c_name"], int(g["classes"])
    exe = tmp_path / "recover_harness"
    host = out / "runtime" / "platform" / "host"
    power = runtime_dir() / "platform" / "host"           # a continuous-power package does not copy it
    sources = [str(out / f"{m}.c"), str(out / f"{m}_weights.c"), str(Path(__file__).with_name("recover_harness.c")),
               str(host / "fx_host_io.c"), str(power / "fx_power_host.c")]
    sources += [str(f) for f in sorted((out / "runtime").glob("*.c"))]
    defs = {"FX_MODEL_HEADER": f'"{m}.h"', "M_RUN": f"fx_{m}_run", "M_WIPE_SRAM": f"fx_{m}_wipe_sram",
            "M_RECOVER": f"fx_{m}_recover", "M_EXIT": f"fx_{m}_exit", "M_IN_SIZE": str(man["api"]["in_size"]),
            "M_OUT_SIZE": str(man["api"]["out_size"]), "M_CLASSES": str(c)}
    cmd = [hostrun.find_cc(), "-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
           "-fno-sanitize-recover=all", "-DFX_HOST_POWER_FAIL", *[f"-D{k}={v}" for k, v in defs.items()],
           f"-I{out}", f"-I{out / 'runtime'}", f"-I{host}", f"-I{power}", "-o", str(exe), *sources]
    subprocess.run(cmd, check=True, capture_output=True)
    with np.load(data) as d:
        xq = hostrun.quantize(man, {"input": d["x"][7:8]})
    (tmp_path / "in.raw").write_bytes(np.ascontiguousarray(xq, dtype="<i2").tobytes())
    subprocess.run([str(exe), str(tmp_path / "in.raw"), str(tmp_path / "out.raw")], check=True, capture_output=True)
    rec = np.frombuffer((tmp_path / "out.raw").read_bytes(), dtype="<i2").reshape(-1, 3 + c + int(man["api"]["out_size"]))
    p = program(out)
    _, answers = interp_exits(p, {"input": xq[0].reshape(p.buffers[p.inputs[0].buffer].shape)})
    cls_at = next(pt["offset"] for pt in man["outputs"] if pt["name"] == "class")
    k = rec[:, 0].astype(np.int64)
    assert (np.diff(k) >= 0).all() and set(k.tolist()) == set(range(g["exits"] + 1))     # 0, 1, .., K in order
    assert (rec[:, 1] == 0).all()                                                     # one try
    for n in np.flatnonzero(k > 0):
        a = answers[k[n] - 1]
        np.testing.assert_array_equal(rec[n, 3:3 + c], a.scores)
        assert rec[n, 2] == a.cls and rec[n, 3 + c + cls_at] == a.cls
    assert (rec[k == 0, 3 + c + cls_at] == 0x5A5A).all()                              # no answer: out untouched
    # the failures inside exit 2's feature step (k == 1 after the last of exit 1's stores, before the
    # first store after exit 2's): the slice of exit 2 was partly written, and forgotten
    in_exit2 = [n for n in np.flatnonzero(k == 1) if k[min(n + 40, len(k) - 1)] == 2]
    assert in_exit2


def test_run_command_with_an_energy_trace(digits: tuple[Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out, data = digits
    with np.load(data) as d:
        np.savez(tmp_path / "x.npz", x=d["x"][-30:], y=d["y"][-30:])
    trace = trace_file(tmp_path / "t.csv")
    cap = supply_for(hostrun.load_manifest(out)["gnet"]).cap_f
    spec = f"cap={cap * 1e6:.4f}uF,von=3.3V,voff=1.8V,active=1.5mW"
    code = main(["run", str(out), "--input", str(tmp_path / "x.npz"), "--energy-trace", str(trace),
                 "--energy-supply", spec, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["samples"] == 30
    assert sum(doc["counts"].values()) == 30 and doc["answered"] == 30 - doc["counts"]["none"]
    assert doc["accuracy_of_answers"] is not None and doc["accuracy_of_answers"] > 0.6
    code = main(["run", str(out), "--input", str(tmp_path / "x.npz"), "--energy-trace", str(trace),
                 "--energy-supply", spec])
    text = capsys.readouterr().out
    assert code == 0 and "sample 0: " in text and "answered " in text and "accuracy of the answers" in text
    bad = tmp_path / "bad.csv"
    bad.write_text("0,0.001\n0,0.002\n")
    assert main(["run", str(out), "--input", str(tmp_path / "x.npz"), "--energy-trace", str(bad)]) == 2
    assert "does not increase" in capsys.readouterr().err


def test_trace_files(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("# a recorded harvester\ntime,power\n0.0, 0.001\n0.5; 0.0\n2 0.002\n")
    t = load_trace(f)
    assert t.times.tolist() == [0.0, 0.5, 2.0] and t.powers.tolist() == [0.001, 0.0, 0.002]
    m = EnergyModel.of(t, parse_power("cap=10000uF,von=3.3V,voff=1.8V,active=1.5mW,freq=8MHz"), 0.05)
    assert m.times == (0, 4_000_000, 16_000_000) and m.powers == (43691, 0, 87381)
    assert m.joules(m.asleep(0, 0, 8_000_000)) == pytest.approx(0.0005, rel=1e-4)


def test_intermittent_build_with_gnet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--gnet with --cycles-per-power-cycle: the intermittent run loop zeroes F at a new inference and
    keeps the exit hook; power failures leave the outputs as the uninterrupted run's; the head is not
    tiled nor counted in the predicted cycles."""
    out, data = compile_gnet(tmp_path, "cnn_digits", 6, "epochs=3,baseline=none", "--cycles-per-power-cycle",
                             "50000", "--json")
    summary = json.loads(capsys.readouterr().out)
    steps = [s["step"] for s in summary["intermittent"]["steps"]] if summary.get("intermittent") else []
    assert "gnet_head" not in steps
    text = (out / "cnn_digits.c").read_text()
    assert "fx_cnn_digits_gnet_begin();" in text and "fx_cnn_digits_gnet_stop((uint16_t)(s - 1u))" in text
    with np.load(data) as d:
        np.save(tmp_path / "x.npy", d["x"][:3])
    code = main(["run", str(out), "--input", str(tmp_path / "x.npy"), "--power-fail", "random:seed=3,min=150,max=2500"])
    assert code == 0 and "output identical to the uninterrupted run: yes" in capsys.readouterr().out


def test_verify_checks_every_exit(digits: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out, data = digits
    code = main(["verify", str(out), "--data", str(data), "--limit", "120", "--json"])
    doc = json.loads(capsys.readouterr().out)
    rows = {r["output"]: r for r in doc["outputs"]}
    assert code == 0 and doc["pass"]
    for k in (1, 2, 3):
        assert rows[f"gnet_exit_{k}"]["kind"] == "gnet-exit" and rows[f"gnet_exit_{k}"]["agreement"] >= 0.995
