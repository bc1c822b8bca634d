"""Losses and Adam: against finite differences and against torch (a test-only reference)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from passes.train import Adam, TrainError, cross_entropy, distillation, logits_from_probabilities
from passes.train.loss import log_softmax


def _finite_difference_check(fn: Callable[[np.ndarray], tuple[float, np.ndarray]], z: np.ndarray) -> None:
    value, grad = fn(z)
    direction = np.random.default_rng(0).standard_normal(z.shape)
    eps = 1e-6
    numeric = (fn(z + eps * direction)[0] - fn(z - eps * direction)[0]) / (2 * eps)
    assert numeric == pytest.approx(float((grad * direction).sum()), rel=1e-6, abs=1e-9)
    assert np.isfinite(value)


def test_cross_entropy_value_and_gradient() -> None:
    z = np.random.default_rng(1).standard_normal((7, 5)) * 3
    labels = np.array([0, 4, 2, 2, 1, 3, 0])
    _finite_difference_check(lambda v: cross_entropy(v, labels), z)
    value, _ = cross_entropy(z, labels)
    expected = -np.mean([z[i, labels[i]] - np.log(np.exp(z[i]).sum()) for i in range(7)])
    assert value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.5])
def test_distillation_value_and_gradient(temperature: float) -> None:
    rng = np.random.default_rng(2)
    student, teacher = rng.standard_normal((6, 4)) * 2, rng.standard_normal((6, 4)) * 2
    _finite_difference_check(lambda v: distillation(v, teacher, temperature), student)
    assert distillation(teacher, teacher, temperature)[0] == pytest.approx(0.0, abs=1e-12)
    assert distillation(student, teacher, temperature)[0] > 0


def test_losses_match_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    z = rng.standard_normal((8, 10)).astype(np.float32)
    t = rng.standard_normal((8, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 8)
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.tensor(labels))
    ref.backward()
    value, grad = cross_entropy(z, labels)
    assert value == pytest.approx(float(ref.detach()), rel=1e-5)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-5, atol=1e-7)
    temperature = 3.0
    zt = torch.tensor(z, requires_grad=True)
    kd = torch.nn.functional.kl_div(torch.log_softmax(zt / temperature, dim=1),
                                    torch.log_softmax(torch.tensor(t) / temperature, dim=1),
                                    reduction="batchmean", log_target=True) * temperature ** 2
    kd.backward()
    value, grad = distillation(z, t, temperature)
    assert value == pytest.approx(float(kd.detach()), rel=1e-5)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_a_teacher_given_as_probabilities_distills_like_its_logits() -> None:
    rng = np.random.default_rng(4)
    student, teacher = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    probabilities = np.exp(log_softmax(teacher))
    for temperature in (1.0, 2.0):
        a = distillation(student, teacher, temperature)
        b = distillation(student, logits_from_probabilities(probabilities), temperature)
        assert a[0] == pytest.approx(b[0], rel=1e-9)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-9, atol=1e-12)


def test_loss_errors() -> None:
    z = np.zeros((3, 4))
    with pytest.raises(TrainError, match="class indices"):
        cross_entropy(z, np.array([0.5, 1.0, 2.0]))
    with pytest.raises(TrainError, match="4 classes"):
        cross_entropy(z, np.array([0, 1, 4]))
    with pytest.raises(TrainError, match=r"\[N, classes\]"):
        cross_entropy(np.zeros((3, 4, 1)), np.array([0, 1, 2]))
    with pytest.raises(TrainError, match="do not match"):
        distillation(z, np.zeros((3, 5)))
    with pytest.raises(TrainError, match="positive"):
        distillation(z, z, temperature=0.0)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_matches_torch(weight_decay: float) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    params = {"w": w.copy(), "b": b.copy()}
    tw, tb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    ref = torch.optim.Adam([tw, tb], lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=weight_decay)
    ours = Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=weight_decay)
    for step in range(6):
        gw = rng.standard_normal(w.shape).astype(np.float32)
        gb = rng.standard_normal(b.shape).astype(np.float32)
        tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
        ref.step()
        ours.step(params, {"w": gw, "b": gb})
    np.testing.assert_allclose(params["w"], tw.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(params["b"], tb.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert ours.state["w"].t == 6


def test_adam_counts_steps_per_parameter() -> None:
    params = {"w": np.ones(3, np.float32), "b": np.ones(2, np.float32)}
    opt = Adam(lr=0.1)
    for step in range(4):
        opt.step(params, {"w": np.ones(3, np.float32)} if step % 2 else
                 {"w": np.ones(3, np.float32), "b": np.ones(2, np.float32)})
    assert opt.state["w"].t == 4 and opt.state["b"].t == 2
    # a constant gradient moves each step by lr (bias-corrected Adam's first steps)
    np.testing.assert_allclose(params["w"], 1 - 4 * 0.1, rtol=1e-5)
    np.testing.assert_allclose(params["b"], 1 - 2 * 0.1, rtol=1e-5)


def test_adam_rejects_bad_settings() -> None:
    with pytest.raises(TrainError, match="bad Adam settings lr=0.0") as info:
        Adam(lr=0.0)
    assert info.value.hint is not None and "lr > 0" in info.value.hint
