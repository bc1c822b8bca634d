"""The byte model of SparseComp: how many FRAM bytes a model's parameters take once lowered to Q15.

`separate` and `sparsify` decide by this figure, and the CLI compares it with the FRAM budget. It
counts what `lower` and `plan-memory` will store for every parameter layer (ONNX ``Conv``/``Gemm``
with a constant weight), with the formulas of backends/lower_sparse.py and plan-memory's descriptor
table, so that the figure the passes steer by is the one the compile report shows:

- weights: dense ``2 * N * K`` bytes (Q15, every weight) or compressed
  ``4 * nnz + 2 * (N + 1)`` (int16 value + uint16 column/offset per stored weight, one uint16 row or
  channel pointer per output + 1): FC in CSR, Conv per output channel (``N`` = ``Cout``,
  ``K`` = ``Cin/group * kh * kw``). The layer takes the smaller of the two (as ``lower{sparse=auto}``
  does when FRAM is tight), unless it cannot be stored sparse (more than 65535 stored weights or
  indices past uint16: :func:`backends.lower_sparse.sparse_limit`);
- bias: ``4 * N`` (int32, also when the ONNX node has none: lower stores zeros);
- shifts: ``N`` bytes (one requantisation shift per output channel, in the descriptor);
- descriptor: the kernel descriptor struct (:func:`passes.plan_memory.descriptor_bytes`: e.g. 24 B
  for a dense fc, 32 B for a sparse one);
- other constant nodes: a per-channel ``Mul`` (and a per-channel ``Add`` that lower cannot fuse into
  the layer before it) becomes a depthwise 1x1 conv (``2 C`` weights, ``4 C`` bias, ``C`` shifts, a
  conv descriptor); a per-element constant ``Add`` an int16 buffer (``2`` bytes per element); an
  embedding table (passes/embedding.py) ``2 V D`` bytes (Q15, never pruned) and its descriptor.

Not counted here: code, activations (SRAM or FRAM) and the runtime's state: :func:`fram_overhead`
estimates those, and :func:`weight_budget` turns a FRAM size into the budget `sparsify` needs.

Example (lenet5_mnist, dense): fc ``[120, 400]`` is 96,000 B of weights + 480 B bias + 120 B shifts
+ 24 B descriptor; pruned to 5 % density it stores 2,400 weights: ``4 * 2400 + 2 * 121 = 9,842`` B.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from backends import lower_sparse
from passes.embedding import is_embedding
from passes.normalize_util import static_shape
from passes.plan_memory import CODE_BYTES_PER_STEP, RUNTIME_CODE_BYTES, descriptor_bytes
from transpiler.lir.ir import Step
from transpiler.model import OnnxModel

PARAMETER_OPS = ("Gemm", "Conv")
DEFAULT_STACK_BYTES = 1024
"""SRAM kept for the stack by plan-memory's default, used by :func:`fram_overhead`."""
FRAM_MARGIN = 0.05
EMBED_DESCRIPTOR_BYTES = descriptor_bytes(Step("embed", "", [], []))
"""The ``embed`` step's descriptor (a table pointer, vocabulary and row length)."""
"""Share of the FRAM budget :func:`weight_budget` keeps free for what the estimates miss."""


