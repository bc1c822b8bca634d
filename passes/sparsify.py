"""`sparsify`: SparseComp pruning to a FRAM budget, fine-tuned so the accuracy stays within a bound.

Before -> after (plain ONNX both times; pruned weights are zeros, dead units are gone, the masks are
annotations)::

    Gemm(x, W[120, 400] dense, B) -> Relu -> Gemm(., W2[84, 120])      124,292 B (Q15)
 => Gemm(x, W[87, 400] 1,806 non-zeros, B') -> Relu -> Gemm(., W2'[84, 87])   19,718 B <= budget
    W: sparsity={density: 0.0519, nnz: 1806, mask: <base64 of packbits>, fragile: false, shape: [87, 400]}

The loop (FreeML's SparseComp; what differs and why is said below)::

    while model bytes (passes/compress_size.py: Q15, indices, biases, shifts, descriptors) > budget:
        layer  = the largest layer (bytes) that is not fragile
        k      = its kept weights * its cut factor (the first cut keeps ``first-density``), but no
                 fewer than the model needs to fit, and few enough to save >= 10 % of its bytes
        re-train ``epochs`` epochs (Adam, one optimizer state for the whole run) on the train
                 part; after every optimizer step each pruned layer is projected back to its top-k
                 (see "Regrowth")
        measure  the accuracy on the val part (never the test part)
        keep the step if the drop from the original stays <= ``max-drop`` and the step cost
                 (from min(accuracy before the step, the original's)) <= ``fragile``; else roll
                 back (weights, masks, optimizer state), retry the layer up to ``retries`` times
                 with a gentler cut (the factor's square root), then mark it fragile
        when every layer is fragile: relax (at most ``relax`` times): fine-tune the masks at a
                 decaying learning rate (kept only if it loses nothing), then no layer is fragile,
                 cuts are gentler and may be half as small (see ``_Loop._relax``)
    fine-tune ``final-epochs`` more at a decaying learning rate (kept only if it loses nothing)
    remove the dead hidden units (passes/dead_units.py)

The schedule, and why: FreeML's first cut keeps ~4.8 % of a layer and each later one cuts ~10x more,
which spends the accuracy budget in one or two steps and makes layers fragile early. Here a layer's
first cut keeps ``first-density`` (0.25: compressed storage then halves its bytes; at 0.5 it saves
nothing, value + index being 4 bytes against 2), later cuts multiply by the layer's factor (``cut``,
0.5). The factor is *learned* per layer: a step that costs at most a quarter of ``fragile`` squares
it (never below ``min-cut``, 0.1: FreeML's 10x), a rejected one takes its square root and retries.
The last step of a run is no deeper than the budget needs, so the model ends just under the budget.
Measured on the samples (bench/sparsecomp.py, docs/sparsecomp.md): mlp_mnist_big at 105-108x and
lenet5_mnist at 12x within the 1-point bound, in 1-22 steps.

Regrowth (iterative hard thresholding with feedback, as in DPF, Lin et al. 2020): every pruned layer
keeps a dense shadow copy ``D``. The optimizer steps on the sparse weights ``S = D * topk(|D|)``;
the update it makes (the gradients are dense: pruned positions move too) is added to ``D``, and
``S`` is re-projected. A pruned weight that its gradients keep pushing grows in ``D`` and returns
once it is among the k largest. Plain IHT on ``S`` forgets the push after every step: on
mlp_mnist_big at 0.6 % density it ended 4 points below this (87.6 % vs 91.8 % held-out accuracy).

Dead units: pruning leaves hidden units of Gemm -> [act] -> Gemm chains with no inputs (constant:
folded into the next bias) or no readers; each still costs 7 B (bias, shift, row pointer). The size
the loop steers by counts them as removed, their rows and columns may not regrow once dead (so the
bytes counted stay saved), and they are removed at the end (exactly: the outputs do not change).
``remove-units=false`` keeps them.

Data (passes/finetune.py): the train/val parts of ``PassContext.data`` (``Dataset.split``; a file's
``split`` marks pin val/test). Labels -> cross-entropy (``loss=distill``: distillation instead) and
top-1 accuracy; no labels -> distillation from the original model's logits (``temperature``) and
the accuracy the original model's probabilities estimate. The bound is against the original model
of the run (`separate` before shares it).

Options: ``budget`` (bytes of compress_size; default: what ``PassContext.fram_bytes`` leaves after
code and FRAM activations, :func:`passes.compress_size.weight_budget`), ``max-drop`` (points, 1.0),
``fragile`` (points; default ``max-drop``: FreeML uses 5, but a step costing more than the whole
``max-drop`` is rolled back anyway), ``epochs`` (5), ``final-epochs`` (6), ``first-density``,
``cut``, ``min-cut``, ``retries`` (2), ``lr`` (1e-3), ``batch-size`` (64), ``loss``
(auto/ce/distill/mse), ``task`` (auto/classify/regress: regressors are bounded by R^2, see
passes/finetune.py), ``temperature`` (0.25, see passes/finetune.py), ``max-steps`` (default :func:`default_max_steps`: 60, or
6 per prunable layer for a model of more than 10: a deep net needs a few steps per layer), ``relax`` (2),
``remove-units`` (true), ``seed``,
``threads`` (BLAS threads, 1).

A progress line per step goes to ``PassContext.say``. Stats: per layer (dense/sparse, density, nnz,
bytes before/after, fragile, steps), every step, the units removed, the accuracy before/after on
val, the sizes, the relaxations; also in ``PassContext.extra["sparsify"]`` for the compile report.
When every layer is fragile after the last relaxation and the model still does not fit:
:class:`BudgetError` with the best size reached and what would help; so does a model whose embedding
tables (never compressed) alone exceed the budget, before any training.
"""

