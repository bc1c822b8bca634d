"""Small torch models over token ids (``nn.Embedding`` then a sequence model) exported to ONNX, for
the embedding tests (a plain module: test files import it by name, like recurrent_models).

Every model reads ``ids [1, T]`` (int64) and writes ``y [1, classes]``:

- ``mean``: Embedding -> mean over time -> Linear (fastText style);
- ``conv``: Embedding -> permute to ``[1, D, T]`` -> Conv1d -> ReLU -> MaxPool1d -> mean over time -> Linear;
- ``gru``: Embedding -> GRU (batch_first) -> Linear on the last step;
- ``attention``: Embedding -> TransformerEncoderLayer (batch_first) -> mean over time -> Linear.

The first row of each table is the padding row (``padding_idx=0``: zeros).
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import onnx

from transpiler.data import Dataset

KINDS = ("mean", "conv", "gru", "attention")


def token_model(kind: str, vocab: int = 40, dim: int = 16, length: int = 8, classes: int = 4, seed: int = 0,
                dynamo: bool = False) -> onnx.ModelProto:
    """One of :data:`KINDS`, exported by torch's legacy exporter (opset 17) or by dynamo."""
    import torch

    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(vocab, dim, padding_idx=0)
            if kind == "conv":
                self.conv = nn.Conv1d(dim, 12, 3, padding=1)
                self.pool = nn.MaxPool1d(2)
                self.fc = nn.Linear(12, classes)
            elif kind == "gru":
                self.rnn = nn.GRU(dim, 12, batch_first=True)
                self.fc = nn.Linear(12, classes)
            elif kind == "attention":
                self.enc = nn.TransformerEncoderLayer(dim, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
                self.fc = nn.Linear(dim, classes)
            else:
                self.fc = nn.Linear(dim, classes)

        def forward(self, ids: Any) -> Any:
            e = self.emb(ids)
            if kind == "conv":
                h = self.pool(torch.relu(self.conv(e.permute(0, 2, 1))))
                return self.fc(h.mean(-1))
            if kind == "gru":
                y, _ = self.rnn(e)
                return self.fc(y[:, -1])
            if kind == "attention":
                return self.fc(self.enc(e).mean(1))
            return self.fc(e.mean(1))

    torch.manual_seed(seed)
    net = Net().eval()
    with torch.no_grad():       # larger embeddings than N(0, 1) / sqrt: spread the classes
        net.emb.weight[1:] *= 0.8
    example = torch.zeros(1, length, dtype=torch.int64)
    buf = io.BytesIO()
    with warnings.catch_warnings():     # with grad enabled: no fused fast path of the encoder layer
        warnings.simplefilter("ignore")
        if dynamo:
            return torch.onnx.export(net, (example,), dynamo=True, input_names=["ids"], output_names=["y"],
                                     verbose=False).model_proto
        torch.onnx.export(net, (example,), buf, dynamo=False, opset_version=17, input_names=["ids"],
                          output_names=["y"])
    return onnx.load_from_string(buf.getvalue())


def token_ids(n: int, length: int, vocab: int, seed: int = 0) -> np.ndarray:
    """``[n, length]`` int64 ids: sentences of random tokens in ``[1, vocab)`` padded with 0 at the end to
    a random length of at least 2 (as a tokenizer pads a batch)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(n, length))
    lengths = rng.integers(2, length + 1, size=n)
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids.astype(np.int64)


def token_dataset(ids: np.ndarray) -> Dataset:
    """A calibration Dataset of token ids (float32 as the data loader keeps them)."""
    return Dataset(inputs={"ids": ids.astype(np.float32)})
