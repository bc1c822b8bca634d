"""`prelu`: PRelu -> LeakyRelu (one slope in [0, 1)) or grouped 1x1 Convs around a Relu; onnxruntime
gives the same outputs before and after; a slope that is not per channel is reported."""

from __future__ import annotations

import numpy as np
import pytest

from normalize_helpers import assert_same_outputs, check_pass, load, ops, parse, rand, run_pass, torch_export

from passes.normalize import Normalize
from passes.prelu import PReluToNormalForm
from transpiler.errors import UnsupportedError


def _prelu(shape: list[int], slope: np.ndarray) -> object:
    dims = ", ".join(map(str, shape))
    return parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[{dims}] x) => (float[{dims}] y) {{
        y = PRelu(x, s)
    }}
    """, s=slope.astype(np.float32))


CASES = [
    ([1, 3, 4, 4], np.array([0.25]), ["LeakyRelu"]),
    ([1, 3, 4, 4], np.full((3, 1, 1), 0.1), ["LeakyRelu"]),
    ([1, 3, 4, 4], np.array([1.5]), ["Conv", "Relu", "Conv"]),
    ([1, 3, 4, 4], np.array([-0.2, 0.3, 2.0]).reshape(3, 1, 1), ["Conv", "Relu", "Conv"]),
    ([1, 3, 4, 4], np.array([-0.2, 0.3, 2.0]).reshape(1, 3, 1, 1), ["Conv", "Relu", "Conv"]),
    ([1, 4, 6], np.array([0.1, 0.2, 0.3, 0.4]).reshape(4, 1), ["Conv", "Relu", "Conv"]),
    ([1, 5], np.array([0.1, -0.5, 0.0, 0.9, 3.0]), ["Reshape", "Conv", "Relu", "Conv", "Reshape"]),
]


@pytest.mark.parametrize("shape, slope, want", CASES)
def test_prelu_becomes_leaky_relu_or_grouped_convs(shape: list[int], slope: np.ndarray, want: list[str]) -> None:
    result = check_pass(PReluToNormalForm, _prelu(shape, slope), {"x": rand(*shape) * 3})
    assert ops(result.model) == want
    assert run_pass(PReluToNormalForm, result.model).changed is False


def test_a_per_element_slope_is_reported() -> None:
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(_prelu([1, 2, 3, 3], rand(2, 3, 3))))
    (line,) = info.value.details
    assert "(PRelu" in line and "slope [2,3,3]" in line and "one slope per channel" in line


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_torch_prelu_one_and_per_channel(dynamo: bool) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.PReLU(4), nn.Conv2d(4, 4, 3), nn.PReLU(), nn.Flatten(),
                        nn.Linear(16, 6), nn.PReLU(6), nn.Linear(6, 3))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([0.1, -0.4, 1.3, 0.25]))
        net[6].weight.uniform_(-1.0, 2.0)
    proto = torch_export(net, torch.randn(1, 1, 6, 6), dynamic_batch=False, dynamo=dynamo, opset_version=13)
    after = run_pass(Normalize, load(proto)).model
    assert "PRelu" not in ops(after) and ops(after).count("LeakyRelu") == 1
    assert_same_outputs(proto, after.to_proto(), {proto.graph.input[0].name: rand(1, 1, 6, 6) * 2})
