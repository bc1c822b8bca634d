"""Quantise program inputs and dequantise program outputs (the host side of a LIR program's ports).

A real value ``v`` of a buffer with ``q = f`` is stored as ``round(v * 2^f)`` saturated to int16,
rounding half up (``floor(v * 2^f + 1/2)``), the same rounding as requant (docs/lir.md). The ONNX
shape of each port (batch axis included) is kept by `lower` in ``Program.meta["onnx-shapes"]`` (JSON)
so outputs come back in the shape onnxruntime gives them.

An input whose features have their own formats (``quantize``'s ``feature-shift``, recorded by
`lower` in ``Program.meta["feature-shifts"]``: ``{port: {"axis": 1, "shifts": [s_c, ...]}}``, axis
of the ONNX shape) stores feature ``c`` with ``q + s_c`` fractional bits: :func:`scale_features`
multiplies each feature by ``2^s_c`` before the rounding.

A token-id input (a ``u16`` buffer that ``embed`` steps read, :func:`token_vocab`) is not quantised:
its values are the ids themselves, checked to be integers in ``[0, V)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from transpiler.data import check_token_ids
from transpiler.errors import DataError, Location
from transpiler.lir.ir import Program

ONNX_SHAPES_META = "onnx-shapes"
FEATURE_SHIFTS_META = "feature-shifts"


def onnx_shapes(program: Program) -> dict[str, list[int]]:
    """Port name -> ONNX shape recorded by `lower` (empty if the program has none)."""
    text = program.meta.get(ONNX_SHAPES_META)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return {str(k): [int(d) for d in v] for k, v in data.items()} if isinstance(data, dict) else {}


def feature_shifts(program: Program) -> dict[str, dict[str, Any]]:
    """Port name -> ``{"axis": a, "shifts": [...]}`` recorded by `lower` (empty if none)."""
    text = program.meta.get(FEATURE_SHIFTS_META)
    return dict(json.loads(text)) if text else {}


def scale_features(values: Any, sample_shape: list[int], shift: Mapping[str, Any] | None) -> np.ndarray:
    """``values`` (``[N, *sample_shape]`` or one sample, any layout of the same size) as float64 with
    feature ``c`` of ``shift["axis"]`` (an axis of the ONNX shape, batch first) times ``2^shifts[c]``;
    unchanged without ``shift``."""
    v = np.asarray(values, dtype=np.float64)
    if not shift:
        return v
    samples = v.reshape(-1, *sample_shape)
    factor = np.power(2.0, np.asarray(shift["shifts"], dtype=np.float64))
    view = [1] * samples.ndim
    view[int(shift["axis"])] = factor.size
    return (samples * factor.reshape(view)).reshape(v.shape)


def quantize_array(values: Any, frac_bits: int) -> np.ndarray:
    """``sat16(floor(v * 2^f + 1/2))`` as int16."""
    v = np.asarray(values, dtype=np.float64) * (2.0 ** frac_bits)
    return np.clip(np.floor(v + 0.5), -32768, 32767).astype(np.int16)


def dequantize_array(values: Any, frac_bits: int) -> np.ndarray:
    """``q * 2^-f`` as float32."""
    return (np.asarray(values, dtype=np.float64) * (2.0 ** -frac_bits)).astype(np.float32)


def token_vocab(program: Program) -> dict[str, int]:
    """Port name -> vocabulary size V of each token-id input (a ``u16`` input buffer that ``embed``
    steps read): the smallest of their tables' row counts."""
    out: dict[str, int] = {}
    for port in program.inputs:
        root = program.storage_of(port.buffer).name
        rows = [program.buffers[s.inputs[1]].shape[0] for s in program.steps
                if s.op == "embed" and program.storage_of(s.inputs[0]).name == root]
        if rows and program.buffers[port.buffer].dtype == "u16":
            out[port.onnx_name] = int(min(rows))
    return out


def quantize_inputs(program: Program, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Float inputs by ONNX name -> int16 arrays in the shape of each input buffer; token ids
    (checked to lie in ``[0, V)``, :func:`transpiler.data.check_token_ids`) -> uint16 arrays."""
    vocab = token_vocab(program)
    out: dict[str, np.ndarray] = {}
    for port in program.inputs:
        if port.onnx_name not in inputs:
            raise DataError(f"no value for program input '{port.onnx_name}'",
                            hint="the inputs are " + ", ".join(p.onnx_name for p in program.inputs))
        buf = program.buffers[port.buffer]
        arr = np.asarray(inputs[port.onnx_name])
        if arr.size != buf.size:
            raise DataError(f"input '{port.onnx_name}' has {arr.size} values ({list(arr.shape)}), the "
                            f"program buffer %{buf.name} needs {buf.size} ({list(buf.shape)})",
                            location=Location(shape=str(list(arr.shape))))
        if port.onnx_name in vocab:
            ids = check_token_ids(arr.reshape(1, -1), port.onnx_name, vocab[port.onnx_name])
            out[port.onnx_name] = ids.astype(np.uint16).reshape(buf.shape)
            continue
        q = buf.q if isinstance(buf.q, int) else 0
        shape = onnx_shapes(program).get(port.onnx_name, [1, *buf.shape])
        arr = scale_features(arr, shape[1:], feature_shifts(program).get(port.onnx_name))
        out[port.onnx_name] = quantize_array(arr, q).reshape(buf.shape)
    return out


def dequantize_outputs(program: Program, outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """int16 outputs by port name -> real values (float32, ONNX shape where recorded).

    A buffer with no Q format or q = 0 on an index output (argmax "class") comes back as int64.
    """
    shapes = onnx_shapes(program)
    out: dict[str, np.ndarray] = {}
    for port in program.outputs:
        if port.onnx_name not in outputs:
            continue
        buf = program.buffers[port.buffer]
        arr = np.asarray(outputs[port.onnx_name])
        if buf.q is None or program.meta.get("class-output") == port.onnx_name:
            value: np.ndarray = arr.astype(np.int64)
        else:
            value = dequantize_array(arr, buf.q if isinstance(buf.q, int) else 0)
        shape = shapes.get(port.onnx_name)
        if shape is not None and int(np.prod(shape)) == value.size:
            value = value.reshape(shape)
        out[port.onnx_name] = value
    return out
