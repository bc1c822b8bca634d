"""Buffer lifetimes in step indices, for the memory planner and the verifier's overlap check.

A buffer that owns storage (not an alias) is live over the closed interval ``[first, last]`` of
step indices in which its bytes must be kept:

- from the step that writes it (or one that reads it, in a malformed program) to the last step that
  reads or writes it; reads and writes through aliases count for the aliased buffer;
- program inputs are live from step 0, program outputs up to the last step;
- constants are live for the whole program;
- a buffer nothing uses gets the empty interval ``(0, -1)``;
- the gNet feature vector (written by ``gnet_feature`` steps) and every buffer of an on-demand step
  (the gNet head, which the runtime may run between any two steps) are live for the whole program:
  the vector is zeroed when an inference starts and read whenever the head is asked.

Two buffers may share bytes exactly when their intervals are disjoint (:func:`overlaps`). A step's
inputs and outputs are all live at that step, so a step never gets an output placed over one of
its inputs.
"""

from __future__ import annotations

from transpiler.lir.ir import Program
from transpiler.lir.ops import ON_DEMAND_OPS, PARTIAL_WRITE_OPS


def _root(p: Program, name: str) -> str | None:
    """The storage buffer behind `name`, or None if `name` (or an alias on the way) is undefined
    or the aliases form a cycle."""
    seen: set[str] = set()
    while True:
        buf = p.buffers.get(name)
        if buf is None or name in seen:
            return None
        if buf.alias is None:
            return name
        seen.add(name)
        name = buf.alias


def liveness(p: Program) -> dict[str, tuple[int, int]]:
    """Live interval ``(first, last)`` of every non-alias buffer of `p` (see the module docstring).

    Names of undefined buffers used by steps are ignored (the verifier reports them).
    """
    end = max(len(p.steps) - 1, 0)
    uses: dict[str, list[int]] = {name: [] for name, b in p.buffers.items() if b.alias is None}
    for i, step in enumerate(p.steps):
        for name in (*step.inputs, *step.outputs):
            root = _root(p, name)
            if root is not None:
                uses[root].append(i)
    for port in p.inputs:
        root = _root(p, port.buffer)
        if root is not None:
            uses[root].append(0)
    for port in p.outputs:
        root = _root(p, port.buffer)
        if root is not None:
            uses[root].append(end)
    whole: set[str] = set()
    for step in p.steps:
        names = (*step.inputs, *step.outputs) if step.op in ON_DEMAND_OPS else \
            tuple(step.outputs) if step.op in PARTIAL_WRITE_OPS else ()
        whole.update(r for r in (_root(p, n) for n in names) if r is not None)
    result: dict[str, tuple[int, int]] = {}
    for name, idx in uses.items():
        if p.buffers[name].is_const or name in whole:
            result[name] = (0, end)
        elif idx:
            result[name] = (min(idx), max(idx))
        else:
            result[name] = (0, -1)
    return result


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two live intervals share a step (empty intervals share none)."""
    if a[0] > a[1] or b[0] > b[1]:
        return False
    return a[0] <= b[1] and b[0] <= a[1]
