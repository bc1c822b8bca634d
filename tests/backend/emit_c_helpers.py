"""Helpers of the C back-end tests: emit a program, build it with gcc/clang, compare with the interpreter.

A program is built once per compiler and fed every input in one process (main_host.c takes a
count), so checking many inputs costs one build. A mismatch or a build failure saves what is needed
to reproduce it under tests/failures/ (gitignored) and puts the path in the assertion message.
"""

from __future__ import annotations

import concurrent.futures
import shutil
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from transpiler import hostrun
from transpiler.lir.interp import run_program
from transpiler.lir.ir import Program
from transpiler.lir.text import print_program
from transpiler.pass_infra import PassContext

TESTS = Path(__file__).resolve().parents[1]
FAILURES = TESTS / "failures"
for sub in ("", "lir"):
    if str(TESTS / sub) not in sys.path:
        sys.path.append(str(TESTS / sub))

#: (compiler, sanitize) pairs: every generated package is built warning-free (-Werror) by both, and
#: the clang build runs under AddressSanitizer + UndefinedBehaviorSanitizer.
BUILDS = (("gcc", False), ("clang", True))


def import_all_passes() -> None:
    """Load the registry (every built-in pass module) before a test builds pipelines."""
    from transpiler.pass_infra import registry

    registry()


def emit(program: Program, out_dir: Path, *, plan: bool | None = None, name: str = "",
         extra: dict[str, Any] | None = None, **plan_options: Any) -> dict[str, Any]:
    """Run plan-memory (when the program is not planned, or `plan`) and emit-c into `out_dir`."""
    from backends.emit_c import EmitC, EmitCOptions
    from passes.plan_memory import PlanMemory, PlanMemoryOptions, is_planned

    ctx = PassContext(out_dir=str(out_dir), command_line="pytest", pipeline_text="plan-memory,emit-c",
                      extra=dict(extra or {}))
    if plan or (plan is None and not is_planned(program)):
        program = PlanMemory(PlanMemoryOptions(**plan_options), ctx).run(program).model
    EmitC(EmitCOptions(name=name), ctx).run(program)
    return ctx.extra["emit-c"]


def random_inputs(program: Program, n: int, seed: int) -> list[dict[str, np.ndarray]]:
    """`n` input sets over the full int16 range, with a few all-extreme ones first."""
    rng = np.random.default_rng(seed)
    sets = []
    for i in range(n):
        one = {}
        for port in program.inputs:
            shape = program.buffers[port.buffer].shape
            if i == 0:
                one[port.onnx_name] = np.full(shape, 32767, dtype=np.int16)
            elif i == 1:
                one[port.onnx_name] = np.full(shape, -32768, dtype=np.int16)
            else:
                one[port.onnx_name] = rng.integers(-32768, 32768, size=shape).astype(np.int16)
        sets.append(one)
    return sets


def interp_outputs(program: Program, inputs: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """The interpreter's outputs, concatenated in port order: int16 ``[N, out_size]``."""
    rows = []
    for one in inputs:
        out = run_program(program, one)
        rows.append(np.concatenate([np.asarray(out[p.onnx_name]).reshape(-1) for p in program.outputs])
                    if program.outputs else np.zeros(0))
    return np.stack(rows).astype(np.int16)


def pack_inputs(program: Program, inputs: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    return np.stack([np.concatenate([one[p.onnx_name].reshape(-1) for p in program.inputs])
                     for one in inputs]).astype(np.int16)


def build_all(out_dir: Path, builds: Sequence[tuple[str, bool]] = BUILDS) -> list[tuple[str, Path]]:
    """Build the package with every (compiler, sanitize) at once; returns (label, binary)."""
    def one(cc: str, sanitize: bool) -> tuple[str, Path]:
        label = f"{cc}{'-asan' if sanitize else ''}"
        return label, hostrun.build(out_dir, cc=cc, sanitize=sanitize, binary=f"test_{label}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(builds)) as pool:
        return list(pool.map(lambda b: one(*b), builds))


def save_failure(label: str, program: Program | None = None, onnx_model: Any = None,
                 out_dir: Path | None = None, note: str = "") -> str:
    """Keep a failing case under tests/failures/<test>/ and return that path.

    `label` is ``<test>/<case>`` (e.g. ``random_lir/seed_17``). The folder of a test holds only its
    latest failure: while hypothesis shrinks, each smaller failing case replaces the one before, and
    the minimal case, which hypothesis runs last, is what stays.
    """
    test, _, case = label.partition("/")
    folder = FAILURES / test
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    note = f"case: {case or test}\n{note}"
    if program is not None:
        (folder / "program.lir").write_text(print_program(program), encoding="utf-8")
    if onnx_model is not None:
        import onnx

        onnx.save(onnx_model, str(folder / "model.onnx"))
    if out_dir is not None and out_dir.is_dir():
        shutil.copytree(out_dir, folder / "generated", dirs_exist_ok=True)
    if note:
        (folder / "note.txt").write_text(note + "\n", encoding="utf-8")
    return str(folder)


def check_c_equals_interpreter(program: Program, out_dir: Path, inputs: Sequence[dict[str, np.ndarray]],
                               label: str, builds: Sequence[tuple[str, bool]] = BUILDS,
                               onnx_model: Any = None) -> None:
    """Emit (planning if needed), build with every compiler, run all inputs, compare bit for bit."""
    from transpiler.errors import FreemlError

    planned = program
    try:
        emit(planned, out_dir)
        man = hostrun.load_manifest(out_dir)
        binaries = build_all(out_dir, builds)
    except FreemlError as exc:
        where = save_failure(label, planned, onnx_model, out_dir, exc.render())
        raise AssertionError(f"emit/build failed: {exc.render()}\nsaved to {where}") from exc
    want = interp_outputs(planned, inputs)
    x = pack_inputs(planned, inputs) if planned.inputs else np.zeros((len(inputs), 0), dtype=np.int16)
    for build_label, exe in binaries:
        got = hostrun.run_raw(exe, man, x)
        if not np.array_equal(got, want):
            bad = np.argwhere(got != want)
            where = save_failure(label, planned, onnx_model, out_dir,
                                 f"{build_label}: first mismatch at sample/value {bad[0].tolist()}: "
                                 f"C {got[tuple(bad[0])]} vs interpreter {want[tuple(bad[0])]}")
            raise AssertionError(f"{build_label}: C != interpreter at {len(bad)} values (first {bad[0].tolist()}: "
                                 f"C {got[tuple(bad[0])]}, interpreter {want[tuple(bad[0])]}); saved to {where}")
