"""`normalize`: bring a model from any exporter to the normal form of docs/normal-form.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.activation_arith import ActivationArith
from passes.batch_one import BatchOne
from passes.binary_scores import BinaryScores
from passes.canonical_arith import CanonicalizeArith
from passes.canonical_reshape import CanonicalizeReshape
from passes.check_supported import CheckSupported
from passes.classifier_tail import StripClassifierTail
from passes.contrib_ops import ExpandContribOps
from passes.explicit_attributes import ExplicitAttributes
from passes.fold_batchnorm import FoldBatchNorm
from passes.fold_into_next import FoldIntoNext
from passes.fold_constants import FoldConstants
from passes.channel_last_matmul import ChannelLastMatMul
from passes.fold_pad import FoldPad
from passes.gemm_rows import GemmRows
from passes.rows_elementwise import RowsElementwise
from passes.global_max_pool import GlobalMaxPoolToMaxPool
from passes.attention import Attention
from passes.attention_op import AttentionOp
from passes.infer_shapes import InferShapes, InferShapesOptions
from passes.group_norm import GroupNorm
from passes.layer_norm import LayerNorm
from passes.rms_norm import RmsNorm
from passes.matmul_to_gemm import MatMulToGemm
from passes.merge_transpose_axes import MergeTransposeAxes
from passes.ml_ops import MlOpsToOnnx
from passes.tree_ensembles import FoldAffineIntoTrees, TreeEnsembles
from passes.hummingbird_trees import HummingbirdTrees
from passes.tree_votes import TreeVotes
from passes.sigmoid_l1 import SigmoidL1
from passes.knn import KnnToOnnx
from passes.svm import SvmToOnnx
from passes.quadratic_scores import QuadraticScores
from passes.move_transposes import MoveTransposes
from passes.name_nodes import NameNodes
from passes.reduce_mean_to_gap import ReduceMeanToGap
from passes.to_float32 import ToFloat32
from passes.conv_transpose import ConvTransposeToConv
from passes.batch_axis_reshape import BatchAxisReshape
from passes.broadcast_activations import BroadcastActivations
from passes.crop_to_conv import CropToConv
from passes.dequantize import Dequantize
from passes.pad_to_conv import PadToConv
from passes.prelu import PReluToNormalForm
from passes.remove_noops import RemoveNoops
from passes.repeat_upsample import RepeatUpsample
from passes.resize_linear import ResizeLinear
from passes.resize_nearest import ResizeNearest
from passes.softmax_axis import SoftmaxAxis
from passes.spatial_concat import SpatialConcat
from passes.constant_concat import ConstantConcat
from passes.spatial_linear import SpatialLinear
from passes.split_to_slices import SplitToSlices
from passes.unroll_recurrent import UnrollRecurrent
from passes.upgrade_opset import UpgradeOpset, UpgradeOpsetOptions

#: Rewrites that may enable each other; repeated (with shape inference) until none changes anything.
REWRITES: tuple[type[Pass], ...] = (ExpandContribOps, RemoveNoops, SplitToSlices, AttentionOp, Attention, LayerNorm,
                                    RmsNorm, GroupNorm, ExplicitAttributes, FoldPad, ReduceMeanToGap,
                                    GlobalMaxPoolToMaxPool, ChannelLastMatMul, MoveTransposes,
                                    MergeTransposeAxes,
                                    ActivationArith, RowsElementwise, GemmRows, MatMulToGemm,
                                    BinaryScores, CanonicalizeArith, FoldAffineIntoTrees, FoldBatchNorm, FoldIntoNext,
                                    CanonicalizeReshape, BatchAxisReshape,
                                    FoldConstants, SpatialLinear, RepeatUpsample, BroadcastActivations,
                                    ResizeNearest, ResizeLinear, ConvTransposeToConv, PReluToNormalForm, CropToConv,
                                    ConstantConcat, SpatialConcat, PadToConv, SoftmaxAxis)
MAX_ROUNDS = 4


@dataclass(frozen=True)
class NormalizeOptions:
    """Options of `normalize`.

    ``check``: end with `check-supported` (one error listing every unsupported node).
    ``opset``: models below this default-domain opset are converted to it.
    """

    check: bool = True
    opset: int = 13


@register
class Normalize(Pass):
    """Run the normalize sub-passes in order; the result is in the normal form or an error says why.

    Before -> after (a torch export with dynamic batch)::

        x[batch,1,28,28] -> Conv -> BatchNormalization -> Relu -> Dropout -> ReduceMean{2,3}
          -> Shape/Gather/Unsqueeze/Concat -> Reshape -> MatMul -> Add -> Softmax -> y[batch,10]
        ->
        x[1,1,28,28] -> Conv(W*s, B') -> Relu -> GlobalAveragePool -> Reshape[1,C]
          -> Gemm{transB=1} -> Softmax -> y[1,10]          (every node named, with `origin`)

    Order: name-nodes; to-float32 (float64/float16 models computed in float32); ml-to-onnx (scikit-learn's Scaler/LinearClassifier as standard ops, with the
    label path strip-classifier-tail knows); tree-ensembles (tree ensembles as one canonical
    TreeEnsembleRegressor of raw scores, the same label path); hummingbird-trees (hummingbird-ml's
    GEMM-form trees as such an ensemble; its tree_trav walks rejected with a clear error); tree-votes (AdaBoost's SAMME votes of
    single trees as one such ensemble and a Softmax); svm-to-onnx (kernel SVMs: support-vector
    Gemm, kernel table, votes); knn-to-onnx (skl2onnx's k-NN TopK annotated with why it stays and
    what to train instead); quadratic-scores (GaussianNB's log-likelihoods as two Gemms and a
    Softmax); sigmoid-l1 (one-vs-rest sigmoids divided by their sum as a final Sigmoid,
    modified-Huber scores as their Clip);
    strip-classifier-tail (early: onnx-graphsurgeon cannot
    represent ZipMap's map type); upgrade-opset; infer-shapes, fold-constants; dequantize (an int8 QDQ
    model's weights as floats, its activation Q -> DQ pairs dropped); batch-one (a fixed
    batch > 1 becomes 1, after folding wrote it into constant shapes); infer-shapes; unroll-recurrent
    (LSTM/GRU/RNN over their static sequence length), infer-shapes; then the rewrites (expand-contrib-ops, remove-noops, split-to-slices, attention-op, attention, layer-norm, rms-norm, group-norm, explicit-attributes, fold-pad, reduce-mean-to-gap, global-max-pool,
    channel-last-matmul, move-transposes, merge-transpose-axes, activation-arith, rows-elementwise, gemm-rows, matmul-to-gemm, binary-scores,
    canonicalize-arith, fold-affine-into-trees, fold-batchnorm, fold-into-next, canonicalize-reshape, batch-axis-reshape,
    fold-constants, spatial-linear, repeat-upsample,
    broadcast-activations, resize-nearest, resize-linear, conv-transpose, prelu, crop-to-conv, constant-concat, spatial-concat,
    pad-to-conv,
    softmax-axis, infer-shapes)
    repeated
    until nothing changes (at most 4 rounds); then infer-shapes requiring static shapes, name-nodes
    and check-supported. The stats hold each sub-pass's stats (numbers summed over rounds) and the
    number of rounds.
    """

    name = "normalize"
    options_type = NormalizeOptions
    level = "onnx"
    preserves_semantics = False  # strip-classifier-tail removes the label output of classifiers
    ensures = frozenset({"normal-form", "static-shapes"})

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        stats: dict[str, Any] = {}
        changed = False
        opts = self.options
        prologue: list[tuple[type[Pass], Any]] = [
            (NameNodes, None), (ExpandContribOps, None), (ToFloat32, None), (MlOpsToOnnx, None), (TreeEnsembles, None),
            (HummingbirdTrees, None), (TreeVotes, None),
            (SvmToOnnx, None), (KnnToOnnx, None),
            (QuadraticScores, None), (SigmoidL1, None),
            (StripClassifierTail, None),
            (UpgradeOpset, UpgradeOpsetOptions(target=opts.opset)),
            (InferShapes, InferShapesOptions(require_static=False)), (FoldConstants, None), (Dequantize, None),
            (BatchOne, None),
            (InferShapes, InferShapesOptions(require_static=False)), (UnrollRecurrent, None),
            (InferShapes, InferShapesOptions(require_static=False))]
        for cls, options in prologue:
            model, did = self._step(cls, options, model, stats)
            changed |= did
        rounds = 0
        for rounds in range(1, MAX_ROUNDS + 1):
            round_changed = False
            for cls in REWRITES:
                model, did = self._step(cls, None, model, stats)
                round_changed |= did
            model, _ = self._step(InferShapes, InferShapesOptions(require_static=False), model, stats)
            changed |= round_changed
            if not round_changed:
                break
        # with the check on, a tensor left without a static shape is reported together with every
        # other problem by check-supported; without it, infer-shapes itself insists
        model, did = self._step(InferShapes, InferShapesOptions(require_static=not opts.check), model, stats)
        model, did_names = self._step(NameNodes, None, model, stats)
        changed |= did or did_names
        if opts.check:
            model, _ = self._step(CheckSupported, None, model, stats)
        stats["rounds"] = rounds
        stats["nodes"] = len(model.graph.nodes)
        return PassResult(model, changed, stats)

    def _step(self, cls: type[Pass], options: Any, model: OnnxModel,
              stats: dict[str, Any]) -> tuple[OnnxModel, bool]:
        self.context.say(f"normalize: {cls.name}")
        result = cls(options, self.context).run(model)
        _accumulate(stats.setdefault(cls.name, {}), result.stats)
        return result.model, result.changed


#: Stats that describe the model (not work done): the last run's value is kept, not the sum.
GAUGES = frozenset({"static-tensors", "unknown-tensors", "opset", "from-opset", "nodes"})


def _accumulate(total: dict[str, Any], new: dict[str, Any]) -> None:
    """Sum counts over rounds; keep the latest value of gauges and of anything not numeric."""
    for key, value in new.items():
        old = total.get(key)
        if key not in GAUGES and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and isinstance(old, (int, float)) and not isinstance(old, bool):
            total[key] = old + value
        else:
            total[key] = value
