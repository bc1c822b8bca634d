"""A small torch transformer encoder exported by the legacy and the dynamo exporter (shared by the
attention tests in backend/ and intermittent/)."""

from __future__ import annotations

import io
import warnings

import onnx
import pytest

#: (d_model, nhead, dim_feedforward, T, features, classes)
CONFIGS = {"d16h1": (16, 1, 32, 8, 4, 5), "d32h2": (32, 2, 64, 12, 6, 4), "d24h2-t16": (24, 2, 48, 16, 3, 3)}


def transformer(config: str, dynamo: bool, seed: int = 0,
                opset: int | None = None) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """Linear (features -> d_model) -> nn.TransformerEncoderLayer (batch_first, dropout 0) -> mean over
    the steps -> Linear (-> classes); dynamo at `opset` (its default when None; 23 writes the ONNX
    Attention op)."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    d, heads, ff, t, f, classes = CONFIGS[config]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(f, d)
            self.enc = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True)
            self.out = nn.Linear(d, classes)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.out(self.enc(self.inp(x)).mean(1))

    torch.manual_seed(seed)
    net = Net()
    with torch.no_grad():                      # layer norms that are not the identity
        for m in net.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.6, 1.4)
                m.bias.uniform_(-0.2, 0.2)
    net.eval()
    shape = (1, t, f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            prog = torch.onnx.export(net, (torch.zeros(*shape),), dynamo=True, input_names=["x"],
                                     output_names=["y"], verbose=False, opset_version=opset)
            return prog.model_proto, shape
        buf = io.BytesIO()
        torch.onnx.export(net, (torch.zeros(*shape),), buf, dynamo=False, opset_version=17, input_names=["x"],
                          output_names=["y"])
    return onnx.load_from_string(buf.getvalue()), shape
