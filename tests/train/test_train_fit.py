"""fit / evaluate / write_back: learning, the after_step hook, freezing, determinism, distillation."""

from __future__ import annotations

import numpy as np
import pytest

from train_helpers import ort_batch, sample_data, sample_model

from transpiler.data import Dataset

from passes.train import EpochReport, Net, build_net, evaluate, fit, predict_logits


def _reinitialised(net: Net, seed: int) -> None:
    """He-normal weights, zero biases: the network forgets what it was trained on."""
    rng = np.random.default_rng(seed)
    net.set_params({name: rng.standard_normal(v.shape) * np.sqrt(2.0 / max(1, int(np.prod(v.shape[1:]))))
                    if v.ndim > 1 else np.zeros(v.shape) for name, v in net.params().items()})


def test_training_from_scratch_reduces_the_loss_and_learns_digits() -> None:
    model = sample_model("cnn_digits")
    data = sample_data("cnn_digits", model)
    net = build_net(model)
    _reinitialised(net, seed=0)
    train, test = data.subset(range(300)), data.subset(range(300, 360))
    assert evaluate(net, train) < 0.3
    reports: list[EpochReport] = []
    result = fit(net, train, epochs=25, batch_size=32, lr=1e-2, seed=0, progress=reports.append)
    assert [r.epoch for r in reports] == list(range(1, 26)) and reports[-1].steps == result.steps == 25 * 10
    assert result.losses[-1] < result.losses[0] / 3
    assert evaluate(net, train) > 0.85
    assert evaluate(net, test) > 0.7


def _magnitude_projection(names: list[str], keep: float, masks: list[dict[str, np.ndarray]],
                          revived: list[int] | None = None):
    """An after_step hook as sparsify uses it: keep the top-|keep| magnitudes of each layer.

    ``masks`` receives the kept positions after each call; ``revived`` the number of positions that
    were pruned by the previous call but non-zero when this one starts (the optimizer moved them).
    """

    def hook(net: Net) -> None:
        params = net.params()
        snapshot = {}
        for name in names:
            w = params[name]
            if revived is not None and masks:
                revived.append(int(np.count_nonzero(w[~masks[-1][name]])))
            k = int(round(keep * w.size))
            threshold = np.sort(np.abs(w).reshape(-1))[-k]
            w[np.abs(w) < threshold] = 0
            snapshot[name] = w != 0
        masks.append(snapshot)

    return hook


def test_after_step_runs_after_every_step_and_pruned_weights_can_grow_back() -> None:
    model = sample_model("mlp_digits_sklearn")
    data = sample_data("mlp_digits_sklearn", model)
    net = build_net(model)
    weights = [name for name, v in net.params().items() if v.ndim == 2]
    masks: list[dict[str, np.ndarray]] = []
    revived: list[int] = []
    result = fit(net, data, epochs=3, batch_size=32, lr=3e-2, seed=0,
                 after_step=_magnitude_projection(weights, 0.2, masks, revived))
    assert len(masks) == result.steps == 3 * 12
    assert min(revived) > 0  # gradients stay dense: every step moves pruned weights off zero
    grown = 0
    for name in weights:
        w = net.params()[name]
        assert np.count_nonzero(w) == int(round(0.2 * w.size))
        grown += sum(np.count_nonzero(after[name] & ~before[name]) for before, after in zip(masks, masks[1:]))
    assert grown > 0, "no pruned weight ever came back"
    assert evaluate(net, data) > 0.8


def test_frozen_parameters_do_not_change_and_the_others_do() -> None:
    model = sample_model("lenet5_mnist")
    data = sample_data("lenet5_mnist", model).take(128)
    net = build_net(model)
    before = net.params(copy=True)
    frozen = {name for name in net.param_names if "conv" in name}
    assert frozen and len(frozen) < len(before)
    fit(net, data, epochs=1, batch_size=32, lr=1e-3, seed=0, frozen=frozen)
    after = net.params()
    for name in before:
        if name in frozen:
            assert np.array_equal(before[name], after[name]), name
        else:
            assert not np.array_equal(before[name], after[name]), name


