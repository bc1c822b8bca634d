"""Hypothesis strategies for valid random LIR programs (reusable by any LIR test).

``programs()`` builds a chain of ops starting from one program input: conv (groups, strides, pads,
dilation), maxpool/avgpool (floor and ceil output sizes, count_include_pad), act (all kinds), add
(with an earlier value of the same shape, itself, or a constant), concat (with earlier values of
the same spatial size), flatten (an alias) + fc, and a final argmax. conv and fc are sometimes
pruned and stored compressed (conv_sparse, fc_sparse; densities 0, 0.2, 0.5, 1). Every program it
returns passes ``verify_program``; the interpreter can run it (shifts in range, constants of the
right dtype).

Options: ``max_steps``; ``planned`` (None: either) places every buffer with a first-fit planner
that reuses bytes of dead buffers; ``tiled`` (None: either) gives steps tile plans; ``odd_names``
(None: either) uses names that need quoting and Unicode strings; ``max_channels`` / ``max_hw``
bound the feature maps. Constant data comes from a numpy generator seeded by hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from transpiler.lir import kernels as K
from transpiler.lir.ir import DTYPES, Buffer, Port, Program, Step, TilePlan
from transpiler.lir.liveness import liveness, overlaps

ACTS = ("none", "relu", "clip", "leaky")
_NAME_ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",))


@dataclass
class _Value:
    """An activation the chain has produced so far."""

    name: str
    shape: tuple[int, ...]
    q: int


@dataclass
class _Builder:
    draw: st.DrawFn
    rng: np.random.Generator
    odd_names: bool
    program: Program
    values: list[_Value] = field(default_factory=list)
    counter: int = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        if self.odd_names and self.draw(st.booleans()):
            text = self.draw(st.text(_NAME_ALPHABET, max_size=6))
            return f"{prefix}{text}#{self.counter}"
        return f"{prefix}{self.counter}"

    def label(self) -> str:
        if self.odd_names:
            return self.draw(st.text(_NAME_ALPHABET, max_size=10))
        return self.draw(st.from_regex(r"[a-z][a-z0-9_/.]{0,8}", fullmatch=True))

    def act_attrs(self) -> dict[str, int | str | list[int]]:
        act = self.draw(st.sampled_from(ACTS))
        attrs: dict[str, int | str | list[int]] = {"act": act}
        if act == "clip":
            lo = self.draw(st.integers(-32768, 32767))
            attrs["lo"], attrs["hi"] = lo, self.draw(st.integers(lo, 32767))
        elif act == "leaky":
            attrs["alpha"] = self.draw(st.integers(0, 32767))
        return attrs

    def activation(self, shape: tuple[int, ...], q: int | None = None) -> _Value:
        if q is None:
            q = self.draw(st.integers(-4, 20))
        name = self.fresh("t")
        self.program.add(Buffer(name, "i16", shape, q=q))
        return _Value(name, shape, q)

    def const(self, dtype: str, shape: tuple[int, ...], q: int | list[int] | None) -> str:
        info = np.iinfo(DTYPES[dtype])
        data = self.rng.integers(info.min, info.max, size=shape, endpoint=True).astype(DTYPES[dtype])
        name = self.fresh("c")
        self.program.add(Buffer(name, dtype, shape, q=q, data=data))
        return name

    def step(self, op: str, inputs: list[str], out: _Value, attrs: dict[str, int | str | list[int]]
             ) -> None:
        origin = self.draw(st.lists(st.builds(self.label), max_size=2))
        self.program.steps.append(Step(op, self.label(), inputs, [out.name], attrs, origin=origin))
        self.values.append(out)

    def maybe_sparse(self, op: str, wname: str, in_hw: tuple[int, int] = (1, 1),
                     dilation: tuple[int, int] = (1, 1)) -> tuple[str, list[str], dict[str, list[int]]]:
        """Sometimes prune the weight constant ``wname`` and store it compressed: the sparse op,
        the weight inputs that replace ``wname`` and the extra attributes (conv: ``kernel``; its
        offsets count in the input's ``in_hw`` with ``dilation``)."""
        if not self.draw(st.booleans()):
            return op, [wname], {}
        w = self.program.buffers.pop(wname)
        assert w.data is not None
        density = self.draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))
        data = np.where(self.rng.random(w.shape) < density, w.data, 0).astype(np.int16)
        arrays = K.csr_from_dense(data) if op == "fc" else K.conv_sparse_from_dense(data, in_hw, dilation)
        names = []
        for role, arr in zip(("values", "index", "ptr"), arrays):
            name = self.fresh("c")
            self.program.add(Buffer(name, "i16" if role == "values" else "u16", arr.shape,
                                    q=w.q if role == "values" else None, data=arr))
            names.append(name)
        extra = {"kernel": [int(w.shape[2]), int(w.shape[3])]} if op == "conv" else {}
        return f"{op}_sparse", names, extra

    # -- ops -----------------------------------------------------------------------------------
    def conv(self, x: _Value) -> _Value:
        cin, h, w = x.shape
        g = self.draw(st.sampled_from([d for d in range(1, cin + 1) if cin % d == 0]))
        cout = g * self.draw(st.integers(1, max(1, 4 // g)))
        ks, strides, dils, pads = [], [], [], [0, 0, 0, 0]
        for axis, n in enumerate((h, w)):
            d = self.draw(st.integers(1, 2))
            p0, p1 = self.draw(st.integers(0, 2)), self.draw(st.integers(0, 2))
            kmax = min(3, (n + p0 + p1 - 1) // d + 1)
            ks.append(self.draw(st.integers(1, kmax)))
            strides.append(self.draw(st.integers(1, 2)))
            dils.append(d)
            pads[axis], pads[axis + 2] = p0, p1
        oh = (h + pads[0] + pads[2] - dils[0] * (ks[0] - 1) - 1) // strides[0] + 1
        ow = (w + pads[1] + pads[3] - dils[1] * (ks[1] - 1) - 1) // strides[1] + 1
        wq = self.draw(st.one_of(st.none(), st.integers(0, 15),
                                 st.lists(st.integers(0, 15), min_size=cout, max_size=cout)))
        wname = self.const("i16", (cout, cin // g, ks[0], ks[1]), wq)
        bname = self.const("i32", (cout,), None)
        attrs: dict[str, int | str | list[int]] = {
            "stride": strides, "pads": pads, "dilation": dils, "group": g,
            "shift": self.draw(st.lists(st.integers(-15, 31), min_size=cout, max_size=cout)),
            **self.act_attrs()}
        op, weights, extra = self.maybe_sparse("conv", wname, (h, w), (dils[0], dils[1]))
        out = self.activation((cout, oh, ow))
        self.step(op, [x.name, *weights, bname], out, {**attrs, **extra})
        return out

    def pool(self, x: _Value, op: str) -> _Value:
        c, h, w = x.shape
        ks, strides, dils, pads, outs = [], [], [], [0, 0, 0, 0], []
        for axis, n in enumerate((h, w)):
            k = self.draw(st.integers(1, min(3, n)))
            s = self.draw(st.integers(1, 3))
            d = 1
            if op == "maxpool" and n >= 1 + 2 * (k - 1) and self.draw(st.booleans()):
                d, p0, p1, ceil = 2, 0, 0, False
            else:
                p0, p1 = self.draw(st.integers(0, k - 1)), self.draw(st.integers(0, k - 1))
                ceil = self.draw(st.booleans())
            span = n + p0 + p1 - d * (k - 1) - 1
            o = span // s + 1
            if ceil:
                o = -(-span // s) + 1
                if (o - 1) * s >= n + p0:  # ONNX: the last window starts inside the input
                    o -= 1
            ks.append(k)
            strides.append(s)
            dils.append(d)
            pads[axis], pads[axis + 2] = p0, p1
            outs.append(o)
        attrs: dict[str, int | str | list[int]] = {"kernel": ks, "stride": strides, "pads": pads}
        if op == "maxpool":
            attrs["dilation"] = dils
        else:
            attrs["count_include_pad"] = self.draw(st.integers(0, 1))
        out = self.activation((c, outs[0], outs[1]), q=x.q)
        self.step(op, [x.name], out, attrs)
        return out

    def act(self, x: _Value) -> _Value:
        out = self.activation(x.shape, q=x.q)
        self.step("act", [x.name], out, self.act_attrs())
        return out

    def add(self, x: _Value) -> _Value:
        same = [v for v in self.values if v.shape == x.shape]
        other = self.draw(st.one_of(st.sampled_from(same).map(lambda v: v.name),
                                    st.builds(lambda: self.const("i16", x.shape, x.q))))
        operands = [x.name, other]
        if self.draw(st.booleans()):
            operands.reverse()
        attrs: dict[str, int | str | list[int]] = {
            "shift_a": self.draw(st.integers(0, 15)), "shift_b": self.draw(st.integers(0, 15)),
            "shift": self.draw(st.integers(-15, 31)), **self.act_attrs()}
        out = self.activation(x.shape)
        self.step("add", operands, out, attrs)
        return out

    def concat(self, x: _Value) -> _Value:
        fits = [v for v in self.values if len(v.shape) == len(x.shape) and v.shape[1:] == x.shape[1:]]
        parts = [x] + self.draw(st.lists(st.sampled_from(fits), max_size=2))
        parts = self.draw(st.permutations(parts))
        shifts = self.draw(st.lists(st.integers(-15, 31), min_size=len(parts), max_size=len(parts)))
        shape = (sum(v.shape[0] for v in parts),) + x.shape[1:]
        out = self.activation(shape)
        self.step("concat", [v.name for v in parts], out, {"shifts": shifts})
        return out

    def upsample(self, x: _Value) -> _Value:
        c, h, w = x.shape
        scale = [self.draw(st.integers(1, 3)), self.draw(st.integers(1, 3))]
        zeros = self.draw(st.integers(0, 1))
        shape = (c, (h - 1) * scale[0] + 1, (w - 1) * scale[1] + 1) if zeros else (c, h * scale[0], w * scale[1])
        out = self.activation(shape, q=x.q)
        self.step("upsample", [x.name], out, {"scale": scale, "zeros": zeros})
        return out

    def flatten(self, x: _Value) -> _Value:
        n = int(np.prod(x.shape))
        name = self.fresh("f")
        self.program.add(Buffer(name, "i16", (n,), q=x.q, alias=x.name))
        return _Value(name, (n,), x.q)

    def fc(self, x: _Value) -> _Value:
        (k,) = x.shape
        n = self.draw(st.integers(1, 8))
        wq = self.draw(st.one_of(st.integers(0, 15),
                                 st.lists(st.integers(0, 15), min_size=n, max_size=n)))
        wname = self.const("i16", (n, k), wq)
        bname = self.const("i32", (n,), None)
        attrs: dict[str, int | str | list[int]] = {
            "shift": self.draw(st.lists(st.integers(-15, 31), min_size=n, max_size=n)),
            **self.act_attrs()}
        op, weights, extra = self.maybe_sparse("fc", wname)
        out = self.activation((n,))
        self.step(op, [x.name, *weights, bname], out, {**attrs, **extra})
        return out

    def argmax(self, x: _Value) -> _Value:
        out = self.activation((1,), q=0)
        self.step("argmax", [x.name], out, {})
        return out


_TILE_RANK = {"conv": 3, "conv_sparse": 3, "maxpool": 3, "avgpool": 3}


def _plan(draw: st.DrawFn, p: Program) -> None:
    """First-fit placement by liveness: buffers whose lifetimes overlap never share bytes."""
    live = liveness(p)
    placed: dict[str, list[Buffer]] = {}
    for buf in p.buffers.values():
        if buf.alias is not None:
            continue
        space = draw(st.sampled_from(("fram", "hifram") if buf.is_const else ("sram", "fram")))
        align = DTYPES[buf.dtype].itemsize
        conflicts = sorted((b for b in placed.get(space, []) if overlaps(live[b.name], live[buf.name])),
                           key=lambda b: b.offset or 0)
        offset = 0
        for other in conflicts:
            assert other.offset is not None
            if offset + buf.nbytes <= other.offset:
                break
            offset = max(offset, other.offset + other.nbytes)
            offset += -offset % align
        buf.space, buf.offset = space, offset
        placed.setdefault(space, []).append(buf)


def _tile(draw: st.DrawFn, p: Program) -> None:
    for step in p.steps:
        if not draw(st.booleans()):
            continue
        out = p.buffers[step.outputs[0]]
        extent = list(out.shape) if _TILE_RANK.get(step.op) == 3 else [out.size]
        dims = [draw(st.integers(1, e)) for e in extent]
        step.tile = TilePlan(dims, per_commit=draw(st.integers(1, 4)))


@st.composite
def programs(draw: st.DrawFn, max_steps: int = 6, planned: bool | None = None,
             tiled: bool | None = None, odd_names: bool | None = None, max_channels: int = 4,
             max_hw: int = 8) -> Program:
    """A valid random Program (see the module docstring)."""
    odd = draw(st.booleans()) if odd_names is None else odd_names
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    b = _Builder(draw, rng, odd, Program(name=""))
    b.program.name = b.label()
    b.program.meta = draw(st.dictionaries(st.builds(b.label), st.builds(b.label), max_size=2))
    if draw(st.booleans()):
        shape: tuple[int, ...] = (draw(st.integers(1, max_channels)), draw(st.integers(1, max_hw)),
                                  draw(st.integers(1, max_hw)))
    else:
        shape = (draw(st.integers(1, 16)),)
    x = b.activation(shape)
    b.values.append(x)
    b.program.inputs.append(Port(b.label(), x.name))
    for _ in range(draw(st.integers(0, max_steps))):
        if len(x.shape) == 3:
            choices = ["conv", "maxpool", "avgpool", "act", "add", "concat"]
            if x.shape[0] * x.shape[1] * x.shape[2] <= 256:
                choices.append("upsample")
            if x.shape[0] * x.shape[1] * x.shape[2] <= 64:
                choices.append("fc")
        else:
            choices = ["fc", "act", "add", "concat", "argmax"]
        op = draw(st.sampled_from(choices))
        if op in ("maxpool", "avgpool"):
            x = b.pool(x, op)
        elif op == "fc":
            x = b.fc(b.flatten(x) if len(x.shape) == 3 else x)
        else:
            x = getattr(b, op)(x)
        if op == "argmax":
            break
    outputs = [x.name]
    if len(b.values) > 2 and draw(st.booleans()):
        extra = draw(st.sampled_from(b.values[1:-1])).name
        outputs.append(extra)
    used: set[str] = set()
    for name in outputs:
        onnx = b.label()
        while onnx in used:
            onnx += "_"
        used.add(onnx)
        b.program.outputs.append(Port(onnx, name))
    order = draw(st.permutations(list(b.program.buffers)))
    b.program.buffers = {n: b.program.buffers[n] for n in order}
    if planned if planned is not None else draw(st.booleans()):
        _plan(draw, b.program)
    if tiled if tiled is not None else draw(st.booleans()):
        _tile(draw, b.program)
    return b.program
