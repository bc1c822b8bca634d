"""JAX / Flax cases: Flax ``nnx`` modules of the shapes an MCU user deploys, exported by jax2onnx.

The nets (``JAX_NETS``), each trained briefly (``TRAINING_STEPS`` full-batch Adam steps, seed 0) on
scikit-learn's digits (or diabetes for the regressor, see ``common.structured_data``):

- ``mlp_relu`` (with bias), ``mlp_gelu`` (Flax's tanh-approximated GELU, a final softmax),
  ``mlp_tanh_nobias`` (``use_bias=False``), ``mlp_sigmoid``, ``mlp_leaky`` (leaky_relu 0.1), on 64
  flat pixels;
- ``cnn``: an 8x8x1 NHWC image (Flax convolutions are channel-last), Conv 'SAME' + BatchNorm + relu
  + max_pool, Conv + relu + avg_pool, a channel-last flatten (reshape) and a Dense head, softmax;
- ``dwsep``: a depthwise-separable CNN (``feature_group_count`` = channels, then a 1x1 conv), a
  global average pool (``jnp.mean`` over H and W);
- ``conv1d``: [8 steps, 8 features], two 1-D convolutions ('SAME', stride 2, 'VALID'), a mean over
  time and a Dense head;
- ``residual``: a conv stem and a residual block (conv-BN-relu-conv-BN + the identity, relu),
  global average pool, Dense;
- ``layernorm``: Dense + relu + LayerNorm + Dense;
- ``regressor``: diabetes (10 features), Dense 16 relu, Dense 1, judged by value;

and, in two forms only (``EXTRA_NETS``):

- ``mlp_bn_erf``: Dense (no bias) + BatchNorm + exact (erf) GELU + Dense + log_softmax;
- ``mlp_acts``: silu, elu, relu6, hard_tanh, softplus and hard_swish hidden layers;
- ``cnn_pools``: a 'VALID' conv, a concatenation of a 1x1 and a dilated 3x3 branch, max_pool 3/2
  and avg_pool 2/1 with 'SAME' padding (Flax counts the padding in the average), Dropout;
- ``seq_norm``: a 1-D conv on [steps, features], LayerNorm and RMSNorm over the channels of each step
  (at opset 17 jax2onnx writes the RMSNorm's ReduceMean with an axes input, which only opset 18
  has: the compiler rejects that model as invalid ONNX);
- ``groupnorm_cnn``: Conv + GroupNorm (2 groups) + a strided conv, global average pool (Flax's
  GroupNorm on the channel-last map, a Reshape to [1, H, W, G, C/G] and means over H, W and C/G,
  is rejected: no pass rewrites it yet);
- ``gru``: ``nnx.RNN(nnx.GRUCell)`` over 8 steps (a ``lax.scan``), the last step to a Dense head
  (jax2onnx 0.17.1 fails on it: "Cannot extract graph node from different trace level");
- ``binary``: one sigmoid output (the digit is odd).

Each exported by ``jax2onnx.to_onnx`` (input ``x``) in the forms

- ``-op17-bdyn``: opset 17, a symbolic batch ``B``;
- ``-op21-b1`` and ``-op23-b1``: opsets 21 and 23 (jax2onnx's default), batch 1;
- ``-op17-b1-nchw``: the image nets with ``inputs_as_nchw`` (an NCHW graph input transposed to NHWC);

the ``EXTRA_NETS`` as ``-op17-bdyn`` and ``-op23-b1``.

Cases need ``jax``, ``flax`` and ``jax2onnx`` (not project dependencies: skipped without);
tools/jax_paddle_models.py writes their models and samples to a folder or the test fixtures.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.exporter_cases.common import LAYOUTS, Case, ExportedModel, structured_data

REQUIRES = ("jax", "flax", "jax2onnx", "sklearn")
TRAINING_STEPS = 150
LEARNING_RATE = 1e-2
IMAGE_NETS = ("cnn", "dwsep", "residual")
"""Nets with an NHWC image input (also exported with ``inputs_as_nchw``)."""


def _mlp(activation: str, use_bias: bool = True, softmax: bool = False) -> Callable[[Any], Any]:
    """A builder of a 64 -> 32 -> 16 -> 10 MLP with ``activation`` (a name in ``flax.nnx``)."""

    def build(rngs: Any) -> Any:
        from flax import nnx

        act = functools.partial(nnx.leaky_relu, negative_slope=0.1) if activation == "leaky_relu" \
            else getattr(nnx, activation)

        class Mlp(nnx.Module):
            def __init__(self) -> None:
                self.l1 = nnx.Linear(64, 32, use_bias=use_bias, rngs=rngs)
                self.l2 = nnx.Linear(32, 16, use_bias=use_bias, rngs=rngs)
                self.l3 = nnx.Linear(16, 10, use_bias=use_bias, rngs=rngs)

            def __call__(self, x: Any) -> Any:
                y = self.l3(act(self.l2(act(self.l1(x)))))
                return nnx.softmax(y) if softmax else y

        return Mlp()

    return build


def _cnn(rngs: Any) -> Any:
    from flax import nnx

    class Cnn(nnx.Module):
        def __init__(self) -> None:
            self.c1 = nnx.Conv(1, 8, (3, 3), padding="SAME", rngs=rngs)
            self.bn = nnx.BatchNorm(8, rngs=rngs)
            self.c2 = nnx.Conv(8, 16, (3, 3), padding="SAME", rngs=rngs)
            self.head = nnx.Linear(2 * 2 * 16, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            h = nnx.max_pool(nnx.relu(self.bn(self.c1(x))), window_shape=(2, 2), strides=(2, 2))
            h = nnx.avg_pool(nnx.relu(self.c2(h)), window_shape=(2, 2), strides=(2, 2))
            return nnx.softmax(self.head(h.reshape(h.shape[0], -1)))

    return Cnn()


def _dwsep(rngs: Any) -> Any:
    from flax import nnx

    class DepthwiseSeparable(nnx.Module):
        def __init__(self) -> None:
            self.stem = nnx.Conv(1, 8, (3, 3), padding="SAME", rngs=rngs)
            self.dw = nnx.Conv(8, 8, (3, 3), strides=(2, 2), padding="SAME", feature_group_count=8, rngs=rngs)
            self.pw = nnx.Conv(8, 16, (1, 1), rngs=rngs)
            self.head = nnx.Linear(16, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            h = nnx.relu(self.pw(nnx.relu(self.dw(nnx.relu(self.stem(x))))))
            return self.head(h.mean(axis=(1, 2)))

    return DepthwiseSeparable()


def _conv1d(rngs: Any) -> Any:
    from flax import nnx

    class Conv1d(nnx.Module):
        def __init__(self) -> None:
            self.c1 = nnx.Conv(8, 16, (3,), strides=(2,), padding="SAME", rngs=rngs)
            self.c2 = nnx.Conv(16, 16, (3,), padding="VALID", rngs=rngs)
            self.head = nnx.Linear(16, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            h = nnx.relu(self.c2(nnx.relu(self.c1(x))))
            return self.head(h.mean(axis=1))

    return Conv1d()


def _residual(rngs: Any) -> Any:
    from flax import nnx

    class Residual(nnx.Module):
        def __init__(self) -> None:
            self.stem = nnx.Conv(1, 8, (3, 3), padding="SAME", rngs=rngs)
            self.a = nnx.Conv(8, 8, (3, 3), padding="SAME", use_bias=False, rngs=rngs)
            self.bn_a = nnx.BatchNorm(8, momentum=0.9, rngs=rngs)
            self.b = nnx.Conv(8, 8, (3, 3), padding="SAME", use_bias=False, rngs=rngs)
            self.bn_b = nnx.BatchNorm(8, momentum=0.9, rngs=rngs)
            self.head = nnx.Linear(8, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            h = nnx.relu(self.stem(x))
            r = self.bn_b(self.b(nnx.relu(self.bn_a(self.a(h)))))
            return self.head(nnx.relu(h + r).mean(axis=(1, 2)))

    return Residual()


def _layernorm(rngs: Any) -> Any:
    from flax import nnx

    class LayerNormMlp(nnx.Module):
        def __init__(self) -> None:
            self.l1 = nnx.Linear(64, 32, rngs=rngs)
            self.norm = nnx.LayerNorm(32, rngs=rngs)
            self.l2 = nnx.Linear(32, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            return self.l2(self.norm(nnx.relu(self.l1(x))))

    return LayerNormMlp()


def _regressor(rngs: Any) -> Any:
    from flax import nnx

    class Regressor(nnx.Module):
        def __init__(self) -> None:
            self.l1 = nnx.Linear(10, 16, rngs=rngs)
            self.l2 = nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            return self.l2(nnx.relu(self.l1(x)))

    return Regressor()


def _mlp_bn_erf(rngs: Any) -> Any:
    from flax import nnx

    class MlpBatchNorm(nnx.Module):
        def __init__(self) -> None:
            self.l1 = nnx.Linear(64, 32, use_bias=False, rngs=rngs)
            self.bn = nnx.BatchNorm(32, momentum=0.9, rngs=rngs)
            self.l2 = nnx.Linear(32, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            return nnx.log_softmax(self.l2(nnx.gelu(self.bn(self.l1(x)), approximate=False)))

    return MlpBatchNorm()


def _mlp_acts(rngs: Any) -> Any:
    from flax import nnx

    class MlpActivations(nnx.Module):
        def __init__(self) -> None:
            widths = (64, 32, 32, 24, 24, 16, 16)
            self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(widths, widths[1:])])
            self.head = nnx.Linear(16, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            for layer, act in zip(self.layers, (nnx.silu, nnx.elu, nnx.relu6, nnx.hard_tanh, nnx.softplus,
                                                nnx.hard_swish)):
                x = act(layer(x))
            return self.head(x)

    return MlpActivations()


def _cnn_pools(rngs: Any) -> Any:
    import jax.numpy as jnp
    from flax import nnx

    class CnnPools(nnx.Module):
        def __init__(self) -> None:
            self.stem = nnx.Conv(1, 8, (3, 3), padding="VALID", rngs=rngs)
            self.pointwise = nnx.Conv(8, 8, (1, 1), rngs=rngs)
            self.dilated = nnx.Conv(8, 8, (3, 3), padding="SAME", kernel_dilation=(2, 2), rngs=rngs)
            self.dropout = nnx.Dropout(0.2, rngs=rngs)
            self.head = nnx.Linear(3 * 3 * 16, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            h = nnx.relu(self.stem(x))
            h = jnp.concatenate([nnx.relu(self.pointwise(h)), nnx.relu(self.dilated(h))], axis=-1)
            h = nnx.max_pool(h, window_shape=(3, 3), strides=(2, 2), padding="SAME")
            h = nnx.avg_pool(h, window_shape=(2, 2), strides=(1, 1), padding="SAME")
            return self.head(self.dropout(h.reshape(h.shape[0], -1)))

    return CnnPools()


def _seq_norm(rngs: Any) -> Any:
    from flax import nnx

    class SequenceNorms(nnx.Module):
        def __init__(self) -> None:
            self.conv = nnx.Conv(8, 16, (3,), padding="SAME", rngs=rngs)
            self.norm = nnx.LayerNorm(16, rngs=rngs)
            self.rms = nnx.RMSNorm(16, rngs=rngs)
            self.head = nnx.Linear(16, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            h = self.rms(nnx.relu(self.norm(self.conv(x))))
            return self.head(h.mean(axis=1))

    return SequenceNorms()


def _groupnorm_cnn(rngs: Any) -> Any:
    from flax import nnx

    class GroupNormCnn(nnx.Module):
        def __init__(self) -> None:
            self.c1 = nnx.Conv(1, 8, (3, 3), padding="SAME", rngs=rngs)
            self.norm = nnx.GroupNorm(8, num_groups=2, rngs=rngs)
            self.c2 = nnx.Conv(8, 8, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
            self.head = nnx.Linear(8, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            h = nnx.relu(self.c2(nnx.relu(self.norm(self.c1(x)))))
            return self.head(h.mean(axis=(1, 2)))

    return GroupNormCnn()


def _gru(rngs: Any) -> Any:
    import jax.numpy as jnp
    from flax import nnx

    class Gru(nnx.Module):
        def __init__(self) -> None:
            self.rnn = nnx.RNN(nnx.GRUCell(8, 16, rngs=rngs), rngs=False)
            self.head = nnx.Linear(16, 10, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            carry = jnp.zeros((x.shape[0], 16), x.dtype)   # the cell's own carry init needs RNGs
            return self.head(self.rnn(x, initial_carry=carry)[:, -1])

    return Gru()


def _binary(rngs: Any) -> Any:
    from flax import nnx

    class Binary(nnx.Module):
        def __init__(self) -> None:
            self.l1 = nnx.Linear(64, 16, rngs=rngs)
            self.l2 = nnx.Linear(16, 1, rngs=rngs)

        def __call__(self, x: Any) -> Any:
            return nnx.sigmoid(self.l2(nnx.relu(self.l1(x))))

    return Binary()


JAX_NETS: dict[str, tuple[Callable[[Any], Any], str, str]] = {
    "mlp_relu": (_mlp("relu"), "flat", "logits"), "mlp_gelu": (_mlp("gelu", softmax=True), "flat", "probs"),
    "mlp_tanh_nobias": (_mlp("tanh", use_bias=False), "flat", "logits"),
    "mlp_sigmoid": (_mlp("sigmoid"), "flat", "logits"), "mlp_leaky": (_mlp("leaky_relu"), "flat", "logits"),
    "cnn": (_cnn, "nhwc", "probs"), "dwsep": (_dwsep, "nhwc", "logits"), "conv1d": (_conv1d, "steps", "logits"),
    "residual": (_residual, "nhwc", "logits"), "layernorm": (_layernorm, "flat", "logits"),
    "regressor": (_regressor, "diabetes", "value"),
    "mlp_bn_erf": (_mlp_bn_erf, "flat", "logprobs"), "mlp_acts": (_mlp_acts, "flat", "logits"),
    "cnn_pools": (_cnn_pools, "nhwc", "logits"), "seq_norm": (_seq_norm, "steps", "logits"),
    "groupnorm_cnn": (_groupnorm_cnn, "nhwc", "logits"), "gru": (_gru, "steps", "logits"),
    "binary": (_binary, "flat", "binary"),
}
"""name -> (builder taking ``nnx.Rngs``, layout of ``common.structured_data``, what it outputs: ``logits``,
``probs`` (a final softmax), ``logprobs`` (log_softmax), ``binary`` (one sigmoid: the digit is odd) or
``value`` (a regressor's))."""
EXTRA_NETS = ("mlp_bn_erf", "mlp_acts", "cnn_pools", "seq_norm", "groupnorm_cnn", "gru", "binary")
"""Nets exported in two forms only (``-op17-bdyn``, ``-op23-b1``)."""


def training_loss(outputs: Any, targets: Any, task: str) -> Any:
    """The loss of a net's ``outputs`` on the targets (class labels or values), per ``task``."""
    import jax.numpy as jnp
    import optax

    if task == "value":
        return jnp.mean((outputs[:, 0] - targets) ** 2)
    if task == "binary":
        odd = (targets % 2).astype(jnp.float32)
        p = jnp.clip(outputs[:, 0], 1e-6, 1 - 1e-6)
        return -jnp.mean(odd * jnp.log(p) + (1 - odd) * jnp.log(1 - p))
    logits = {"probs": jnp.log(outputs + 1e-9), "logprobs": outputs, "logits": outputs}[task]
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()


@functools.cache
def trained_jax_net(net_name: str) -> Any:
    """``net_name`` trained for TRAINING_STEPS full-batch Adam steps (seed 0), in eval mode."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    builder, layout, task = JAX_NETS[net_name]
    model = builder(nnx.Rngs(0))
    x, y, _ = structured_data(layout)
    optimizer = nnx.Optimizer(model, optax.adam(LEARNING_RATE), wrt=nnx.Param)

    def loss(m: Any) -> Any:
        return training_loss(m(jnp.asarray(x)), jnp.asarray(y), task)

    @nnx.jit
    def step(m: Any, opt: Any) -> Any:
        value, grads = nnx.value_and_grad(loss)(m)
        opt.update(m, grads)
        return value

    model.train()
    for _ in range(TRAINING_STEPS):
        step(model, optimizer)
    model.eval()
    jax.block_until_ready(nnx.state(model))
    return model


def export_jax(net_name: str, form: str, opset: int) -> ExportedModel:
    """Export the trained ``net_name`` in ``form`` (``bdyn``, ``b1``, ``b1-nchw``) at ``opset`` and
    draw its samples (the held-out rows) in the layout of the graph input."""
    from jax2onnx import to_onnx

    model = trained_jax_net(net_name)
    _, layout, task = JAX_NETS[net_name]
    shape = LAYOUTS[layout]
    batch: int | str = "B" if form == "bdyn" else 1
    nchw = [0] if form == "b1-nchw" else None
    proto = to_onnx(model, [(batch, *shape)], opset=opset, inputs_as_nchw=nchw, input_names=["x"],
                    model_name=f"jax_{net_name}")
    samples = structured_data(layout)[2]
    if form == "b1-nchw":
        samples = np.ascontiguousarray(samples.transpose(0, 3, 1, 2))
    return ExportedModel(proto, {"x": samples}, regressor=task == "value")


def _case(net_name: str, form: str, opset: int) -> Case:
    """The case ``jax-NET-opOPSET-FORM``."""
    return Case(f"jax-{net_name}-op{opset}-{form}", "jax2onnx", opset, "dynamic" if form == "bdyn" else "1",
                REQUIRES, functools.partial(export_jax, net_name, form, opset))


def jax_cases() -> list[Case]:
    """The matrix of the module docstring."""
    cases = []
    for net in JAX_NETS:
        if net in EXTRA_NETS:
            cases += [_case(net, "bdyn", 17), _case(net, "b1", 23)]
            continue
        cases += [_case(net, "bdyn", 17), _case(net, "b1", 21), _case(net, "b1", 23)]
        if net in IMAGE_NETS:
            cases.append(_case(net, "b1-nchw", 17))
    return cases
