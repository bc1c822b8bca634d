"""`broadcast-activations`: a one-channel map combined with a C-channel map reads it through a
fixed 1x1 conv that copies its channel; a per-channel vector through a nearest Resize."""

from __future__ import annotations

import pytest
from normalize_helpers import check_pass, ops, parse, rand

from passes.broadcast_activations import BroadcastActivations
from passes.normalize_util import FIXED_WEIGHTS


@pytest.mark.parametrize("op", ["Mul", "Add", "Sub"])
@pytest.mark.parametrize("shape", [(1, 4, 3, 5), (1, 4, 6)])
def test_a_one_channel_map_is_copied_to_every_channel(op: str, shape: tuple[int, ...]) -> None:
    big = ", ".join(map(str, shape))
    small = ", ".join(map(str, (1, 1, *shape[2:])))
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[{big}] x, float[{small}] g) => (float[{big}] y) {{
        y = {op}(x, g)
    }}
    """)
    result = check_pass(BroadcastActivations, proto, {"x": rand(*shape), "g": rand(1, 1, *shape[2:], seed=1)})
    assert sorted(ops(result.model)) == sorted(["Conv", op])
    conv = next(n for n in result.model.graph.nodes if n.op == "Conv")
    assert result.model.annotations.get(conv.inputs[1].name, FIXED_WEIGHTS)


def test_a_per_channel_vector_is_still_upsampled() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4, 3, 5] x, float[1, 4, 1, 1] s) => (float[1, 4, 3, 5] y) {
        y = Mul(x, s)
    }
    """)
    result = check_pass(BroadcastActivations, proto, {"x": rand(1, 4, 3, 5), "s": rand(1, 4, 1, 1, seed=1)})
    assert sorted(ops(result.model)) == ["Mul", "Resize"]
