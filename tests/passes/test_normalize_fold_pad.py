"""`fold-pad`: zero Pads in front of Conv / AveragePool(count_include_pad) become their pads."""

from __future__ import annotations

import numpy as np
import pytest

from normalize_helpers import assert_same_outputs, check_pass, ops, parse, rand, run_pass, static, torch_export

from passes.explicit_attributes import ExplicitAttributes
from passes.fold_pad import FoldPad
from passes.normalize import Normalize
from passes.normalize_util import ORIGIN


def test_pad_input_form_folds_into_conv_and_avgpool() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 5, 5] x) => (float[1, 3, 6, 4] y, float[1, 2, 4, 5] z) {
        p = Pad(x, pads)
        y = Conv <kernel_shape = [3, 3], pads = [1, 0, 0, 0]> (p, w)
        q = Pad(x, pads2)
        z = AveragePool <kernel_shape = [3, 3], pads = [0, 1, 0, 1], count_include_pad = 1> (q)
    }
    """, pads=np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64), w=rand(3, 2, 3, 3),
        pads2=np.array([0, 0, 1, 0, 0, 0, 0, 0], np.int64))
    result = check_pass(FoldPad, proto, {"x": rand(1, 2, 5, 5, seed=1)})
    assert ops(result.model) == ["Conv", "AveragePool"] and result.stats["folded"] == 2
    conv, pool = result.model.graph.nodes
    assert conv.attrs["pads"] == [2, 0, 0, 1] and pool.attrs["pads"] == [1, 1, 0, 1]
    assert result.model.annotations.get(conv.name, ORIGIN) == ["Pad_0", "Conv_1"]


@pytest.mark.parametrize("body, reason", [
    ('y = Pad <mode = "reflect"> (x, pads)', "reflect mode"),
    ("y = Pad(x, pads, one)", "non-zero value"),
    ("y = Pad(x, cpads)", "pads channels"),
])
def test_other_pads_are_kept(body: str, reason: str) -> None:
    """fold-pad leaves them (pad-to-conv rewrites the first two; the third is rejected,
    tests/passes/test_normalize_pad_to_conv.py)."""
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 5, 5] x) => (float[1, 3, 5, 5] out) {{
        {body}
        out = Conv <kernel_shape = [3, 3]> (y, w)
    }}
    """, pads=np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), one=np.array(1.0, np.float32),
        cpads=np.array([0, 1, 0, 0, 0, 0, 2, 2], np.int64), w=rand(3, 2 if "cpads" not in body else 3, 3, 3))
    model = run_pass(ExplicitAttributes, static(proto)).model
    assert not run_pass(FoldPad, model).changed, reason


def test_pad_before_unpadded_average_pool_makes_it_count_the_padding() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 6] x) => (float[1, 2, 4] y, float[1, 2, 3] z) {
        p = Pad(x, pads)
        y = AveragePool <kernel_shape = [3], strides = [2]> (p)
        q = Pad(x, pads)
        z = AveragePool <kernel_shape = [3], strides = [2], pads = [1, 0]> (q)
    }
    """, pads=np.array([0, 0, 1, 0, 0, 1], np.int64))
    result = check_pass(FoldPad, proto, {"x": rand(1, 2, 6)})
    assert sorted(ops(result.model)) == ["AveragePool", "AveragePool", "Pad"]  # z's pool counts no padding
    first = [n for n in result.model.graph.nodes if n.outputs[0].name == "y"][0]
    assert first.inputs[0].name == "x"
    assert first.attrs["count_include_pad"] == 1 and first.attrs["pads"] == [1, 1]


def test_pad_before_maxpool_is_not_folded() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 4, 4] x) => (float[1, 2, 3, 3] y) {
        p = Pad(x, pads)
        y = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (p)
    }
    """, pads=np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))
    assert not run_pass(FoldPad, static(proto)).changed


def test_torch_zero_pad_and_functional_pad() -> None:
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pad = torch.nn.ZeroPad2d((1, 2, 0, 1))
            self.conv = torch.nn.Conv2d(2, 3, 3, stride=2)
            self.conv1 = torch.nn.Conv1d(3, 2, 2)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            y = torch.relu(self.conv(self.pad(x)))
            y = y.flatten(2)
            return self.conv1(torch.nn.functional.pad(y, (1, 1)))

    proto = torch_export(Net(), torch.randn(1, 2, 7, 7))
    assert ops(proto).count("Pad") == 2
    result = run_pass(Normalize, static(proto))
    assert "Pad" not in ops(result.model)
    assert_same_outputs(proto, result.model.to_proto(), {"input": rand(1, 2, 7, 7)})
