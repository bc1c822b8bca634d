"""Adam (Kingma & Ba), updating parameter arrays in place, with optional L2 weight decay.

The step for one parameter ``p`` with gradient ``g`` (``t`` counts this parameter's steps, so
parameters that are frozen for a while keep a correct bias correction)::

    g = g + weight_decay * p                       (only when weight_decay > 0; as torch.optim.Adam)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g^2
    p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from passes.train.errors import TrainError


@dataclass
class _Moments:
    m: np.ndarray
    v: np.ndarray
    t: int = 0


@dataclass
class Adam:
    """The optimizer; its state (moments, step counts) is kept per parameter name."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    state: dict[str, _Moments] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        b1, b2 = self.betas
        if self.lr <= 0 or not (0 <= b1 < 1 and 0 <= b2 < 1) or self.eps <= 0 or self.weight_decay < 0:
            raise TrainError(f"bad Adam settings lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                             f"weight_decay={self.weight_decay}",
                             hint="lr > 0, 0 <= betas < 1, eps > 0, weight_decay >= 0")

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Update ``params[name]`` in place for every ``name`` in ``grads``."""
        b1, b2 = self.betas
        for name, grad in grads.items():
            p = params[name]
            g = grad.astype(p.dtype, copy=False)
            if self.weight_decay:
                g = g + p.dtype.type(self.weight_decay) * p
            moments = self.state.get(name)
            if moments is None or moments.m.shape != p.shape:
                moments = self.state[name] = _Moments(np.zeros_like(p), np.zeros_like(p))
            moments.t += 1
            moments.m *= p.dtype.type(b1)
            moments.m += p.dtype.type(1 - b1) * g
            moments.v *= p.dtype.type(b2)
            moments.v += p.dtype.type(1 - b2) * (g * g)
            step_size = self.lr / (1 - b1 ** moments.t)
            denom = np.sqrt(moments.v / p.dtype.type(1 - b2 ** moments.t))
            denom += p.dtype.type(self.eps)
            p -= p.dtype.type(step_size) * moments.m / denom
