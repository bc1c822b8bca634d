"""Exports run through the graph simplifiers users apply before deploying: onnx-simplifier and onnxslim.

Each case here is a case of another module whose model is then rewritten by ``onnxsim.simplify(model)``
(``-sim``), by onnxsim with the input shape fixed to one sample (``-sim1``: ``overwrite_input_shapes``,
what ``onnxsim in.onnx out.onnx --overwrite-input-shape 1,...`` does to a dynamic batch; every shape then
folds) or by ``onnxslim.slim(model)`` (``-slim``); its samples are the base case's. The simplifiers
fold shapes and constants, fuse MatMul+Add into Gemm (onnxslim) or leave it, drop Identity/Dropout,
change the IR version, and so on. The bases:

- every torch net (``torch_cases.NET_NAMES`` but the too-slow one) through the legacy exporter at opset 13
  with a dynamic batch, and through dynamo at opset 18 with a dynamic batch and at opset 20 with batch 1;
  the legacy opset 11 ``-nofold`` export (the shape arithmetic stays for the simplifier) of ``NOFOLD_NETS``;
- skl2onnx classifiers and regressors at opset 17 (``SKLEARN_BASES``);
- Keras nets through tf2onnx at opset 13 with a dynamic batch (``KERAS_BASES``).

The simplifier runs in the bench's process (the same onnx as the compiler; the compiler never imports it).
A simplifier that raises is ``export-failed``.
"""

from __future__ import annotations

import contextlib
import functools
import io
from dataclasses import replace

import onnx

from bench.exporter_cases.common import Case, ExportedModel
from bench.exporter_cases.keras_cases import keras_cases
from bench.exporter_cases.sklearn_cases import sklearn_cases
from bench.exporter_cases.torch_cases import NET_NAMES, TOO_SLOW_FOR_THE_SWEEP, torch_cases

TOOLS = {"sim": "onnxsim", "sim1": "onnxsim", "slim": "onnxslim"}
"""Case-name suffix -> the simplifier's import name."""

NOFOLD_NETS = ("bn_unfused", "mlp_nobias_identity", "channel_last", "transformer_h1", "flatten_nhwc",
               "nhwc_pixel_linear", "layernorm_seq", "mbconv_se")
"""Nets whose unfolded legacy export (shape arithmetic in the graph) is simplified too."""

SKLEARN_BASES = ("logreg_multi-skl17", "mlpc_relu-nozipmap-skl17", "pipe_std_pca_logreg-skl17", "svc_rbf-skl17",
                 "linreg_multi-skl17", "pipe_std_pca_mlpr-skl17")
KERAS_BASES = ("keras-dscnn_kws-op13-bdyn", "keras-resnet8-op13-bdyn", "keras-flatten_mlp-op13-bdyn",
               "keras-layernorm_mlp-op13-bdyn", "keras-conv1d_gmp-op13-bdyn")


def simplify(proto: onnx.ModelProto, tool: str) -> onnx.ModelProto:
    """``proto`` rewritten by ``tool`` (``sim``: onnxsim.simplify, which must report its check passed;
    ``sim1``: the same with a batch of 1 written into the inputs' shapes; ``slim``: onnxslim.slim), with
    the tools' prints silenced."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if tool in ("sim", "sim1"):
            import onnxsim

            shapes = {i.name: [1, *[d.dim_value for d in i.type.tensor_type.shape.dim[1:]]]
                      for i in proto.graph.input} if tool == "sim1" else None
            simplified, checked = onnxsim.simplify(proto, overwrite_input_shapes=shapes)
            if not checked:
                raise RuntimeError("onnxsim's check of the simplified model failed")
            return simplified
        import onnxslim

        return onnxslim.slim(proto)


def _simplified_build(base: Case, tool: str) -> ExportedModel:
    exported = base.build()
    return replace(exported, proto=simplify(exported.proto, tool))


def _simplified(base: Case, tool: str) -> Case:
    """``base`` with its model simplified by ``tool``: ``BASE-sim`` / ``BASE-sim1`` / ``BASE-slim``."""
    return Case(f"{base.name}-{tool}", f"{base.exporter}+{TOOLS[tool]}", base.opset, base.batch,
                (*base.requires, TOOLS[tool]), functools.partial(_simplified_build, base, tool))


def _bases() -> list[Case]:
    torch_names = {f"{net}-{form}" for net in NET_NAMES if net not in TOO_SLOW_FOR_THE_SWEEP
                   for form in ("legacy13-bdyn", "dynamo18-bdyn", "dynamo20-b1")}
    torch_names |= {f"{net}-legacy11-b1-nofold" for net in NOFOLD_NETS}
    wanted = torch_names | set(SKLEARN_BASES) | set(KERAS_BASES)
    return [case for case in torch_cases() + sklearn_cases() + keras_cases() if case.name in wanted]


def simplified_cases() -> list[Case]:
    """Every base case through each simplifier; ``-sim1`` only for those with a dynamic batch (see the
    module docstring)."""
    return [_simplified(base, tool) for tool in TOOLS for base in _bases()
            if tool != "sim1" or base.batch == "dynamic"]
