"""Activations inside the network (lut steps): the generated C against onnxruntime, per activation.

    python bench/activations.py            # prints the table (a few minutes: trains, exports, builds)

For every activation a small CNN (conv 1->8 3x3, act, conv 8->12 3x3 stride 2, act, fc 108->32,
act, fc 32->10) is trained with torch on scikit-learn's 8x8 digits (1,300 training images, 15
epochs), exported by the legacy exporter at opset 17 (SiLU as Sigmoid + Mul, GELU as its Erf form or
tanh approximation) and by the dynamo exporter, compiled with ``--data`` (the training images) and
run as the host C build (``freeml-tx verify``) on the 497 held-out images and on 500 random
images (uniform pixels in [0, 1]: the calibrated input range, but no digit, so the scores lie close
together and the activations see other values than on the digits). Besides, scikit-learn's MLPClassifier (64-32-16) with tanh and logistic
hidden layers (skl2onnx). Per model: top-1 agreement of the C with onnxruntime, max abs error of
the scores, the accuracy of the float model and of the C on the labels, and the largest lut table
and its measured worst error (LSBs of its output format).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ACTS = ("relu", "sigmoid", "tanh", "hardsigmoid", "hardswish", "silu", "gelu", "gelu_tanh", "elu", "mish")


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)


def torch_export(act: str, dynamo: bool, x: np.ndarray, y: np.ndarray) -> bytes:
    import torch

    nn = torch.nn
    make = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "hardsigmoid": nn.Hardsigmoid,
            "hardswish": nn.Hardswish, "silu": nn.SiLU, "gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
            "elu": nn.ELU, "mish": nn.Mish}[act]
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), make(), nn.Conv2d(8, 12, 3, stride=2), make(), nn.Flatten(),
                        nn.Linear(108, 32), make(), nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x[:1300].reshape(-1, 1, 8, 8)), torch.from_numpy(y[:1300])
    for _ in range(15):
        for i in range(0, len(xt), 64):
            opt.zero_grad()
            nn.functional.cross_entropy(net(xt[i:i + 64]), yt[i:i + 64]).backward()
            opt.step()
    net.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            return torch.onnx.export(net, (xt[:1],), dynamo=True, input_names=["x"], output_names=["y"],
                                     verbose=False).model_proto.SerializeToString()
        torch.onnx.export(net, (xt[:1],), buf, dynamo=False, opset_version=17, input_names=["x"], output_names=["y"])
    return buf.getvalue()


def sklearn_export(activation: str, x: np.ndarray, y: np.ndarray) -> bytes:
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((32, 16), activation=activation, max_iter=400, random_state=0).fit(x[:1300], y[:1300])
    return to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}},
                   target_opset={"": 13, "ai.onnx.ml": 1}).SerializeToString()


def cli(*args: str, check: bool = True) -> str:
    done = subprocess.run([sys.executable, "-m", "transpiler", *args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin:/usr/local/bin"})
    if check and done.returncode != 0:
        raise SystemExit(f"freeml-tx {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def measure(label: str, model: bytes, shape: tuple[int, ...], x: np.ndarray, y: np.ndarray, work: Path) -> None:
    import onnxruntime as ort

    d = work / label
    d.mkdir()
    (d / "m.onnx").write_bytes(model)
    name = ort.InferenceSession(model).get_inputs()[0].name
    np.savez(d / "train.npz", **{name: x[:1300].reshape(-1, *shape)})
    cli(str(d / "m.onnx"), "-o", str(d / "pkg"), "--data", str(d / "train.npz"))
    subprocess.run(["make", "-s", "-C", str(d / "pkg")], check=True, capture_output=True)
    lir = (d / "pkg" / "final.lir").read_text()
    luts = json.loads(json.loads(lir.split('meta "lut" ')[1].split("\n")[0])) if 'meta "lut"' in lir else {}
    worst = max((v[1] for v in luts.values()), default=0.0)
    rng = np.random.default_rng(0)
    sets = {"held-out": {name: x[1300:].reshape(-1, *shape), "y": y[1300:]},
            "random": {name: rng.uniform(0.0, 1.0, (500, *shape)).astype(np.float32)}}
    for what, arrays in sets.items():
        np.savez(d / f"{what}.npz", **arrays)
        out = json.loads(cli("verify", str(d / "pkg"), "--data", str(d / f"{what}.npz"), "--json", check=False))
        row = next(r for r in out["outputs"] if r.get("kind") == "values")
        acc = (f"{100 * row['accuracy_onnxruntime']:5.1f} / {100 * row['accuracy_c']:5.1f}"
               if "accuracy_c" in row else "")
        print(f"{label:26s} {what:9s} {100 * row['agreement']:7.2f} % {row['max_abs_error']:10.3g} "
              f"{row['max_abs_reference']:8.3g} {acc:>13s}  {len(luts)} lut, worst table error {worst:.2g}",
              flush=True)


def main() -> int:
    x, y = digits()
    print(f"{'model':26s} {'inputs':9s} {'top-1':>9s} {'max |err|':>10s} {'max|ref|':>8s} {'acc ort / C':>13s}")
    with tempfile.TemporaryDirectory(prefix="fx-acts-") as tmp:
        work = Path(tmp)
        for act in ACTS:
            for dynamo in (False, True):
                measure(f"torch-{act}-{'dynamo' if dynamo else 'legacy17'}", torch_export(act, dynamo, x, y),
                        (1, 8, 8), x, y, work)
        for activation in ("tanh", "logistic"):
            measure(f"sklearn-mlp-{activation}", sklearn_export(activation, x, y), (64,), x, y, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