@dataclass(frozen=True)
class LayerSize:
    """The FRAM bytes of one parameter layer (an ONNX Conv or Gemm with a constant weight).

    ``sparse_bytes`` is None when the layer cannot be stored sparse (``limit`` says why).
    """

    node: str
    op: str                       # "fc" or "conv"
    weight: str                   # the weight initializer's name
    bias: str | None              # the bias initializer's name (None: the node has none)
    shape: tuple[int, ...]        # of the weight
    nnz: int
    dense_bytes: int
    sparse_bytes: int | None
    bias_bytes: int
    shift_bytes: int
    descriptor_dense: int
    descriptor_sparse: int
    limit: str | None = None          # why it cannot be sparse now
    shape_limit: str | None = None    # why it can never be sparse (its shapes)

    @property
    def weights(self) -> int:
        """Number of weight elements (dense)."""
        return int(np.prod(self.shape))

    @property
    def outputs(self) -> int:
        """N (fc) or Cout (conv)."""
        return int(self.shape[0])

    @property
    def density(self) -> float:
        """Non-zero share of the weights."""
        return self.nnz / self.weights if self.weights else 0.0

    @property
    def sparse(self) -> bool:
        """Whether the layer is stored compressed (the smaller form; dense on a tie)."""
        return self.sparse_bytes is not None and self.sparse_bytes < self.dense_bytes

    @property
    def weight_bytes(self) -> int:
        """Bytes of the stored weights (values, and indices when sparse)."""
        return self.sparse_bytes if self.sparse and self.sparse_bytes is not None else self.dense_bytes

    @property
    def total(self) -> int:
        """Weights + bias + shifts + descriptor."""
        descriptor = self.descriptor_sparse if self.sparse else self.descriptor_dense
        return self.weight_bytes + self.bias_bytes + descriptor

    def bytes_at(self, nnz: int) -> int:
        """What :attr:`total` would be with ``nnz`` stored weights (same shape)."""
        sparse = sparse_form_bytes(self.shape, nnz) if self.shape_limit is None and nnz <= lower_sparse_max() else None
        dense_total = self.dense_bytes + self.bias_bytes + self.descriptor_dense
        if sparse is None or sparse >= self.dense_bytes:
            return dense_total
        return sparse + self.bias_bytes + self.descriptor_sparse

    def bytes_for(self, shape: Sequence[int], nnz: int) -> int:
        """What :attr:`total` would be for a weight of ``shape`` (fewer outputs or inputs, e.g. after
        dead units are removed) with ``nnz`` stored weights."""
        n = int(shape[0])
        dense = 2 * int(np.prod(shape))
        fixed = 4 * n
        sparse = sparse_form_bytes(shape, nnz) if self.shape_limit is None and nnz <= lower_sparse_max() else None
        if sparse is None or sparse >= dense:
            return dense + fixed + _descriptor(self.op, n)
        return sparse + fixed + _descriptor(f"{self.op}_sparse", n)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures for stats and reports."""
        return {"node": self.node, "op": self.op, "weight": self.weight, "shape": list(self.shape),
                "nnz": self.nnz, "density": round(self.density, 5), "storage": "sparse" if self.sparse else "dense",
                "dense_bytes": self.dense_bytes, "sparse_bytes": self.sparse_bytes, "weight_bytes": self.weight_bytes,
                "bias_bytes": self.bias_bytes, "bytes": self.total}


@dataclass(frozen=True)
class ModelSize:
    """The FRAM bytes of a model's parameters: its layers plus the other constant nodes."""

    layers: tuple[LayerSize, ...]
    other_bytes: int

    @property
    def total(self) -> int:
        """Every parameter byte the model stores in FRAM (the figure budgets compare with)."""
        return sum(layer.total for layer in self.layers) + self.other_bytes

    def layer(self, weight: str) -> LayerSize:
        """The layer whose weight initializer is ``weight``."""
        for layer in self.layers:
            if layer.weight == weight:
                return layer
        raise KeyError(f"no parameter layer with weight '{weight}'")

    def table(self) -> str:
        """A text table: one line per layer, then the total."""
        lines = [f"{'layer':<28} {'op':<4} {'shape':<16} {'storage':<7} {'density':>8} {'nnz':>8} {'bytes':>9}"]
        for layer in self.layers:
            lines.append(f"{layer.node[:28]:<28} {layer.op:<4} {'x'.join(map(str, layer.shape)):<16} "
                         f"{'sparse' if layer.sparse else 'dense':<7} {layer.density:>8.4f} {layer.nnz:>8} "
                         f"{layer.total:>9,}")
        if self.other_bytes:
            lines.append(f"{'other constants':<28} {'':<4} {'':<16} {'':<7} {'':>8} {'':>8} {self.other_bytes:>9,}")
        lines.append(f"{'total':<28} {'':<4} {'':<16} {'':<7} {'':>8} {'':>8} {self.total:>9,}")
        return "\n".join(lines)


