"""Dead hidden units of pruned fully connected chains, and their removal (used by `sparsify`).

Deep pruning leaves hidden units that no longer matter, and each still costs FRAM: a bias (4 B), a
requantisation shift (1 B) and a row pointer (2 B). In a chain ::

    h = Gemm(x, A[N, K], a)  [-> act(h)]  -> y = Gemm(., B[M, N], b)

(``act`` Relu, LeakyRelu or Clip; ``h`` read by nothing else and not a graph output) unit ``j`` is

- *unused* when column ``j`` of ``B`` is all zero: row ``j`` of ``A`` and ``a[j]`` go;
- *constant* when row ``j`` of ``A`` is all zero: ``h_j = act(a[j])`` for every input, so
  ``b += B[:, j] * act(a[j])`` and the unit goes (row ``j`` of ``A``, column ``j`` of ``B``).

Both rewrites compute exactly what the pruned model computes. Removing a unit can make another one
dead (a row of ``B`` whose only weights were in removed columns), so :func:`plan_removal` repeats
until nothing changes. It works on masks only, which is how `sparsify` counts the bytes of a
candidate state (:func:`shrunk_shapes`) before :func:`remove_units` rewrites the model at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from passes.normalize_util import consumers, is_graph_output
from transpiler.model import OnnxModel

ACTIVATIONS = ("Relu", "LeakyRelu", "Clip")


@dataclass(frozen=True)
class Chain:
    """Gemm ``first`` -> optional activation ``act`` -> Gemm ``second`` over one hidden tensor."""

    first: gs.Node
    act: gs.Node | None
    second: gs.Node

    @property
    def first_weight(self) -> str:
        return str(self.first.inputs[1].name)

    @property
    def second_weight(self) -> str:
        return str(self.second.inputs[1].name)


def _sole_reader(graph: gs.Graph, tensor: gs.Tensor) -> gs.Node | None:
    readers = consumers(tensor)
    if len(readers) != 1 or is_graph_output(graph, tensor):
        return None
    return readers[0]


def _gemm(node: gs.Node | None) -> bool:
    return (node is not None and node.op == "Gemm" and len(node.inputs) >= 2
            and isinstance(node.inputs[1], gs.Constant) and int(node.attrs.get("transB", 0)) == 1
            and int(node.attrs.get("transA", 0)) == 0 and float(node.attrs.get("alpha", 1.0)) == 1.0
            and float(node.attrs.get("beta", 1.0)) == 1.0)


def find_chains(model: OnnxModel) -> list[Chain]:
    """Every Gemm -> [activation] -> Gemm chain whose hidden tensor nothing else reads (graph order)."""
    graph = model.graph
    found = []
    for node in graph.nodes:
        if not _gemm(node):
            continue
        reader = _sole_reader(graph, node.outputs[0])
        act = None
        if reader is not None and reader.op in ACTIVATIONS:
            if reader.op == "Clip" and any(not isinstance(t, gs.Constant) for t in reader.inputs[1:] if t.name):
                continue
            act, reader = reader, _sole_reader(graph, reader.outputs[0])
        if _gemm(reader) and reader is not None and reader.inputs[0] is (act.outputs[0] if act else node.outputs[0]):
            found.append(Chain(node, act, reader))
    return found


@dataclass(frozen=True)
class Removal:
    """Units removed from one chain's hidden tensor in one round."""

    chain: int
    unused: tuple[int, ...]     # positions in the hidden tensor as it was in that round
    constant: tuple[int, ...]
    unused_units: tuple[int, ...] = ()     # the same units, numbered as in the unshrunk model
    constant_units: tuple[int, ...] = ()


def plan_removal(chains: list[Chain], masks: Mapping[str, np.ndarray]) -> tuple[list[Removal], dict[str, np.ndarray]]:
    """The removals, round by round until none is left, and the masks they leave (copies).

    ``masks`` maps weight names to boolean masks (True: kept); weights not in it count as dense.
    """
    current = {name: np.asarray(m, dtype=bool).copy() for name, m in masks.items()}

    def mask_of(name: str, node: gs.Node) -> np.ndarray:
        if name not in current:
            current[name] = np.ones(np.asarray(node.inputs[1].values).shape, dtype=bool)
        return current[name]

    removals: list[Removal] = []
    alive = {i: np.arange(mask_of(c.first_weight, c.first).shape[0]) for i, c in enumerate(chains)}
    changed = True
    while changed:
        changed = False
        for index, chain in enumerate(chains):
            a = mask_of(chain.first_weight, chain.first)
            b = mask_of(chain.second_weight, chain.second)
            if a.shape[0] <= 1:
                continue
            unused = ~b.any(axis=0)
            constant = ~a.any(axis=1) & ~unused
            gone = unused | constant
            if not gone.any():
                continue
            if gone.all():            # keep one unit so no tensor becomes empty
                keep = int(np.flatnonzero(gone)[0])
                gone[keep] = unused[keep] = constant[keep] = False
                if not gone.any():
                    continue
            removals.append(Removal(index, tuple(np.flatnonzero(unused).tolist()),
                                    tuple(np.flatnonzero(constant).tolist()),
                                    tuple(alive[index][unused].tolist()), tuple(alive[index][constant].tolist())))
            alive[index] = alive[index][~gone]
            current[chain.first_weight] = a[~gone]
            current[chain.second_weight] = b[:, ~gone]
            changed = True
    return removals, current