from __future__ import annotations

import base64
import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from passes.compress_size import (LayerSize, ModelSize, embedding_bytes, float32_bytes, lower_sparse_max, model_size,
                                  weight_budget)
from passes.dead_units import Chain, find_chains, plan_removal, remove_units, shrunk_shapes
from passes.finetune import DISTILL_TEMPERATURE, FineTune, finetune_setup
from passes.train import Adam, Net, build_net
from transpiler.errors import BudgetError, Location
from passes.tree_ensembles import reject_training
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

STEPS_PER_LAYER = 6
"""Default steps a run may take per prunable layer (at least 60 in all): a layer's first cut, two or three
later cuts and their retries."""


def default_max_steps(layers: int) -> int:
    """The default ``max-steps`` of a run over ``layers`` prunable layers."""
    return max(60, STEPS_PER_LAYER * layers)


CHEAP_SHARE = 0.25
"""A step that costs at most this share of ``fragile`` counts as cheap: the layer's factor squares."""


@dataclass(frozen=True)
class SparsifyOptions:
    """Options of `sparsify` (see the module docstring); sizes in bytes (``48KiB`` in pipeline text)."""

    budget: int | None = None
    max_drop: float = 1.0
    fragile: float | None = None
    epochs: int = 5
    final_epochs: int = 6
    first_density: float = 0.25
    cut: float = 0.5
    min_cut: float = 0.1
    retries: int = 2
    lr: float = 1e-3
    batch_size: int = 64
    loss: Literal["auto", "ce", "distill", "mse"] = "auto"
    task: Literal["auto", "classify", "regress"] = "auto"
    temperature: float = DISTILL_TEMPERATURE
    max_steps: int | None = None
    relax: int = 2
    remove_units: bool = True
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        checks = [(self.budget is None or self.budget > 0, "budget must be > 0 bytes"),
                  (self.max_drop >= 0, "max-drop must be >= 0 points"),
                  (self.fragile is None or self.fragile > 0, "fragile must be > 0 points"),
                  (self.epochs >= 1 and self.final_epochs >= 0, "epochs >= 1 and final-epochs >= 0"),
                  (0 < self.first_density < 1, "first-density must be in (0, 1)"),
                  (0 < self.min_cut <= self.cut < 1, "0 < min-cut <= cut < 1"),
                  (self.retries >= 0 and (self.max_steps is None or self.max_steps >= 1) and self.relax >= 0,
                   "retries >= 0, max-steps >= 1 and relax >= 0"),
                  (self.lr > 0 and self.batch_size >= 1 and self.temperature > 0,
                   "lr > 0, batch-size >= 1, temperature > 0"),
                  (self.threads >= 1, "threads >= 1")]
        bad = [text for ok, text in checks if not ok]
        if bad:
            raise ValueError("; ".join(bad))


