"""Run models in onnxruntime: sessions from proto bytes, random or data-drawn inputs, intermediates.

Sessions use the CPU provider with graph optimisations disabled by default, so what runs is the graph
we wrote, not onnxruntime's rewrite of it (``optimize=True`` turns them back on).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from transpiler.errors import DataError, InputError, Location
from transpiler.model import OnnxModel

ModelLike = OnnxModel | onnx.ModelProto


@dataclass(frozen=True)
class InputSpec:
    """A graph input (not an initializer): its name, concrete shape and numpy dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    dynamic: bool = False  # some dimension was symbolic or unknown in the model


def to_proto(model: ModelLike) -> onnx.ModelProto:
    """The ModelProto of an OnnxModel (exported) or the proto itself."""
    return model.to_proto() if isinstance(model, OnnxModel) else model


def _source(model: ModelLike) -> str | None:
    return model.source if isinstance(model, OnnxModel) else None


def session(model: ModelLike, *, optimize: bool = False, source: str | None = None) -> Any:
    """An onnxruntime InferenceSession on the CPU, built from the serialized model.

    ``source`` names the model file in errors (default: the OnnxModel's source).
    """
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # graph-optimiser warnings are noise for users

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    proto = to_proto(model)
    try:
        try:
            return ort.InferenceSession(proto.SerializeToString(), sess_options=options,
                                        providers=["CPUExecutionProvider"])
        except Exception as exc:
            older = _older_ir(proto) if "IR version" in str(exc) else None
            if older is None:
                raise
            return ort.InferenceSession(older.SerializeToString(), sess_options=options,
                                        providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        raise InputError(f"onnxruntime cannot load the model: {_first_line(exc)}",
                         location=Location(file=source or _source(model)),
                         hint="check the model with `python -m onnx.checker` or run it in onnxruntime "
                              "directly; freeml-tx needs models onnxruntime can run") from exc


def _older_ir(proto: onnx.ModelProto) -> onnx.ModelProto | None:
    """A copy stamped with the lowest IR version its opsets need, for an onnxruntime older than the
    onnx that wrote the file (None when that would not lower it)."""
    try:
        needed = onnx.helper.find_min_ir_version_for(list(proto.opset_import), ignore_unknown=True)
    except Exception:  # unknown opset domains: leave the model alone
        return None
    if needed >= proto.ir_version:
        return None
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    copy.ir_version = needed
    return copy


def input_specs(model: ModelLike, input_shapes: Mapping[str, Sequence[int]] | None = None) -> list[InputSpec]:
    """The real graph inputs with concrete shapes: a symbolic dimension is taken from
    ``input_shapes[name]`` when given, else 1."""
    proto = to_proto(model)
    initializers = {t.name for t in proto.graph.initializer}
    specs = []
    for vi in proto.graph.input:
        if vi.name in initializers:
            continue
        tensor_type = vi.type.tensor_type
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type or onnx.TensorProto.FLOAT))
        declared = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                    for d in tensor_type.shape.dim]
        override = (input_shapes or {}).get(vi.name)
        if override is not None:
            shape = tuple(int(d) for d in override)
        else:
            shape = tuple(d if d is not None else 1 for d in declared)
        specs.append(InputSpec(vi.name, shape, dtype, any(d is None for d in declared)))
    return specs


def random_inputs(model: ModelLike, seed: int = 0, data: Any = None,
                  input_shapes: Mapping[str, Sequence[int]] | None = None) -> dict[str, np.ndarray]:
    """One input per graph input: drawn from ``data`` when given, else random (seeded).

    ``data`` may be a mapping name -> array of samples (a dict or an ``np.load``-ed ``.npz``), an
    object with such a mapping in ``.inputs``, or one array for a one-input model. Floats are
    standard normal, token ids (integers that index an embedding table, data.token_vocab) uniform in
    [0, V), other integers uniform in [0, 10), booleans fair coins.
    """
    rng = np.random.default_rng(seed)
    specs = input_specs(model, input_shapes)
    vocab = token_vocab_of(model) if any(s.dtype.kind in "iu" for s in specs) else {}
    feeds: dict[str, np.ndarray] = {}
    arrays = _data_arrays(data, specs)
    for spec in specs:
        if spec.name in arrays:
            feeds[spec.name] = _sample(arrays[spec.name], spec, rng)
        elif np.issubdtype(spec.dtype, np.floating):
            feeds[spec.name] = rng.standard_normal(spec.shape).astype(spec.dtype)
        elif spec.dtype == np.bool_:
            feeds[spec.name] = rng.integers(0, 2, spec.shape).astype(np.bool_)
        else:
            feeds[spec.name] = rng.integers(0, vocab.get(spec.name, 10), spec.shape).astype(spec.dtype)
    return feeds


def token_vocab_of(model: ModelLike) -> dict[str, int]:
    """:func:`transpiler.data.token_vocab` of any model form (proto, OnnxModel, path)."""
    import onnx_graphsurgeon as gs

    from transpiler.data import token_vocab

    return token_vocab(gs.import_onnx(to_proto(model)))


