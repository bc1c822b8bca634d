"""Torch cases: every net of ``torch_nets`` through the legacy and the dynamo exporter.

The matrix, per net (``-bdyn``: dynamic batch axis, ``-b1``/``-b8``: fixed batch):

- legacy exporter at opset 13 ``-bdyn``, at opset 11 ``-b1`` without constant folding
  (``-nofold``: the shape arithmetic stays in the graph), at opset 17 ``-b8``;
- dynamo exporter at opset 18 ``-bdyn`` and at opset 20 ``-b1``;

and besides: the dynamo exporter at opset 18 ``-b8`` for five nets; float16 (three conv nets) and
float64 (two dense nets: onnxruntime has no float64 Conv to compare with) at opset 13; the legacy
opsets 7, 9, 15 and 18 for two nets; the dynamo exporter at opset 23 ``-b1`` for six nets
(``OPSET23_NETS``: RMSNormalization and the newest op versions); four nets (``QDQ_NETS``) at opset 13 ``-b1`` quantized to int8
QDQ by onnxruntime.quantization (``-qdq``: the C is compared with onnxruntime on the int8 model);
every net at legacy opset 17 ``-b1`` as onnxruntime saves it after its ``ORT_ENABLE_EXTENDED``
graph optimizations (``-ortopt``: FusedConv, FusedGemm, SkipLayerNormalization, ...; compared
with onnxruntime on that model).
``adaptive_3x2of8``, ``adaptive_3x3of7`` and ``adaptive_3x3of10`` (output sizes that do not divide
the input) and ``rmsnorm_torch`` (nn.RMSNorm) only through dynamo: the legacy exporter cannot export
them.

A dynamic batch is exported from a batch of 2 (torch.export specialises a batch of 1 to a constant
when a net permutes it). Weights come from ``torch.manual_seed(0)``, BatchNorm statistics from
``randomize_batchnorm``; the samples are standard normal (seed 1), those of the token nets
(``embed_*``: nn.Embedding then a mean, a Conv1d, a GRU or a TransformerEncoderLayer) int64 ids
uniform in ``[0, vocab)``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import warnings

import numpy as np
import onnx

from bench.exporter_cases.common import SAMPLES, Case, ExportedModel

NET_NAMES: tuple[str, ...] = (
    "bn_unfused", "convbn_s2_dil", "seq1d", "nonsquare", "rgb_dil_gap", "avg_cip_floor", "avg_cip_ceil",
    "avg_nocip_floor", "avg_nocip_ceil", "adaptive_2x2", "adaptive_3x3of9", "adaptive_3x2of8", "adaptive_3x3of7",
    "adaptive_3x3of10", "dw_pw_residual",
    "inception_cat", "mlp_nobias_identity", "mean_keepdim", "mean_nokeep", "channel_last", "matmul_const_bias",
    "matmul_const_nobias", "upsample", "strided_crop", "bilinear_x2", "bilinear_ac_x3", "linear1d_x2",
    "convtranspose", "pad_reflect", "pad_replicate1d", "pad_maxpool", "pos_embedding", "mask_mul", "log_sqrt_recip",
    "softmax_channels", "attention_pool", "seq_transpose_conv1d", "two_outputs", "logsoftmax",
    "norm_inside", "pool_ceil_odd", "layernorm_mlp", "layernorm_seq", "transformer_h1", "transformer_h2",
    "groupnorm_cnn", "instnorm2d_affine", "instnorm2d_plain", "instnorm1d_affine",
    "mbv2_inverted", "shuffle_unit", "squeeze_fire", "mbconv_se", "resnet_down", "tcn_causal", "ghost",
    "multiscale_cat", "hard_acts", "cls_reg_heads", "raw_audio", "unet_skip", "nhwc_pixel_linear",
    "embed_mean", "embed_conv1d", "embed_gru", "embed_transformer",
    "sum_pool", "clamp_one_side", "adaptive_max", "mbv3_se", "dscnn_kws", "scaled_residual", "seq_max",
    "pool1d_ceil", "convnext", "flatten_nhwc", "spatial_cat",
    "tiny_kws_dscnn", "tiny_ic_resnet8", "tiny_vww_mobilenet", "tiny_ad_autoencoder",
    "rmsnorm_torch", "rmsnorm_llama", "negations",
)
"""The nets of ``torch_nets.NETS`` (listed here so that the cases exist without torch installed)."""

LEGACY_UNEXPORTABLE = frozenset({"adaptive_3x2of8", "adaptive_3x3of7", "adaptive_3x3of10", "rmsnorm_torch"})
"""Nets the legacy exporter refuses (an adaptive pool whose output size does not divide the input;
aten::rms_norm)."""

OPSET23_NETS = ("rmsnorm_torch", "rmsnorm_llama", "layernorm_seq", "transformer_h1", "convnext", "groupnorm_cnn")
"""Nets also exported by dynamo at opset 23 (RMSNormalization; the newest ops)."""

TOKEN_NETS: dict[str, int] = {"embed_mean": 50, "embed_conv1d": 50, "embed_gru": 50, "embed_transformer": 50}
"""Nets over token ids (nn.Embedding) and their vocabulary: their samples are int64 ids in [0, vocab)."""

QDQ_NETS = ("mbv2_inverted", "resnet_down", "cls_reg_heads", "mbconv_se")
"""Nets also exported at opset 13, batch 1, then quantized to int8 QDQ by onnxruntime.quantization."""

TRAINED_NETS: dict[str, tuple[int, int]] = {
    "tiny_kws_dscnn": (12, 30), "tiny_ic_resnet8": (10, 30), "tiny_vww_mobilenet": (2, 30),
    "tiny_ad_autoencoder": (4, 300),
}
"""The MLPerf Tiny reference models (``tiny_*``): net -> (classes, Adam steps). Random weights give them one
class for every sample (their pools average the noise away), so each is trained briefly on
``torch_nets.template_data`` (a classifier on its labels, an autoencoder (``AUTOENCODERS``) to reconstruct
its input) and its samples come from the same distribution (seed 1)."""

TOO_SLOW_FOR_THE_SWEEP = frozenset({"tiny_vww_mobilenet"})
"""Nets without sweep cases: compressing VWW's MobileNet to the device takes 5-10 minutes a run, past
the sweep's limit per command; ``bench/mlperf_tiny.py`` measures it."""

