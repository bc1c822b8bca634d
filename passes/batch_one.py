"""`batch-one`: a model exported with a fixed batch of B > 1 samples becomes a one-sample model.

Exporters bake the example input's batch into the graph: torch's legacy and dynamo exporters without
dynamic axes give the inputs a fixed first dimension B, and write B into the constant shapes of
Reshapes (``x.view(x.size(0), -1)`` -> ``Reshape(x, [8, -1])``). The device runs one sample; this
pass gives it the one-sample model, when the model treats its B samples independently (a model
that mixes them, such as a mean over the batch, cannot be compiled for one sample).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler.data import token_vocab
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, const_value, drop_unused, is_const, new_constant, producer,
                                   replace_graph, to_proto)

#: The annotation (on "graph") that says why a fixed batch stayed: {"batch": B, "problem": text}.
ANNOTATION = "fixed-batch"
TARGET = "graph"
#: Float input types the independence check can draw samples for (and token ids: data.token_vocab).
_FLOATS = (np.float16, np.float32, np.float64)
#: The check draws seeded standard-normal samples; outputs must agree this closely row by row.
RTOL, ATOL = 1e-3, 1e-4


def fixed_batch(graph: gs.Graph) -> int | None:
    """The fixed batch B > 1 that every graph input starts with, or None (a dynamic or size-1 first
    dimension, inputs that disagree, an input of rank < 2 or without a float type or token ids)."""
    real = [t for t in graph.inputs if not is_const(t)]
    tokens = token_vocab(graph)
    firsts = set()
    for tensor in real:
        shape = tensor.shape
        if shape is None or len(shape) < 2 or tensor.dtype is None or (
                np.dtype(tensor.dtype) not in _FLOATS and tensor.name not in tokens):
            return None
        if not all(isinstance(d, (int, np.integer)) and int(d) > 0 for d in shape):
            return None
        firsts.add(int(shape[0]))
    if len(firsts) != 1:
        return None
    (batch,) = firsts
    return batch if batch > 1 else None


def _shape_constant(node: gs.Node) -> np.ndarray | None:
    """The constant target shape of a Reshape (an initializer or a Constant node's value), or None."""
    if node.op != "Reshape" or len(node.inputs) < 2:
        return None
    target = node.inputs[1]
    value = const_value(target)
    if value is not None:
        return value
    made = producer(target)
    if made is not None and made.op == "Constant" and isinstance(made.attrs.get("value"), gs.Constant):
        return np.asarray(made.attrs["value"].values)
    return None


@register
class BatchOne(Pass):
    """Give a model whose inputs have a fixed batch B > 1 the batch 1 (when its samples are independent).

    Before -> after (a torch export with an example input of 8 samples)::

        x[8,1,12,12] -> Conv -> Relu -> Reshape(., [8, -1]) -> Gemm -> y[8,5]
        ->
        x[1,1,12,12] -> Conv -> Relu -> Reshape(., [1, -1]) -> Gemm -> y[1,5]

    Every input's and output's first dimension B becomes 1, as does a first entry B of a Reshape's
    constant shape (an initializer or a Constant node; a shared one is copied); other shapes are
    dropped for `infer-shapes` to compute. It runs after `fold-constants`, which writes B into the
    shapes that Shape -> Gather -> Concat chains or constants computed; a chain left unfolded
    computes 1 from the new input. The rewrite is then checked in onnxruntime: B seeded random
    samples through the model as it was must give, row by row, the outputs of each sample alone
    through the new one. When they do not (the model mixes its samples, or holds B somewhere else)
    the model is left as it was, with the reason in the annotation ``fixed-batch`` on ``"graph"``,
    which `check-supported` adds to its request for an export with batch 1. A model whose inputs
    start with a dynamic dimension, with 1, or disagree is left to `infer-shapes` and
    `check-supported`.
    """

    name = "batch-one"
    level = "onnx"
    preserves_semantics = False  # it changes the batch; per sample the outputs are the same (checked)

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        batch = fixed_batch(graph)
        if batch is None:
            return PassResult(model, False, {"batch": 1})
        before = to_proto(model)
        reshapes = self._rewrite(graph, batch)
        problem = self._check(model, before, batch)
        if problem is not None:  # left as it was: check-supported reports the batch, with this reason
            replace_graph(model, before)
            model.annotations.set(TARGET, ANNOTATION, {"batch": batch, "problem": problem})
            return PassResult(model, False, {"batch": batch, "reshapes": 0})
        return PassResult(model, True, {"batch": batch, "reshapes": reshapes})

    def _rewrite(self, graph: gs.Graph, batch: int) -> int:
        """Batch 1 on the inputs, outputs and Reshape shapes; the number of Reshapes changed."""
        inputs = {id(t) for t in graph.inputs}
        outputs = {id(t) for t in graph.outputs}
        for tensor in graph.tensors().values():
            if not isinstance(tensor, gs.Variable) or tensor.shape is None:
                continue
            if id(tensor) in inputs or id(tensor) in outputs:
                if tensor.shape and tensor.shape[0] == batch:
                    tensor.shape = [1, *tensor.shape[1:]]
            else:
                tensor.shape = None  # the exporter's shapes hold B; infer-shapes computes them again
        changed = 0
        names = NameSource(graph)
        for node in graph.nodes:
            value = _shape_constant(node)
            if value is None or value.ndim != 1 or not value.size or int(value[0]) != batch:
                continue
            new = value.copy()
            new[0] = 1
            node.inputs[1] = new_constant(names, f"{node.inputs[1].name}_batch1", new.astype(value.dtype))
            changed += 1  # a Constant node that made the old shape is left unread: cleanup drops it
        if changed:
            drop_unused(graph)
        return changed

    def _check(self, model: OnnxModel, before: onnx.ModelProto, batch: int) -> str | None:
        """Why B random samples through ``before`` differ from each sample alone through ``model``
        (None: they agree, row by row)."""
        import onnxruntime

        from transpiler import ort

        graph = model.graph
        real = [t for t in graph.inputs if not is_const(t)]
        rng = np.random.default_rng(0)
        tokens = token_vocab(graph)
        feeds = {t.name: (rng.integers(0, tokens[t.name], [batch, *t.shape[1:]]) if t.name in tokens
                          else rng.standard_normal([batch, *t.shape[1:]])).astype(np.dtype(t.dtype)) for t in real}
        problem = None
        try:
            old = ort.session(before, source=model.source)
        except Exception:  # the model as it came does not run: check-supported says what is wrong
            return "onnxruntime cannot run the model as it is"
        quiet = onnxruntime.RunOptions()
        quiet.log_severity_level = 4  # a failure is reported below, in our words
        try:
            new = ort.session(to_proto(model), source=model.source)
            names = [o.name for o in old.get_outputs()]
            want = dict(zip(names, old.run(names, feeds, quiet)))
            for i in range(batch):
                got = dict(zip(names, new.run(names, {k: v[i:i + 1] for k, v in feeds.items()}, quiet)))
                for name in names:
                    w, g = np.asarray(want[name]), np.asarray(got[name])
                    if w.ndim == 0 or w.shape[0] != batch or g.shape != (1, *w.shape[1:]):
                        problem = f"output '{name}' has shape {list(w.shape)}, not [{batch}, ...] per sample"
                    elif not np.allclose(g[0], w[i], rtol=RTOL, atol=ATOL * max(1.0, float(np.abs(w).max()))):
                        problem = f"output '{name}' of sample {i} depends on the other samples of the batch"
                    if problem:
                        break
                if problem:
                    break
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types
            problem = f"the model with batch 1 does not run ({str(exc).strip().splitlines()[0][:200]})"
        return problem