def cast_feeds(model: ModelLike, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``feeds`` with each array cast to its graph input's dtype (a Dataset holds token ids as
    float32; onnxruntime wants the model's int64/int32). Unknown names are passed through."""
    dtypes = {s.name: s.dtype for s in input_specs(model)}
    return {k: np.asarray(v).astype(dtypes[k]) if k in dtypes else v for k, v in feeds.items()}


def _data_arrays(data: Any, specs: list[InputSpec]) -> dict[str, np.ndarray]:
    if data is None:
        return {}
    if hasattr(data, "inputs") and isinstance(getattr(data, "inputs"), Mapping):
        data = data.inputs
    if isinstance(data, np.ndarray):
        if len(specs) != 1:
            raise DataError(f"one data array given for a model with {len(specs)} inputs",
                            hint="give a .npz with one array per input name: "
                                 + ", ".join(s.name for s in specs))
        return {specs[0].name: data}
    if not isinstance(data, Mapping) and not hasattr(data, "files"):
        return {}
    keys = list(data.files) if hasattr(data, "files") else list(data.keys())
    names = [s.name for s in specs]
    if len(specs) == 1 and names[0] not in keys and len(keys) == 1:
        return {names[0]: np.asarray(data[keys[0]])}
    missing = [n for n in names if n not in keys]
    if missing:
        raise DataError(f"the data has no array for input(s) {', '.join(missing)}",
                        details=[f"arrays in the data: {', '.join(keys) or 'none'}"],
                        hint="name the arrays after the model's inputs: " + ", ".join(names))
    return {n: np.asarray(data[n]) for n in names}


def _sample(array: np.ndarray, spec: InputSpec, rng: np.random.Generator) -> np.ndarray:
    size = int(np.prod(spec.shape))
    if array.shape == spec.shape:
        return array.astype(spec.dtype)
    per_sample = int(np.prod(array.shape[1:])) if array.ndim > 1 else 1
    if array.ndim >= 1 and per_sample * (spec.shape[0] if spec.shape else 1) == size and array.shape[0] > 0:
        count = spec.shape[0] if spec.shape else 1
        rows = rng.choice(array.shape[0], size=count, replace=array.shape[0] < count)
        return array[rows].reshape(spec.shape).astype(spec.dtype)
    raise DataError(f"data for input '{spec.name}' has shape {list(array.shape)}, which does not fit "
                    f"the input shape {list(spec.shape)}",
                    hint="give samples as [N, ...] with each sample shaped like the input without "
                         "its batch dimension")


def check_feeds(model: ModelLike, feeds: Mapping[str, np.ndarray]) -> None:
    """Raise DataError when feeds miss an input, name an unknown one, or have the wrong rank/shape."""
    specs = {s.name: s for s in input_specs(model)}
    missing = [n for n in specs if n not in feeds]
    unknown = [n for n in feeds if n not in specs]
    if missing or unknown:
        raise DataError("the inputs do not match the model's inputs",
                        details=[f"missing: {', '.join(missing) or 'none'}",
                                 f"unknown: {', '.join(unknown) or 'none'}"],
                        hint="the model's inputs are " + ", ".join(specs))
    proto = to_proto(model)
    declared = {vi.name: vi for vi in proto.graph.input}
    for name, array in feeds.items():
        dims = declared[name].type.tensor_type.shape.dim
        if len(dims) != np.ndim(array):
            raise DataError(f"input '{name}' has rank {np.ndim(array)}, the model expects rank {len(dims)}")
        for axis, (dim, got) in enumerate(zip(dims, np.shape(array))):
            if dim.HasField("dim_value") and dim.dim_value > 0 and dim.dim_value != got:
                raise DataError(f"input '{name}' has shape {list(np.shape(array))}, the model expects "
                                f"{dim.dim_value} on axis {axis}")


def run(model: ModelLike, feeds: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None, *,
        optimize: bool = False) -> dict[str, Any]:
    """Run the model once; returns output name -> value (arrays; sequences/maps as onnxruntime gives them)."""
    source = _source(model)
    proto = to_proto(model)
    check_feeds(proto, feeds)
    sess = session(proto, optimize=optimize, source=source)
    names = list(outputs) if outputs is not None else [o.name for o in sess.get_outputs()]
    try:
        values = sess.run(names, dict(feeds))
    except Exception as exc:
        raise InputError(f"onnxruntime failed running the model: {_first_line(exc)}",
                         location=Location(file=source)) from exc
    return dict(zip(names, values))


def with_outputs(model: ModelLike, names: Sequence[str]) -> onnx.ModelProto:
    """A copy of the model's proto whose graph outputs also include the tensors ``names``."""
    proto = onnx.ModelProto()
    proto.CopyFrom(to_proto(model))
    produced = {o for node in proto.graph.node for o in node.output if o}
    produced |= {vi.name for vi in proto.graph.input} | {t.name for t in proto.graph.initializer}
    unknown = [n for n in names if n not in produced]
    if unknown:
        some = sorted(produced)[:12]
        raise InputError(f"no tensor named {', '.join(repr(n) for n in unknown)} in the model",
                         location=Location(file=_source(model)),
                         details=[f"some tensors: {', '.join(some)}"])
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
        types = {vi.name: vi for vi in [*inferred.graph.value_info, *inferred.graph.input,
                                        *inferred.graph.output]}
    except Exception:  # shape inference is only a convenience here
        types = {}
    existing = {o.name for o in proto.graph.output}
    for name in names:
        if name in existing:
            continue
        if name in types and types[name].type.HasField("tensor_type"):
            proto.graph.output.append(types[name])
        else:
            proto.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        existing.add(name)
    return proto


def intermediates(model: ModelLike, names: Sequence[str], feeds: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Values of the tensors ``names`` (any tensor of the graph) for these inputs."""
    return run(with_outputs(model, names), feeds, outputs=list(names))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]
