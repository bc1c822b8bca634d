"""The LIR verifier: every rule a Program must follow before it is interpreted, planned or emitted.

``verify_program(p)`` raises one :class:`LirError` that lists every problem, each naming the step
or buffer and, when the program was parsed from text, its ``file:line:col`` (positions come from the
:class:`~transpiler.lir.text.SourceMap` passed in, or the one ``parse_program``/``load_lir``
recorded for `p`). ``check_program(p)`` returns the problems instead of raising.

Checks
------
Buffers: known dtype; every dimension >= 1; q is absent, an int or a list of ints; a known memory
space; an offset only with a space, >= 0 and aligned to the element size; constant data of the
declared shape and dtype; an alias names an existing non-alias, non-constant buffer with the same
element count and dtype, and is not itself a constant.

Ports: they name existing buffers; inputs are not constants; no ONNX name twice.

Steps (op table in :mod:`transpiler.lir.ops`): the op is known; inputs and outputs exist; the input
count (concat: one or more) and one output; attributes (missing, unknown, kind, length, range:
shifts in [-15, 31], add's input shifts in [0, 15], clip lo <= hi in int16, leaky alpha in
[0, 32767], ...); dtypes (activations i16, conv/fc weights i16 and constant, biases i32 and
constant); the output shape equals the op's shape rule (conv/pool size formulas, group divides Cin
and Cout, weight/bias shapes, fc K = input size, concat channel sum, per-channel shift count); every
pooling window sees an input; per-channel weight q has Cout entries (for fc_sparse/conv_sparse
the q list of the values buffer, one entry per output channel); maxpool/avgpool/act keep the
input's q; argmax's output has q = 0; embed's output has its table's (per-tensor) q; dimensions fit the kernels' uint16. Sparse index arrays
(fc_sparse deltas/rowptr, conv_sparse offsets/chanptr): pointers start at 0, never decrease and end
at the value count; indices lie below K (fc) or Cin/group * kh * kw (conv) and strictly increase
within a row/channel.

Dataflow: no step writes a buffer it reads (following aliases); no step writes a constant or a
program input; every activation buffer is written by exactly one step or is a program input; no
buffer is read before it is written; program outputs are written.

gNet (``gnet_feature`` / ``gnet_exit``): several gnet_feature steps may write one feature vector, at
disjoint slices, numbered exit=1, 2, ... in step order; no in-sequence step other than them touches
it; the on-demand head (``gnet_exit``) comes after every in-sequence step, reads a vector that
gnet_feature steps write (its ``exits`` = their count), and its output is neither read by an
in-sequence step nor a program output.

Tiles: as many dims as the op tiles (conv/pools 3, others 1), each in [1, output extent]; at least
one tile per commit.

Memory: buffers placed in the same space whose lifetimes overlap (:func:`liveness`) do not share
bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transpiler.errors import LirError, Location
from transpiler.lir.ir import DTYPES, SPACES, Buffer, Port, Program, Step
from transpiler.lir.liveness import _root, liveness, overlaps
from transpiler.lir.ops import (DIM_MAX, ON_DEMAND_OPS, OPS, PARTIAL_WRITE_OPS, SAME_Q_OPS, SPARSE_OPS,
                                OpSpec, ShapeError, check_attrs)
from transpiler.lir.text import SourceMap, source_map_of


@dataclass
class Problem:
    """One thing wrong with a program: what, about which step or buffer, and where."""

    subject: str
    message: str
    location: Location

    def __str__(self) -> str:
        where = ""
        if self.location.file:
            where = self.location.file
            if self.location.line is not None:
                where += f":{self.location.line}:{self.location.column}"
            where += ": "
        return f"{where}{self.subject}: {self.message}"


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _valid_shape(shape: object) -> bool:
    return isinstance(shape, tuple) and all(_is_int(d) and d >= 1 for d in shape)


class _Checker:
    """Collects the problems of one program."""

    def __init__(self, p: Program, source: SourceMap | None) -> None:
        self.p = p
        self.source = source
        self.problems: list[Problem] = []
        self.bad: set[str] = set()
        """Buffers with a malformed dtype, shape or q (reported once; steps skip typed checks)."""

    # -- reporting -----------------------------------------------------------------------------
    def _loc(self, pos: tuple[int, int] | None, node: str | None = None,
             op: str | None = None) -> Location:
        if self.source is None:
            return Location(node=node, op=op)
        return self.source.location(pos, node=node, op=op)

    def buffer(self, name: str, message: str) -> None:
        pos = self.source.buffer_pos(self.p, name) if self.source else None
        self.problems.append(Problem(f"buffer %{name}", message, self._loc(pos)))

    def step(self, index: int, step: Step, message: str) -> None:
        pos = self.source.step_pos(step) if self.source else None
        self.problems.append(Problem(f"step {index} {step.op} {step.name!r}", message,
                                     self._loc(pos, node=step.name, op=step.op)))

    def port(self, kind: str, port: Port, message: str) -> None:
        pos = self.source.port_pos(port) if self.source else None
        self.problems.append(Problem(f"{kind} {port.onnx_name!r}", message, self._loc(pos)))

    # -- buffers -------------------------------------------------------------------------------
    def check_buffers(self) -> None:
        for name, buf in self.p.buffers.items():
            if buf.name != name:
                self.buffer(name, f"is stored under the key %{name} but named %{buf.name}")
            dtype_ok = isinstance(buf.dtype, str) and buf.dtype in DTYPES
            if not dtype_ok:
                self.buffer(name, f"unknown dtype {buf.dtype!r} (known: {', '.join(DTYPES)})")
            shape_ok = _valid_shape(buf.shape)
            if not shape_ok:
                self.buffer(name, f"shape {buf.shape!r} must be a tuple of Python ints >= 1")
            q = buf.q
            q_ok = q is None or _is_int(q) or (isinstance(q, list) and all(map(_is_int, q)))
            if not q_ok:
                self.buffer(name, f"q={q!r} must be absent, an integer or a list of integers")
            if not (dtype_ok and shape_ok and q_ok):
                self.bad.add(name)
            if buf.space is not None and not (isinstance(buf.space, str) and buf.space in SPACES):
                self.buffer(name, f"unknown memory space {buf.space!r} (known: {', '.join(SPACES)})")
            if buf.offset is not None:
                if buf.space is None:
                    self.buffer(name, f"has offset @{buf.offset} but no memory space")
                if not _is_int(buf.offset):
                    self.buffer(name, f"offset {buf.offset!r} must be an integer")
                elif buf.offset < 0:
                    self.buffer(name, f"negative offset @{buf.offset}")
                elif dtype_ok and buf.offset % DTYPES[buf.dtype].itemsize:
                    self.buffer(name, f"offset @{buf.offset} is not aligned to its element size "
                                      f"{DTYPES[buf.dtype].itemsize}")
            if buf.is_const and dtype_ok and shape_ok:
                data = np.asarray(buf.data)
                if data.shape != buf.shape or data.dtype != DTYPES[buf.dtype]:
                    self.buffer(name, f"constant data is {data.dtype}{list(data.shape)}, declared "
                                      f"{buf.dtype}{list(buf.shape)}")
        for name, buf in self.p.buffers.items():
            if buf.alias is not None:
                self.check_alias(name, buf, _valid_shape(buf.shape))

    def check_alias(self, name: str, buf: Buffer, shape_ok: bool) -> None:
        target = self.p.buffers.get(buf.alias) if buf.alias is not None else None
        if buf.is_const:
            self.buffer(name, f"a constant cannot be an alias (of %{buf.alias})")
        if target is None:
            self.buffer(name, f"alias of %{buf.alias}, which does not exist")
            return
        if target.alias is not None:
            self.buffer(name, f"alias of %{buf.alias}, which is itself an alias of %{target.alias} "
                              f"(alias the storage buffer directly)")
            return
        if target.is_const:
            self.buffer(name, f"alias of the constant %{buf.alias}")
        if shape_ok and _valid_shape(target.shape) and buf.size != target.size:
            self.buffer(name, f"alias has {buf.size} elements {list(buf.shape)}, %{buf.alias} has "
                              f"{target.size} {list(target.shape)}")
        if name not in self.bad and buf.alias not in self.bad and buf.dtype != target.dtype:
            self.buffer(name, f"alias has dtype {buf.dtype}, %{buf.alias} has {target.dtype}")

    # -- ports ---------------------------------------------------------------------------------
    def check_ports(self) -> None:
        for kind, ports in (("input", self.p.inputs), ("output", self.p.outputs)):
            seen: set[str] = set()
            for port in ports:
                if port.onnx_name in seen:
                    self.port(kind, port, f"program {kind} {port.onnx_name!r} listed twice")
                seen.add(port.onnx_name)
                buf = self.p.buffers.get(port.buffer)
                if buf is None:
                    self.port(kind, port, f"names %{port.buffer}, which does not exist")
                elif kind == "input" and buf.is_const:
                    self.port(kind, port, f"names the constant %{port.buffer}")

    # -- steps ---------------------------------------------------------------------------------
    def check_steps(self) -> None:
        p = self.p
        inputs = {r for port in p.inputs if (r := _root(p, port.buffer)) is not None}
        writer: dict[str, int] = {}
        reported_unwritten: set[str] = set()
        for i, step in enumerate(p.steps):
            missing = [n for n in (*step.inputs, *step.outputs) if n not in p.buffers]
            for n in missing:
                role = "input" if n in step.inputs else "output"
                self.step(i, step, f"{role} %{n} does not exist")
            op = OPS.get(step.op)
            if op is None:
                self.step(i, step, f"unknown op {step.op!r} (known: {', '.join(OPS)})")
            else:
                self.check_signature(i, step, op, missing_buffers=bool(missing))
            # dataflow, over the storage behind every name (aliases followed)
            in_roots = {_root(p, n) for n in step.inputs} - {None}
            for n in step.inputs:
                root = _root(p, n)
                if root is None or p.buffers[root].is_const or root in inputs or root in writer:
                    continue
                via = f" (through alias %{n})" if root != n else ""
                self.step(i, step, f"reads %{root}{via} before any step writes it")
                reported_unwritten.add(root)
            for n in step.outputs:
                root = _root(p, n)
                if root is None:
                    continue
                via = f" (through alias %{n})" if root != n else ""
                if root in in_roots:
                    self.step(i, step, f"writes %{root}{via}, which it also reads")
                if p.buffers[root].is_const:
                    self.step(i, step, f"writes the constant %{root}{via}")
                elif root in inputs:
                    self.step(i, step, f"writes the program input %{root}{via}")
                elif root in writer:
                    first = p.steps[writer[root]]
                    if not (step.op in PARTIAL_WRITE_OPS and first.op in PARTIAL_WRITE_OPS):
                        self.step(i, step, f"writes %{root}{via}, already written by step "
                                           f"{writer[root]} {first.name!r}")
                else:
                    writer[root] = i
            if step.tile is not None and op is not None:
                self.check_tile(i, step, op)
        unwritten_outputs: set[str] = set()
        for port in p.outputs:
            root = _root(p, port.buffer)
            if (root is not None and root not in writer and root not in inputs
                    and not p.buffers[root].is_const):
                self.port("output", port, f"%{port.buffer} is never written")
                unwritten_outputs.add(root)
        for name, buf in p.buffers.items():
            if (buf.alias is None and not buf.is_const and name not in writer
                    and name not in inputs and name not in reported_unwritten
                    and name not in unwritten_outputs):
                self.buffer(name, "is never written by any step (and is not a program input)")

    def check_signature(self, i: int, step: Step, op: OpSpec, missing_buffers: bool) -> None:
        p = self.p
        n_in = len(step.inputs)
        count_ok = n_in >= 1 if op.variadic else n_in == len(op.inputs)
        if not count_ok:
            want = "one or more" if op.variadic else str(len(op.inputs))
            self.step(i, step, f"takes {want} inputs ({', '.join(op.inputs)}), got {n_in}")
        if len(step.outputs) != 1:
            self.step(i, step, f"has {len(step.outputs)} outputs, {op.name} has one")
        attr_problems = check_attrs(op, step.attrs)
        for msg in attr_problems:
            self.step(i, step, msg)
        if not count_ok or len(step.outputs) != 1 or missing_buffers:
            return
        if any(n in self.bad for n in (*step.inputs, *step.outputs)):
            return  # the malformed buffer is reported on its own
        ins = [p.buffers[n] for n in step.inputs]
        out = p.buffers[step.outputs[0]]
        typed_ok = True
        for k, buf in enumerate(ins):
            role = op.inputs[min(k, len(op.inputs) - 1)]
            want = op.input_dtypes[min(k, len(op.input_dtypes) - 1)]
            if buf.dtype != want:
                self.step(i, step, f"input {role} %{buf.name} has dtype {buf.dtype}, needs {want}")
                typed_ok = False
            if k in op.weights and not buf.is_const:
                self.step(i, step, f"input {role} %{buf.name} must be a constant")
        if out.dtype != "i16":
            self.step(i, step, f"output %{out.name} has dtype {out.dtype}, needs i16")
        if out.is_const:
            typed_ok = False  # already reported as a write to a constant
        for buf in (*ins, out):
            if not _valid_shape(buf.shape):
                return  # reported with the buffer
            if buf.is_const:
                continue
            big = [d for d in buf.shape if d > DIM_MAX]
            if big:
                self.step(i, step, f"%{buf.name} has dimension {big[0]} > {DIM_MAX} (the kernels "
                                   f"take uint16 sizes)")
        if attr_problems or not typed_ok:
            return
        shapes = [tuple(b.shape) for b in ins]
        try:
            candidates = op.infer(step.attrs, shapes)
        except ShapeError as e:
            self.step(i, step, str(e))
            return
        if tuple(out.shape) not in candidates:
            expected = " or ".join(str(list(c)) for c in candidates)
            self.step(i, step, f"output %{out.name} has shape {list(out.shape)}, expected {expected}")
            return
        for msg in op.check_output(step.attrs, shapes, tuple(out.shape)):
            self.step(i, step, msg)
        datas = [np.asarray(b.data) if b.is_const else None for b in ins]
        for msg in op.check_data(step.attrs, shapes, datas):
            self.step(i, step, msg)
        self.check_q(i, step, op, ins, out)

    def check_q(self, i: int, step: Step, op: OpSpec, ins: list[Buffer], out: Buffer) -> None:
        if op.name == "embed":
            if not isinstance(ins[1].q, int) or out.q != ins[1].q:
                self.step(i, step, f"output %{out.name} has q={out.q}, must equal the table %{ins[1].name}'s "
                                   f"per-tensor q={ins[1].q}")
            return
        if op.weights:
            w = ins[1]
            cout = out.shape[0] if op.name in SPARSE_OPS else w.shape[0]
            if isinstance(w.q, list) and len(w.q) != cout:
                what = "sparse values" if op.name in SPARSE_OPS else "weight"
                self.step(i, step, f"{what} %{w.name} has {len(w.q)} q entries, Cout is {cout}")
        if op.name in SAME_Q_OPS and ins[0].q != out.q:
            self.step(i, step, f"output %{out.name} has q={out.q}, must equal the input's "
                               f"q={ins[0].q}")
        if op.name == "argmax" and out.q != 0:
            self.step(i, step, f"output %{out.name} holds an index and must have q=0, has q={out.q}")

    def check_tile(self, i: int, step: Step, op: OpSpec) -> None:
        tile = step.tile
        assert tile is not None
        if not (isinstance(tile.dims, list) and all(map(_is_int, tile.dims))
                and _is_int(tile.per_commit)):
            self.step(i, step, f"tile {tile.dims!r} x{tile.per_commit!r} must be a list of "
                               f"integers and an integer count")
            return
        if len(tile.dims) != op.tile_rank:
            what = "[channels, rows, cols]" if op.tile_rank == 3 else "[elements]"
            self.step(i, step, f"tile {tile.dims} must have {op.tile_rank} dims {what}")
        elif any(d < 1 for d in tile.dims):
            self.step(i, step, f"tile {tile.dims} has a dimension < 1")
        elif len(step.outputs) == 1 and step.outputs[0] in self.p.buffers:
            out = self.p.buffers[step.outputs[0]]
            extent = list(out.shape) if op.tile_rank == 3 else [out.size]
            if len(extent) == len(tile.dims) and any(d > e for d, e in zip(tile.dims, extent)):
                self.step(i, step, f"tile {tile.dims} exceeds the output extent {extent}")
        if tile.per_commit < 1:
            self.step(i, step, f"tile count x{tile.per_commit} must be >= 1")

    # -- gNet: partial writes and on-demand steps -----------------------------------------------
    def check_gnet(self) -> None:
        """Slices of gnet_feature steps, exit numbering, and the on-demand head (docs/lir.md, "gNet")."""
        p = self.p
        sequential = [i for i, s in enumerate(p.steps) if s.op not in ON_DEMAND_OPS]
        last_seq = max(sequential, default=-1)
        partial: dict[str, list[int]] = {}
        for i, step in enumerate(p.steps):
            if step.op in PARTIAL_WRITE_OPS and len(step.outputs) == 1:
                root = _root(p, step.outputs[0])
                if root is not None:
                    partial.setdefault(root, []).append(i)
        for root, writers in partial.items():
            spans: list[tuple[int, int, int]] = []
            for k, i in enumerate(writers, 1):
                step = p.steps[i]
                off, exit_ = step.attrs.get("offset"), step.attrs.get("exit")
                x = p.buffers.get(step.inputs[0]) if len(step.inputs) == 1 else None
                if not _is_int(off) or x is None or not _valid_shape(x.shape):
                    continue
                if exit_ != k:
                    self.step(i, step, f"is the {k}. step writing %{root} but has exit={exit_!r} (exits "
                                       f"count 1, 2, ... in step order)")
                for lo, hi, j in spans:
                    if off < hi and lo < off + x.size:  # type: ignore[operator]
                        self.step(i, step, f"writes [{off},{off + x.size}) of %{root}, which overlaps "  # type: ignore[operator]
                                           f"[{lo},{hi}) written by step {j} {p.steps[j].name!r}")
                spans.append((off, off + x.size, i))  # type: ignore[operator]
            for i in sequential:
                step = p.steps[i]
                if step.op not in PARTIAL_WRITE_OPS and any(_root(p, n) == root for n in step.inputs):
                    self.step(i, step, f"reads the gNet feature vector %{root}, which only the "
                                       f"on-demand head may read")
        for i, step in enumerate(p.steps):
            if step.op not in ON_DEMAND_OPS:
                continue
            if i < last_seq:
                self.step(i, step, f"is an on-demand step before the in-sequence step {last_seq} "
                                   f"{p.steps[last_seq].name!r} (on-demand steps come last)")
            outs = {_root(p, n) for n in step.outputs} - {None}
            for j in sequential:
                if any(_root(p, n) in outs for n in p.steps[j].inputs):
                    self.step(j, p.steps[j], f"reads %{', %'.join(sorted(o for o in outs if o))}, "
                                             f"the output of the on-demand step {step.name!r}")
            for port in p.outputs:
                if _root(p, port.buffer) in outs:
                    self.port("output", port, f"%{port.buffer} is written by the on-demand step "
                                              f"{step.name!r}, which the program does not run in sequence")
            if step.op == "gnet_exit" and step.inputs:
                root = _root(p, step.inputs[0])
                writers = partial.get(root or "", [])
                if not writers:
                    self.step(i, step, f"reads %{step.inputs[0]}, which no gnet_feature step writes")
                elif step.attrs.get("exits") != len(writers):
                    self.step(i, step, f"has exits={step.attrs.get('exits')!r} but {len(writers)} "
                                       f"gnet_feature steps write %{root}")

    # -- memory --------------------------------------------------------------------------------
    def check_overlaps(self) -> None:
        p = self.p
        placed = [b for b in p.buffers.values()
                  if b.alias is None and isinstance(b.space, str) and b.space in SPACES
                  and _is_int(b.offset) and (b.offset or 0) >= 0
                  and isinstance(b.dtype, str) and b.dtype in DTYPES and _valid_shape(b.shape)]
        if not placed:
            return
        live = liveness(p)
        by_space: dict[str, list[Buffer]] = {}
        for b in placed:
            by_space.setdefault(b.space or "", []).append(b)
        for space, bufs in by_space.items():
            bufs.sort(key=lambda b: (b.offset or 0, b.name))
            for k, a in enumerate(bufs):
                a_end = (a.offset or 0) + a.nbytes
                for b in bufs[k + 1:]:
                    if (b.offset or 0) >= a_end:
                        break
                    la, lb = live[a.name], live[b.name]
                    if overlaps(la, lb):
                        self.buffer(b.name, f"bytes [{b.offset},{(b.offset or 0) + b.nbytes}) in "
                                            f"{space} overlap %{a.name} [{a.offset},{a_end}) while "
                                            f"both are live (steps {lb[0]}..{lb[1]} and "
                                            f"{la[0]}..{la[1]})")


def check_program(p: Program, source: SourceMap | None = None) -> list[Problem]:
    """Every problem of `p`, in a stable order (buffers, ports, steps, memory)."""
    if source is None:
        source = source_map_of(p)
    checker = _Checker(p, source)
    checker.check_buffers()
    checker.check_ports()
    checker.check_steps()
    checker.check_gnet()
    checker.check_overlaps()
    return checker.problems


def verify_program(p: Program, source: SourceMap | None = None) -> None:
    """Raise one LirError listing every problem of `p` (nothing if it is valid).

    `source` gives file:line:col positions; by default the SourceMap recorded when `p` was parsed
    (none for programs built in memory). The error's location is the first problem's; its details
    hold one line per problem.
    """
    problems = check_program(p, source)
    if not problems:
        return
    first = problems[0]
    n = len(problems)
    message = (f"invalid LIR program {p.name!r}: {first.subject}: {first.message}" if n == 1 else
               f"invalid LIR program {p.name!r}: {n} problems")
    raise LirError(message, location=first.location, details=[str(pr) for pr in problems],
                   hint="see docs/lir.md for the ops, their attributes and the dataflow rules")
