"""`to-float32`: a model computed in float64, float16 or bfloat16 becomes a float32 model.

The device computes in Q15 from float32 calibration; a model's float width is only how its
exporter stored it (skl2onnx with ``DoubleTensorType``, a torch model exported after ``.double()``
or ``.half()``, float16 weights cast up at run time). Every other pass may then assume float32.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

#: ONNX element types that become FLOAT.
OTHER_FLOATS = frozenset({onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16})
#: Attributes that name an element type (Cast's ``to``; ``dtype`` of the generator ops).
TYPE_ATTRS = ("to", "dtype")


def _other_float(dtype: object) -> bool:
    """Is ``dtype`` (a numpy dtype, or onnx-graphsurgeon's name of one numpy lacks) float64, float16 or
    bfloat16?"""
    if dtype is None:
        return False
    if isinstance(dtype, int):      # an ONNX element type that gs could not map to numpy (BFLOAT16)
        return dtype in OTHER_FLOATS
    if "bfloat16" in str(dtype):
        return True
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        return False
    return np_dtype.kind == "f" and np_dtype != np.float32


def _float32_copy(constant: gs.Constant) -> gs.Constant | None:
    """A float32 copy of a float64/float16/bfloat16 constant (same name), or None for any other.

    A copy, not an update: onnx-graphsurgeon keeps the type a constant was read with and would
    write that type back."""
    values = np.asarray(constant.values)
    if not _other_float(values.dtype) and not _other_float(constant.export_dtype):
        return None
    return gs.Constant(constant.name, values.astype(np.float32))


@register
class ToFloat32(Pass):
    """Make every float64/float16/bfloat16 tensor, initializer and type attribute float32.

    Before -> after (skl2onnx with DoubleTensorType)::

        x: double[N,6] -> MatMul(x, W: double) -> Add(., b: double) -> y: double[N,3]
        ->
        x: float[N,6] -> MatMul(x, W: float) -> Add(., b: float) -> y: float[N,3]

    Graph inputs, outputs and intermediates change their dtype; initializers and the tensors of
    ``Constant``/``ConstantOfShape`` attributes are cast; ``Cast{to=DOUBLE}`` becomes
    ``Cast{to=FLOAT}`` (a cast from float32 to float32 that `remove-noops` then drops), as does
    the ``dtype`` of a generator op. Integer and boolean tensors are left as they are.
    """

    name = "to-float32"
    level = "onnx"
    preserves_semantics = False  # float32 rounding of float64 values (the outputs agree to float32 precision)

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        stats = {"tensors": 0, "constants": 0, "attributes": 0}
        copies: dict[str, gs.Constant] = {}
        for name, tensor in graph.tensors().items():
            if isinstance(tensor, gs.Constant):
                copy = _float32_copy(tensor)
                if copy is not None:
                    copies[name] = copy
            elif _other_float(tensor.dtype):
                tensor.dtype = np.float32
                stats["tensors"] += 1
        stats["constants"] = len(copies)
        for node in graph.nodes:
            for i, tensor in enumerate(node.inputs):
                if isinstance(tensor, gs.Constant) and tensor.name in copies:
                    node.inputs[i] = copies[tensor.name]
            for key, value in node.attrs.items():
                if key in TYPE_ATTRS and isinstance(value, (int, np.integer)) and int(value) in OTHER_FLOATS:
                    node.attrs[key] = onnx.TensorProto.FLOAT
                    stats["attributes"] += 1
                elif isinstance(value, gs.Constant) and (copy := _float32_copy(value)) is not None:
                    node.attrs[key] = copy
                    stats["attributes"] += 1
        graph.inputs = [copies.get(t.name, t) if isinstance(t, gs.Constant) else t for t in graph.inputs]
        graph.outputs = [copies.get(t.name, t) if isinstance(t, gs.Constant) else t for t in graph.outputs]
        return PassResult(model, any(stats.values()), stats)