AUTOENCODERS = frozenset({"tiny_ad_autoencoder"})
"""Trained nets whose output reconstructs their input: regressors, judged by their values."""

DYNAMIC_EXAMPLE_BATCH = 2


def export_torch(net_name: str, exporter: str, opset: int, batch: str, constant_folding: bool = True,
                 dtype: str = "float32", qdq: bool = False, ortopt: bool = False) -> ExportedModel:
    """Make ``net_name`` (seeded), export it with ``exporter`` (``legacy`` or ``dynamo``) at ``opset``
    with ``batch`` (``dynamic`` or a fixed size) in ``dtype``, and draw its samples; with ``qdq``,
    quantize the export to int8 (:func:`int8_qdq`); with ``ortopt``, the model onnxruntime saves after
    its graph optimizations (:func:`ort_optimized`)."""
    import torch

    from bench.exporter_cases.torch_nets import NETS, randomize_batchnorm, template_data, train_briefly

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)   # "torchvision is not installed" per export
    make, sample_shape = NETS[net_name]
    torch.manual_seed(0)
    net = make()
    randomize_batchnorm(net)
    trained = TRAINED_NETS.get(net_name)
    if trained is not None:
        x, labels = template_data(sample_shape, trained[0], 1000, seed=0)
        train_briefly(net, x, x if net_name in AUTOENCODERS else labels, trained[1])
    net = net.eval().to(getattr(torch, dtype))
    example_batch = DYNAMIC_EXAMPLE_BATCH if batch == "dynamic" else int(batch)
    vocab = TOKEN_NETS.get(net_name)
    example = (torch.randint(0, vocab, (example_batch, *sample_shape)) if vocab is not None
               else torch.randn(example_batch, *sample_shape).to(getattr(torch, dtype)))
    buffer = io.BytesIO()
    # token nets export with gradients enabled: torch's fused TransformerEncoderLayer fast path (taken
    # under no_grad) has no ONNX export
    grad = torch.enable_grad() if vocab is not None else torch.no_grad()
    with grad, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            dynamic_axes = {"input": {0: "batch"}, "output": {0: "batch"}} if batch == "dynamic" else None
            torch.onnx.export(net, (example,), buffer, dynamo=False, opset_version=opset, input_names=["input"],
                              output_names=["output"], do_constant_folding=constant_folding,
                              training=torch.onnx.TrainingMode.EVAL, dynamic_axes=dynamic_axes)
        else:
            dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=64)},) if batch == "dynamic" else None
            program = torch.onnx.export(net, (example,), dynamo=True, opset_version=opset, verbose=False,
                                        dynamic_shapes=dynamic_shapes)
            program.save(buffer)
    proto = onnx.load_from_string(buffer.getvalue())
    rng = np.random.default_rng(1)
    samples = (rng.integers(0, vocab, (SAMPLES, *sample_shape)) if vocab is not None
               else template_data(sample_shape, trained[0], SAMPLES, seed=1)[0] if trained is not None
               else rng.standard_normal((SAMPLES, *sample_shape)).astype(np.float32))
    if qdq:
        proto = int8_qdq(proto, samples[:QDQ_CALIBRATION])
    if ortopt:
        proto = ort_optimized(proto)
    return ExportedModel(proto, {proto.graph.input[0].name: samples}, regressor=net_name in AUTOENCODERS)


