"""Helpers of the intermittent-execution tests: compile a model for a power-cycle budget, build the
host power-failure driver, run schedules, and keep failing cases under tests/failures/.

Samples are compiled once per session (``compiled_sample``) and shared by the host and simulator
tests; each package is built once per compiler.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transpiler import hostrun
from transpiler.data import Dataset, input_specs, load_dataset
from transpiler.lir.ir import Program
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext, registry

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
FAILURES = TESTS / "failures"
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))

#: Samples that fit the FR5994 dense; mlp_mnist_big (> 256 KiB of dense weights) needs sparsify,
#: which this pipeline does not run.
SAMPLES = ("tiny_residual", "tiny_conv1d", "mlp_digits_sklearn", "cnn_digits", "lenet5_mnist")
#: Cycles per power cycle the samples are compiled for: small enough for many commits per layer,
#: large enough for one unit of every sample's largest layer (LeNet-5's conv2 rows).
SAMPLE_BUDGET = 40000


@dataclass
class Package:
    """A compiled intermittent package and the inputs to run through it."""

    name: str
    out_dir: Path
    program: Program
    manifest: dict[str, Any]
    inputs: np.ndarray            # int16 [N, in_size]
    tile_stats: dict[str, Any]


def compile_intermittent(model: OnnxModel, data: Dataset, out_dir: Path, budget: int, name: str,
                         margin: float | None = None, lower: str = "lower") -> tuple[Program, dict[str, Any]]:
    """normalize,quantize,<lower>,plan-memory{persistent=true},tile{budget=...},emit-c into out_dir
    (``lower``: the lower pass with its options, e.g. ``lower{sparse=always}``)."""
    registry()
    ctx = PassContext(data=data, out_dir=str(out_dir), command_line="pytest", extra={"model_name": name})
    tile = f"tile{{budget={budget}" + (f",margin={margin}" if margin is not None else "") + "}"
    text = f"normalize,quantize,{lower},plan-memory{{persistent=true}},{tile},emit-c"
    ctx.pipeline_text = text
    program, _report = run_pipeline(model, text, ctx, verify=False)
    assert isinstance(program, Program)
    return program, dict(ctx.extra.get("tile") or {})


def compile_sample(name: str, root: Path, budget: int = SAMPLE_BUDGET, n_inputs: int = 2) -> Package:
    """samples/<name> compiled for `budget` cycles per power cycle, with its first data samples."""
    from transpiler.loader import load

    model = load(str(REPO / "samples" / f"{name}.onnx"))
    ds = load_dataset(REPO / "samples" / f"{name}.npz", input_specs(model.graph))
    out = root / name
    program, stats = compile_intermittent(model, ds, out, budget, name)
    man = hostrun.load_manifest(out)
    x = hostrun.quantize(man, {k: v[:n_inputs] for k, v in ds.inputs.items()})
    return Package(name, out, program, man, x, stats)


def host_schedule_gaps(man: dict[str, Any]) -> tuple[int, int]:
    """(min, max) store gaps of random host schedules that always make progress (the smallest gap
    exceeds the largest piece of work between two commits) and interrupt every run at least once
    (the largest is below the stores of one inference, when the model has more than one piece)."""
    biggest = int(man["intermittent"]["max_piece_stores"])
    total = int(man["intermittent"]["stores_per_inference"])
    return biggest + 1, max(biggest + 1, min(4 * biggest + 8, total - 1))


def save_failure(label: str, out_dir: Path | None, note: str) -> str:
    """Keep a failing package under tests/failures/<label>/ and return the path."""
    folder = FAILURES / label
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    if out_dir is not None and out_dir.is_dir():
        shutil.copytree(out_dir, folder / "generated", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.o", "msp430-obj*", "*_host*", "*.elf"))
    (folder / "note.txt").write_text(note + "\n", encoding="utf-8")
    return str(folder)


__all__ = ["SAMPLES", "SAMPLE_BUDGET", "Package", "compile_intermittent", "compile_sample",
           "host_schedule_gaps", "save_failure", "REPO"]
