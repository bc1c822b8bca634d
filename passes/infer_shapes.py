"""`infer-shapes`: fix the input shapes and infer a static shape for every tensor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler.errors import InputError, Location, UnsupportedError
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import is_const, producer, replace_graph, shape_text, static_shape, to_proto

FLAG = "--input-shape"


@dataclass(frozen=True)
class InferShapesOptions:
    """Options of `infer-shapes`.

    ``require_static``: fail (listing the tensors) when a tensor keeps an unknown shape.
    """

    require_static: bool = True


def _flag_example(name: str, shape: tuple[int, ...] | list[object]) -> str:
    dims = ["1" if not isinstance(d, (int, np.integer)) or int(d) <= 0 else str(int(d)) for d in shape]
    return f"{FLAG} {name}={'x'.join(dims) or '1'}"


def fix_input_shapes(model: OnnxModel, given: dict[str, tuple[int, ...]], pass_name: str) -> int:
    """Make every graph input static; return how many dimensions were fixed.

    A dynamic first (batch) dimension becomes 1. Any other dynamic dimension takes the shape given in
    ``given`` (``--input-shape``) or is an error naming the input and the dimension.
    """
    graph = model.graph
    real = [t for t in graph.inputs if not is_const(t)]
    by_name = {t.name: t for t in real}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        listing = ", ".join(f"{t.name} {shape_text(t)}" for t in real) or "(none)"
        raise InputError(f"{FLAG} names {', '.join(repr(u) for u in unknown)}, which "
                         f"{'is not an input' if len(unknown) == 1 else 'are not inputs'} of the model; "
                         f"its inputs are: {listing}",
                         location=Location(file=model.source, pass_name=pass_name),
                         hint=f"use one of the input names, e.g. {_flag_example(real[0].name, real[0].shape or [])}"
                         if real else None)
    fixed = 0
    for tensor in real:
        declared = list(tensor.shape) if tensor.shape is not None else None
        if tensor.name in given:
            shape = tuple(int(d) for d in given[tensor.name])
            _check_given(model, tensor, declared, shape, pass_name)
            fixed += sum(1 for i, d in enumerate(shape)
                         if declared is None or not isinstance(declared[i], (int, np.integer)) or declared[i] != d)
            tensor.shape = list(shape)
            continue
        if declared is None:
            raise UnsupportedError(
                f"input '{tensor.name}' has no declared shape",
                location=Location(file=model.source, pass_name=pass_name, node=None),
                hint=f"give its shape with {FLAG} {tensor.name}=1x1x28x28 (batch first, batch 1)")
        new: list[int] = []
        for i, dim in enumerate(declared):
            if isinstance(dim, (int, np.integer)) and int(dim) > 0:
                new.append(int(dim))
            elif i == 0:
                new.append(1)
                fixed += 1
            else:
                label = f"'{dim}'" if isinstance(dim, str) and dim else "unnamed"
                dynamic = [str(j) for j, d in enumerate(declared)
                           if j > 0 and not (isinstance(d, (int, np.integer)) and int(d) > 0)]
                raise UnsupportedError(
                    f"input '{tensor.name}' has a dynamic dimension {i} ({label}) in shape "
                    f"{shape_text(tensor)}; only the batch dimension (0) may be dynamic",
                    location=Location(file=model.source, pass_name=pass_name, shape=shape_text(tensor)),
                    hint=f"fix it with {_flag_example(tensor.name, declared)}, putting the real sizes of "
                         f"dimension{'s' if len(dynamic) > 1 else ''} {', '.join(dynamic)} in place of "
                         f"the 1s there (batch must be 1)")
        tensor.shape = new
    return fixed


def _check_given(model: OnnxModel, tensor: gs.Variable, declared: list[object] | None,
                 shape: tuple[int, ...], pass_name: str) -> None:
    where = Location(file=model.source, pass_name=pass_name, shape=shape_text(tensor))
    if any(d <= 0 for d in shape):
        raise InputError(f"{FLAG} {tensor.name}={'x'.join(map(str, shape))} has a dimension < 1",
                         location=where, hint="every dimension must be a positive integer")
    if declared is None:
        return
    if len(declared) != len(shape):
        raise InputError(f"{FLAG} gives input '{tensor.name}' rank {len(shape)} "
                         f"({'x'.join(map(str, shape))}), but the model declares rank {len(declared)} "
                         f"{shape_text(tensor)}", location=where,
                         hint=f"give {len(declared)} dimensions, e.g. {_flag_example(tensor.name, declared)}")
    for i, (want, got) in enumerate(zip(declared, shape)):
        if isinstance(want, (int, np.integer)) and int(want) > 0 and int(want) != got:
            raise InputError(f"{FLAG} gives input '{tensor.name}' size {got} in dimension {i}, but the "
                             f"model fixes it to {int(want)} {shape_text(tensor)}", location=where,
                             hint=f"use {int(want)} for dimension {i}, e.g. "
                                  f"{_flag_example(tensor.name, [*shape[:i], int(want), *shape[i + 1:]])}")


def _forget_inferred(graph: gs.Graph) -> None:
    """Drop the shapes exporters wrote (often stale or symbolic) so inference starts afresh.

    Graph outputs keep their dtype, and their shape when it is fully static (strict inference then
    checks it; some ops, such as MaxPool's Indices output, have no inference for every output).
    """
    inputs = {id(t) for t in graph.inputs}
    outputs = {id(t) for t in graph.outputs}
    for tensor in graph.tensors().values():
        if not isinstance(tensor, gs.Variable) or id(tensor) in inputs or not _is_tensor(tensor):
            continue
        if id(tensor) in outputs:
            if static_shape(tensor) is None:
                tensor.shape = None
        else:
            tensor.shape = None
            tensor.dtype = None


def _is_tensor(tensor: gs.Tensor) -> bool:
    return getattr(tensor, "type", "tensor_type") == "tensor_type"


def missing_shapes(graph: gs.Graph) -> list[gs.Variable]:
    """Tensor-typed variables (inputs, outputs, intermediates) without a static shape or dtype."""
    found = []
    for tensor in graph.tensors().values():
        if isinstance(tensor, gs.Variable) and not tensor.is_empty() and _is_tensor(tensor):
            if static_shape(tensor) is None or tensor.dtype is None:
                found.append(tensor)
    return found


def infer(model: OnnxModel, pass_name: str) -> None:
    """Run onnx shape inference (strict, with data propagation); fall back to onnxruntime."""
    proto = to_proto(model)
    for output in proto.graph.output:
        if not output.type.HasField("tensor_type") or output.type.tensor_type.elem_type == onnx.TensorProto.UNDEFINED:
            output.ClearField("type")  # gs cannot write map types (ZipMap's); let inference fill it in
    try:
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)
    except Exception as strict_exc:  # InferenceError, or a checker error for ops it does not know
        try:
            inferred = onnx.shape_inference.infer_shapes(proto, data_prop=True)
        except Exception:
            inferred = proto
        if not _runs(inferred, model):
            raise InputError(f"shape inference failed: {_first_line(strict_exc)}",
                             location=Location(file=model.source, pass_name=pass_name),
                             hint=f"check the input shapes ({FLAG}); the model's layers must accept them"
                             ) from strict_exc
    replace_graph(model, inferred)
    _fill_from_onnxruntime(model)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _feeds(graph: gs.Graph) -> dict[str, np.ndarray] | None:
    feeds = {}
    for tensor in graph.inputs:
        shape = static_shape(tensor)
        if shape is None or tensor.dtype is None:
            return None
        try:
            dtype = np.dtype(tensor.dtype)
        except TypeError:           # an ONNX element type numpy lacks: no feed to try the model with
            return None
        feeds[tensor.name] = np.zeros(shape, dtype=dtype)
    return feeds


def _runs(proto: onnx.ModelProto, model: OnnxModel) -> bool:
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # graph-optimiser warnings are noise for users

    feeds = _feeds(model.graph)
    if feeds is None:
        return False
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 4
        session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        session.run(None, feeds)
        return True
    except Exception:
        return False


def _tainted_by_other_domains(graph: gs.Graph) -> set[str]:
    """Names of tensors computed (transitively) from ops outside the default domain."""
    tainted: set[str] = set()
    for node in graph.nodes:  # topologically sorted
        if node.domain not in (None, "", "ai.onnx") or any(t.name in tainted for t in node.inputs):
            tainted.update(t.name for t in node.outputs)
    return tainted


def _fill_from_onnxruntime(model: OnnxModel) -> None:
    """Shapes onnx inference left open because of ops of other domains (ai.onnx.ml): measure them.

    Default-domain ops always have inference functions; a shape they leave open on their own
    depends on the data (NonZero, ...) and one run would show only one instance of it, so only
    tensors downstream of other-domain ops are measured, with one onnxruntime run on zeros.
    """
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # graph-optimiser warnings are noise for users

    graph = model.graph
    tainted = _tainted_by_other_domains(graph)
    missing = [t for t in missing_shapes(graph) if t.dtype is not None and t.name in tainted]
    feeds = _feeds(graph)
    if not missing or feeds is None:
        return
    probe = graph.copy()
    wanted = {t.name for t in missing}
    probe_tensors = probe.tensors()
    probe.outputs = [o for o in probe.outputs if _is_tensor(o) and o.name not in wanted] + \
        [probe_tensors[n] for n in sorted(wanted)]
    try:
        proto = gs.export_onnx(probe, do_type_check=False)
        options = ort.SessionOptions()
        options.log_severity_level = 4
        session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        values = session.run(None, feeds)
    except Exception:
        return
    tensors = graph.tensors()
    for name, value in zip(names, values):
        if name in wanted and isinstance(value, np.ndarray):
            tensors[name].shape = list(value.shape)


@register
class InferShapes(Pass):
    """Make every tensor shape static: fix the inputs, then run shape inference.

    Before -> after::

        x: float32[batch, 1, 28, 28]         ->  x: float32[1, 1, 28, 28]
        h = Conv(x, W)      (no value_info)  ->  h: float32[1, 8, 26, 26]
        y: float32[batch, 10]                ->  y: float32[1, 10]

    A dynamic batch dimension (dimension 0) becomes 1. Another dynamic dimension takes its size from
    ``PassContext.input_shapes`` (the CLI flag ``--input-shape name=1x1x28x28``) or is an error naming
    the input, the dimension and the flag. Stale shapes written by the exporter are dropped first.
    onnx shape inference runs strict and with data propagation; tensors it leaves open (ops without
    an inference function) are measured with one onnxruntime run on zeros. With ``require_static``
    every tensor must end with a static shape, or the error lists those that did not.
    """

    name = "infer-shapes"
    options_type = InferShapesOptions
    level = "onnx"
    preserves_semantics = True
    ensures = frozenset({"static-shapes"})

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        before = {n: (t.shape, t.dtype) for n, t in model.graph.tensors().items()
                  if isinstance(t, gs.Variable)}
        fixed = fix_input_shapes(model, dict(self.context.input_shapes), self.name)
        _forget_inferred(model.graph)
        infer(model, self.name)
        missing = missing_shapes(model.graph)
        if missing and self.options.require_static:
            details = []
            for tensor in missing[:20]:
                node = producer(tensor)
                made_by = f"made by {node.op} '{node.name}'" if node is not None else "a graph input/output"
                details.append(f"{tensor.name}: shape {shape_text(tensor)}, dtype {tensor.dtype}, {made_by}")
            if len(missing) > 20:
                details.append(f"... and {len(missing) - 20} more")
            raise UnsupportedError(f"{len(missing)} tensor(s) have no static shape after shape inference",
                                   location=Location(file=model.source, pass_name=self.name),
                                   details=details,
                                   hint=f"give every input a full shape with {FLAG} name=1x1x28x28; ops whose "
                                        f"output shape depends on data are not supported")
        after = {n: (t.shape, t.dtype) for n, t in model.graph.tensors().items()
                 if isinstance(t, gs.Variable)}
        static = sum(1 for t in model.graph.tensors().values()
                     if isinstance(t, gs.Variable) and static_shape(t) is not None)
        return PassResult(model, before != after, {"fixed-input-dims": fixed, "static-tensors": static,
                                                   "unknown-tensors": len(missing)})