def lower_sparse_max() -> int:
    """The most stored weights a sparse layer may have (uint16 pointers)."""
    from transpiler.lir import kernels

    return int(kernels.SPARSE_INDEX_MAX)


def sparse_form_bytes(shape: Sequence[int], nnz: int) -> int:
    """Compressed weight bytes of a ``shape`` weight with ``nnz`` stored values (at least one)."""
    return 4 * max(int(nnz), 1) + 2 * (int(shape[0]) + 1)


def _descriptor(op: str, outputs: int) -> int:
    """plan-memory's descriptor estimate (struct + shift table) for a layer of ``outputs`` channels."""
    return descriptor_bytes(Step(op, "layer", [], [], {"shift": [0] * outputs}))


def _x_shape(node: gs.Node) -> tuple[int, ...]:
    """The conv input as lower sees it, ``(C, H, W)`` (1-D: ``(C, 1, L)``); fc: ``(K,)``."""
    shape = static_shape(node.inputs[0]) or []
    dims = [int(d) for d in shape[1:]]
    if node.op == "Gemm":
        return (int(np.prod(dims)) if dims else 0,)
    if len(dims) == 2:
        return (dims[0], 1, dims[1])
    return tuple(dims) if len(dims) == 3 else (0, 0, 0)


def layer_size(node: gs.Node) -> LayerSize | None:
    """The :class:`LayerSize` of a Conv or Gemm with a constant weight (None for any other node)."""
    if node.op not in PARAMETER_OPS or len(node.inputs) < 2 or not isinstance(node.inputs[1], gs.Constant):
        return None
    w = np.asarray(node.inputs[1].values)
    op = "fc" if node.op == "Gemm" else "conv"
    if op == "conv" and w.ndim == 3:   # 1-D conv: lower makes it [Cout, Cin, 1, k]
        w = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])
    bias = node.inputs[2] if len(node.inputs) > 2 and isinstance(node.inputs[2], gs.Constant) else None
    n = int(w.shape[0])
    nnz = int(np.count_nonzero(w))
    if w.ndim in (2, 4):
        dil = [int(d) for d in node.attrs.get("dilations", [1, 1])]
        dilation = (1, dil[0]) if len(dil) == 1 else (dil[0], dil[1])
        limit = lower_sparse.sparse_limit(op, w, _x_shape(node), dilation)
        shape_limit = lower_sparse.sparse_limit(op, np.zeros(w.shape, dtype=np.int8), _x_shape(node), dilation)
    else:
        limit = shape_limit = "not a 2-D or 4-D weight"
    return LayerSize(node=node.name, op=op, weight=node.inputs[1].name, bias=bias.name if bias is not None else None,
                     shape=tuple(int(d) for d in w.shape), nnz=nnz, dense_bytes=lower_sparse.dense_bytes(w),
                     sparse_bytes=None if limit is not None else lower_sparse.sparse_bytes(w),
                     bias_bytes=4 * n, shift_bytes=n, descriptor_dense=_descriptor(op, n),
                     descriptor_sparse=_descriptor(f"{op}_sparse", n), limit=limit, shape_limit=shape_limit)


def _fused_into_layer(node: gs.Node) -> bool:
    """Whether a constant Add directly follows a Conv/Gemm/Mul whose output only it reads (lower
    then folds it into that layer's bias)."""
    for t in node.inputs:
        if isinstance(t, gs.Variable) and len(t.inputs) == 1 and t.inputs[0].op in ("Conv", "Gemm", "Mul"):
            return len(t.outputs) == 1
    return False


