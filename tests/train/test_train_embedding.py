"""The training engine on token-id models (``nn.Embedding``): the forward pass equals onnxruntime, the
embedding table is a constant (never trained, never pruned), gradients flow through it to the layers
before, and its backward adds the gradient into the selected rows (checked against finite differences)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from train_helpers import normalized, ort_batch

from passes.train import ops
from passes.train.graph import build_net

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from token_models import token_ids, token_model  # noqa: E402

pytest.importorskip("torch")


@pytest.mark.parametrize("kind", ["mean", "conv", "gru"])
def test_forward_equals_onnxruntime_and_the_table_is_not_trained(kind: str) -> None:
    model = normalized(token_model(kind, vocab=30, length=6, seed=2))
    table = next(n.inputs[0].name for n in model.graph.nodes if n.op == "Gather" and n.inputs[0].shape[0] == 30)
    net = build_net(model)
    ids = token_ids(16, 6, 30, seed=4)
    want = ort_batch(model, {"ids": ids})["y"]
    got = net.forward({"ids": ids.astype(np.float32)}, keep=True)["y"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert table not in net.params()
    assert [layer.inputs[0] for layer in net.layers if isinstance(layer.op, ops.Embedding)] == [table]
    grads = net.backward({net.logits: np.ones_like(got)})
    assert table not in grads.params and grads.params
    assert all(np.any(g != 0) for g in grads.params.values())     # every trained layer gets a gradient


def test_embedding_backward_adds_into_the_selected_rows() -> None:
    rng = np.random.default_rng(0)
    table = rng.standard_normal((7, 3))
    ids = np.array([[0, 3, 3, 6], [2, 2, 2, 1]], dtype=np.float64)
    op = ops.Embedding()
    y, cache = op.forward([table, ids], keep=True)
    assert y.shape == (2, 4, 3) and np.array_equal(y[0, 1], table[3])
    dy = rng.standard_normal(y.shape)
    dtable, dids = op.backward(dy, cache, [True, False])
    assert dids is None
    eps = 1e-6
    for v in range(7):
        for d in range(3):
            bumped = table.copy()
            bumped[v, d] += eps
            numeric = (np.sum(op.forward([bumped, ids], keep=False)[0] * dy) - np.sum(y * dy)) / eps
            assert abs(numeric - dtable[v, d]) < 1e-6, (v, d)


def test_sparsify_counts_the_table_and_refuses_a_budget_below_it() -> None:
    from token_models import token_dataset

    from passes.compress_size import embedding_bytes, model_size
    from transpiler.errors import BudgetError
    from transpiler.manager import run_pipeline
    from transpiler.pass_infra import PassContext, registry

    registry()
    model = normalized(token_model("conv", vocab=200, length=6, seed=3))
    tables = embedding_bytes(model)
    assert list(tables.values())[0] >= 2 * 200 * 16
    assert model_size(model).other_bytes >= sum(tables.values())
    ctx = PassContext(data=token_dataset(token_ids(60, 6, 200, seed=5)))
    with pytest.raises(BudgetError, match=r"the embedding table\(s\) .* alone take [0-9,]+ B of the 4,000 B budget; "
                                          r"SparseComp does not compress an embedding table"):
        run_pipeline(model, "normalize,sparsify{budget=4000}", ctx, verify=False)
