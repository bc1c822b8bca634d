#!/usr/bin/env python3
"""Train a small MobileNet-style CNN on sklearn's 8x8 digits; export cnn_digits.onnx.

Data: sklearn.datasets.load_digits(), pixels /16 -> [0,1], shape [n,1,8,8].
Split: sklearn train_test_split(test_size=360, random_state=0, stratify=y) -> 1437 train / 360 test
(the same split as make_mlp_digits_sklearn.py).
Graph: Conv3x3 -> BatchNorm -> ReLU6 -> depthwise Conv3x3 (groups=16, stride 2) -> BatchNorm -> ReLU6
-> pointwise Conv1x1 -> BatchNorm -> ReLU6 -> x.mean(dim=(2,3)) (ReduceMean) -> Linear -> Softmax.
Exported at opset 18 (ReduceMean takes its axes as an input) with do_constant_folding=False so the
BatchNormalization nodes stay in the graph (not folded into the Convs); ReLU6 becomes Clip with
Constant min/max inputs; ReduceMean has keepdims=0 (output [batch,32]).
Writes cnn_digits.onnx (input 'input' [batch,1,8,8], output 'probabilities' [batch,10]) and
cnn_digits.npz (x float32 [1797,1,8,8], y int64 [1797], split: the 360 held-out images first, marked
180 "val" / 180 "test", then the 1437 training images, "train"; see _common.save_data).
"""
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

NAME = "cnn_digits"
OPSET = 18
EPOCHS = 60
BATCH = 32
LR = 3e-3


class DigitsCNN(nn.Module):
    def __init__(self, c1=16, c2=32):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c1)
        self.dw = nn.Conv2d(c1, c1, 3, stride=2, padding=1, groups=c1)  # depthwise, 8x8 -> 4x4
        self.bn2 = nn.BatchNorm2d(c1)
        self.pw = nn.Conv2d(c1, c2, 1)                                  # pointwise
        self.bn3 = nn.BatchNorm2d(c2)
        self.act = nn.ReLU6()
        self.fc = nn.Linear(c2, 10)

    def logits(self, x):
        x = self.act(self.bn1(self.conv1(x)))
        x = self.act(self.bn2(self.dw(x)))
        x = self.act(self.bn3(self.pw(x)))
        x = x.mean(dim=(2, 3))  # global average pool -> ReduceMean
        return self.fc(x)

    def forward(self, x):
        return F.softmax(self.logits(x), dim=1)


def main():
    C.seed_everything(0)
    xtr, xte, ytr, yte = C.digits_split()
    xtr, xte = xtr.reshape(-1, 1, 8, 8), xte.reshape(-1, 1, 8, 8)
    model = DigitsCNN()
    n_params = sum(p.numel() for p in model.parameters())
    C.train_classifier(model, xtr, ytr, epochs=EPOCHS, batch=BATCH, lr=LR, logits=model.logits, cosine=True,
                       log_every=10)
    m, acc_torch, acc = C.export_checked(model, torch.zeros(1, 1, 8, 8), xte, yte, NAME, opset=OPSET,
                                         output_name="probabilities", atol=1e-5, do_constant_folding=False)
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("BatchNormalization") == 3, ops
    assert "ReduceMean" in ops and "Softmax" in ops and "Clip" in ops, ops
    assert any(n.op_type == "Conv" and any(a.name == "group" and a.i == 16 for a in n.attribute)
               for n in m.graph.node), "no depthwise conv"
    C.save_and_report(NAME, (xtr, xte, ytr, yte),
                      f"{NAME}: {n_params} torch parameters; torch test accuracy {acc_torch:.4f}; "
                      f"onnxruntime test accuracy {acc:.4f} ({len(yte)} held-out images)", acc, 0.95)


if __name__ == "__main__":
    main()