def _other_bytes(node: gs.Node) -> int:
    """FRAM bytes of a constant Mul/Add (see the module docstring) or of an embedding table (Q15, not
    compressible: its rows are copied, never pruned) and its descriptor; 0 for anything else."""
    if is_embedding(node):
        return 2 * int(np.asarray(node.inputs[0].values).size) + EMBED_DESCRIPTOR_BYTES
    consts = [t for t in node.inputs if isinstance(t, gs.Constant)]
    acts = [t for t in node.inputs if isinstance(t, gs.Variable)]
    if node.op not in ("Mul", "Add") or len(consts) != 1 or len(acts) != 1:
        return 0
    values = np.asarray(consts[0].values)
    act = static_shape(acts[0]) or []
    channels = int(act[1]) if len(act) > 1 else int(values.size)
    per_element = values.size > channels and values.size == int(np.prod(act[1:] or [1]))
    if node.op == "Add" and per_element:
        return 2 * int(values.size)
    if node.op == "Add" and _fused_into_layer(node):
        return 0
    return 7 * channels + _descriptor("conv", channels)


def embedding_bytes(model: OnnxModel) -> dict[str, int]:
    """Bytes of every embedding table (by initializer name) and its descriptor: the part of the model
    SparseComp cannot shrink (:func:`_other_bytes`)."""
    return {node.inputs[0].name: _other_bytes(node) for node in model.graph.nodes if is_embedding(node)}


def model_size(model: OnnxModel) -> ModelSize:
    """The FRAM bytes of ``model``'s parameters, per layer (graph order) and in total."""
    layers: list[LayerSize] = []
    stored: set[str] = set()
    other = 0
    for node in model.graph.nodes:
        size = layer_size(node)
        if size is None:
            other += _other_bytes(node)
        elif size.weight in stored:
            # a weight shared with an earlier layer (the time steps of an unrolled recurrent layer):
            # lower stores it once; this reader adds its descriptor and a bias (its input's format
            # can differ, so its quantised bias too; lower stores equal ones once, so this is an upper bound)
            other += size.descriptor_dense + (size.bias_bytes if size.bias is not None else 0)
        else:
            layers.append(size)
            stored.add(size.weight)
    return ModelSize(tuple(layers), other)


def float32_bytes(model: OnnxModel) -> int:
    """4 bytes per float initializer element: what the model's parameters take as float32."""
    seen: set[str] = set()
    total = 0
    for tensor in model.graph.tensors().values():
        if isinstance(tensor, gs.Constant) and tensor.name not in seen:
            values = np.asarray(tensor.values)
            if values.dtype.kind == "f":
                seen.add(tensor.name)
                total += 4 * int(values.size)
    return total


STRONGEST_DENSITY = {"fc": 0.005, "conv": 0.015}
"""The fewest weights SparseComp can be expected to keep, per layer kind: about twice the strongest
compression measured (docs/sparsecomp.md: a fully connected MNIST MLP at 108x its float32 bytes, about 1 %
of its weights; convolutional models at 4.6-36x). A model whose parameters exceed the budget even at
these densities (:func:`compression_floor`) is rejected before separate/sparsify spend minutes on it."""


def compression_floor(size: ModelSize) -> int:
    """The parameter bytes of ``size``'s model if every layer kept only :data:`STRONGEST_DENSITY` of its
    weights (biases, shifts, descriptors and the other constants as they are): a lower bound of what
    separate + sparsify can reach."""
    return sum(layer.bytes_at(max(1, math.ceil(layer.weights * STRONGEST_DENSITY[layer.op])))
               for layer in size.layers) + size.other_bytes


LUT_TABLE_BYTES = 2 * 1025
"""The largest lut table (backends/lower_lut.py: 1024 segments)."""
ALIAS_OPS = ("Relu", "Clip", "LeakyRelu", "Flatten", "Reshape", "Softmax", "LogSoftmax", "Sigmoid")
"""Nodes that get no buffer of their own: lower fuses the activations into the layer before them
(or runs them in place), Flatten/Reshape are views and a final Softmax, LogSoftmax or Sigmoid is
dropped."""