def test_same_seed_gives_bitwise_the_same_weights_and_another_seed_does_not() -> None:
    model = sample_model("tiny_residual")
    data = sample_data("tiny_residual", model)
    teacher = predict_logits(build_net(model), data)

    def run(seed: int) -> dict[str, np.ndarray]:
        net = build_net(model)
        fit(net, data, epochs=2, batch_size=8, lr=1e-2, seed=seed, loss="distill",
            teacher_logits=teacher + np.random.default_rng(5).standard_normal(teacher.shape).astype(np.float32))
        return net.params()

    first, second, other = run(1), run(1), run(2)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert any(not np.array_equal(first[k], other[k]) for k in first)


def test_write_back_gives_onnxruntime_the_trained_network() -> None:
    model = sample_model("tiny_residual")
    untouched = model.copy()
    data = sample_data("tiny_residual", model)
    net = build_net(model)
    targets = np.random.default_rng(0).integers(0, 6, len(data))
    fit(net, Dataset.from_arrays(data.inputs, targets), epochs=3, batch_size=4, lr=1e-2, seed=0)
    written = net.write_back(model)
    assert written == net.param_names
    ref = ort_batch(model, data.inputs)
    ours = net.forward(data.inputs, keep=False)
    np.testing.assert_allclose(ours["output"], ref["output"], rtol=1e-5, atol=1e-5)
    # the copy shares the original arrays with the model; write_back must not have changed them
    old = ort_batch(untouched, data.inputs)["output"]
    assert np.abs(old - ref["output"]).max() > 1e-3
    np.testing.assert_allclose(old, ort_batch(sample_model("tiny_residual"), data.inputs)["output"], rtol=0, atol=0)


def test_distillation_recovers_agreement_after_pruning() -> None:
    model = sample_model("lenet5_mnist")
    data = sample_data("lenet5_mnist", model)
    train, test = data.subset(range(400)), data.subset(range(400, 500))
    net = build_net(model)
    teacher_train, teacher_test = predict_logits(net, train), predict_logits(net, test)
    fc1 = next(name for name, v in net.params().items() if v.shape == (120, 400))
    hook = _magnitude_projection([fc1], 0.03, [])
    hook(net)
    pruned = evaluate(net, train, teacher_logits=teacher_train)
    fit(net, train, epochs=3, batch_size=64, lr=1e-3, seed=0, loss="distill", teacher_logits=teacher_train,
        temperature=2.0, after_step=hook)
    tuned = evaluate(net, train, teacher_logits=teacher_train)
    assert tuned > pruned + 0.05 and tuned > 0.9
    assert evaluate(net, test, teacher_logits=teacher_test) > 0.85
    assert np.count_nonzero(net.params()[fc1]) == int(round(0.03 * 120 * 400))


def test_epoch_samples_bounds_an_epoch_with_a_fresh_seeded_draw() -> None:
    """``epoch_samples`` visits that many samples per epoch (a different draw each epoch, the same
    for the same seed); without it every sample."""
    model = sample_model("cnn_digits")
    data = sample_data("cnn_digits", model).subset(range(300))

    def run(epoch_samples: int | None, seed: int = 0) -> tuple[int, dict[str, np.ndarray]]:
        net = build_net(model)
        result = fit(net, data, epochs=2, batch_size=32, seed=seed, epoch_samples=epoch_samples)
        return result.steps, net.params()

    assert run(None)[0] == 2 * 10
    steps, first = run(64)
    assert steps == 2 * 2
    _, again = run(64)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    rng = np.random.default_rng(0)
    seen = [set(rng.permutation(300)[:64].tolist()) for _ in range(2)]
    assert seen[0] != seen[1]
    assert run(1000)[0] == run(None)[0]          # more than the dataset: every sample once


def test_fine_tuning_on_a_big_train_part_visits_at_most_epoch_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """A data file much bigger than needed: each fine-tuning epoch of separate/sparsify is bounded by
    EPOCH_SAMPLES (a file 20x the samples made every step 20x slower)."""
    import passes.finetune as finetune_module
    from transpiler.pass_infra import PassContext

    model = sample_model("cnn_digits")
    marked = sample_data("cnn_digits", model)
    data = Dataset.from_arrays(marked.inputs, marked.labels)       # no split marks: 60 % train
    monkeypatch.setattr(finetune_module, "EPOCH_SAMPLES", 64)
    tune = finetune_module.finetune_setup(model, PassContext(data=data), "sparsify", epochs=1, batch_size=32)
    assert len(tune.train) > 64
    steps: list[int] = []
    tune.tune(build_net(model), epochs=2, after_step=lambda net: steps.append(1))
    assert len(steps) == 2 * 2
