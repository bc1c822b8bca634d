"""SparseComp through the CLI on models that are not samples: compile to a FRAM budget that needs pruning,
with and without labels, then make, verify and measure on a held-out test part.

    python bench/sparsecomp_unseen.py                        # every model, both modes
    python bench/sparsecomp_unseen.py --models seq_conv1d --modes label-free --keep /tmp/unseen

The models are trained here (deterministic seeds; torch 2.x legacy exporter, ``dynamo=False``;
skl2onnx), each with an npz of ``x``, ``y`` and ``split`` (the images/sequences a model trained on
are ``train``, the rest half ``val``, half ``test``) and the same without ``y``:

- ``bn_stride_cnn``: Conv+BatchNorm (no conv bias) and two stride-2 convs, then two Linear, on
  sklearn's digits upsampled to 1x16x16;
- ``seq_conv1d``: Conv1d, MaxPool1d, a dilated stride-2 Conv1d + BatchNorm1d, Conv1d, two Linear, on
  synthetic 3x64 sequences (6 classes: a sine of one of 3 frequencies on channel 0 or 1 in noise);
- ``res_cat``: a stride-2 stem, a residual block (Add), a Concat of a 1x1 and a 3x3 conv, MaxPool,
  two Linear, on 1x16x16 digits;
- ``skl_mlp``: scikit-learn MLPClassifier(128, 64, relu) on the 8x8 digits (ZipMap output);
- ``mlp_nobias``: Linear without bias, ReLU6, Dropout, LeakyReLU, a final Softmax, dynamic batch;
- ``sep_conv1d``: a depthwise-separable Conv1d block with BatchNorm1d and AdaptiveAvgPool1d;
- ``two_branch``: two Linear branches (ReLU, clamp) joined by Concat; exported with a fixed batch of 2.

Per run: ``freeml-tx MODEL -o DIR --data D --fram F --max-drop 1.0 --json``, ``make -C DIR``,
``freeml-tx verify DIR --data D-with-labels --json``, and the top-1 accuracy on the test part of the
original (float), the compressed model (float, ``DIR/normalized.onnx``) and its C build. Printed: the
budget, the Q15 parameter bytes of the original and of the compressed model, the ratio to float32,
the number of sparsify steps (0: `separate` alone met the budget), the accuracies, the drop, the
verify verdict and the time; a failed compile prints its error. Never part of the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from passes.compress_size import model_size  # noqa: E402
from passes.train import build_net, evaluate  # noqa: E402
from transpiler.cli import main as cli  # noqa: E402
from transpiler.cli.run_cmd import execute  # noqa: E402
from transpiler.data import input_specs, load_dataset  # noqa: E402
from transpiler.manager import run_pipeline  # noqa: E402
from transpiler.model import OnnxModel  # noqa: E402
from transpiler.pass_infra import PassContext, registry  # noqa: E402

MAX_DROP = 1.0
FRAM = {"bn_stride_cnn": "48KiB", "seq_conv1d": "32KiB", "res_cat": "48KiB", "skl_mlp": "16KiB",
        "mlp_nobias": "24KiB", "sep_conv1d": "40KiB", "two_branch": "24KiB"}


# --------------------------------------------------------------------------- data
def _digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits in [0, 1], [n, 1, size, size] (bilinear upsampling from 8x8), shuffled (seed 0)."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images.astype(np.float32) / 16.0)[:, None]
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    order = np.random.default_rng(0).permutation(len(d.target))
    return x.numpy()[order], d.target.astype(np.int64)[order]


def _sequences(n: int = 2400, length: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """[n, 3, length] sequences, 6 classes: a sine (3 frequencies) on channel 0 or 1 in noise (sigma 1.2),
    a random ramp on channel 2."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, n)
    t = np.arange(length) / length
    freq = np.array([2.0, 4.0, 7.0])[y % 3]
    phase = rng.random(n) * 2 * np.pi
    x = rng.normal(0, 1.2, (n, 3, length))
    x[np.arange(n), y // 3] += np.sin(2 * np.pi * freq[:, None] * t[None] + phase[:, None])
    x[:, 2] += (rng.random(n) * 2 - 1)[:, None] * t[None]
    return x.astype(np.float32), y.astype(np.int64)


def _split(n: int, trained: int) -> np.ndarray:
    """``train`` for the first ``trained`` samples, then half ``val``, half ``test``."""
    rest = n - trained
    return np.array(["train"] * trained + ["val"] * (rest // 2) + ["test"] * (rest - rest // 2))


# --------------------------------------------------------------------------- models
def _torch_models() -> dict[str, Callable[[], Any]]:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class BnStrideCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
            self.c2, self.b2 = nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32)
            self.c3, self.b3 = nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32)
            self.fc1, self.fc2 = nn.Linear(512, 96), nn.Linear(96, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(self.b1(self.c1(x)))
            x = F.relu(self.b2(self.c2(x)))
            x = F.relu(self.b3(self.c3(x)))
            return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

    class SeqNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.p1 = nn.Conv1d(3, 16, 5, padding=2), nn.MaxPool1d(2)
            self.c2 = nn.Conv1d(16, 32, 5, stride=2, padding=4, dilation=2)
            self.b2, self.c3 = nn.BatchNorm1d(32), nn.Conv1d(32, 32, 3, padding=1)
            self.fc1, self.fc2 = nn.Linear(512, 64), nn.Linear(64, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.p1(F.relu(self.c1(x)))
            x = F.relu(self.c3(F.relu(self.b2(self.c2(x)))))
            return self.fc2(F.relu(self.fc1(x.flatten(1))))

    class ResCat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, 16, 3, stride=2, padding=1)
            self.r1, self.r2 = nn.Conv2d(16, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
            self.a, self.b = nn.Conv2d(16, 16, 1), nn.Conv2d(16, 16, 3, padding=1)
            self.pool, self.fc1, self.fc2 = nn.MaxPool2d(2), nn.Linear(512, 64), nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(self.stem(x))
            x = F.relu(x + self.r2(F.relu(self.r1(x))))
            x = self.pool(torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], dim=1))
            return self.fc2(F.relu(self.fc1(x.flatten(1))))

    class MlpNoBias(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.drop = nn.Linear(256, 128, bias=False), nn.Dropout(0.2)
            self.l2, self.l3 = nn.Linear(128, 64), nn.Linear(64, 10)

        def logits(self, x: torch.Tensor) -> torch.Tensor:
            x = self.drop(F.relu6(self.l1(x.view(x.shape[0], -1))))
            return self.l3(F.leaky_relu(self.l2(x), 0.05))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.softmax(self.logits(x), dim=1)

    class SepConv1d(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv1d(3, 24, 7, padding=3)
            self.dw, self.pw = nn.Conv1d(24, 24, 5, padding=2, groups=24, stride=2), nn.Conv1d(24, 48, 1)
            self.bn, self.c3 = nn.BatchNorm1d(48), nn.Conv1d(48, 48, 3, padding=1)
            self.gap, self.fc = nn.AdaptiveAvgPool1d(1), nn.Linear(48, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.relu(self.c1(x))
            x = F.relu(self.bn(self.pw(F.relu(self.dw(x)))))
            return self.fc(torch.flatten(self.gap(F.relu(self.c3(x))), 1))

    class TwoBranch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(256, 96), nn.Linear(256, 32)
            self.h, self.o = nn.Linear(128, 64), nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.flatten(x, 1)
            z = torch.cat([F.relu(self.a(x)), torch.clamp(self.b(x), 0, 6)], dim=1)
            return self.o(F.relu(self.h(z)))

    return {"bn_stride_cnn": BnStrideCNN, "seq_conv1d": SeqNet, "res_cat": ResCat, "mlp_nobias": MlpNoBias,
            "sep_conv1d": SepConv1d, "two_branch": TwoBranch}


def _train_torch(model: Any, x: np.ndarray, y: np.ndarray, trained: int, epochs: int) -> None:
    """Adam (lr 3e-3, batch 64) on the first ``trained`` samples; cross-entropy on the logits (the
    model's ``logits`` method when its forward ends in a softmax)."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.tensor(x[:trained]), torch.tensor(y[:trained])
    logits = getattr(model, "logits", model)
    for _ in range(epochs):
        model.train()
        for rows in torch.randperm(trained).split(64):
            loss = F.cross_entropy(logits(xt[rows]), yt[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()


def make_model(name: str, folder: Path) -> None:
    """Train ``name``, write ``folder/name.onnx``, ``name.npz`` (x, y, split) and ``name_nolabels.npz``."""
    if name == "skl_mlp":
        from skl2onnx import to_onnx
        from sklearn.neural_network import MLPClassifier

        x, y = _digits(8)
        x = x.reshape(len(x), 64)
        trained = 1400
        clf = MLPClassifier((128, 64), activation="relu", max_iter=300, random_state=0).fit(x[:trained], y[:trained])
        (folder / f"{name}.onnx").write_bytes(to_onnx(clf, x[:1], target_opset=13).SerializeToString())
    else:
        import torch

        torch.manual_seed(0)
        x, y = _sequences() if "conv1d" in name else _digits(16)
        trained = int(0.8 * len(x))
        model = _torch_models()[name]()
        _train_torch(model, x, y, trained, 25 if "conv1d" in name else 30)
        dynamic = None if name == "two_branch" else {"input": {0: "batch"}, "out": {0: "batch"}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)     # the legacy exporter, on purpose
            torch.onnx.export(model, torch.zeros(2, *x.shape[1:]), str(folder / f"{name}.onnx"), dynamo=False,
                              input_names=["input"], output_names=["out"], opset_version=17, dynamic_axes=dynamic)
    split = _split(len(x), trained)
    np.savez(folder / f"{name}.npz", x=x, y=y, split=split)
    np.savez(folder / f"{name}_nolabels.npz", x=x, split=split)


# --------------------------------------------------------------------------- runs
@dataclass
class Run:
    """One compile + make + verify of one model in one mode (accuracies: fractions on the test part)."""

    model: str
    mode: str
    fram: str
    budget: int | None = None
    size_before: int | None = None
    size_after: int | None = None
    float32_bytes: int | None = None
    steps: int | None = None
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    accuracy_c: float | None = None
    verify: str | None = None
    seconds: float | None = None
    error: str | None = None


def _cli_json(argv: list[str]) -> tuple[int, dict[str, Any] | None, str]:
    """Run the CLI in-process; its exit code, its --json document (None on failure) and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(argv)
    try:
        doc = json.loads(out.getvalue())
    except json.JSONDecodeError:
        doc = None
    return code, doc, err.getvalue().strip()


def run_once(name: str, mode: str, folder: Path) -> Run:
    """Compile ``name`` in ``mode`` to its FRAM budget, build, verify and measure (see the docstring)."""
    run = Run(name, mode, FRAM[name])
    labelled, data = folder / f"{name}.npz", folder / (f"{name}.npz" if mode == "labelled" else f"{name}_nolabels.npz")
    out = folder / f"build_{name}_{mode}"
    start = time.perf_counter()
    code, doc, err = _cli_json([str(folder / f"{name}.onnx"), "-o", str(out), "--data", str(data), "--fram",
                                FRAM[name], "--max-drop", f"{MAX_DROP:g}", "--json"])
    run.seconds = round(time.perf_counter() - start, 1)
    if code != 0 or doc is None:
        run.error = err.splitlines()[0] if err else f"exit code {code}"
        return run
    comp = doc.get("compression") or {}
    run.budget, run.size_after = comp.get("budget"), comp.get("size_after")
    run.float32_bytes, run.steps = comp.get("float32_bytes"), comp.get("steps")
    made = subprocess.run(["make", "-s", "-C", str(out)], capture_output=True, text=True)
    if made.returncode != 0:
        run.error = "make failed: " + (made.stderr or made.stdout).strip().splitlines()[-1]
        return run
    code, verdict, err = _cli_json(["verify", str(out), "--data", str(labelled), "--json"])
    if verdict is None:
        run.verify = f"error: {err.splitlines()[0] if err else code}"
    else:
        worst = min(row["agreement"] for row in verdict["outputs"] if "agreement" in row)
        bad = [f"{row['output']} max abs error {row['max_abs_error']:.3g} > {row['error_bound']:.3g}"
               for row in verdict["outputs"] if row.get("error_bound") is not None
               and row["max_abs_error"] > row["error_bound"]]
        run.verify = (f"{'PASS' if verdict['pass'] else 'FAIL'} {100 * worst:.1f} %"
                      + (f" ({'; '.join(bad)})" if bad else ""))
    registry()
    original = OnnxModel.from_proto(onnx.load(str(folder / f"{name}.onnx")), name)
    original, _ = run_pipeline(original, "normalize", PassContext(), verify=False)
    test = load_dataset(labelled, input_specs(original.graph)).split()["test"]
    run.size_before = model_size(original).total
    run.accuracy_before = evaluate(build_net(original), test)
    compressed = OnnxModel.from_proto(onnx.load(str(out / "normalized.onnx")), name)
    run.accuracy_after = evaluate(build_net(compressed), test)
    manifest, _raw, real = execute(str(out), test.inputs)
    scores = next(pt["name"] for pt in manifest["outputs"] if pt["name"] != manifest.get("class_output"))
    run.accuracy_c = float((real[scores].reshape(len(test), -1).argmax(axis=1) == np.asarray(test.labels)).mean())
    return run


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def print_runs(runs: list[Run]) -> None:
    """One line per run."""
    print(f"{'model':<14} {'mode':<10} {'fram':>6} {'budget':>7} {'Q15 before':>10} {'after':>7} {'ratio':>6} "
          f"{'steps':>5} {'test before':>11} {'after':>6} {'C':>6} {'drop':>6} {'time s':>6}  verify")
    for r in runs:
        head = f"{r.model:<14} {r.mode:<10} {r.fram:>6}"
        if r.error:
            print(f"{head}  FAILED after {r.seconds} s: {r.error}")
            continue
        ratio = f"{r.float32_bytes / r.size_after:.1f}x" if r.float32_bytes and r.size_after else "-"
        drop = "-" if r.accuracy_before is None or r.accuracy_after is None else \
            f"{100 * (r.accuracy_before - r.accuracy_after):+.1f}"
        print(f"{head} {r.budget or 0:>7,} {r.size_before or 0:>10,} {r.size_after or 0:>7,} {ratio:>6} "
              f"{r.steps if r.steps is not None else '-':>5} {_pct(r.accuracy_before):>11} {_pct(r.accuracy_after):>6} "
              f"{_pct(r.accuracy_c):>6} {drop:>6} {r.seconds:>6.1f}  {r.verify}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(FRAM), choices=list(FRAM))
    parser.add_argument("--modes", nargs="+", default=["labelled", "label-free"], choices=["labelled", "label-free"])
    parser.add_argument("--keep", metavar="DIR",
                        help="write the models, data and builds here (default: a temporary folder)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.models:
            if not (folder / f"{name}.onnx").exists():
                make_model(name, folder)
            for mode in args.modes:
                runs.append(run_once(name, mode, folder))
                print_runs(runs[-1:])
                sys.stdout.flush()
    print()
    print_runs(runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