def fram_overhead(model: OnnxModel, sram_bytes: int, stack_bytes: int = DEFAULT_STACK_BYTES) -> int:
    """FRAM the model needs besides its parameters: code and FRAM activations (an estimate).

    Code: plan-memory's fallback estimate (``RUNTIME_CODE_BYTES`` + ``CODE_BYTES_PER_STEP`` per
    step). Activations: a step whose Q15 input(s) and output do not fit in ``sram_bytes -
    stack_bytes`` together moves its largest tensor to FRAM (what plan-memory does while SRAM is over
    budget); the distinct tensors moved are summed (no reuse assumed, so the estimate errs high).
    Activation functions, Flatten/Reshape and Softmax are no steps (see :data:`ALIAS_OPS`); an
    element-wise region (passes/elementwise.py) is one step reading its base, plus its table (at most
    ``LUT_TABLE_BYTES``; one per function).
    """
    from passes.elementwise import find_regions

    canonical: dict[str, str] = {}
    steps: list[gs.Node] = []
    regions = find_regions(model.graph)
    outputs = {id(r.output.inputs[0]) for r in regions}
    inner = {id(n) for r in regions for n in r.nodes} - outputs
    tables = LUT_TABLE_BYTES * len({r.key for r in regions})
    for node in model.graph.nodes:
        source = node.inputs[0] if node.inputs else None
        if id(node) in inner:
            continue
        if node.op in ALIAS_OPS and id(node) not in outputs and isinstance(source, gs.Variable) and node.outputs:
            canonical[node.outputs[0].name] = canonical.get(source.name, source.name)
        else:
            steps.append(node)
    room = max(sram_bytes - stack_bytes, 0)
    moved: dict[str, int] = {}
    for node in steps:
        sizes: dict[str, int] = {}
        for t in [*node.inputs, *node.outputs]:
            shape = static_shape(t) if isinstance(t, gs.Variable) else None
            if shape:
                sizes[canonical.get(t.name, t.name)] = 2 * int(np.prod(shape))
        if sizes and sum(sizes.values()) > room:
            name = max(sizes, key=lambda k: (sizes[k], k))
            moved[name] = sizes[name]
    return RUNTIME_CODE_BYTES + CODE_BYTES_PER_STEP * len(steps) + sum(moved.values()) + tables


@dataclass(frozen=True)
class FramOverhead:
    """What a model needs in FRAM besides its parameters, by part (bytes): see
    :func:`measured_fram_overhead`."""

    code: int
    """Generated C and the runtime kernels it calls, as the model is."""
    tables: int
    """Read-only tables: descriptors, the step table and lut tables."""
    activations: int
    """Activations plan-memory puts in FRAM (all of them in a persistent/intermittent build)."""
    compression_code: int
    """What compression may add to the code: the sparse kernels and the steps of separated layers."""
    gnet: int = 0
    """The gNet head's weights and bias (attach-gnet runs after compression and is not pruned); its
    code, descriptors and feature vector are in the other parts."""

    @property
    def uncompressed(self) -> int:
        """The overhead of the model as it is."""
        return self.code + self.tables + self.activations + self.gnet

    @property
    def total(self) -> int:
        return self.uncompressed + self.compression_code


