"""`separate`: SVD of a Gemm and Tucker-2 of a Conv keep plain ONNX that onnxruntime runs, reduce the
bytes, record ``split-from``, and are reverted (with the reason) when the accuracy drop is too big."""

from __future__ import annotations

import numpy as np
import pytest
from compress_helpers import context, labelled_by, make_model, net_outputs, ort_outputs, sample_data, sample_model
from onnx import helper

from transpiler.errors import DataError
from transpiler.manager import PassManager

from passes.compress_size import model_size
from passes.separate import Separate, SeparateOptions, conv_factors, energy_rank, evbmf_rank, gemm_factors

QUICK = {"threshold": 1000, "epochs": 1}


def _gemm_model(rng: np.random.Generator, rank: int | None) -> tuple:
    """x[1,32] -> Gemm W1[64,32] (of ``rank``, or full rank) -> Relu -> Gemm W2[5,64]."""
    w1 = rng.standard_normal((64, 32))
    if rank is not None:
        w1 = rng.standard_normal((64, rank)) @ rng.standard_normal((rank, 32)) / np.sqrt(rank)
    inits = {"W1": w1, "B1": rng.standard_normal(64) * 0.1, "W2": rng.standard_normal((5, 64)), "B2": np.zeros(5)}
    nodes = [helper.make_node("Gemm", ["x", "W1", "B1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "W2", "B2"], ["y"], name="fc2", transB=1)]
    return make_model(nodes, [1, 32], "y", inits)


def _marks(n: int) -> np.ndarray:
    marks = np.full(n, "train", dtype="<U5")
    marks[:n // 5], marks[n // 5:2 * n // 5] = "val", "test"
    return marks


def test_gemm_svd_keeps_plain_onnx_reduces_bytes_and_records_split_from() -> None:
    rng = np.random.default_rng(0)
    model = _gemm_model(rng, rank=3)
    original = model.copy()
    x = rng.standard_normal((400, 32)).astype(np.float32)
    data = labelled_by(model, x, _marks(400))
    lines: list[str] = []
    result = Separate(SeparateOptions(**QUICK), context(data, lines)).run(model)
    assert result.changed
    record = next(r for r in result.stats["layers"] if r["node"] == "fc1")
    assert record["kept"] and record["kind"] == "svd" and record["ranks"] == [3]
    assert record["drop"] <= 1.0 and record["bytes_after"] < record["bytes_before"]
    assert result.stats["size_after"] < result.stats["size_before"] == model_size(original).total
    names = [n.name for n in result.model.graph.nodes]
    assert "fc1" not in names and "fc1_sep_a" in names and "fc1_sep_b" in names
    for name in ("fc1_sep_a", "fc1_sep_b"):
        assert result.model.annotations.get(name, "split-from") == "fc1"
        assert result.model.annotations.get(name, "origin") == ["fc1"]
    shapes = {n.name: list(np.asarray(n.inputs[1].values).shape) for n in result.model.graph.nodes if n.op == "Gemm"}
    assert shapes["fc1_sep_a"] == [3, 32] and shapes["fc1_sep_b"] == [64, 3]
    # onnxruntime runs it and agrees with the engine; the factorisation of a rank-3 weight is exact
    probe = x[:24]
    np.testing.assert_allclose(ort_outputs(result.model, probe), net_outputs(result.model, probe), rtol=1e-4, atol=1e-4)
    assert any("svd rank 3" in line and "kept" in line for line in lines)


def test_gemm_factors_are_the_truncated_svd() -> None:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((40, 4)) @ rng.standard_normal((4, 30))
    r, (a, b) = gemm_factors(w, energy=0.999, rank_share=0.5)
    assert r == 4 and a.shape == (4, 30) and b.shape == (40, 4)
    np.testing.assert_allclose(b @ a, w, atol=1e-8)
    r, _ = gemm_factors(rng.standard_normal((40, 30)), energy=0.99, rank_share=0.1)
    assert r == 4                                   # 10 % of 40 outputs caps the energy rank
    assert energy_rank(np.array([4.0, 3.0, 0.0]), 0.6) == 1 and energy_rank(np.array([4.0, 3.0]), 0.7) == 2


def test_conv_tucker2_core_is_two_products_not_a_loop_over_every_index(monkeypatch: pytest.MonkeyPatch) -> None:
    # a three-operand einsum runs one loop over o, i, r, s and k: seconds for a 256x128x3x3 conv;
    # the core is two tensordots, and the factors still rebuild a conv of that multilinear rank
    rng = np.random.default_rng(5)
    p = np.linalg.qr(rng.standard_normal((40, 7)))[0]
    q = np.linalg.qr(rng.standard_normal((48, 9)))[0]
    core = rng.standard_normal((9, 7, 3, 3))
    w = np.einsum("rs...,or,is->oi...", core, q, p)
    monkeypatch.setattr(np, "einsum", lambda *args, **kwargs: pytest.fail("conv_factors called np.einsum"))
    ranks, (pf, g, qf) = conv_factors(w, energy=0.999999)
    assert ranks == (7, 9)
    rebuilt = np.tensordot(np.tensordot(qf[:, :, 0, 0], g, axes=(1, 0)), pf[:, :, 0, 0], axes=(1, 0))  # [o, k, k, i]
    np.testing.assert_allclose(np.moveaxis(rebuilt, -1, 1), w, atol=1e-9 * np.abs(w).max())


def test_conv_tucker2_keeps_stride_pads_and_plain_onnx() -> None:
    rng = np.random.default_rng(2)
    p = np.linalg.qr(rng.standard_normal((6, 2)))[0]        # input-channel basis, r1 = 2
    q = np.linalg.qr(rng.standard_normal((12, 3)))[0]       # output-channel basis, r2 = 3
    core = rng.standard_normal((3, 2, 3, 3)) * 3
    w = np.einsum("rs...,or,is->oi...", core, q, p)          # [12, 6, 3, 3] of multilinear rank (3, 2)
    ranks, factors = conv_factors(w, energy=0.999)
    assert ranks == (2, 3)
    inits = {"W": w, "B": rng.standard_normal(12), "Wf": rng.standard_normal((4, 12 * 5 * 5)) * 0.1}
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat", axis=1),
             helper.make_node("Gemm", ["f", "Wf"], ["y"], name="fc", transB=1)]
    model = make_model(nodes, [1, 6, 10, 10], "y", inits)
    x = rng.standard_normal((12, 6, 10, 10)).astype(np.float32)
    before = ort_outputs(model, x)
    data = labelled_by(model, np.concatenate([x] * 20), _marks(240))
    result = Separate(SeparateOptions(threshold=1000, epochs=0), context(data)).run(model)
    record = next(r for r in result.stats["layers"] if r["node"] == "conv")
    assert record["kept"] and record["kind"] == "tucker2" and record["ranks"] == [2, 3]
    convs = {n.name: n for n in result.model.graph.nodes if n.op == "Conv"}
    assert sorted(convs) == ["conv_sep_a", "conv_sep_b", "conv_sep_c"]
    assert list(convs["conv_sep_b"].attrs["strides"]) == [2, 2] and list(convs["conv_sep_b"].attrs["pads"]) == [1] * 4
    for name in ("conv_sep_a", "conv_sep_c"):
        assert list(convs[name].attrs["strides"]) == [1, 1] and list(convs[name].attrs["kernel_shape"]) == [1, 1]
        assert result.model.annotations.get(name, "split-from") == "conv"
    np.testing.assert_allclose(ort_outputs(result.model, x), before, rtol=1e-4, atol=1e-4)   # exact: no tuning


def test_a_separation_that_costs_too_much_is_reverted_with_the_reason() -> None:
    rng = np.random.default_rng(4)
    model = _gemm_model(rng, rank=None)
    x = rng.standard_normal((400, 32)).astype(np.float32)
    data = labelled_by(model, x, _marks(400))
    result = Separate(SeparateOptions(threshold=1000, epochs=1, max_drop=0.0, rank_share=0.02),
                      context(data)).run(model)
    record = next(r for r in result.stats["layers"] if r["node"] == "fc1")
    assert not record["kept"] and "max-drop" in record["why"] and record["drop"] > 0
    assert "fc1" in [n.name for n in result.model.graph.nodes]
    assert not result.model.annotations.targets("split-from")


def test_group_conv_is_skipped_and_small_layers_are_left_alone() -> None:
    rng = np.random.default_rng(5)
    inits = {"W": rng.standard_normal((8, 1, 3, 3)), "Wf": rng.standard_normal((3, 8 * 6 * 6))}
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="dw", group=8),
             helper.make_node("Flatten", ["c"], ["f"], name="flat", axis=1),
             helper.make_node("Gemm", ["f", "Wf"], ["y"], name="fc", transB=1)]
    model = make_model(nodes, [1, 8, 8, 8], "y", inits)
    x = rng.standard_normal((100, 8, 8, 8)).astype(np.float32)
    result = Separate(SeparateOptions(threshold=100, epochs=0), context(labelled_by(model, x, _marks(100)))).run(model)
    record = next(r for r in result.stats["layers"] if r["node"] == "dw")
    assert not record["kept"] and "group=8" in record["why"]
    untouched = Separate(SeparateOptions(), context(None)).run(model)
    assert not untouched.changed and "no layer" in untouched.stats["note"]


def test_needs_data_when_something_qualifies() -> None:
    rng = np.random.default_rng(6)
    with pytest.raises(DataError, match="needs data"):
        Separate(SeparateOptions(threshold=1000), context(None)).run(_gemm_model(rng, rank=3))


def test_evbmf_finds_the_rank_of_a_noisy_low_rank_matrix() -> None:
    rng = np.random.default_rng(7)
    signal = rng.standard_normal((60, 5)) @ rng.standard_normal((5, 80)) * 3
    assert evbmf_rank(signal + 0.1 * rng.standard_normal((60, 80))) == 5
    assert evbmf_rank((signal + 0.1 * rng.standard_normal((60, 80))).T) == 5
    assert evbmf_rank(0.1 * rng.standard_normal((60, 80))) == 0


def test_the_big_mlp_sample_is_separated_through_the_pipeline() -> None:
    """normalize,separate on mlp_mnist_big: its 784x256 layer (800 KB float32) becomes two Gemms."""
    model = sample_model("mlp_mnist_big")
    data = sample_data("mlp_mnist_big", model)
    manager = PassManager("separate{epochs=1}", context(data), assume={"normal-form"})
    out, report = manager.run(model)
    stats = report.records[0].pass_stats
    first = stats["layers"][0]
    assert first["node"] == "/1/Gemm" and first["kind"] == "svd" and first["ranks"][0] <= 26
    if first["kept"]:
        assert stats["size_after"] < stats["size_before"]
        x = data.x[:8]
        np.testing.assert_allclose(ort_outputs(out, x), net_outputs(out, x), rtol=1e-4, atol=1e-4)
    else:
        assert "max-drop" in first["why"]


def test_with_a_budget_factors_larger_than_the_layers_share_are_left_to_sparsify() -> None:
    """A factorisation that would itself have to be pruned (factors over the layer's share of the
    budget) is skipped with the reason; with a looser budget the same layer is separated."""
    rng = np.random.default_rng(8)
    model = _gemm_model(rng, rank=3)
    x = rng.standard_normal((400, 32)).astype(np.float32)
    data = labelled_by(model, x, _marks(400))
    total = model_size(model).total
    tight = Separate(SeparateOptions(budget=total // 20, **QUICK), context(data)).run(model.copy())
    record = next(r for r in tight.stats["layers"] if r["node"] == "fc1")
    assert not record["kept"] and "share of the budget" in record["why"] and not tight.changed
    loose = Separate(SeparateOptions(budget=total // 2, **QUICK), context(data)).run(model.copy())
    assert next(r for r in loose.stats["layers"] if r["node"] == "fc1")["kept"]
