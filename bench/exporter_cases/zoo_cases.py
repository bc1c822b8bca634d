"""Model-zoo cases: architectures users export from timm, torchvision and transformers, scaled to the device.

- ``zoo_timm_*``: ``timm.create_model(NAME, num_classes=10)`` of timm's tiny test models
  (``test_efficientnet``, ``test_byobnet``, ``test_convnext``, ``test_nfnet``, ``test_vit``, ...) and of
  small regular ones (``mobilenetv3_small_050``, ``lcnet_035``), input 3x32x32;
- ``zoo_tv_*``: torchvision classifiers built small (``mobilenet_v2(width_mult=0.25)``,
  ``mobilenet_v3_small(width_mult=0.25)`` and ``(width_mult=0.1)``, ``shufflenet_v2_x0_5``,
  ``squeezenet1_1``, ``mnasnet0_5``)
  and two far too large for the device (``resnet18``, ``regnet_x_400mf``: the compile must refuse them
  in seconds), 10 classes, input 3x32x32;
- ``zoo_hf_*``: transformers models from tiny configs built in code (hidden size 32, 2 layers, 2 heads; no
  download): BertForSequenceClassification and DistilBertForSequenceClassification over 8 token ids with
  and without an ``attention_mask`` input, ViTForImageClassification (3x32x32, patches of 8) and
  MobileViTForImageClassification (3x32x32).

Each net through the legacy exporter at opset 13 or 17 (batch 1) and the dynamo exporter at opset 18
(batch 1). Weights from ``torch.manual_seed(0)``, BatchNorm statistics and norm affines from
``torch_nets.randomize_batchnorm``, layer scales from :func:`randomize_layer_scales`; samples standard
normal (seed 1), token ids uniform in ``[0, VOCAB)`` and masks whose last 0-3 positions are padding. ``requires`` names timm / torchvision /
transformers: the cases skip where they are not installed (they are not dependencies of freeml-tx).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx

from bench.exporter_cases.common import SAMPLES, Case, ExportedModel

IMAGE = (3, 32, 32)
CLASSES = 10
VOCAB = 100
SEQUENCE = 8

TIMM_NETS: tuple[str, ...] = (
    "test_efficientnet", "test_byobnet", "test_convnext", "test_nfnet", "test_resnet", "test_vit",
    "test_efficientnet_gn", "test_mambaout", "mobilenetv3_small_050", "lcnet_035",
)
LEGACY_OPSET17 = frozenset({"test_vit"})
"""timm nets whose attention (``F.scaled_dot_product_attention``) the legacy exporter writes from opset 14 on."""
TORCHVISION_NETS: tuple[str, ...] = (
    "mobilenet_v2_w025", "mobilenet_v3_small_w025", "mobilenet_v3_small_w010", "shufflenet_v2_x0_5", "squeezenet1_1", "mnasnet0_5",
    "resnet18", "regnet_x_400mf",
)
HF_NETS: tuple[str, ...] = ("bert", "bert_mask", "distilbert", "distilbert_mask", "vit", "mobilevit")


def load_torchvision() -> Any:
    """``torchvision``, imported even where its C extension cannot load (a CUDA wheel beside a CPU
    torch): its ``_meta_registrations`` then registers fakes for ``torchvision::nms`` and ``qnms``,
    which need the ops defined; they are defined here (schemas only: the classifiers never call them)."""
    import torch

    try:
        import torchvision
    except RuntimeError:
        library = torch.library.Library("torchvision", "DEF")   # noqa: F841 - kept alive by the registry
        library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        load_torchvision.library = library   # type: ignore[attr-defined]
        import torchvision
    return torchvision


def _timm(name: str) -> Any:
    load_torchvision()
    import timm

    extra: dict[str, Any] = {"img_size": IMAGE[1]} if "vit" in name else {}
    return timm.create_model(name, num_classes=CLASSES, **extra)


def _torchvision(name: str) -> Any:
    models = load_torchvision().models
    if name == "mobilenet_v2_w025":
        return models.mobilenet_v2(width_mult=0.25, num_classes=CLASSES)
    if name.startswith("mobilenet_v3_small_w"):      # w025: width_mult 0.25, w010: 0.1
        return models.mobilenet_v3_small(width_mult=int(name[-3:]) / 100, num_classes=CLASSES)
    return getattr(models, name)(num_classes=CLASSES)


def _hf(name: str) -> Any:
    """A transformers model of a tiny config, returning its logits only (``return_dict=False``)."""
    import torch

    load_torchvision()      # transformers imports it when present
    import transformers as tf

    base = name.removesuffix("_mask")
    if base == "bert":
        config = tf.BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=SEQUENCE * 2, num_labels=CLASSES)
        model = tf.BertForSequenceClassification(config)
    elif base == "distilbert":
        config = tf.DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                     max_position_embeddings=SEQUENCE * 2, num_labels=CLASSES)
        model = tf.DistilBertForSequenceClassification(config)
    elif base == "vit":
        config = tf.ViTConfig(image_size=IMAGE[1], patch_size=8, num_channels=IMAGE[0], hidden_size=32,
                              num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=CLASSES)
        model = tf.ViTForImageClassification(config)
    else:
        config = tf.MobileViTConfig(image_size=IMAGE[1], num_channels=IMAGE[0], hidden_sizes=[16, 24, 32],
                                    neck_hidden_sizes=[8, 8, 16, 16, 24, 24, 48], num_attention_heads=2,
                                    patch_size=2, num_labels=CLASSES)
        model = tf.MobileViTForImageClassification(config)
    config._attn_implementation = "eager"

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            if name.endswith("_mask"):
                return self.model(input_ids=inputs[0], attention_mask=inputs[1]).logits
            if base in ("bert", "distilbert"):
                return self.model(input_ids=inputs[0]).logits
            return self.model(pixel_values=inputs[0]).logits

    return Logits()


FAMILIES: dict[str, tuple[str, Callable[[str], Any], tuple[str, ...]]] = {
    "timm": ("timm", _timm, ("torch", "torchvision", "timm")),
    "tv": ("torchvision", _torchvision, ("torch", "torchvision")),
    "hf": ("transformers", _hf, ("torch", "transformers")),
}
"""Case prefix -> (package, model maker, packages the case needs)."""


def _samples(family: str, net: str, count: int, seed: int) -> dict[str, np.ndarray]:
    """``count`` samples per model input: token ids (and a padding mask) or standard normal images."""
    rng = np.random.default_rng(seed)
    if family == "hf" and net.removesuffix("_mask") in ("bert", "distilbert"):
        samples = {"input_ids": rng.integers(0, VOCAB, (count, SEQUENCE)).astype(np.int64)}
        if net.endswith("_mask"):
            padding = rng.integers(0, 4, count)
            samples["attention_mask"] = (np.arange(SEQUENCE)[None, :] < SEQUENCE - padding[:, None]).astype(np.int64)
        return samples
    return {"input": rng.standard_normal((count, *IMAGE)).astype(np.float32)}


def randomize_layer_scales(model: Any) -> None:
    """Give every layer scale (a 1-D parameter named ``gamma``: timm's ConvNeXt blocks, ``LayerScale``) seeded
    values in [0.2, 0.7]: their ``1e-6`` initialisation makes a residual branch 2^19 times smaller than its
    shortcut, which a trained model's is not (the Add of the two then needs more than Q15's 15 bits of
    alignment)."""
    import torch

    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.rsplit(".", 1)[-1] == "gamma" and parameter.ndim == 1:
                parameter.copy_(torch.rand(parameter.shape, generator=g) * 0.5 + 0.2)


def export_zoo(family: str, net: str, exporter: str, opset: int) -> ExportedModel:
    """Make ``net`` of ``family`` (seeded, BatchNorm statistics randomized), export it at batch 1 with
    ``exporter`` (``legacy`` or ``dynamo``) at ``opset`` and draw its samples."""
    import torch

    from bench.exporter_cases.torch_nets import randomize_batchnorm

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    torch.manual_seed(0)
    model = FAMILIES[family][1](net)
    randomize_batchnorm(model)
    randomize_layer_scales(model)
    model = model.eval()
    names = list(_samples(family, net, 1, 0))
    example = tuple(torch.from_numpy(x) for x in _samples(family, net, 1, 0).values())
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            torch.onnx.export(model, example, buffer, dynamo=False, opset_version=opset, input_names=names,
                              output_names=["output"], training=torch.onnx.TrainingMode.EVAL)
        else:
            program = torch.onnx.export(model, example, dynamo=True, opset_version=opset, verbose=False,
                                        input_names=names, output_names=["output"])
            program.save(buffer)
    proto = onnx.load_from_string(buffer.getvalue())
    graph_inputs = [value.name for value in proto.graph.input]
    samples = _samples(family, net, SAMPLES, 1)
    return ExportedModel(proto, {name: samples[name] for name in graph_inputs})


def _case(family: str, net: str, exporter: str, opset: int) -> Case:
    """The case of one export: ``zoo_FAMILY_NET-EXPORTEROPSET-b1``."""
    requires = FAMILIES[family][2] + (("onnxscript",) if exporter == "dynamo" else ())
    build = functools.partial(export_zoo, family, net, exporter, opset)
    return Case(f"zoo_{family}_{net}-{exporter}{opset}-b1", f"torch-{exporter}", opset, "1", requires, build)


def zoo_cases() -> list[Case]:
    """Every net through the legacy exporter (opset 13; 17 for the transformers models and
    ``LEGACY_OPSET17``) and dynamo (opset 18)."""
    cases = []
    for family, nets in (("timm", TIMM_NETS), ("tv", TORCHVISION_NETS), ("hf", HF_NETS)):
        for net in nets:
            legacy_opset = 17 if family == "hf" or net in LEGACY_OPSET17 else 13
            cases += [_case(family, net, "legacy", legacy_opset), _case(family, net, "dynamo", 18)]
    return cases