def measured_fram_overhead(model: OnnxModel, sram_bytes: int, stack_bytes: int = DEFAULT_STACK_BYTES,
                           persistent: bool = False, gnet: str | None = None, data: Any = None) -> FramOverhead:
    """FRAM the model needs besides its parameters, measured: :func:`fram_overhead` guesses, this lowers.

    The (dense) model goes through ``quantize,lower,plan-memory`` with an unbounded FRAM and the
    given SRAM, stack and ``persistent`` (every activation in FRAM, the intermittent build); the
    overhead is plan-memory's code estimate (the generated C and the runtime kernels it calls, from
    passes/msp430_code_sizes.py), its read-only tables (descriptors, step table), the FRAM
    activations and the lut tables (constants that are no parameters of the ONNX model), plus what
    compression may add: the sparse kernels' code and two more generated steps per Gemm/Conv
    (`separate` splits a layer into two or three). Quantize has no data here: it derives ranges from
    the weights, which does not change any buffer's size.

    ``gnet``: the ``attach-gnet{...}`` spec the build will run after compression; the measure then
    attaches that head untrained (``epochs=0``, no baseline; its exit maps are computed on the first
    64 samples of ``data``), so its steps, descriptors and FRAM features count, and its weights are
    :attr:`FramOverhead.gnet`.
    """
    import warnings

    from passes.plan_memory import GENERATED_CODE, runtime_bytes
    from transpiler.manager import run_pipeline
    from transpiler.pass_infra import PassContext

    plan = f"plan-memory{{fram={1 << 30},stack={stack_bytes},persistent={str(persistent).lower()}}}"
    context = PassContext(sram_bytes=sram_bytes, fram_bytes=1 << 30,
                          data=data.take(64) if gnet is not None and data is not None else None)
    head = f"{_untrained(gnet)}," if gnet is not None else ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program, _ = run_pipeline(model.copy(), f"normalize,{head}quantize,lower,{plan}", context, verify=False)
    stats = context.extra["plan-memory"]
    large = stats["memory_model"] == "large"
    ops = {step.op for step in program.steps}
    sparse = ops | {f"{op}_sparse" for op in ops if op in ("fc", "conv")}
    sparse_code = runtime_bytes(sparse, large)[0] - runtime_bytes(ops, large)[0]
    layers = sum(1 for step in program.steps if step.op in ("fc", "conv"))
    more_steps = 2 * layers * int(GENERATED_CODE["large" if large else "small"]["step"])
    luts = sum(program.buffers[name].nbytes for name in {s.inputs[1] for s in program.steps if s.op == "lut"})
    return FramOverhead(code=int(stats["code_estimate"]), tables=int(stats["rodata_estimate"]) + luts,
                        activations=int(stats["fram_activations"]) + int(stats["hifram_activations"]),
                        compression_code=sparse_code + more_steps,
                        gnet=int(context.extra["attach-gnet"]["gnet"]["fram_weight_bytes"]) if gnet is not None else 0)


def _untrained(gnet: str) -> str:
    """The attach-gnet spec ``gnet`` with no training (``epochs=0``) and no baseline: the head's shape
    is all a size measure needs."""
    from transpiler.pipeline import format_pipeline, parse_pipeline

    spec = parse_pipeline(gnet)[0]
    spec.options.update({"epochs": 0, "baseline": "none"})
    spec.raw.clear()
    return format_pipeline([spec])


def weight_budget(model: OnnxModel, fram_bytes: int, sram_bytes: int,
                  stack_bytes: int = DEFAULT_STACK_BYTES, *, measured: bool = False,
                  persistent: bool = False) -> int:
    """The parameter bytes (:func:`model_size`) that leave room for the rest in ``fram_bytes``:
    ``fram_bytes * (1 - FRAM_MARGIN) - overhead``, at least 0; the overhead is
    :func:`measured_fram_overhead` with ``measured`` (what the compile command uses), else the quick
    guess :func:`fram_overhead`."""
    overhead = (measured_fram_overhead(model, sram_bytes, stack_bytes, persistent).total if measured
                else fram_overhead(model, sram_bytes, stack_bytes))
    return max(int(fram_bytes * (1.0 - FRAM_MARGIN)) - overhead, 0)


__all__ = ["FramOverhead", "LayerSize", "ModelSize", "compression_floor", "embedding_bytes", "float32_bytes", "fram_overhead", "layer_size", "measured_fram_overhead",
           "model_size", "sparse_form_bytes", "weight_budget"]