QDQ_CALIBRATION = 50
"""Samples onnxruntime.quantization calibrates a QDQ case on (the first of the case's samples)."""


def int8_qdq(proto: onnx.ModelProto, samples: np.ndarray) -> onnx.ModelProto:
    """``proto`` quantized by onnxruntime.quantization.quantize_static: QDQ format, int8 activations
    and per-channel int8 weights, calibrated (min-max) on ``samples``."""
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    name = proto.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{name: x[None]} for x in samples])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)     # "consider pre-processing before quantization", per model
    try:
        with tempfile.TemporaryDirectory() as folder:
            source, target = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
            onnx.save(proto, str(source))
            quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
            return onnx.load(str(target))
    finally:
        root.setLevel(level)


def ort_optimized(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` as onnxruntime saves it (``optimized_model_filepath``) after its
    ``ORT_ENABLE_EXTENDED`` graph optimizations: fused ``com.microsoft`` ops, folded BatchNorms."""
    import tempfile
    from pathlib import Path

    import onnxruntime as rt

    with tempfile.TemporaryDirectory() as folder:
        options = rt.SessionOptions()
        options.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        rt.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return onnx.load(options.optimized_model_filepath)


def _case(net_name: str, exporter: str, opset: int, batch: str, constant_folding: bool = True,
          dtype: str = "float32", qdq: bool = False, ortopt: bool = False) -> Case:
    """The case of one export; its name is ``NET-EXPORTEROPSET-bBATCH[-nofold][-DTYPE][-qdq][-ortopt]``."""
    name = (f"{net_name}-{exporter}{opset}-b{'dyn' if batch == 'dynamic' else batch}"
            + ("" if constant_folding else "-nofold") + ("" if dtype == "float32" else f"-{dtype}")
            + ("-qdq" if qdq else "") + ("-ortopt" if ortopt else ""))
    requires = ("torch", "onnxscript") if exporter == "dynamo" else ("torch",)
    build = functools.partial(export_torch, net_name, exporter, opset, batch, constant_folding, dtype, qdq,
                              ortopt)
    return Case(name, f"torch-{exporter}", opset, batch, requires, build)


def _check_net_names() -> None:
    """NET_NAMES and torch_nets.NETS name the same nets (only checkable with torch installed)."""
    from importlib.util import find_spec

    if find_spec("torch") is None:
        return
    from bench.exporter_cases.torch_nets import NETS

    if set(NETS) != set(NET_NAMES):
        raise ValueError(f"NET_NAMES and torch_nets.NETS differ: {sorted(set(NETS) ^ set(NET_NAMES))}")


def torch_cases() -> list[Case]:
    """The torch matrix of the module docstring."""
    _check_net_names()
    cases = []
    for net in NET_NAMES:
        if net in TOO_SLOW_FOR_THE_SWEEP:
            continue
        if net not in LEGACY_UNEXPORTABLE:
            cases += [_case(net, "legacy", 13, "dynamic"), _case(net, "legacy", 11, "1", constant_folding=False),
                      _case(net, "legacy", 17, "8")]
        cases += [_case(net, "dynamo", 18, "dynamic"), _case(net, "dynamo", 20, "1")]
    for net in ("bn_unfused", "seq1d", "channel_last", "dw_pw_residual", "matmul_const_bias"):
        cases.append(_case(net, "dynamo", 18, "8"))
    cases += [_case(net, "dynamo", 23, "1") for net in OPSET23_NETS]
    for net in ("bn_unfused", "rgb_dil_gap", "seq1d"):
        cases.append(_case(net, "legacy", 13, "dynamic", dtype="float16"))
    for net in ("mlp_nobias_identity", "matmul_const_bias"):
        cases.append(_case(net, "legacy", 13, "dynamic", dtype="float64"))
    for net in QDQ_NETS:
        cases.append(_case(net, "legacy", 13, "1", qdq=True))
    for opset in (7, 9, 15, 18):
        cases += [_case("bn_unfused", "legacy", opset, "dynamic"), _case("rgb_dil_gap", "legacy", opset, "1")]
    cases += [_case(net, "legacy", 17, "1", ortopt=True) for net in NET_NAMES
              if net not in LEGACY_UNEXPORTABLE and net not in TOO_SLOW_FOR_THE_SWEEP]
    return cases