def shrunk_shapes(chains: list[Chain], masks: Mapping[str, np.ndarray]) -> dict[str, tuple[tuple[int, ...], int]]:
    """Weight name -> (shape, kept weights) after :func:`plan_removal`, for the weights it changes."""
    removals, after = plan_removal(chains, masks)
    touched = {chains[r.chain].first_weight for r in removals} | {chains[r.chain].second_weight for r in removals}
    return {name: (tuple(after[name].shape), int(after[name].sum())) for name in touched}


def _activation(node: gs.Node | None, values: np.ndarray) -> np.ndarray:
    """What the chain's activation makes of constant pre-activations."""
    if node is None:
        return values
    if node.op == "Relu":
        return np.maximum(values, 0)
    if node.op == "LeakyRelu":
        alpha = float(node.attrs.get("alpha", 0.01))
        return np.where(values > 0, values, alpha * values)
    lo = np.asarray(node.inputs[1].values).item() if len(node.inputs) > 1 and node.inputs[1].name else -np.inf
    hi = np.asarray(node.inputs[2].values).item() if len(node.inputs) > 2 and node.inputs[2].name else np.inf
    return np.clip(values, lo, hi)


def _bias(node: gs.Node, n: int, dtype: np.dtype, name: str) -> gs.Constant:
    """The Gemm's bias constant, created (zeros) when it has none."""
    if len(node.inputs) > 2 and isinstance(node.inputs[2], gs.Constant):
        return node.inputs[2]
    bias = gs.Constant(name, np.zeros(n, dtype=dtype))
    if len(node.inputs) > 2:
        node.inputs[2] = bias
    else:
        node.inputs.append(bias)
    return bias


def remove_units(model: OnnxModel, masks: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[dict[str, object]]]:
    """Remove the dead units of every chain from ``model`` (weights, biases, hidden shapes).

    Returns the masks after the removal (for every weight of a chain, keyed by name) and one record
    per chain that changed: ``{first, second, unused, constant, units_before, units_after}``.
    """
    chains = find_chains(model)
    removals, after = plan_removal(chains, masks)
    names = {n.name for n in model.graph.nodes} | set(model.graph.tensors())
    records: dict[int, dict[str, object]] = {}
    for removal in removals:
        chain = chains[removal.chain]
        wa = np.asarray(chain.first.inputs[1].values)
        wb = np.asarray(chain.second.inputs[1].values)
        bias_a = _bias(chain.first, wa.shape[0], wa.dtype, _fresh(names, f"{chain.first.name}_bias"))
        bias_b = _bias(chain.second, wb.shape[0], wb.dtype, _fresh(names, f"{chain.second.name}_bias"))
        a_values = np.asarray(bias_a.values).reshape(-1)
        b_values = np.asarray(bias_b.values).reshape(-1).astype(np.float64)
        constant = list(removal.constant)
        if constant:
            h = _activation(chain.act, a_values[constant].astype(np.float64))
            b_values = b_values + wb[:, constant].astype(np.float64) @ h
        keep = np.ones(wa.shape[0], dtype=bool)
        keep[list(removal.unused) + constant] = False
        chain.first.inputs[1].values = np.ascontiguousarray(wa[keep])
        bias_a.values = np.ascontiguousarray(a_values[keep])
        chain.second.inputs[1].values = np.ascontiguousarray(wb[:, keep])
        bias_b.values = b_values.astype(wb.dtype)
        units = int(keep.sum())
        for tensor in [chain.first.outputs[0], *(chain.act.outputs[:1] if chain.act else [])]:
            tensor.shape = [1, units]
        record = records.setdefault(removal.chain, {"first": chain.first.name, "second": chain.second.name,
                                                    "unused": 0, "constant": 0, "units_before": wa.shape[0]})
        record["unused"] = int(record["unused"]) + len(removal.unused)    # type: ignore[call-overload]
        record["constant"] = int(record["constant"]) + len(constant)      # type: ignore[call-overload]
        record["units_after"] = units
    changed = {chains[r.chain].first_weight for r in removals} | {chains[r.chain].second_weight for r in removals}
    return {name: after[name] for name in changed}, list(records.values())


def _fresh(used: set[str], base: str) -> str:
    name, n = base, 1
    while name in used:
        name = f"{base}_{n}"
        n += 1
    used.add(name)
    return name


__all__ = ["Chain", "Removal", "find_chains", "plan_removal", "remove_units", "shrunk_shapes"]
