"""`attach-gnet`: one shared early-exit classifier (FreeML's gNet) over pooled features of every exit.

FreeML's gNet (RESEARCH.md): the frozen backbone's output after each block is pooled to a small
fixed size, the pooled features of all exits are concatenated in a fixed order and ONE linear
classifier reads them. Exit ``k`` is that classifier applied to the features of exits ``1..k``
with the features of the exits that have not run yet replaced by zeros, so the device keeps one
feature vector ``F`` in FRAM, fills exit ``k``'s slice when the backbone passes exit point ``k``
and can answer at any moment by running the head over ``F``.

What the pass adds to the ONNX graph (plain ONNX: onnxruntime runs every exit)::

    x -> Conv -> Relu -> ... -> Gemm -> logits                 (backbone, unchanged)
              |  (exit 1)          |  (exit K)
              v                    v
    f_1 = Flatten(MaxPool(e_1))    f_K = e_K (an fc output of at most fc_max values)
    gnet_exit_k = Gemm(Concat(f_1, .., f_k, Z_(k+1), .., Z_K), gnet_W, gnet_b)     k = 1..K

``Z_j`` are zero initializers of f_j's size; ``gnet_W`` / ``gnet_b`` are shared by the K Gemm
nodes. Each exit's pooling is adaptive: a ``[C, H, W]`` map becomes ``[C, ph, pw]`` through a
MaxPool (or AveragePool, ``pool-op=avg``; GlobalAveragePool for ``1x1``) with stride ``floor(H/ph)``
and kernel ``H - (ph-1)*stride`` (windows cover the whole map); a 1-D map ``[C, L]`` pools ``L`` to
``pw``; a vector ``[N]`` is used as is when ``N <= fc_max``, else max-pooled with kernel = stride =
``ceil(N / fc_max)`` (the last window padded). With ``conv1x1=r`` a bias-free 1x1 convolution first
reduces a map with more than ``r`` channels to ``r`` (trained with the head; zero in -> zero out,
so a zero exit map still gives zero features).

Exits: ``exits`` names node or tensor names, or a path component of a node name (``conv1`` matches
``/conv1/Conv``); a Conv/Gemm (or a node named by it) stands for its block output: the tensor after
its fused per-channel Add and activation (Relu/Clip/LeakyRelu). The default is every Conv/Gemm block
except the final classifier (the one whose output is, or feeds a Softmax that is, a graph output).
Exits are numbered 1..K in topological order.

Training (``PassContext.data``, the numpy engine in passes/train): the backbone is frozen; its exit
maps on the data's "train" part (``Dataset.split(seed)``) are computed once, then the head (and the
conv1x1 reductions) learn with Adam: each mini-batch samples an exit ``k`` uniformly and feeds zero
maps for the exits after ``k`` (the same as zero features), with cross-entropy on the labels, or,
when the data has no labels, distillation from the backbone's logits. Per-exit accuracy is measured
on the "val" part (and "test"). The baseline FreeML compares with, one separate linear classifier
per exit (``baseline=full``: on the exit's whole flattened map, the usual early-exit branch;
``baseline=same``: on the same pooled features as gNet; ``none``: skip), is trained the same way and
reported beside it: parameters, FRAM bytes and accuracy per exit.

Annotations: ``gnet`` on ``"graph"`` (see :func:`gnet_record`: exits with their tensor, pooling,
feature tensor, offset and length in ``F``; the head's initializer, node and output names; training
figures) and ``exit-point`` = k on every exit tensor.

Before -> after::

    Conv -> Relu -> MaxPool -> Gemm -> Relu -> Gemm -> logits
    =>
    Conv -> Relu(e1) -> MaxPool -> Gemm -> Relu(e2) -> Gemm -> logits
            e1 -> MaxPool{2x2} -> Flatten -> f1
            gnet_exit_1 = Gemm(Concat(f1, zeros[n2]), gnet_W, gnet_b)
            gnet_exit_2 = Gemm(Concat(f1, e2), gnet_W, gnet_b)
    annotations: gnet on "graph", exit-point=1 on e1, exit-point=2 on e2
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.data import Dataset
from transpiler.errors import DataError, Location, PassError
from passes.tree_ensembles import reject_training
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.classifier_tail import model_classes
from passes.normalize_util import NameSource, consumers, is_const, producer, static_shape
from passes.train import Adam, Net, build_net, cross_entropy, distillation
from passes.train.threads import blas_threads

GNET = "gnet"
EXIT_POINT = "exit-point"
TARGET = "graph"
OUTPUT_PREFIX = "gnet_exit_"
ACTIVATIONS = ("Relu", "Clip", "LeakyRelu")
WEIGHTED = ("Conv", "Gemm")
_POOL = re.compile(r"^\s*([0-9]+)\s*(?:x\s*([0-9]+))?\s*$")


def exit_output(k: int) -> str:
    """The graph output of exit ``k`` (1-based)."""
    return f"{OUTPUT_PREFIX}{k}"


@dataclass(frozen=True)
class AttachGnetOptions:
    """Options of `attach-gnet` (see the module docstring).

    exits: exit points (node/tensor names or name components); empty: every Conv/Gemm block but the
    classifier. pool: one pooled size per exit, or one for all: "2x2", "3" (= 3x3), "1x1", "none".
    pool_op: "max" or "avg". fc_max: vectors longer than this are max-pooled down to it.
    conv1x1: channels of an optional 1x1 reduction before pooling (0: none). epochs, lr, batch_size,
    seed (None: the PassContext's seed): training. loss: "auto" (labels -> ce, else distill), "ce"
    or "distill"; temperature: of the distillation. baseline: "full", "same" or "none".
    warm_start: when the last exit is the unpooled input of the backbone's final Gemm, start the head
    with that Gemm's weights in the last exit's slice (so exit K starts equal to the backbone).
    """

    exits: list[str] = field(default_factory=list)
    pool: list[str] = field(default_factory=lambda: ["2x2"])
    pool_op: Literal["max", "avg"] = "max"
    fc_max: int = 128
    conv1x1: int = 0
    epochs: int = 40
    lr: float = 5e-3
    batch_size: int = 32
    seed: int | None = None
    loss: Literal["auto", "ce", "distill"] = "auto"
    temperature: float = 2.0
    baseline: Literal["full", "same", "none"] = "full"
    warm_start: bool = True


# --------------------------------------------------------------------------- exits
@dataclass
class ExitPlan:
    """One exit: the backbone tensor it reads, how it is pooled, the feature tensor it yields."""

    index: int                        # 1-based
    tensor: gs.Variable               # the exit map [1, C, H, W] / [1, C, L] / [1, N]
    node: gs.Node                     # the node that writes it
    pool: tuple[int, int] | None      # pooled (ph, pw) of a map; None: used as is
    feature: gs.Variable | None = None
    length: int = 0
    offset: int = 0
    nodes: list[gs.Node] = field(default_factory=list)
    reduce: gs.Constant | None = None


def _where(model: OnnxModel, node: str | None = None) -> Location:
    return Location(file=model.source, pass_name="attach-gnet", node=node)


def _order(graph: gs.Graph) -> list[gs.Node]:
    """Nodes in topological order (ties: graph order)."""
    produced = {id(t): i for i, n in enumerate(graph.nodes) for t in n.outputs}
    deps = [{produced[id(t)] for t in n.inputs if id(t) in produced} for n in graph.nodes]
    done: list[int] = []
    seen: set[int] = set()
    while len(done) < len(graph.nodes):
        progress = False
        for i in range(len(graph.nodes)):
            if i not in seen and deps[i] <= seen:
                seen.add(i)
                done.append(i)
                progress = True
        if not progress:
            raise PassError("the graph has a cycle", hint="a model must be a directed acyclic graph")
    return [graph.nodes[i] for i in done]


def block_output(graph: gs.Graph, node: gs.Node) -> gs.Variable:
    """The tensor after ``node`` and what `lower` fuses into it (a per-channel constant Add, an
    activation), following single-consumer edges that are not graph outputs."""
    out = node.outputs[0]
    outputs = {t.name for t in graph.outputs}
    for ops in (("Add",), ACTIVATIONS):
        users = consumers(out)
        if len(users) != 1 or out.name in outputs or users[0].op not in ops:
            continue
        nxt = users[0]
        if nxt.op == "Add" and not any(is_const(t) for t in nxt.inputs):
            continue
        out = nxt.outputs[0]
    return out


def _is_classifier(graph: gs.Graph, tensor: gs.Tensor) -> bool:
    """Is ``tensor`` a graph output, or the input of a Softmax/Flatten/Reshape chain to one?"""
    outputs = {t.name for t in graph.outputs}
    for _ in range(4):
        if tensor.name in outputs:
            return True
        users = consumers(tensor)
        if len(users) != 1 or users[0].op not in ("Softmax", "Flatten", "Reshape"):
            return False
        tensor = users[0].outputs[0]
    return tensor.name in outputs


def default_exits(graph: gs.Graph) -> list[gs.Variable]:
    """Every Conv/Gemm block output in topological order except the final classifier's."""
    found: list[gs.Variable] = []
    for node in _order(graph):
        if node.op in WEIGHTED and node.outputs:
            out = block_output(graph, node)
            if not _is_classifier(graph, out) and out not in found:
                found.append(out)
    return found


def resolve_exit(model: OnnxModel, name: str) -> gs.Variable:
    """The exit tensor a user's name stands for (tensor, node, origin name or name component)."""
    graph = model.graph
    tensors = graph.tensors()
    found = tensors.get(name)
    if isinstance(found, gs.Variable) and found.inputs:
        node = producer(found)
        return block_output(graph, node) if node is not None and node.op in WEIGHTED and \
            node.outputs[0] is found else found
    by_name = [n for n in graph.nodes if n.name == name or name in (model.annotations.get(n.name, "origin") or [])]
    if not by_name:
        by_name = [n for n in graph.nodes if name in re.split(r"[/.:]", n.name)]
        weighted = [n for n in by_name if n.op in WEIGHTED]
        by_name = weighted or by_name
    if len(by_name) == 1:
        node = by_name[0]
        return block_output(graph, node) if node.op in WEIGHTED else node.outputs[0]
    candidates = [n.name for n in graph.nodes if n.op in WEIGHTED]
    if not by_name:
        raise PassError(f"no node or tensor named '{name}' for a gNet exit", location=_where(model),
                        hint=f"name a tensor, a node or a part of a node name; Conv/Gemm nodes: "
                             f"{', '.join(candidates[:12])}")
    raise PassError(f"the exit name '{name}' matches {len(by_name)} nodes: "
                    f"{', '.join(n.name for n in by_name[:8])}", location=_where(model),
                    hint="give the full node or tensor name")


def parse_pool(text: str) -> tuple[int, int] | None:
    """``"2x2"`` -> (2, 2), ``"3"`` -> (3, 3), ``"none"`` -> None."""
    if text.strip().lower() == "none":
        return None
    m = _POOL.match(text)
    if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
        raise PassError(f"pool size '{text}' is not HxW", location=Location(pass_name="attach-gnet"),
                        hint="write e.g. 2x2, 1x1, 3 (= 3x3) or none")
    h = int(m.group(1))
    return h, int(m.group(2)) if m.group(2) is not None else h


def adaptive_window(size: int, out: int) -> tuple[int, int]:
    """(kernel, stride) of a pooling that maps ``size`` positions to ``out`` windows covering all."""
    out = max(1, min(out, size))
    stride = size // out
    return size - (out - 1) * stride, stride


# --------------------------------------------------------------------------- graph building
class _Builder:
    """Adds the gNet nodes to a model (see the module docstring)."""

    def __init__(self, model: OnnxModel, opts: AttachGnetOptions, rng: np.random.Generator) -> None:
        self.model = model
        self.graph = model.graph
        self.opts = opts
        self.rng = rng
        self.names = NameSource(self.graph)
        self.after: dict[int, list[gs.Node]] = {}

    def var(self, base: str, shape: Sequence[int]) -> gs.Variable:
        return gs.Variable(self.names.fresh(base), dtype=np.float32, shape=[int(d) for d in shape])

    def node(self, ex: ExitPlan, op: str, base: str, inputs: list[gs.Tensor], out_shape: Sequence[int],
             attrs: dict[str, Any] | None = None) -> gs.Variable:
        out = self.var(f"{base}_out", out_shape)
        node = gs.Node(op=op, name=self.names.fresh(base), attrs=dict(attrs or {}), inputs=inputs, outputs=[out])
        ex.nodes.append(node)
        return out

    def features(self, ex: ExitPlan) -> None:
        """Reduction, pooling and flattening of one exit; sets ex.feature / ex.length."""
        k, t = ex.index, ex.tensor
        shape = static_shape(t)
        if shape is None or len(shape) not in (2, 3, 4) or shape[0] != 1:
            raise PassError(f"exit {k} '{t.name}' has shape {shape}; gNet reads [1,C,H,W], [1,C,L] or [1,N]",
                            location=_where(self.model, ex.node.name), hint="choose another exit point")
        opts = self.opts
        cur: gs.Variable = t
        if len(shape) == 2:
            n = shape[1]
            if n > opts.fc_max:
                kern = -(-n // opts.fc_max)
                m = -(-n // kern)
                r = self.node(ex, "Reshape", f"gnet_vec_{k}",
                              [cur, gs.Constant(self.names.fresh(f"gnet_vec_shape_{k}"),
                                                np.array([1, 1, n], dtype=np.int64))], [1, 1, n])
                attrs: dict[str, Any] = {"kernel_shape": [kern], "strides": [kern], "pads": [0, kern * m - n]}
                if opts.pool_op == "avg":
                    attrs["count_include_pad"] = 0
                p = self.node(ex, "MaxPool" if opts.pool_op == "max" else "AveragePool", f"gnet_pool_{k}",
                              [r], [1, 1, m], attrs)
                cur = self.node(ex, "Flatten", f"gnet_flatten_{k}", [p], [1, m], {"axis": 1})
                ex.pool = (1, m)
            else:
                ex.pool = None
            ex.feature, ex.length = cur, int(static_shape(cur)[1])  # type: ignore[index]
            return
        spatial = list(shape[2:])
        channels = shape[1]
        if opts.conv1x1 and channels > opts.conv1x1:
            r_ch = opts.conv1x1
            kernel = [1] * len(spatial)
            fan_in = channels
            w = (self.rng.standard_normal((r_ch, channels, *kernel)) * math.sqrt(2.0 / fan_in)).astype(np.float32)
            ex.reduce = gs.Constant(self.names.fresh(f"gnet_reduce_{k}_W"), w)
            cur = self.node(ex, "Conv", f"gnet_reduce_{k}", [cur, ex.reduce], [1, r_ch, *spatial],
                            {"kernel_shape": kernel, "strides": [1] * len(spatial), "pads": [0] * 2 * len(spatial),
                             "dilations": [1] * len(spatial), "group": 1})
            channels = r_ch
        ph, pw = ex.pool if ex.pool is not None else (spatial[0] if len(spatial) == 2 else 1, spatial[-1])
        want = [min(ph, spatial[0]), min(pw, spatial[1])] if len(spatial) == 2 else [min(pw, spatial[0])]
        ex.pool = (want[0], want[1]) if len(want) == 2 else (1, want[0])
        if want != spatial:
            if opts.pool_op == "avg" and all(w == 1 for w in want):
                cur = self.node(ex, "GlobalAveragePool", f"gnet_pool_{k}", [cur], [1, channels, *want])
            else:
                kernels, strides = zip(*(adaptive_window(s, o) for s, o in zip(spatial, want)))
                attrs = {"kernel_shape": list(kernels), "strides": list(strides), "pads": [0] * 2 * len(spatial)}
                if opts.pool_op == "max":
                    attrs["dilations"] = [1] * len(spatial)
                    op = "MaxPool"
                else:
                    attrs["count_include_pad"] = 0
                    op = "AveragePool"
                cur = self.node(ex, op, f"gnet_pool_{k}", [cur], [1, channels, *want], attrs)
        n = channels * int(np.prod(want))
        ex.feature = self.node(ex, "Flatten", f"gnet_flatten_{k}", [cur], [1, n], {"axis": 1})
        ex.length = n

    def place(self, exits: list[ExitPlan]) -> None:
        """Insert every exit's nodes right after the node that writes its exit map."""
        nodes = list(self.graph.nodes)
        by_producer: dict[int, list[gs.Node]] = {}
        for ex in exits:
            by_producer.setdefault(id(ex.node), []).extend(ex.nodes)
        ordered: list[gs.Node] = []
        for node in nodes:
            ordered.append(node)
            ordered.extend(by_producer.get(id(node), []))
        self.graph.nodes.clear()
        self.graph.nodes.extend(ordered)


@dataclass
class Head:
    """The shared classifier and the nodes that apply it at every exit."""

    weight: gs.Constant
    bias: gs.Constant
    zeros: list[gs.Constant]          # the zero features of exits 2..K
    concats: list[gs.Node]
    gemms: list[gs.Node]
    outputs: list[gs.Variable]


def build_head(model: OnnxModel, exits: list[ExitPlan], classes: int, names: NameSource) -> Head:
    """The K Concat + Gemm nodes of the exits over shared weights (zero-initialised)."""
    graph = model.graph
    total = sum(ex.length for ex in exits)
    weight = gs.Constant(names.fresh("gnet_W"), np.zeros((classes, total), dtype=np.float32))
    bias = gs.Constant(names.fresh("gnet_b"), np.zeros((classes,), dtype=np.float32))
    zeros = [gs.Constant(names.fresh(f"gnet_zeros_{ex.index}"), np.zeros((1, ex.length), dtype=np.float32))
             for ex in exits[1:]]          # exit 1's features are always there
    taken = {t.name for t in graph.outputs} | set(graph.tensors())
    concats, gemms, outs = [], [], []
    for ex in exits:
        k = ex.index
        name = exit_output(k)
        if name in taken:
            raise PassError(f"the model already has a tensor named '{name}'", location=_where(model),
                            hint="gNet was attached already, or rename that tensor in the exporter")
        parts: list[gs.Tensor] = [e.feature for e in exits[:k]]  # type: ignore[misc]
        parts += zeros[k - 1:]
        cat = gs.Variable(names.fresh(f"gnet_concat_{k}_out"), dtype=np.float32, shape=[1, total])
        out = gs.Variable(name, dtype=np.float32, shape=[1, classes])
        names.used.add(name)
        concat = gs.Node(op="Concat", name=names.fresh(f"gnet_concat_{k}"), attrs={"axis": 1},
                         inputs=parts, outputs=[cat])
        gemm = gs.Node(op="Gemm", name=names.fresh(f"gnet_head_{k}"),
                       attrs={"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1},
                       inputs=[cat, weight, bias], outputs=[out])
        concats.append(concat)
        gemms.append(gemm)
        outs.append(out)
        graph.nodes.extend([concat, gemm])
        graph.outputs.append(out)
    return Head(weight, bias, zeros, concats, gemms, outs)


def _warm_start(model: OnnxModel, exits: Sequence[ExitPlan], head: Head) -> str | None:
    """Copy the backbone classifier into the last exit's slice of the head when that exit is its
    input as is; returns the classifier's node name (None when it does not apply)."""
    last = exits[-1]
    if last.pool is not None or last.feature is not last.tensor:
        return None
    for node in consumers(last.tensor):
        if node.op != "Gemm" or node in head.gemms or not _is_classifier(model.graph, block_output(model.graph, node)):
            continue
        w = node.inputs[1].values if len(node.inputs) > 1 and isinstance(node.inputs[1], gs.Constant) else None
        b = node.inputs[2].values if len(node.inputs) > 2 and isinstance(node.inputs[2], gs.Constant) else None
        weight = np.array(head.weight.values)
        if w is None or w.shape != (weight.shape[0], last.length) or int(node.attrs.get("transB", 0)) != 1:
            continue
        weight[:, last.offset:last.offset + last.length] = w
        head.weight.values = weight.astype(np.float32)
        if b is not None and b.size == weight.shape[0]:
            head.bias.values = np.asarray(b, dtype=np.float32).reshape(-1).copy()
        return str(node.name)
    return None


# --------------------------------------------------------------------------- training
@dataclass
class Cached:
    """Exit maps (inputs of the head network) and targets of one data part."""

    maps: list[np.ndarray]            # one [n, *shape] per exit
    backbone_logits: np.ndarray
    labels: np.ndarray | None

    def __len__(self) -> int:
        return int(self.backbone_logits.shape[0])


def exit_maps(model: OnnxModel, exits: Sequence[gs.Variable], logits_from: Sequence[str],
              data: Dataset, batch: int = 256) -> Cached:
    """The exit maps and the backbone's logits for every sample, with the backbone frozen."""
    net = build_net(model, outputs=list(logits_from))
    names = [t.name for t in exits] + [net.logits]
    parts: list[list[np.ndarray]] = [[] for _ in names]
    with blas_threads(1):
        for chunk in data.batches(batch):
            got = net.forward(chunk.inputs, names, keep=False)
            for i, name in enumerate(names):
                parts[i].append(got[name])
    arrays = [np.concatenate(p, axis=0) for p in parts]
    return Cached(arrays[:-1], arrays[-1].reshape(len(data), -1), data.labels)


def _masked(maps: Sequence[np.ndarray], rows: np.ndarray, k: int) -> list[np.ndarray]:
    """Exit maps of ``rows`` with the maps after exit ``k`` zeroed (-> zero features)."""
    return [m[rows] if i < k else np.zeros((len(rows), *m.shape[1:]), dtype=m.dtype) for i, m in enumerate(maps)]


def head_logits(net: Net, names: Sequence[str], maps: Sequence[np.ndarray], k: int, batch: int = 512) -> np.ndarray:
    """The head's logits at exit ``k`` for every cached sample."""
    n = maps[0].shape[0]
    out = []
    with blas_threads(1):
        for first in range(0, n, batch):
            rows = np.arange(first, min(first + batch, n))
            feeds = dict(zip(names, _masked(maps, rows, k)))
            out.append(net.forward(feeds, [net.logits], keep=False)[net.logits])
    return np.concatenate(out, axis=0).reshape(n, -1)


def accuracy(logits: np.ndarray, cached: Cached) -> float:
    """Top-1 accuracy on the labels, or agreement with the backbone without labels."""
    if len(cached) == 0:
        return float("nan")
    pred = logits.argmax(axis=1)
    ref = cached.labels if cached.labels is not None else cached.backbone_logits.argmax(axis=1)
    return float((pred == np.asarray(ref)).mean())


def train_head(net: Net, names: Sequence[str], train: Cached, *, loss: str, epochs: int, lr: float,
               batch_size: int, seed: int, temperature: float) -> list[float]:
    """Adam on the head network (every parameter of ``net``); one sampled exit per mini-batch."""
    rng = np.random.default_rng(seed)
    opt = Adam(lr=lr)
    n = len(train)
    k_max = len(names)
    history: list[float] = []
    targets = train.labels if loss == "ce" else train.backbone_logits
    assert targets is not None
    with blas_threads(1):
        for _ in range(epochs):
            order = rng.permutation(n)
            total = 0.0
            for first in range(0, n, batch_size):
                rows = order[first:first + batch_size]
                k = int(rng.integers(1, k_max + 1))
                feeds = dict(zip(names, _masked(train.maps, rows, k)))
                logits = net.forward(feeds, [net.logits], keep=True)[net.logits]
                logits = logits.reshape(len(rows), -1)
                if loss == "ce":
                    value, grad = cross_entropy(logits, np.asarray(targets)[rows])
                else:
                    value, grad = distillation(logits, np.asarray(targets, dtype=logits.dtype)[rows], temperature)
                grads = net.backward({net.logits: grad})
                opt.step(net.params(), grads.params)
                total += value * len(rows)
            history.append(total / max(n, 1))
    return history


@dataclass
class LinearExit:
    """A baseline exit: its own linear classifier ``logits = x @ w.T + b`` on one exit's features."""

    w: np.ndarray
    b: np.ndarray

    @property
    def params(self) -> int:
        return int(self.w.size + self.b.size)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1) @ self.w.T + self.b


def train_linear(x: np.ndarray, targets: np.ndarray, classes: int, *, loss: str, epochs: int, lr: float,
                 batch_size: int, seed: int, temperature: float) -> LinearExit:
    """Softmax regression with Adam (the per-exit baseline); deterministic for a seed."""
    flat = x.reshape(len(x), -1).astype(np.float32)
    clf = LinearExit(np.zeros((classes, flat.shape[1]), dtype=np.float32), np.zeros(classes, dtype=np.float32))
    rng = np.random.default_rng(seed)
    opt = Adam(lr=lr)
    with blas_threads(1):
        for _ in range(epochs):
            order = rng.permutation(len(flat))
            for first in range(0, len(flat), batch_size):
                rows = order[first:first + batch_size]
                xb = flat[rows]
                logits = clf.logits(xb)
                if loss == "ce":
                    _, g = cross_entropy(logits, targets[rows])
                else:
                    _, g = distillation(logits, targets[rows].astype(logits.dtype), temperature)
                opt.step({"w": clf.w, "b": clf.b}, {"w": g.T @ xb, "b": g.sum(axis=0)})
    return clf


def pooled(net: Net, names: Sequence[str], features: Sequence[str], maps: Sequence[np.ndarray],
           batch: int = 512) -> list[np.ndarray]:
    """The gNet features of every exit (for the ``baseline=same`` classifiers)."""
    n = maps[0].shape[0]
    out: list[list[np.ndarray]] = [[] for _ in features]
    with blas_threads(1):
        for first in range(0, n, batch):
            rows = np.arange(first, min(first + batch, n))
            got = net.forward(dict(zip(names, [m[rows] for m in maps])), list(features), keep=False)
            for i, f in enumerate(features):
                out[i].append(got[f])
    return [np.concatenate(o, axis=0) for o in out]


# --------------------------------------------------------------------------- sizes
def gnet_sizes(exits: Sequence[ExitPlan], classes: int, reduce_params: int) -> dict[str, int]:
    """Parameters and FRAM bytes of the gNet: weights i16, bias i32, the feature vector F (i16) and
    its exit counter, plus the 1x1 reductions."""
    nf = sum(ex.length for ex in exits)
    params = nf * classes + classes + reduce_params
    return {"params": params, "features": nf,
            "fram_weight_bytes": 2 * (nf * classes + reduce_params) + 4 * classes,
            "fram_feature_bytes": 2 * nf + 2,
            "fram_bytes": 2 * (nf * classes + reduce_params) + 4 * classes + 2 * nf + 2}


def baseline_sizes(lengths: Sequence[int], classes: int) -> dict[str, Any]:
    """Parameters and FRAM bytes (i16 weights, i32 biases) of one linear classifier per exit."""
    per = [n * classes + classes for n in lengths]
    return {"params": sum(per), "params_per_exit": per,
            "fram_bytes": sum(2 * n * classes + 4 * classes for n in lengths)}


# --------------------------------------------------------------------------- the pass
def _labels_or_none(data: Dataset, classes: int) -> np.ndarray | None:
    if data.labels is None:
        return None
    labels = np.asarray(data.labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or (labels.size and (labels.min() < 0 or labels.max() >= classes)):
        return None
    return labels


def gnet_record(model: OnnxModel) -> dict[str, Any] | None:
    """The ``gnet`` annotation of a model (None if attach-gnet did not run)::

        {"exits": [{"index": 1, "tensor": "...", "node": "...", "pool": [2, 2] | null,
                    "feature": "...", "offset": 0, "length": 24, "nodes": [...], "reduce": name|null}, ...],
         "features": 292, "classes": 10,
         "head": {"weight": "gnet_W", "bias": "gnet_b", "concat": [...], "gemm": [...], "zeros": [...]},
         "outputs": ["gnet_exit_1", ...], "backbone_outputs": ["logits"], "training": {...}}
    """
    value = model.annotations.get(TARGET, GNET)
    return value if isinstance(value, dict) else None


def attach(model: OnnxModel, opts: AttachGnetOptions, train: Dataset, evaluate: Mapping[str, Dataset],
           seed: int, say: Any = None) -> dict[str, Any]:
    """Attach and train the gNet on ``train``; measure on each dataset of ``evaluate``. Returns stats.

    The library entry point the pass and bench/gnet.py use (the bench evaluates on the backbone's
    own held-out test data).
    """
    start = time.perf_counter()
    graph = model.graph
    if gnet_record(model) is not None:
        raise PassError("the model has a gNet already", location=_where(model),
                        hint="run attach-gnet once (on the model without gNet outputs)")
    backbone_outputs = [t.name for t in graph.outputs]
    if opts.fc_max < 1 or opts.conv1x1 < 0 or opts.epochs < 0 or opts.lr <= 0 or opts.batch_size < 1:
        raise PassError(f"bad options fc_max={opts.fc_max}, conv1x1={opts.conv1x1}, epochs={opts.epochs}, "
                        f"lr={opts.lr}, batch_size={opts.batch_size}", location=_where(model),
                        hint="fc-max >= 1, conv1x1 >= 0, epochs >= 0, lr > 0, batch-size >= 1")
    reject_training(model, "attach-gnet")
    tensors = [resolve_exit(model, n) for n in opts.exits] if opts.exits else default_exits(graph)
    if not tensors:
        raise PassError("no exit points: the model has no Conv/Gemm block before its classifier",
                        location=_where(model), hint="name exits with attach-gnet{exits=[...]}")
    position = {id(n): i for i, n in enumerate(_order(graph))}
    unique: list[gs.Variable] = []
    for t in tensors:
        if t not in unique:
            unique.append(t)
    unique.sort(key=lambda t: position[id(producer(t))] if producer(t) is not None else -1)
    for t in unique:
        if producer(t) is None:
            raise PassError(f"exit '{t.name}' is a graph input", location=_where(model),
                            hint="exits follow a layer")
    pools = [parse_pool(p) for p in opts.pool] or [(2, 2)]
    if len(pools) not in (1, len(unique)):
        raise PassError(f"{len(pools)} pool sizes for {len(unique)} exits", location=_where(model),
                        hint="give one pool size for all exits or one per exit")
    rng = np.random.default_rng(seed)
    builder = _Builder(model, opts, rng)
    exits = [ExitPlan(k + 1, t, producer(t), pools[k if len(pools) > 1 else 0])  # type: ignore[arg-type]
             for k, t in enumerate(unique)]
    for ex in exits:
        builder.features(ex)
    offset = 0
    for ex in exits:
        ex.offset = offset
        offset += ex.length
    builder.place(exits)

    if train.labels is not None and np.asarray(train.labels).dtype.kind == "f":
        raise PassError("gNet's early exits are classifiers, but the labels 'y' are real numbers (a regressor's)",
                        location=_where(model), hint="attach-gnet needs class-index labels, or no labels")
    # the backbone's logits: classes = size of the first output (or its Softmax input)
    cached = {name: exit_maps(model, unique, backbone_outputs, d) for name, d in
              [("train", train), *evaluate.items()]}
    classes = int(cached["train"].backbone_logits.shape[1])
    head = build_head(model, exits, classes, builder.names)
    labels_ok = _labels_or_none(train, classes) is not None
    loss = opts.loss if opts.loss != "auto" else ("ce" if labels_ok else "distill")
    if loss == "ce" and not labels_ok:
        raise DataError("loss=ce needs class labels 'y' (indices below the model's class count) in the data",
                        location=Location(file=train.source, pass_name="attach-gnet"),
                        hint="add labels to the data file or use attach-gnet{loss=distill}")
    if not labels_ok:   # accuracy then means agreement with the backbone's class
        for part in cached.values():
            part.labels = None

    warm = _warm_start(model, exits, head) if opts.warm_start else None
    map_names = [t.name for t in unique]
    net = build_net(model, inputs=map_names, outputs=[head.outputs[-1].name])
    history = train_head(net, map_names, cached["train"], loss=loss, epochs=opts.epochs, lr=opts.lr,
                         batch_size=opts.batch_size, seed=seed, temperature=opts.temperature)
    net.write_back(model)

    results: dict[str, Any] = {}
    for part, c in cached.items():
        per = [accuracy(head_logits(net, map_names, c.maps, ex.index), c) for ex in exits]
        results[part] = {"gnet": per, "backbone": accuracy(c.backbone_logits, c), "samples": len(c)}

    baseline: dict[str, Any] = {"kind": opts.baseline}
    if opts.baseline != "none":
        if opts.baseline == "same":
            feats = {p: pooled(net, map_names, [ex.feature.name for ex in exits], c.maps)  # type: ignore[union-attr]
                     for p, c in cached.items()}
        else:
            feats = {p: c.maps for p, c in cached.items()}
        tr = cached["train"]
        targets = tr.labels if loss == "ce" else tr.backbone_logits
        assert targets is not None
        clfs = [train_linear(x, np.asarray(targets), classes, loss=loss, epochs=opts.epochs, lr=opts.lr,
                             batch_size=opts.batch_size, seed=seed + k, temperature=opts.temperature)
                for k, x in enumerate(feats["train"])]
        lengths = [int(np.prod(x.shape[1:])) for x in feats["train"]]
        baseline.update(baseline_sizes(lengths, classes))
        baseline["features_per_exit"] = lengths
        for part, c in cached.items():
            results[part]["baseline"] = [accuracy(clf.logits(x), c) for clf, x in zip(clfs, feats[part])]
    reduce_params = sum(int(ex.reduce.values.size) for ex in exits if ex.reduce is not None)
    sizes = gnet_sizes(exits, classes, reduce_params)

    record = {
        "exits": [{"index": ex.index, "tensor": ex.tensor.name, "node": ex.node.name,
                   "pool": list(ex.pool) if ex.pool is not None else None, "pool_op": opts.pool_op,
                   "feature": ex.feature.name if ex.feature is not None else None,
                   "offset": ex.offset, "length": ex.length, "nodes": [n.name for n in ex.nodes],
                   "reduce": ex.reduce.name if ex.reduce is not None else None} for ex in exits],
        "features": sizes["features"], "classes": classes,
        "head": {"weight": head.weight.name, "bias": head.bias.name, "concat": [n.name for n in head.concats],
                 "gemm": [n.name for n in head.gemms], "zeros": [z.name for z in head.zeros]},
        "outputs": [t.name for t in head.outputs], "backbone_outputs": backbone_outputs,
        "training": {"loss": loss, "epochs": opts.epochs, "lr": opts.lr, "seed": seed, "warm_start": warm,
                     "final_loss": history[-1] if history else None},
    }
    model.annotations.set(TARGET, GNET, record)
    for ex in exits:
        model.annotations.set(ex.tensor.name, EXIT_POINT, ex.index)
    stats: dict[str, Any] = {
        "exits": [ex.tensor.name for ex in exits], "pool": [list(ex.pool) if ex.pool else None for ex in exits],
        "feature_lengths": [ex.length for ex in exits], "classes": classes, "loss": loss,
        "gnet": sizes, "baseline": baseline, "accuracy": results, "loss_history": history,
        "seconds": round(time.perf_counter() - start, 3),
    }
    if say is not None:
        val = results.get("val", results["train"])
        say(f"attach-gnet: {len(exits)} exits, {sizes['features']} features, {sizes['params']} params; "
            f"accuracy per exit " + " ".join(f"{a:.3f}" for a in val["gnet"]) + f" (backbone {val['backbone']:.3f})")
    return stats


def summary(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The pass's figures for reports: per-exit accuracy on the held-out "test" part (else "val",
    else "train"), the backbone's, and the sizes of gNet and of the per-exit baseline."""
    acc = stats["accuracy"]
    part = "test" if "test" in acc else ("val" if "val" in acc else "train")
    return {"exits": stats["exits"], "feature_lengths": stats["feature_lengths"], "loss": stats["loss"],
            "accuracy_on": part, "samples": acc[part]["samples"], "backbone_accuracy": acc[part]["backbone"],
            "gnet_accuracy": acc[part]["gnet"], "baseline_accuracy": acc[part].get("baseline"),
            "val_accuracy": acc.get("val", {}).get("gnet"),
            "gnet": stats["gnet"], "baseline": stats["baseline"]}


def summary_lines(g: Mapping[str, Any], indent: str = "  ") -> list[str]:
    """Text lines of :func:`summary`: per-exit accuracy, parameters and FRAM bytes of both."""
    def pct(v: float | None) -> str:
        return "  -  " if v is None else f"{100 * v:5.1f}"

    pad = indent + " " * 12
    what = "agreement with the backbone" if g["loss"] == "distill" else "accuracy"
    lines = [f"{indent}gNet        {len(g['exits'])} exits, {g['gnet']['features']} features; {what} on the "
             f"{g['accuracy_on']} part ({g['samples']} samples), backbone {pct(g['backbone_accuracy']).strip()} %"]
    base = g.get("baseline_accuracy") or [None] * len(g["exits"])
    lines.append(f"{pad}exit  features   gNet %  per-exit %")
    for k, (name, n, a, b) in enumerate(zip(g["exits"], g["feature_lengths"], g["gnet_accuracy"], base), 1):
        lines.append(f"{pad}{k:>4}  {n:>8}   {pct(a)}   {pct(b)}     {name}")
    gn, bl = g["gnet"], g["baseline"]
    lines.append(f"{pad}gNet: {gn['params']:,} params, FRAM {gn['fram_bytes']:,} B "
                 f"(weights {gn['fram_weight_bytes']:,} B + saved features {gn['fram_feature_bytes']:,} B)")
    if bl.get("kind") != "none" and "params" in bl:
        ratio = bl["params"] / max(gn["params"], 1)
        lines.append(f"{pad}per-exit classifiers ({bl['kind']} maps): {bl['params']:,} params, "
                     f"FRAM {bl['fram_bytes']:,} B ({ratio:.1f}x the gNet's parameters)")
    return lines


@register
class AttachGnet(Pass):
    """Attach one shared early-exit head (FreeML gNet) over pooled features of every exit point.

    Before -> after: the backbone unchanged plus ``gnet_exit_k = Gemm(Concat(f_1..f_k, zeros),
    gnet_W, gnet_b)`` outputs for k = 1..K (``f_j`` = exit j's pooled, flattened map), the head
    trained on ``PassContext.data`` with the backbone frozen; annotations ``gnet`` on "graph" and
    ``exit-point`` on the exit tensors (see the module docstring).
    """

    name = "attach-gnet"
    options_type = AttachGnetOptions
    level = "onnx"
    preserves_semantics = True          # the backbone's outputs are unchanged (checked with --verify)
    requires = frozenset({"normal-form"})
    ensures = frozenset({"gnet"})

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        opts: AttachGnetOptions = self.options
        data = self.context.data
        if data is None:
            raise DataError("attach-gnet trains its classifier on data, but none was given",
                            location=_where(model),
                            hint="pass --data samples.npz (inputs, and labels 'y' if you have them)")
        if not isinstance(data, Dataset):
            raise DataError(f"the data must be a transpiler.data.Dataset, got {type(data).__name__}",
                            location=_where(model))
        seed = opts.seed if opts.seed is not None else self.context.seed
        parts = data.with_classes(model_classes(model)).split(seed)
        train = parts["train"] if len(parts["train"]) >= 10 else data
        evaluate = {name: parts[name] for name in ("val", "test") if len(parts[name])}
        stats = attach(model, opts, train, evaluate, seed, self.context.say)
        self.context.extra["attach-gnet"] = stats
        return PassResult(model, True, stats)
