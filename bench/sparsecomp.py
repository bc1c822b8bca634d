"""SparseComp on the sample models: compression ratio, accuracy on the held-out TEST split, time.

    python bench/sparsecomp.py                               # mlp_mnist_big and lenet5_mnist, both modes
    python bench/sparsecomp.py --samples lenet5_mnist --seeds 0 1 2 --variants sparsify separate+sparsify
    python bench/sparsecomp.py --json results.json

Per sample the budget is the sample's float32 parameter bytes divided by its target ratio (mlp_mnist_big
95x, lenet5_mnist 12x, the digits models 4x), and each run is what ``freeml-tx MODEL -o DIR --data
D.npz`` does when the model does not fit: ``normalize[,separate{budget=B,max-drop=1}],
sparsify{budget=B,max-drop=1}`` then ``quantize,lower,plan-memory,emit-c`` into a temporary folder,
the host C build run on the test split. Modes: *labelled* (the npz's ``y``: cross-entropy, accuracy
on val) and *label-free* (``y`` dropped before the passes see the data: distillation from the
original, accuracy estimated by the original on val). Only the accuracies printed here use the
labels of the test split, which the passes never see.

Printed per run: original float32 bytes, the compressed parameters in Q15 (passes/compress_size.py)
and what plan-memory stores for them (constants + layer descriptors; they agree), the ratio float32 /
compressed, test accuracy of the original (float), of the compressed model (float, engine) and of
its C build (Q15, host), the drop, and the wall time of the compression. Then the targets:
mlp_mnist_big >= 95x at <= 1.0 point top-1 drop, lenet5_mnist >= 12x at <= 1.0 point, label-free
within 0.5 point of labelled, lenet5 compression under 10 minutes. Never part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from passes.compress_size import float32_bytes, model_size  # noqa: E402
from passes.plan_memory import descriptor_bytes  # noqa: E402
from passes.train import build_net, evaluate  # noqa: E402
from transpiler.cli.run_cmd import execute  # noqa: E402
from transpiler.data import Dataset, input_specs, load_dataset  # noqa: E402
from transpiler.errors import FreemlError  # noqa: E402
from transpiler.manager import run_pipeline  # noqa: E402
from transpiler.model import OnnxModel  # noqa: E402
from transpiler.pass_infra import PassContext, registry  # noqa: E402

SAMPLES = REPO / "samples"
TARGET_RATIO = {"mlp_mnist_big": 95.0, "lenet5_mnist": 12.0, "cnn_digits": 4.0, "mlp_digits_sklearn": 4.0}
MAX_DROP = 1.0
LABEL_FREE_GAP = 0.5
LENET_MINUTES = 10.0
LAYER_OPS = ("fc", "fc_sparse", "conv", "conv_sparse")


@dataclass
class Run:
    """One compression run and its figures (accuracies are fractions on the test split)."""

    sample: str
    mode: str
    variant: str
    seed: int
    budget: int
    float32_bytes: int
    q15_bytes: int | None = None
    stored_bytes: int | None = None
    ratio: float | None = None
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    accuracy_c: float | None = None
    val_drop: float | None = None
    seconds: float | None = None
    error: str | None = None

    @property
    def drop(self) -> float | None:
        """Test-split points lost by the compressed float model."""
        if self.accuracy_before is None or self.accuracy_after is None:
            return None
        return 100.0 * (self.accuracy_before - self.accuracy_after)


def _load(sample: str) -> tuple[OnnxModel, Dataset]:
    proto = onnx.load(str(SAMPLES / f"{sample}.onnx"))
    model = OnnxModel.from_proto(proto, f"{sample}.onnx")
    data = load_dataset(SAMPLES / f"{sample}.npz", input_specs(model.graph))
    return model, data


def compress_once(sample: str, mode: str, variant: str, seed: int, verbose: bool) -> Run:
    """Compress ``sample`` once (see the module docstring) and measure it."""
    registry()
    model, data = _load(sample)
    test = data.split()["test"]
    normalized, _ = run_pipeline(model.copy(), "normalize", PassContext(), verify=False)
    f32 = float32_bytes(normalized)
    budget = int(f32 / TARGET_RATIO[sample])
    run = Run(sample, mode, variant, seed, budget, f32)
    run.accuracy_before = evaluate(build_net(normalized), test)
    seen = data if mode == "labelled" else Dataset(inputs=data.inputs, labels=None, source=data.source,
                                                  marks=data.marks)
    options = f"budget={budget},max-drop={MAX_DROP:g},seed={seed}"
    passes = (f"separate{{{options}}}," if variant == "separate+sparsify" else "") + f"sparsify{{{options}}}"
    log = print if verbose else None
    start = time.perf_counter()
    try:
        compressed, report = run_pipeline(model.copy(), f"normalize,{passes}", PassContext(data=seen, log=log),
                                          verify=False)
    except FreemlError as exc:
        run.seconds = round(time.perf_counter() - start, 1)
        run.error = exc.message
        return run
    run.seconds = round(time.perf_counter() - start, 1)
    stats = report.records[-1].pass_stats
    run.val_drop = stats.get("drop")
    run.q15_bytes = model_size(compressed).total
    run.ratio = round(f32 / run.q15_bytes, 2)
    run.accuracy_after = evaluate(build_net(compressed), test)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = PassContext(data=seen, out_dir=tmp, command_line="bench/sparsecomp.py", fram_bytes=256 * 1024,
                          extra={"model_name": sample})
        program, _ = run_pipeline(compressed.copy(), "quantize,lower,plan-memory,emit-c", ctx, verify=False)
        layers = [s for s in program.steps if s.op in LAYER_OPS]
        run.stored_bytes = (sum(b.nbytes for b in program.buffers.values() if b.is_const)
                            + sum(descriptor_bytes(s) for s in layers))
        man, _raw, real = execute(tmp, test.inputs)
        scores = next(pt["name"] for pt in man["outputs"] if pt["name"] != man.get("class_output"))
        predicted = real[scores].reshape(len(test), -1).argmax(axis=1)
        run.accuracy_c = float((predicted == np.asarray(test.labels)).mean())
    return run


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def print_table(runs: list[Run]) -> None:
    """One line per run."""
    print(f"{'sample':<15} {'mode':<10} {'variant':<18} {'seed':>4} {'float32 B':>10} {'Q15 B':>8} {'stored B':>9} "
          f"{'ratio':>7} {'acc before':>10} {'after':>6} {'C':>6} {'drop':>6} {'val drop':>8} {'time s':>7}")
    for r in runs:
        if r.error:
            print(f"{r.sample:<15} {r.mode:<10} {r.variant:<18} {r.seed:>4} {r.float32_bytes:>10,}  "
                  f"FAILED after {r.seconds} s: {r.error}")
            continue
        print(f"{r.sample:<15} {r.mode:<10} {r.variant:<18} {r.seed:>4} {r.float32_bytes:>10,} {r.q15_bytes:>8,} "
              f"{r.stored_bytes:>9,} {r.ratio:>6.1f}x {_pct(r.accuracy_before):>10} {_pct(r.accuracy_after):>6} "
              f"{_pct(r.accuracy_c):>6} {r.drop:>+6.1f} {r.val_drop:>+8.2f} {r.seconds:>7.1f}")


def check_targets(runs: list[Run]) -> list[str]:
    """One verdict line per target, over the runs of the default variant (averaged over seeds)."""
    lines = []

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else float("nan")

    by: dict[tuple[str, str, str], list[Run]] = {}
    for r in runs:
        by.setdefault((r.sample, r.mode, r.variant), []).append(r)
    for (sample, mode, variant), group in sorted(by.items()):
        ok = [r for r in group if not r.error]
        target = TARGET_RATIO.get(sample)
        if not ok:
            lines.append(f"{sample} {mode} {variant}: NOT MET (every run failed: {group[0].error})")
            continue
        ratio, drop = mean([r.ratio for r in ok]), mean([r.drop for r in ok])     # type: ignore[misc]
        met = len(ok) == len(group) and ratio >= (target or 0) - 1e-9 and drop <= MAX_DROP + 1e-9
        worst = max(r.drop for r in ok)                                              # type: ignore[type-var]
        lines.append(f"{sample} {mode} {variant}: {ratio:.1f}x (target {target:g}x), test drop {drop:+.2f} points "
                     f"mean over {len(ok)}/{len(group)} runs, worst {worst:+.2f} (target <= {MAX_DROP}): "
                     f"{'met' if met else 'NOT MET'}")
        if sample == "lenet5_mnist":
            minutes = max(r.seconds or 0 for r in group) / 60
            lines.append(f"{sample} {mode} {variant}: compression took at most {minutes:.1f} min (target < "
                         f"{LENET_MINUTES:g}): {'met' if minutes < LENET_MINUTES else 'NOT MET'}")
    for (sample, mode, variant), group in sorted(by.items()):
        if mode != "label-free":
            continue
        labelled = [r for r in by.get((sample, "labelled", variant), []) if not r.error]
        free = [r for r in group if not r.error]
        if labelled and free:
            gap = 100 * (mean([r.accuracy_after for r in labelled]) - mean([r.accuracy_after for r in free]))  # type: ignore[misc]
            lines.append(f"{sample} {variant}: label-free test accuracy {gap:+.2f} points below labelled (target "
                         f"<= {LABEL_FREE_GAP}): {'met' if gap <= LABEL_FREE_GAP + 1e-9 else 'NOT MET'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", nargs="+", default=["mlp_mnist_big", "lenet5_mnist"], choices=sorted(TARGET_RATIO))
    parser.add_argument("--modes", nargs="+", default=["labelled", "label-free"], choices=["labelled", "label-free"])
    parser.add_argument("--variants", nargs="+", default=["separate+sparsify"],
                        choices=["separate+sparsify", "sparsify"],
                        help="separate+sparsify is what the CLI runs; sparsify alone for comparison")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--json", metavar="FILE", help="also write the runs as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the passes' progress lines")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    runs: list[Run] = []
    for sample in args.samples:
        for variant in args.variants:
            for mode in args.modes:
                for seed in args.seeds:
                    run = compress_once(sample, mode, variant, seed, args.verbose)
                    runs.append(run)
                    print_table([run])
                    sys.stdout.flush()
    print()
    print_table(runs)
    print()
    for line in check_targets(runs):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps([{**asdict(r), "drop": r.drop} for r in runs], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
