"""Load and save ONNX models with one clear :class:`InputError` for each way a file can be wrong.

``load`` checks, in order: the path is a file; the bytes are an ONNX protobuf (garbage, other model
formats and truncated files are told apart); external-data files exist; ``onnx.checker`` accepts the
model; ``input_shapes`` name real inputs of the right rank. Any opset is read: `normalize` converts a
model older than opset 13 (`upgrade-opset`) and says so when it cannot.
Dynamic shapes are *not* resolved here (``normalize`` does that). Several non-initializer graph
inputs are fine; :func:`describe_inputs` lists them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from transpiler.errors import FreemlError, InputError, Location
from transpiler.model import OnnxModel

# ModelProto field numbers (onnx.proto) -> names, for telling truncated ONNX from other bytes.
_MODEL_FIELDS = {1: "ir_version", 2: "producer_name", 3: "producer_version", 4: "domain",
                 5: "model_version", 6: "doc_string", 7: "graph", 8: "opset_import",
                 14: "metadata_props", 20: "training_info", 25: "functions", 26: "configuration"}
_WIRE_TYPES = {0: "varint", 1: "64-bit", 2: "length-delimited", 5: "32-bit"}
# Expected wire type of each field (all strings/messages are length-delimited, the ints varints).
_FIELD_WIRE = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
_EXPORT_HINT = ("give a model exported to ONNX (.onnx): torch.onnx.export for PyTorch, tf2onnx for "
                "TensorFlow/Keras, skl2onnx for scikit-learn")
_MAGIC = [
    (b"PK\x03\x04", "a zip archive (a PyTorch .pt checkpoint?)",
     "export the model to ONNX first, e.g. torch.onnx.export(model, example_input, 'model.onnx')"),
    (b"\x89HDF", "an HDF5 file (a Keras .h5 model?)",
     "convert it with tf2onnx: python -m tf2onnx.convert --keras model.h5 --output model.onnx"),
    (b"\x80", "a Python pickle (a scikit-learn or PyTorch object?)",
     "convert it with skl2onnx or torch.onnx.export"),
]


def load(path: str | os.PathLike[str], input_shapes: Mapping[str, Sequence[int]] | None = None) -> OnnxModel:
    """Read an ONNX file into an :class:`OnnxModel`; every problem is an InputError naming the file."""
    path = Path(path)
    where = Location(file=str(path))
    if not path.exists():
        raise InputError("no such file", location=where,
                         hint="check the path; the model must be an .onnx file")
    if not path.is_file():
        raise InputError("not a file (a directory or a device)", location=where,
                         hint="give the path of the .onnx file itself")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", location=where) from exc
    proto = parse_model_bytes(data, str(path))
    _load_external_data(proto, path)
    _check(proto, path)
    model = _import(proto, str(path))
    if input_shapes:
        check_input_shapes(proto, input_shapes, str(path))
    return model


def parse_model_bytes(data: bytes, source: str = "<bytes>") -> onnx.ModelProto:
    """Parse serialized ONNX; garbage, other formats and truncated files each get their own error."""
    where = Location(file=source)
    if not data:
        raise InputError("the file is empty", location=where,
                         hint="re-export the model; the export may have failed half-way")
    for magic, what, hint in _MAGIC:
        if data.startswith(magic):
            raise InputError(f"not an ONNX model: this is {what}", location=where, hint=hint)
    if data[4:8] == b"TFL3":
        raise InputError("not an ONNX model: this is a TensorFlow Lite flatbuffer", location=where,
                         hint="convert it with tf2onnx: python -m tf2onnx.convert --tflite model.tflite "
                              "--output model.onnx")
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except DecodeError:
        raise _decode_error(data, where) from None
    if not proto.HasField("graph"):
        raise InputError("not an ONNX model: the file has no graph", location=where,
                         hint=_text_hint(data) or _EXPORT_HINT)
    if not proto.opset_import:
        raise InputError("the ONNX file has a graph but no opset_import (truncated?)", location=where,
                         hint="re-export the model; a complete ONNX file lists its opsets")
    return proto


def _decode_error(data: bytes, where: Location) -> InputError:
    """Scan the top-level protobuf fields to tell a truncated ONNX file from other bytes."""
    pos, seen = 0, []
    while pos < len(data):
        tag, pos = _varint(data, pos)
        if tag is None:
            break
        number, wire = tag >> 3, tag & 7
        if number not in _MODEL_FIELDS or _FIELD_WIRE[number] != wire:
            break
        seen.append(_MODEL_FIELDS[number])
        if wire == 0:
            value, pos = _varint(data, pos)
            if value is None:
                return _truncated(where, len(data), _MODEL_FIELDS[number], 1)
        else:
            length, pos = _varint(data, pos)
            if length is None:
                return _truncated(where, len(data), _MODEL_FIELDS[number], 1)
            if pos + length > len(data):
                return _truncated(where, len(data), _MODEL_FIELDS[number], pos + length - len(data))
            pos += length
    if seen and pos >= len(data):
        return InputError("the ONNX file is corrupt: its protobuf structure is damaged inside "
                          f"'{seen[-1]}'", location=where,
                          hint="re-export or re-download the model")
    return InputError("not an ONNX model: the bytes are not an ONNX protobuf", location=where,
                      hint=_text_hint(data) or _EXPORT_HINT)


def _truncated(where: Location, size: int, field_name: str, missing: int) -> InputError:
    return InputError(f"the ONNX file is truncated: it ends at byte {size} inside '{field_name}', "
                      f"{missing} more byte(s) expected", location=where,
                      hint="the file was cut short (interrupted download or export); get it again")


def _varint(data: bytes, pos: int) -> tuple[int | None, int]:
    value, shift = 0, 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None, pos


def _text_hint(data: bytes) -> str | None:
    try:
        text = data[:200].decode("utf-8").lstrip()
    except UnicodeDecodeError:
        return None
    if text.startswith("<") or text.startswith("ir_version"):
        return "this looks like ONNX text; parse it with onnx.parser.parse_model and save it with onnx.save"
    return "this is a text file; give the binary .onnx model"


def _load_external_data(proto: onnx.ModelProto, path: Path) -> None:
    """Check that every external-data file exists (relative to the model's folder), then load it."""
    base = path.parent.resolve()
    missing: dict[str, list[str]] = {}
    tensors = [t for t in _all_tensors(proto.graph) if external_data_helper.uses_external_data(t)]
    for tensor in tensors:
        info = external_data_helper.ExternalDataInfo(tensor)
        location = info.location
        target = (base / location).resolve()
        if os.path.isabs(location) or base not in target.parents:
            raise InputError(f"tensor '{tensor.name}' points at external data outside the model's "
                             f"folder: {location}", location=Location(file=str(path)),
                             hint="keep external-data files next to the model")
        if not target.is_file():
            missing.setdefault(location, []).append(tensor.name)
            continue
        length = info.length if info.length else None
        offset = info.offset or 0
        if length is not None and offset + length > target.stat().st_size:
            raise InputError(f"external-data file '{location}' is shorter than tensor "
                             f"'{tensor.name}' needs ({offset + length} bytes, file has "
                             f"{target.stat().st_size})", location=Location(file=str(path)),
                             hint="copy the complete external-data file next to the model")
    if missing:
        raise InputError(f"external-data file(s) missing: {', '.join(sorted(missing))}",
                         location=Location(file=str(path)),
                         details=[f"{name}: needed by {', '.join(t[:5])}{' ...' if len(t) > 5 else ''}"
                                  for name, t in sorted(missing.items())],
                         hint=f"copy the file(s) into {base} next to the model")
    if tensors:
        try:
            external_data_helper.load_external_data_for_model(proto, str(base))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read external data: {exc}", location=Location(file=str(path))) from exc


def _all_tensors(graph: onnx.GraphProto) -> list[onnx.TensorProto]:
    """Initializers and tensor-valued attributes of the graph and its subgraphs."""
    tensors = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                tensors.append(attr.t)
            tensors.extend(attr.tensors)
            if attr.HasField("g"):
                tensors.extend(_all_tensors(attr.g))
            for sub in attr.graphs:
                tensors.extend(_all_tensors(sub))
    return tensors


ORT_DEFAULT_DOMAIN_OPS = frozenset({"SimplifiedLayerNormalization"})
"""onnxruntime's own ops that it registers in the ONNX domain (a model it saved after its graph
optimizations holds them); the checker takes them as custom ops, normalize expands them."""


def _checkable(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto``, or a copy in which onnxruntime's default-domain ops are in its own domain, which the
    checker does not validate."""
    if not any(n.op_type in ORT_DEFAULT_DOMAIN_OPS and n.domain in ("", "ai.onnx") for n in proto.graph.node):
        return proto
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    for node in copy.graph.node:
        if node.op_type in ORT_DEFAULT_DOMAIN_OPS and node.domain in ("", "ai.onnx"):
            node.domain = "com.microsoft"
    if not any(o.domain == "com.microsoft" for o in copy.opset_import):
        copy.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    return copy


def _check(proto: onnx.ModelProto, path: Path) -> None:
    try:
        onnx.checker.check_model(_checkable(proto))
    except onnx.checker.ValidationError as exc:
        text = " ".join(str(exc).split())
        raise InputError(f"the model is not valid ONNX: {text if len(text) <= 400 else text[:397] + '...'}",
                         location=Location(file=str(path)),
                         hint="onnx.checker.check_model rejects it; fix the exporter or the model "
                              "before compiling") from exc
    except ValueError as exc:  # models over 2 GB cannot be checked in memory
        raise InputError(f"the model cannot be checked: {exc}", location=Location(file=str(path)),
                         hint="freeml-tx targets microcontrollers; this model is far too large") from exc


def _import(proto: onnx.ModelProto, source: str) -> OnnxModel:
    try:
        return OnnxModel.from_proto(proto, source=source)
    except FreemlError as exc:  # e.g. unreadable annotations: name the file
        if exc.location.file is None:
            exc.location.file = source
        raise
    except Exception as exc:  # onnx-graphsurgeon's import errors are plain exceptions
        raise InputError(f"cannot read the graph: {type(exc).__name__}: {exc}",
                         location=Location(file=source)) from exc


def check_input_shapes(proto: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]], source: str) -> None:
    """InputError when ``input_shapes`` names an unknown input, has the wrong rank or contradicts a
    static dimension."""
    initializers = {t.name for t in proto.graph.initializer}
    inputs = {vi.name: vi for vi in proto.graph.input if vi.name not in initializers}
    for name, shape in input_shapes.items():
        if name not in inputs:
            raise InputError(f"--input-shape names '{name}', which is not an input of the model",
                             location=Location(file=source),
                             hint="the model's inputs are: " + "; ".join(describe_inputs(proto)))
        dims = inputs[name].type.tensor_type.shape.dim
        if dims and len(dims) != len(shape):
            raise InputError(f"--input-shape gives '{name}' rank {len(shape)}, the model declares rank "
                             f"{len(dims)}", location=Location(file=source),
                             hint="the model's inputs are: " + "; ".join(describe_inputs(proto)))
        for axis, (dim, want) in enumerate(zip(dims, shape)):
            if dim.HasField("dim_value") and dim.dim_value > 0 and dim.dim_value != want:
                raise InputError(f"--input-shape gives '{name}' size {want} on axis {axis}, the model "
                                 f"fixes it to {dim.dim_value}", location=Location(file=source),
                                 hint="only symbolic dimensions can be set with --input-shape")


def describe_inputs(model: OnnxModel | onnx.ModelProto) -> list[str]:
    """``name: float32[N,1,28,28]`` for every graph input that is not an initializer."""
    proto = model.to_proto() if isinstance(model, OnnxModel) else model
    initializers = {t.name for t in proto.graph.initializer}
    return [_describe(vi) for vi in proto.graph.input if vi.name not in initializers]


def describe_outputs(model: OnnxModel | onnx.ModelProto) -> list[str]:
    """``name: float32[N,10]`` for every graph output."""
    proto = model.to_proto() if isinstance(model, OnnxModel) else model
    return [_describe(vi) for vi in proto.graph.output]


def _describe(vi: onnx.ValueInfoProto) -> str:
    if not vi.type.HasField("tensor_type"):
        return f"{vi.name}: {vi.type.WhichOneof('value') or '?'}"
    tt = vi.type.tensor_type
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name if tt.elem_type else "?"
    except KeyError:
        dtype = onnx.TensorProto.DataType.Name(tt.elem_type).lower()
    dims = [str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
    return f"{vi.name}: {dtype}[{','.join(dims)}]"


def save(model: OnnxModel | onnx.ModelProto, path: str | os.PathLike[str]) -> None:
    """Write the model (with its annotations) to ``path`` atomically: a temp file, then a rename."""
    path = Path(path)
    proto = model.to_proto() if isinstance(model, OnnxModel) else model
    if not path.parent.is_dir():
        raise FreemlError(f"cannot write the model: folder {path.parent} does not exist",
                          location=Location(file=str(path)), hint="create the folder first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        onnx.save(proto, tmp)
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        raise FreemlError(f"cannot write the model: {exc}", location=Location(file=str(path))) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
