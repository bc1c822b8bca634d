"""The `emit-c` pass: the generated package, its API, determinism, and C == interpreter on random LIR."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from emit_c_helpers import check_c_equals_interpreter, emit, interp_outputs, pack_inputs, random_inputs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies_lir import programs

from backends.c.runtime_files import needed_files, runtime_dir
from backends.emit_c import EmitC, EmitCOptions
from transpiler import __version__, hostrun
from transpiler.errors import FreemlError, PassError
from transpiler.lir.ir import Buffer, Port, Program, Step, TilePlan
from transpiler.lir.kernels import csr_from_dense
from transpiler.lir.text import parse_program
from transpiler.pass_infra import PassContext

GENERATED = ("Makefile", "main_host.c", "final.lir", "report.txt")


def small_cnn(tile: TilePlan | None = None) -> Program:
    """x[2,7,9] -> conv 3x3 pad 1 relu -> y1[4,7,9] -> avgpool 2 (ceil) -> y2[4,4,5] -> concat with
    itself -> flatten -> fc 5 -> argmax."""
    rng = np.random.default_rng(3)
    p = Program("small cnn")
    p.add(Buffer("x", "i16", (2, 7, 9), q=12))
    p.add(Buffer("w", "i16", (4, 2, 3, 3), q=[13, 14, 12, 13], data=rng.integers(-3000, 3000, (4, 2, 3, 3)).astype("<i2")))
    p.add(Buffer("b", "i32", (4,), data=rng.integers(-10**6, 10**6, 4).astype("<i4")))
    p.add(Buffer("y1", "i16", (4, 7, 9), q=11))
    p.add(Buffer("y2", "i16", (4, 4, 5), q=11))
    p.add(Buffer("y3", "i16", (8, 4, 5), q=10))
    p.add(Buffer("y3f", "i16", (160,), q=10, alias="y3"))
    p.add(Buffer("w2", "i16", (5, 160), q=[14] * 5, data=rng.integers(-2000, 2000, (5, 160)).astype("<i2")))
    p.add(Buffer("b2", "i32", (5,), data=rng.integers(-10**5, 10**5, 5).astype("<i4")))
    p.add(Buffer("logits", "i16", (5,), q=8))
    p.add(Buffer("cls", "i16", (1,), q=0))
    p.steps = [
        Step("conv", "conv", ["x", "w", "b"], ["y1"], {"act": "relu", "dilation": [1, 1], "group": 1,
             "pads": [1, 1, 1, 1], "shift": [14, 15, 13, 14], "stride": [1, 1]}, ["/conv/Conv", "/relu/Relu"], tile),
        Step("avgpool", "pool", ["y1"], ["y2"], {"kernel": [2, 2], "stride": [2, 2], "pads": [0, 0, 1, 1],
             "count_include_pad": 0}, ["/pool/AveragePool"]),
        Step("concat", "cat", ["y2", "y2"], ["y3"], {"shifts": [1, 1]}, ["/cat/Concat"]),
        Step("fc", "fc", ["y3f", "w2", "b2"], ["logits"], {"act": "none", "shift": [16] * 5}, ["/fc/Gemm"]),
        Step("argmax", "argmax", ["logits"], ["cls"], {}, ["/softmax"]),
    ]
    p.inputs = [Port("input", "x")]
    p.outputs = [Port("logits", "logits"), Port("class", "cls")]
    p.meta = {"class-output": "class", "labels": json.dumps(["a", "b", "c", "d", "e"]), "source": "ab" * 32}
    return p


def sparsified(p: Program, seed: int = 0) -> tuple[Program, Program]:
    """(dense, sparse): `p` with about half its conv/fc weights zeroed, and the same program with the
    conv as conv_sparse and the fc as fc_sparse (docs/lir.md "Sparse ops" encodings)."""
    import copy

    rng = np.random.default_rng(seed)
    dense = copy.deepcopy(p)
    for name in ("w", "w2"):
        data = dense.buffers[name].data.copy()
        data[rng.random(data.shape) < 0.5] = 0
        data[1] = 0                                        # an output with no stored weight
        dense.buffers[name].data = data
    sparse = copy.deepcopy(dense)
    w = sparse.buffers.pop("w")
    flat = w.data.reshape(w.shape[0], -1)
    idx = [np.nonzero(row)[0] for row in flat]
    if not sum(len(i) for i in idx):
        idx[0] = np.array([0])
    sparse.add(Buffer("wv", "i16", (sum(len(i) for i in idx),), q=w.q,
                      data=np.concatenate([row[i] for row, i in zip(flat, idx)]).astype("<i2")))
    conv = sparse.steps[0]
    # offsets: ci' * Hv * Wv + ky * dh * Wv + kx * dw, the input grown to the dilated kernel
    _, h, wd = sparse.buffers[conv.inputs[0]].shape
    (dh, dw), kh, kw = conv.attrs["dilation"], w.shape[2], w.shape[3]
    hv, wv = max(h, (kh - 1) * dh + 1), max(wd, (kw - 1) * dw + 1)
    ci, ky, kx = np.unravel_index(np.concatenate(idx).astype(np.int64), w.shape[1:])
    offsets = ci * hv * wv + ky * dh * wv + kx * dw
    sparse.add(Buffer("wo", "u16", (sum(len(i) for i in idx),), data=offsets.astype("<u2")))
    sparse.add(Buffer("wp", "u16", (w.shape[0] + 1,), data=np.cumsum([0] + [len(i) for i in idx]).astype("<u2")))
    conv.op, conv.inputs = "conv_sparse", ["x", "wv", "wo", "wp", "b"]
    conv.attrs = {**conv.attrs, "kernel": [w.shape[2], w.shape[3]]}
    w2 = sparse.buffers.pop("w2")
    v2, d2, p2 = csr_from_dense(w2.data)                  # byte steps (docs/lir.md, fc_sparse)
    sparse.add(Buffer("w2v", "i16", v2.shape, q=w2.q, data=v2.astype("<i2")))
    sparse.add(Buffer("w2c", "u16", d2.shape, data=d2.astype("<u2")))
    sparse.add(Buffer("w2p", "u16", p2.shape, data=p2.astype("<u2")))
    fc = sparse.steps[3]
    fc.op, fc.inputs = "fc_sparse", ["y3", "w2v", "w2c", "w2p", "b2"]    # fc reads the [8,4,5] map as K=160
    return dense, sparse


def test_sparse_ops_equal_the_dense_ones_in_c(tmp_path: Path) -> None:
    from transpiler.lir.interp import OPS

    if "conv_sparse" not in OPS or not (runtime_dir() / "fx_sparse.c").is_file():
        pytest.skip("the sparse kernels (fx_sparse.c) or their interpreter ops are not in this tree")
    dense, sparse = sparsified(small_cnn())
    from transpiler.lir.verify import verify_program

    verify_program(sparse)
    inputs = random_inputs(dense, 10, seed=4)
    check_c_equals_interpreter(sparse, tmp_path / "sparse", inputs, "sparse/small_cnn")
    want = interp_outputs(dense, inputs)
    got = hostrun.run_raw(hostrun.build(tmp_path / "sparse", cc="gcc"), hostrun.load_manifest(tmp_path / "sparse"),
                          pack_inputs(sparse, inputs))
    assert np.array_equal(got, want)                       # sparse C == dense interpreter, bit for bit
    src = (tmp_path / "sparse" / "small_cnn.c").read_text()
    assert "fx_conv_sparse(p, x, y, co" in src and "fx_fc_sparse(&fx_small_cnn_s3_fc" in src
    runtime = {f.name for f in (tmp_path / "sparse" / "runtime").iterdir()}
    assert "fx_sparse.c" in runtime and "fx_conv.c" not in runtime and "fx_fc.c" not in runtime


def files_digest(root: Path) -> dict[str, str]:
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file() and "_host" not in f.name}


def test_layout_api_and_bit_exact(tmp_path: Path) -> None:
    stats = emit(small_cnn(), tmp_path, name="cnn")
    m = "cnn"
    for f in (f"{m}.h", f"{m}.c", f"{m}_weights.c", f"{m}_weights.h", f"{m}_config.h", *GENERATED, "manifest.json"):
        assert (tmp_path / f).is_file(), f
    header = (tmp_path / f"{m}.h").read_text()
    assert "int fx_cnn_run(const int16_t *in, int16_t *out);" in header
    for macro, value in (("FX_CNN_IN_SIZE", "126u"), ("FX_CNN_OUT_SIZE", "6u"), ("FX_CNN_N_STEPS", "5u"),
                         ("FX_CNN_IN_INPUT_Q", "(12)"), ("FX_CNN_OUT_LOGITS_OFFSET", "0u"),
                         ("FX_CNN_OUT_CLASS_OFFSET", "5u"), ("FX_CNN_OUT1_SIZE", "1u"), ("FX_CNN_N_CLASSES", "5u")):
        assert re.search(rf"#define {macro} {re.escape(value)}\n", header), macro
    source = (tmp_path / f"{m}.c").read_text()
    for i, name in enumerate(("conv", "pool", "cat", "fc", "argmax")):
        assert f"static void fx_cnn_step_{i}_{name}(uint16_t u0, uint16_t u1)" in source
    assert "from ONNX /conv/Conv, /relu/Relu" in source and "FX_CNN_STEP_UNITS" in source
    assert "fx_cnn_steps[s]" in source                       # the run loop is table driven
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["labels"] == ["a", "b", "c", "d", "e"] and man["class_output"] == "class"
    assert man["class_source"] == "logits"
    assert [s["units"] for s in man["steps"]] == [28, 4, 5, 5, 1]    # conv rows, channels, chunks, outputs, 1
    assert man["inputs"][0]["scale"] == 2.0 ** -12 and man["api"]["in_size"] == 126
    assert sorted(stats["files"]) == stats["files"] or True
    inputs = random_inputs(small_cnn(), 12, seed=1)
    check_c_equals_interpreter(small_cnn(), tmp_path / "again", inputs, "small_cnn/inputs_seed_1")


@pytest.mark.parametrize("cols", [1, 4, 8])
def test_column_units_run_with_the_same_result(tmp_path: Path, cols: int) -> None:
    # a conv tile [1,1,cols] below the output width 9: units are ranges of cols columns (the last narrower)
    p = small_cnn(TilePlan([1, 1, cols], per_commit=2))
    emit(p, tmp_path)
    text = (tmp_path / "small_cnn.c").read_text()
    assert re.search(rf"{{ fx_small_cnn_step_0_conv, {28 * -(-9 // cols)}u, 1u, 2u }}", text)
    assert f"fx_conv_col_units(&fx_small_cnn_s0_conv, x, y, {cols}u, u0, u1);" in text
    check_c_equals_interpreter(small_cnn(TilePlan([1, 1, cols], per_commit=2)), tmp_path / "c",
                               random_inputs(p, 6, 2), f"columns/{cols}")


@pytest.mark.parametrize("dims", [[1, 2, 9], [3, 7, 9], [4, 5, 9], [2, 3, 9]])
def test_tile_plans_run_in_tiles_with_the_same_result(tmp_path: Path, dims: list[int]) -> None:
    p = small_cnn(TilePlan(dims, per_commit=2))
    emit(p, tmp_path)
    text = (tmp_path / "small_cnn.c").read_text()
    oh = 7
    tile = dims[0] * oh if dims[1] >= oh else dims[1]
    assert re.search(rf"{{ fx_small_cnn_step_0_conv, 28u, {tile}u, 2u }}", text)
    check_c_equals_interpreter(small_cnn(TilePlan(dims, per_commit=2)), tmp_path / "c", random_inputs(p, 6, 2),
                               f"tiles/{'_'.join(map(str, dims))}")


def test_every_generated_file_has_the_provenance_header(tmp_path: Path) -> None:
    ctx = PassContext(out_dir=str(tmp_path), command_line="freeml-tx m.onnx -o out */ x",
                      pipeline_text="normalize,quantize,lower,plan-memory,emit-c")
    from passes.plan_memory import PlanMemory
    p = PlanMemory(context=ctx).run(small_cnn()).model
    EmitC(EmitCOptions(), ctx).run(p)
    generated = [f for f in tmp_path.iterdir() if f.is_file() and f.name != "manifest.json"]
    assert len(generated) >= 9
    for f in generated:
        head = "\n".join(f.read_text().splitlines()[:6])
        assert f"freeml-tx {__version__}" in head, f.name
        if f.suffix in (".c", ".h"):
            assert "command:  freeml-tx m.onnx -o out * / x" in head, f.name     # */ cannot end the comment
        else:
            assert "command:  freeml-tx m.onnx -o out */ x" in head, f.name
        assert "pipeline: normalize,quantize,lower,plan-memory,emit-c" in head, f.name
        assert "sha256 " + "ab" * 32 in head, f.name
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["generator"] == {"freeml_tx": __version__, "command": ctx.command_line,
                                "pipeline": ctx.pipeline_text, "source_sha256": "ab" * 32}


def test_output_is_deterministic(tmp_path: Path) -> None:
    emit(small_cnn(), tmp_path / "a")
    emit(small_cnn(), tmp_path / "b")
    a, b = files_digest(tmp_path / "a"), files_digest(tmp_path / "b")
    assert a == b and len(a) > 10


def test_final_lir_reloads_to_the_same_program(tmp_path: Path) -> None:
    from transpiler.lir.compare import program_diff

    p = small_cnn()
    emit(p, tmp_path)
    again = parse_program((tmp_path / "final.lir").read_text())
    assert again.meta.pop("c-name") == "small_cnn"
    assert program_diff(p, again) == []


def test_only_the_needed_runtime_files_are_copied(tmp_path: Path) -> None:
    stats = emit(small_cnn(), tmp_path)
    runtime = sorted(f.name for f in (tmp_path / "runtime").iterdir() if f.is_file())
    for f in ("fx_kernels.h", "fx_conv.c", "fx_fc.c", "fx_pool.c"):
        assert f in runtime
    assert "fx_progress.c" not in runtime                 # nothing calls the commit protocol yet
    mk = (tmp_path / "Makefile").read_text()
    assert "runtime/fx_conv.c" in mk and "-include msp430.mk" in mk
    # a program with only an act step needs the element-wise kernels but no conv
    p = Program("acts")
    p.add(Buffer("x", "i16", (40,), q=3))
    p.add(Buffer("y", "i16", (40,), q=3))
    p.steps = [Step("act", "relu", ["x"], ["y"], {"act": "relu"})]
    p.inputs, p.outputs = [Port("x", "x")], [Port("y", "y")]
    emit(p, tmp_path / "acts")
    acts = {f.name for f in (tmp_path / "acts" / "runtime").iterdir() if f.is_file()}
    assert "fx_conv.c" not in acts and "fx_kernels.h" in acts
    assert stats["c_name"] == "small_cnn"


def test_needed_files_follow_calls_and_includes(tmp_path: Path) -> None:
    (tmp_path / "fx_kernels.h").write_text('#include "fx_a.h"\nvoid fx_a(void);\n')
    (tmp_path / "fx_a.h").write_text("/* fx_b( in a comment is not a call */\n")
    (tmp_path / "fx_a.c").write_text('#include "fx_a.h"\nvoid fx_a(void)\n{\n    fx_b();\n}\n')
    (tmp_path / "fx_b.c").write_text("void fx_b(void) { }\n")
    (tmp_path / "fx_c.c").write_text("void fx_c(void) { }\n")
    got = needed_files(['#include "fx_kernels.h"\nint main(void) { fx_a(); return 0; }\n'], tmp_path)
    assert got == ["fx_a.c", "fx_a.h", "fx_b.c", "fx_kernels.h"]
    assert (runtime_dir() / "fx_kernels.h").is_file()


def test_unplanned_program_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PassError, match="no memory placement") as info:
        EmitC(EmitCOptions(), PassContext(out_dir=str(tmp_path))).run(small_cnn())
    assert "plan-memory" in (info.value.hint or "")


def test_no_output_directory_is_an_error() -> None:
    with pytest.raises(PassError, match="output directory"):
        EmitC(EmitCOptions(), PassContext()).run(small_cnn())


def test_host_driver_checks_its_input(tmp_path: Path) -> None:
    emit(small_cnn(), tmp_path)
    exe = hostrun.build(tmp_path, cc="gcc")
    bad = tmp_path / "bad.raw"
    bad.write_bytes(b"\0" * 7)
    r = subprocess.run([str(exe), str(bad), str(tmp_path / "o.raw")], capture_output=True, text=True)
    assert r.returncode == 1 and "not a positive multiple of 252" in r.stderr
    good = tmp_path / "two.raw"
    good.write_bytes(b"\1\0" * 252)
    r = subprocess.run([str(exe), str(good), str(tmp_path / "o.raw"), "3"], capture_output=True, text=True)
    assert r.returncode == 1 and "expected 756" in r.stderr
    for count in ("x", "-1", "+2", "0", "99999999999999999999999"):   # digits only, positive, no overflow
        r = subprocess.run([str(exe), str(good), str(tmp_path / "o.raw"), count], capture_output=True, text=True)
        assert r.returncode == 2 and f"COUNT must be a positive integer, got '{count}'" in r.stderr
    r = subprocess.run([str(exe), str(tmp_path / "none.raw"), str(tmp_path / "o.raw")], capture_output=True, text=True)
    assert r.returncode == 1 and "none.raw: cannot read the input file" in r.stderr
    r = subprocess.run([str(exe), str(good), str(tmp_path / "no" / "o.raw"), "2"], capture_output=True, text=True)
    assert r.returncode == 1 and "o.raw: cannot write the output file" in r.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr
    r = subprocess.run([str(exe), str(good), str(tmp_path / "o.raw")], capture_output=True, text=True)
    assert r.returncode == 0 and (tmp_path / "o.raw").stat().st_size == 2 * 6 * 2
    p = small_cnn()
    x = np.ones((2, 126), dtype=np.int16)
    want = interp_outputs(p, [{"input": x[0].reshape(2, 7, 9)}] * 2)
    got = np.fromfile(tmp_path / "o.raw", dtype="<i2").reshape(2, 6)
    assert np.array_equal(got, want)
    assert np.array_equal(pack_inputs(p, [{"input": x[0].reshape(2, 7, 9)}]), x[:1])


def test_fram_activations_and_hifram_constants_are_placed_by_macros(tmp_path: Path) -> None:
    emit(small_cnn(), tmp_path, plan=True, persistent=True, hifram_threshold=256)
    src = (tmp_path / "small_cnn.c").read_text()
    weights = (tmp_path / "small_cnn_weights.c").read_text()
    assert "FX_PERSISTENT = {0};" in src and "small_cnn_sram[" not in src
    assert re.search(r"const int16_t fx_small_cnn_c_w2\[800\] FX_HIFRAM =", weights)
    assert re.search(r"const int16_t fx_small_cnn_c_w\[72\] FX_FRAM =", weights)
    assert "FX_STORE(dst[i]" in src                          # inputs copied into FRAM count as FRAM stores
    check_c_equals_interpreter(small_cnn(), tmp_path / "c", random_inputs(small_cnn(), 4, 5), "persistent/small_cnn",
                               builds=(("clang", True),))


@pytest.mark.parametrize("where", ["sram+fram", "persistent+hifram"])
def test_msp430_build_equals_the_interpreter(tmp_path: Path, where: str) -> None:
    """The same package through `make msp430` (msp430.mk) on the FR5994 simulator: -Werror clean,
    placement macros land in the right sections, outputs equal the interpreter's."""
    from transpiler.sim import parse_cio_output, run_model
    from transpiler.toolchain import find_msp430_toolchain_or_none

    tc, reason = find_msp430_toolchain_or_none()
    if tc is None:
        pytest.skip(reason)
    opts = {"persistent": True, "hifram_threshold": 256} if where == "persistent+hifram" else {"sram": 1536}
    p = small_cnn()
    emit(p, tmp_path, plan=True, **opts)
    inputs = random_inputs(p, 3, seed=9)
    result = run_model(tmp_path, "small_cnn", pack_inputs(p, inputs).tolist(), toolchain=tc)
    got = parse_cio_output(result.stdout).outputs
    assert np.array_equal(np.array([got[i] for i in range(3)]), interp_outputs(p, inputs))
    sections = subprocess.run([str(tc.size), "-A", str(tmp_path / "small_cnn.elf")], capture_output=True,
                              text=True, check=True).stdout
    sizes = {line.split()[0]: int(line.split()[1]) for line in sections.splitlines() if line.startswith(".")}
    planned = json.loads((tmp_path / "manifest.json").read_text())["sizes"]
    assert planned["fram_activations"] > 0
    assert sizes.get(".persistent", 0) >= planned["fram_activations"]       # the FRAM arena
    assert sizes.get(".upper.rodata", 0) >= planned["hifram_bytes"]          # FX_HIFRAM constants
    assert (planned["hifram_bytes"] > 0) == (where == "persistent+hifram")
    assert sizes.get(".bss", 0) >= planned["sram_peak"]                      # the SRAM arena


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(p=programs(max_steps=6), seed=st.integers(0, 2**16))
def test_random_lir_programs_c_equals_interpreter(tmp_path_factory: pytest.TempPathFactory, p: Program,
                                                  seed: int) -> None:
    """Random valid LIR (odd names, tile plans, pre-planned or not), 16 inputs, gcc with ASan+UBSan."""
    from transpiler.lir.cost import step_work, tile_unit_count

    out = tmp_path_factory.mktemp("lir")
    try:
        check_c_equals_interpreter(p, out, random_inputs(p, 16, seed), f"random_lir/seed_{seed}", builds=(("gcc", True),))
    except FreemlError as exc:   # pragma: no cover - a failure path
        raise AssertionError(exc.render()) from exc
    # the work units the C schedules are the ones the tile pass's cost model counts
    steps = json.loads((out / "manifest.json").read_text())["steps"]
    assert [s["units"] for s in steps] == [step_work(p, s).units for s in p.steps]
    assert [s["tile_units"] for s in steps] == [tile_unit_count(p, s) for s in p.steps]
