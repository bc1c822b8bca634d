#!/usr/bin/env python3
"""Two tiny random-weight fixtures for compiler tests (no training, no labels).

tiny_conv1d.onnx   (opset 17, fixed batch 1): input 'input' [1,2,32]
    Conv1d(2->4, k=5, pad=2) -> ReLU -> AvgPool1d(2) -> LeakyReLU(0.1) -> Flatten -> Linear(64->5)
    output 'output' [1,5].
tiny_residual.onnx (opset 13, fixed batch 1): input 'input' [1,3,12,12]
    a = ReLU(Conv3x3(3->8, pad 1)(x)); b = Conv3x3(8->8, pad 1)(a); r = ReLU(a + b)   (residual Add)
    s = Conv1x1(3->4)(x); c = Concat([r, s], channel axis)                            -> [1,12,12,12]
    MaxPool(k=3, stride 2, pad 1) -> [1,12,6,6] -> AveragePool(2) -> [1,12,3,3] -> Flatten -> Linear(108->6)
    output 'output' [1,6].
Weights: torch default init after torch.manual_seed(0) / (1). Inputs: numpy default_rng(0) / (1)
standard normal. Each npz holds x float32 [20, <per-sample shape>] (x[i:i+1] is one model input)
and no y.
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

N_INPUTS = 20


class TinyConv1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 5, padding=2)
        self.pool = nn.AvgPool1d(2)
        self.act = nn.LeakyReLU(0.1)
        self.fc = nn.Linear(4 * 16, 5)

    def forward(self, x):
        x = self.act(self.pool(torch.relu(self.conv(x))))
        return self.fc(torch.flatten(x, 1))


class TinyResidual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.skip = nn.Conv2d(3, 4, 1)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.avgpool = nn.AvgPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(12 * 3 * 3, 6)

    def forward(self, x):
        a = F.relu(self.conv1(x))
        r = F.relu(a + self.conv2(a))
        c = torch.cat([r, self.skip(x)], dim=1)
        return self.fc(self.flatten(self.avgpool(self.maxpool(c))))


def build(name, model, in_shape, opset, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N_INPUTS, *in_shape[1:]), dtype=np.float32)
    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    path = C.HERE / f"{name}.onnx"
    C.export_torch(model, torch.zeros(*in_shape), path, opset=opset, dynamic_batch=False)
    (out,) = C.ort_run(path, x, batch_ok=False)
    assert np.allclose(out, ref, atol=1e-5), np.abs(out - ref).max()
    np.savez_compressed(C.HERE / f"{name}.npz", x=x)
    print(f"{name}: ORT matches torch on {N_INPUTS} random inputs (max |diff| {np.abs(out - ref).max():.2e})")
    C.print_description(path)


def main():
    C.seed_everything(0)
    build("tiny_conv1d", TinyConv1d(), (1, 2, 32), opset=17, seed=0)
    C.seed_everything(1)
    build("tiny_residual", TinyResidual(), (1, 3, 12, 12), opset=13, seed=1)


if __name__ == "__main__":
    main()
