"""Small torch sequence models (nn.LSTM / nn.GRU / nn.RNN on a [1, T, F] signal, nn.Linear on the
last step) exported to ONNX, for the recurrent-layer tests (a plain module: test files import it
by name, like tiny_models)."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import onnx

from transpiler.data import Dataset
from transpiler.model import OnnxModel


def seq_model(kind: str, features: int, hidden: int, length: int, classes: int = 5, layers: int = 1,
              nonlinearity: str = "tanh", batch_first: bool = True, seed: int = 0,
              dynamo: bool = False) -> onnx.ModelProto:
    """``kind`` in LSTM, GRU, RNN, exported by torch's legacy exporter (opset 17) or by dynamo;
    input ``x [1, length, features]``, output ``y [1, classes]`` (the Linear on the last step)."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            extra: dict[str, Any] = {"nonlinearity": nonlinearity} if kind == "RNN" else {}
            self.rnn = getattr(torch.nn, kind)(features, hidden, num_layers=layers, batch_first=batch_first,
                                               **extra)
            self.fc = torch.nn.Linear(hidden, classes)

        def forward(self, x: Any) -> Any:
            if not batch_first:
                x = x.permute(1, 0, 2)
            y, _ = self.rnn(x)
            return self.fc(y[:, -1] if batch_first else y[-1])

    torch.manual_seed(seed)
    net = Net().eval()
    example = torch.zeros(1, length, features)
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            return torch.onnx.export(net, (example,), dynamo=True, input_names=["x"], output_names=["y"],
                                     verbose=False).model_proto
        torch.onnx.export(net, (example,), buf, dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["y"])
    return onnx.load_from_string(buf.getvalue())


def signals(n: int, length: int, features: int, seed: int = 0) -> np.ndarray:
    """mnist1d-like inputs [n, 1, length, features]: a few random sinusoids plus noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, length)[None, :, None]
    freq = rng.uniform(0.5, 4.0, size=(n, 1, features))
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1, features))
    x = np.sin(2 * np.pi * freq * t + phase) + 0.3 * rng.standard_normal((n, length, features))
    return x[:, None].astype(np.float32)


def seq_case(kind: str, features: int, hidden: int, length: int, n: int = 64, **kwargs: Any
             ) -> tuple[OnnxModel, Dataset, np.ndarray]:
    """The model, a calibration dataset of ``n`` signals and 200 further signals to test on."""
    proto = seq_model(kind, features, hidden, length, **kwargs)
    xs = signals(n + 200, length, features, seed=kwargs.get("seed", 0))
    return OnnxModel.from_proto(proto), Dataset.from_arrays({"x": xs[:n]}), xs[n:]