# --------------------------------------------------------------------------- masks
def topk_mask(values: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the ``k`` largest ``|values|`` among the ``allowed`` positions (default: all;
    deterministic: numpy's introselect on a copy). ``k`` is capped at the number allowed."""
    flat = np.abs(values).reshape(-1)
    if allowed is not None:
        flat = np.where(allowed.reshape(-1), flat, -np.inf)
        k = min(k, int(np.count_nonzero(allowed)))
    mask = np.zeros(flat.size, dtype=bool)
    if k >= flat.size:
        mask[:] = True
    elif k > 0:
        mask[np.argpartition(flat, flat.size - k)[flat.size - k:]] = True
    return mask.reshape(values.shape)


def encode_mask(mask: np.ndarray) -> str:
    """base64 of ``np.packbits(mask.reshape(-1))`` (big-endian bit order inside each byte)."""
    return base64.b64encode(np.packbits(mask.reshape(-1).astype(bool)).tobytes()).decode("ascii")


def decode_mask(record: dict[str, Any]) -> np.ndarray:
    """The boolean mask of a ``sparsity`` annotation written by this pass."""
    shape = tuple(int(d) for d in record["shape"])
    bits = np.unpackbits(np.frombuffer(base64.b64decode(record["mask"]), dtype=np.uint8))
    return bits[:int(np.prod(shape))].astype(bool).reshape(shape)


class Projector:
    """The ``after_step`` hook: every pruned layer back to its top-k, with a dense shadow copy.

    ``k[name]`` is the number of weights the layer keeps; layers keeping all are left alone. See the
    module docstring ("Regrowth"): ``D += S_after_step - S_before_step``, ``S = D * topk(D)``.
    """

    def __init__(self, net: Net) -> None:
        self.k: dict[str, int] = {}
        self.dense: dict[str, np.ndarray] = {}
        self.masks: dict[str, np.ndarray] = {}
        self.forbidden: dict[str, np.ndarray] = {}   # positions that may not come back (dead units)
        self.regrown = 0            # positions that entered a mask since the last reset
        self._net = net

    def forbid(self, name: str, positions: np.ndarray) -> None:
        """Positions of parameter ``name`` (a boolean array of its shape) that stay zero from now on
        (the rows and columns of dead units, so that regrowth cannot revive them)."""
        old = self.forbidden.get(name)
        self.forbidden[name] = positions.copy() if old is None else old | positions
        if name in self.dense:
            self.dense[name][self.forbidden[name]] = 0
            self._project(name, self._net.params()[name], count=False)

    def set_k(self, name: str, k: int) -> None:
        """Keep ``k`` weights of parameter ``name`` from now on and project it now."""
        w = self._net.params()[name]
        if name not in self.dense:
            self.dense[name] = w.copy()
        self.k[name] = int(k)
        self._project(name, w, count=False)

    def _project(self, name: str, w: np.ndarray, count: bool = True) -> None:
        forbidden = self.forbidden.get(name)
        mask = topk_mask(self.dense[name], self.k[name], None if forbidden is None else ~forbidden)
        old = self.masks.get(name)
        if count and old is not None:
            self.regrown += int(np.count_nonzero(mask & ~old))
        self.masks[name] = mask
        np.multiply(self.dense[name], mask, out=w, casting="unsafe")

    def __call__(self, net: Net) -> None:
        params = net.params()
        for name in self.k:
            w = params[name]
            dense, mask = self.dense[name], self.masks[name]
            # kept positions: the updated value; pruned ones: their shadow plus this step's update
            np.add(dense, w, out=dense, where=~mask)
            np.copyto(dense, w, where=mask)
            self._project(name, w)

    def snapshot(self) -> dict[str, Any]:
        """Everything :meth:`restore` needs to undo later steps."""
        return {"k": dict(self.k), "dense": {n: d.copy() for n, d in self.dense.items()},
                "masks": {n: m.copy() for n, m in self.masks.items()},
                "forbidden": {n: m.copy() for n, m in self.forbidden.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        """Back to a :meth:`snapshot` (the network's parameters are restored separately)."""
        self.k, self.dense, self.masks = dict(state["k"]), state["dense"], state["masks"]
        self.forbidden = state["forbidden"]


# --------------------------------------------------------------------------- layers
@dataclass
class _Layer:
    """The loop's view of one parameter layer."""

    size: LayerSize
    k: int
    factor: float
    fragile: bool = False
    tries: int = 0                 # rejected attempts since the last kept step
    steps: int = 0                 # kept steps
    note: str = ""

    @property
    def name(self) -> str:
        return self.size.weight

    @property
    def bytes(self) -> int:
        return self.size.bytes_at(self.k)


def _fits_k(layer: _Layer, room: int) -> int:
    """The most weights the layer may keep, stored compressed, within ``room`` bytes (0: none)."""
    s = layer.size
    if s.shape_limit is not None:
        return 0
    k = (room - s.bias_bytes - s.descriptor_sparse - 2 * (s.outputs + 1)) // 4
    return int(min(k, lower_sparse_max(), s.weights))


MIN_SAVING = 0.1
"""A cut must save at least this share of the layer's bytes (no steps that change nothing); each
relaxation (see :meth:`_Loop._relax`) halves it, and a cut that makes the model fit may save less."""


def _saving_k(layer: _Layer, min_saving: float = MIN_SAVING) -> int:
    """The most weights the layer may keep and still take ``min_saving`` of its bytes fewer than now
    (0: none)."""
    return _fits_k(layer, min(layer.bytes - 1, int(layer.bytes * (1.0 - min_saving))))


def next_k(layer: _Layer, excess: int, min_saving: float = MIN_SAVING) -> int:
    """How many weights the layer keeps after its next cut; ``excess``: bytes over the budget.

    ``k * factor``, lowered to what saves ``min_saving`` of the layer's bytes, but raised to the most
    that makes the model fit when that is fewer than k (the last step is no deeper than needed, even
    when it saves less); at least 1.
    """
    proposed = min(max(1, int(math.floor(layer.k * layer.factor))), _saving_k(layer, min_saving))
    enough = min(_fits_k(layer, layer.bytes - excess), layer.k - 1)
    if enough >= 1:
        proposed = max(proposed, enough)
    return max(1, min(proposed, layer.k - 1))


# --------------------------------------------------------------------------- the pass
@register
class Sparsify(Pass):
    """Prune to a FRAM budget with fine-tuning (SparseComp); pruned weights may grow back.

    Before -> after::

        W dense, 124,292 B     =>   W with zeros (plain ONNX), 16,020 B <= budget;
                                    W: sparsity={density, nnz, mask, fragile, shape}

    (see the module docstring for the loop, the schedule and the options)
    """

    name = "sparsify"
    options_type = SparsifyOptions
    level = "onnx"
    requires = frozenset({"normal-form"})

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        opts: SparsifyOptions = self.options
        start = time.perf_counter()
        reject_training(model, "sparsify")
        budget = opts.budget if opts.budget is not None else weight_budget(
            model, self.context.fram_bytes, self.context.sram_bytes)
        before = model_size(model)
        base = {"budget": budget, "size_before": before.total, "float32_bytes": float32_bytes(model)}
        if not before.layers:
            return PassResult(model, False, {**base, "size_after": before.total, "note": "no Conv/Gemm weights"})
        if before.total <= budget:
            stats = {**base, "size_after": before.total, "note": "the model fits the budget: nothing pruned",
                     "layers": [dict(layer.as_dict(), bytes_before=layer.total, fragile=False)
                                for layer in before.layers]}
            self.context.extra["sparsify"] = stats
            return PassResult(model, False, stats)
        tables = embedding_bytes(model)
        if tables and sum(tables.values()) >= budget:
            raise BudgetError(
                f"the embedding table(s) {', '.join(tables)} alone take {sum(tables.values()):,} B of the "
                f"{budget:,} B budget; SparseComp does not compress an embedding table (its rows are copied, "
                f"not multiplied)", location=Location(file=model.source, pass_name=self.name),
                hint="a smaller vocabulary or embedding size (nn.Embedding(V, D) takes 2 * V * D bytes in Q15), "
                     "or a larger FRAM budget (--fram)")
        tune = finetune_setup(model, self.context, self.name, loss=opts.loss, task=opts.task, epochs=opts.epochs,
                              lr=opts.lr, batch_size=opts.batch_size, temperature=opts.temperature,
                              threads=opts.threads)
        net = build_net(model)
        loop = _Loop(self, opts, tune, net, before, budget, find_chains(model) if opts.remove_units else [])
        loop.run()
        net.write_back(model)
        masks = dict(loop.projector.masks)
        removed: list[dict[str, object]] = []
        if loop.chains:
            shrunk, removed = remove_units(model, masks)
            masks.update(shrunk)
        for layer in loop.layers.values():
            if layer.name in loop.projector.masks:
                mask = masks[layer.name]
                nnz = int(np.count_nonzero(mask))
                model.annotations.set(layer.name, "sparsity", {
                    "density": round(nnz / mask.size, 6), "nnz": nnz, "mask": encode_mask(mask),
                    "fragile": layer.fragile, "shape": list(mask.shape)})
        after = model_size(model)
        stats = {**base, **loop.stats(after), "units_removed": removed,
                 "seconds": round(time.perf_counter() - start, 2)}
        self.context.extra["sparsify"] = stats
        self.context.say(f"sparsify: {before.total:,} B -> {after.total:,} B (budget {budget:,} B), "
                         f"{tune.measure} on val {100 * stats['accuracy_before']:.2f} % -> "
                         f"{100 * stats['accuracy_after']:.2f} %, {len(loop.log)} steps in {stats['seconds']:.0f} s")
        return PassResult(model, True, stats)


@dataclass
class _Loop:
    """The greedy loop of one `sparsify` run (see the module docstring)."""

    owner: Sparsify
    opts: SparsifyOptions
    tune: FineTune
    net: Net
    before: ModelSize
    budget: int
    chains: list[Chain] = field(default_factory=list)
    layers: dict[str, _Layer] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    accuracy_start: float = 0.0
    accuracy: float = 0.0
    min_saving: float = MIN_SAVING
    relaxations: list[dict[str, Any]] = field(default_factory=list)
    max_steps: int = 0                  # the option, or default_max_steps of the layers (__post_init__)

    def __post_init__(self) -> None:
        self.projector = Projector(self.net)
        self.optimizer = Adam(lr=self.opts.lr)     # one optimizer for the whole loop (state rolled back too)
        params = self.net.params()
        for size in self.before.layers:
            if size.weight not in params:   # e.g. a weight shared with a node the engine does not train
                continue
            layer = _Layer(size, size.nnz, self.opts.first_density if size.nnz == size.weights else self.opts.cut)
            self.layers[size.weight] = layer
            if size.nnz < size.weights:     # already sparse: keep its zeros as the starting mask
                self.projector.set_k(size.weight, size.nnz)
        self.max_steps = self.opts.max_steps if self.opts.max_steps is not None else default_max_steps(len(self.layers))

    @property
    def fragile(self) -> float:
        """The fragile threshold in points (the option, or max-drop when it is not given)."""
        return self.opts.fragile if self.opts.fragile is not None else self.opts.max_drop

    def size(self) -> int:
        """The model's bytes with every layer at its current k (and dead units removed, see
        passes/dead_units.py, when ``remove-units``)."""
        total = self.before.total - sum(layer.size.total for layer in self.layers.values())
        shrunk = shrunk_shapes(self.chains, self.projector.masks) if self.chains else {}
        for layer in self.layers.values():
            if layer.name in shrunk:
                shape, nnz = shrunk[layer.name]
                total += layer.size.bytes_for(shape, nnz)
            else:
                total += layer.bytes
        return total

    def run(self) -> None:
        self.accuracy = self.accuracy_start = self.tune.accuracy(self.net)
        self.owner.context.say(f"sparsify: {self.size():,} B, budget {self.budget:,} B; {self.tune.measure} on "
                               f"{len(self.tune.val)} val samples: reference {100 * self.tune.reference.accuracy:.2f} %, "
                               f"now {100 * self.accuracy:.2f} %; fine-tuning on {len(self.tune.train)} samples "
                               f"({self.tune.loss})")
        attempts = 0
        while self.size() > self.budget:
            candidates = self._candidates()
            if not candidates and len(self.relaxations) < self.opts.relax:
                self._relax(attempts)
                candidates = self._candidates()
            if not candidates:
                self._fail("every layer is fragile or cannot shrink further"
                           + (f" (after {len(self.relaxations)} relaxations)" if self.relaxations else ""))
            if attempts >= self.max_steps:
                self._fail(f"{attempts} steps (max-steps) were not enough", out_of_steps=True)
            attempts += 1
            layer = max(candidates, key=lambda item: (item.bytes, item.name))
            self._step(layer, attempts)
        self._final()

    def _candidates(self) -> list[_Layer]:
        """The layers the next step may cut: not fragile, and a cut can still save bytes."""
        return [layer for layer in self.layers.values() if not layer.fragile and layer.k > 1
                and (_saving_k(layer, self.min_saving) >= 1 or self._fitting_k(layer) >= 1)]

    def _fitting_k(self, layer: _Layer) -> int:
        """The most weights ``layer`` may keep for the model to fit (0: no cut of it alone does)."""
        return min(_fits_k(layer, layer.bytes - (self.size() - self.budget)), layer.k - 1)

    def _relax(self, attempts: int) -> None:
        """Every layer is fragile and the model does not fit yet: consolidate, then try again with
        smaller steps.

        A layer turns fragile after ``retries`` rejected cuts, and late in a run most rejections
        come from the drop the earlier steps spent (a step costing a tenth of a point is rejected when
        the model is already 0.95 points down), or from the noise of the val measure (measured on
        mlp_mnist_big without labels: the same cut reads 1.1 points down, then 0.2 points up). So:
        fine-tune the current masks at a decaying learning rate (``final-epochs``; kept only if it
        loses nothing), which wins back part of the spent drop; then every layer is no longer fragile,
        its cut factor moves halfway to 1 and the smallest cut (MIN_SAVING of the layer's bytes) is
        halved. At most ``relax`` times per run; the bound (``max-drop``) never moves.
        """
        accuracy_before = self.accuracy
        kept = self._anneal(self.opts.seed + 20_000 + 10 * len(self.relaxations), limit=self.size())
        self.min_saving /= 2
        for layer in self.layers.values():
            layer.fragile = False
            layer.tries = 0
            layer.note = ""
            layer.factor = min(0.95, 1.0 - (1.0 - layer.factor) / 2)
        self.relaxations.append({"after_step": attempts, "accuracy_before": round(accuracy_before, 6),
                                 "accuracy": round(self.accuracy, 6), "kept": kept,
                                 "min_saving": self.min_saving})
        self.owner.context.say(
            f"sparsify: every layer is fragile at {self.size():,} B / budget {self.budget:,} B: relaxation "
            f"{len(self.relaxations)} of {self.opts.relax}: fine-tuning at the current densities: val "
            f"{100 * accuracy_before:.2f} % -> {100 * self.accuracy:.2f} % ({'kept' if kept else 'not kept'}); "
            f"smaller cuts (at least "
            f"{100 * self.min_saving:g} % of a layer's bytes)")

    def _step(self, layer: _Layer, index: int) -> None:
        k_old = layer.k
        k_new = next_k(layer, self.size() - self.budget, self.min_saving)
        params_before = self.net.params(copy=True)
        state_before = self.projector.snapshot()
        adam_before = copy.deepcopy(self.optimizer.state)
        accuracy_before = self.accuracy
        layer.k = k_new
        self.projector.set_k(layer.name, k_new)
        self.projector.regrown = 0
        self.tune.tune(self.net, seed=self.opts.seed + index, after_step=self.projector, optimizer=self.optimizer)
        accuracy = self.tune.accuracy(self.net)
        # a gain over the reference is not credit to spend: it is mostly the noise of a small val part
        cost = 100.0 * (min(accuracy_before, self.tune.reference.accuracy) - accuracy)
        drop = self.tune.drop(accuracy)
        kept = drop <= self.opts.max_drop + 1e-9 and cost <= self.fragile + 1e-9
        entry = {"step": index, "layer": layer.size.node, "weight": layer.name,
                 "density_from": round(k_old / layer.size.weights, 6), "density": round(k_new / layer.size.weights, 6),
                 "nnz": k_new, "accuracy": round(accuracy, 6), "drop": round(drop, 3), "cost": round(cost, 3),
                 "regrown": self.projector.regrown, "kept": kept}
        if kept:
            layer.steps += 1
            layer.tries = 0
            self.accuracy = accuracy
            self._hold_dead_units()
            if cost <= CHEAP_SHARE * self.fragile:
                layer.factor = max(self.opts.min_cut, layer.factor ** 2)
            verdict = "kept"
        else:
            self.net.set_params(params_before)
            self.projector.restore(state_before)
            self.optimizer.state = adam_before
            layer.k = k_old
            layer.tries += 1
            why = (f"drop {drop:.2f} > max-drop {self.opts.max_drop}" if drop > self.opts.max_drop + 1e-9
                   else f"step cost {cost:.2f} > fragile {self.fragile:g}")
            if layer.tries > self.opts.retries:
                layer.fragile = True
                layer.note = why
                verdict = f"rolled back ({why}); layer is fragile"
            else:
                layer.factor = min(0.95, math.sqrt(layer.factor))
                verdict = f"rolled back ({why}); retry gentler"
        entry["size"] = self.size()
        entry["verdict"] = verdict
        self.log.append(entry)
        self.owner.context.say(
            f"sparsify: step {index}: '{layer.size.node}' density {k_old / layer.size.weights:.4f} -> "
            f"{k_new / layer.size.weights:.4f}: val {100 * accuracy:.2f} % (drop {drop:+.2f}, step {cost:+.2f}), "
            f"size {entry['size']:,} B / budget {self.budget:,} B: {verdict}")

    def _hold_dead_units(self) -> None:
        """Keep today's dead units dead: their rows (and, for unused units, the columns that read
        them) may not regrow, so the bytes the size counted stay saved (passes/dead_units.py)."""
        if not self.chains:
            return
        removals, _ = plan_removal(self.chains, self.projector.masks)
        for removal in removals:
            chain = self.chains[removal.chain]
            first, second = chain.first_weight, chain.second_weight
            if first in self.projector.k:
                rows = np.zeros(self.net.params()[first].shape, dtype=bool)
                rows[list(removal.unused_units + removal.constant_units)] = True
                self.projector.forbid(first, rows)
            if second in self.projector.k and removal.unused_units:
                cols = np.zeros(self.net.params()[second].shape, dtype=bool)
                cols[:, list(removal.unused_units)] = True
                self.projector.forbid(second, cols)

    def _anneal(self, seed: int, limit: int) -> bool:
        """Fine-tune the current masks ``final-epochs`` epochs at a decaying learning rate (a third
        each at lr, lr/3, lr/10); kept only if the accuracy does not fall and the model stays within
        ``limit`` bytes (regrowth may change which units are dead). Returns whether it was kept."""
        params_before = self.net.params(copy=True)
        state_before = self.projector.snapshot()
        adam_before = copy.deepcopy(self.optimizer.state)
        epochs = self.opts.final_epochs
        parts = [epochs - 2 * (epochs // 3), epochs // 3, epochs // 3]
        for i, (part, scale) in enumerate(zip(parts, (1.0, 1.0 / 3.0, 0.1))):
            if part:
                self.optimizer.lr = self.opts.lr * scale
                self.tune.tune(self.net, epochs=part, seed=seed + i, after_step=self.projector,
                               optimizer=self.optimizer)
        self.optimizer.lr = self.opts.lr
        accuracy = self.tune.accuracy(self.net)
        if self.size() > limit or accuracy < self.accuracy:
            self.net.set_params(params_before)
            self.projector.restore(state_before)
            self.optimizer.state = adam_before
            return False
        self.accuracy = accuracy
        self._hold_dead_units()
        return True

    def _final(self) -> None:
        """A last fine-tuning with the final masks (:meth:`_anneal`), kept only if it does not lose
        accuracy and the model still fits."""
        if self.opts.final_epochs < 1 or not self.log:
            return
        accuracy_before = self.accuracy
        if self._anneal(self.opts.seed + 10_000, limit=self.budget):
            self.owner.context.say(f"sparsify: final fine-tuning ({self.opts.final_epochs} epochs): val "
                                   f"{100 * accuracy_before:.2f} % -> {100 * self.accuracy:.2f} %")
        else:
            self.owner.context.say(f"sparsify: final fine-tuning ({self.opts.final_epochs} epochs) lost accuracy "
                                   f"or left the model over the budget (other dead units): not kept")

    def _fail(self, why: str, out_of_steps: bool = False) -> None:
        """Raise the BudgetError of a run that stops over the budget: the best size, the drop, the layers,
        and a hint with what would help, most likely first (labels for a label-free classifier, whose
        bound is stricter than the real drop; more steps when ``out_of_steps``)."""
        best = self.size()
        rows = []
        for layer in sorted(self.layers.values(), key=lambda item: -item.bytes):
            state = "fragile" + (f" ({layer.note})" if layer.note else "") if layer.fragile else "can shrink"
            rows.append(f"{layer.size.node}: density {layer.k / layer.size.weights:.4f}, {layer.bytes:,} B, {state}")
        ways = []
        if not self.tune.labelled and self.tune.task.kind != "regress":
            ways.append("labels ('y' in the data): without them every disagreement with the original where it is "
                        "confident counts as an error, which is stricter than the real drop when the original is "
                        f"over-confident (it rates itself {100 * self.tune.reference.own_accuracy:.1f} % on val; "
                        "with labels the drop is measured)")
        if out_of_steps:
            ways.append(f"more steps (the last ones stayed within max-drop): sparsify{{max-steps="
                        f"{2 * self.max_steps}}} in --pipeline")
        ways += [f"a larger max-drop (e.g. --max-drop {max(2 * self.opts.max_drop, 1.0):g})",
                 "more fine-tuning (sparsify{epochs=...})", "more training data",
                 "the low-rank 'separate' pass before sparsify", "a larger FRAM budget (--fram)"]
        raise BudgetError(
            f"sparsify cannot reach the budget of {self.budget:,} B within max-drop {self.opts.max_drop} points: "
            f"{why}; the best size reached is {best:,} B at a drop of {self.tune.drop(self.accuracy):.2f} points "
            f"({self.tune.measure} on {len(self.tune.val)} val samples)",
            location=Location(pass_name="sparsify"), details=rows,
            hint="what would help, most likely first: " + "; ".join(ways) + (
                 "; for a regressor the drop is in points of R^2 (1 point: R^2 falls by 0.01)"
                 if self.tune.task.kind == "regress" else ""))

    def stats(self, after: ModelSize) -> dict[str, Any]:
        """The pass's stats: sizes, accuracies, the steps and the per-layer table."""
        per_layer = []
        for size_before, size_after in zip(self.before.layers, after.layers):
            layer = self.layers.get(size_before.weight)
            per_layer.append({**size_after.as_dict(), "bytes_before": size_before.total,
                              "fragile": bool(layer and layer.fragile), "steps": layer.steps if layer else 0})
        return {"size_after": after.total, "loss": self.tune.loss, "measure": self.tune.measure,
                "train_samples": len(self.tune.train), "val_samples": len(self.tune.val), "max_steps": self.max_steps,
                "accuracy_reference": round(self.tune.reference.accuracy, 6),
                "accuracy_before": round(self.accuracy_start, 6), "accuracy_after": round(self.accuracy, 6),
                "drop": round(self.tune.drop(self.accuracy), 3), "max_drop": self.opts.max_drop,
                "steps": self.log, "relaxations": self.relaxations, "layers": per_layer,
                **self._unlabelled_agreement()}

    def _unlabelled_agreement(self) -> dict[str, float]:
        """Without labels, a classifier's top-1 agreement with the original on val and the original's
        own estimate (its mean top-1 probability): an unsure original (random weights, say) rates any
        answer about as likely, so the estimate bounds the accuracy while top-1 may move a lot."""
        if self.tune.labelled or self.tune.task.kind == "regress":
            return {}
        return {"agreement_after": round(self.tune.agreement(self.net), 6),
                "original_confidence": round(self.tune.reference.own_accuracy, 6)}


__all__ = ["Projector", "Sparsify", "SparsifyOptions", "decode_mask", "encode_mask", "next_k", "topk_mask"]
