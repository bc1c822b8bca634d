"""`plan-memory`: give every LIR buffer a memory space and a byte offset, reusing storage by liveness.

Before -> after::

    buffer %x  : i16[1,28,28] q=12                 buffer %x  : i16[1,28,28] q=12 sram @0
    buffer %t1 : i16[6,24,24] q=10                 buffer %t1 : i16[6,24,24] q=10 fram @0
    buffer %t2 : i16[6,12,12] q=10                 buffer %t2 : i16[6,12,12] q=10 sram @1568
    buffer %t3 : i16[16,8,8]  q=9                  buffer %t3 : i16[16,8,8]  q=9  sram @0   (reuses %x)
    const  %w1 : i16[6,1,5,5] ...                  const  %w1 : i16[6,1,5,5] ... fram @6912
    const  %w9 : i16[120,400] ...                  const  %w9 : i16[120,400] ... hifram @0

and for a model whose feature maps do not fit lower FRAM (3x32x32 input, conv 3->32 at 32x32)::

    buffer %r1 : i16[32,32,32] q=11                buffer %r1 : i16[32,32,32] q=11 hifram @0
    const  %W2 : i16[32,32,3,3] ...                const  %W2 : i16[32,32,3,3] ... hifram @65536

The MSP430FR5994 memory map this plans for (DESIGN.md section 1)::

    SRAM     8 KiB   activations + the call stack (``stack`` bytes are reserved for it)
    FRAM     0x4000-0xFF7F (lower, 48 KiB): code, descriptors, small constants, FRAM activations
    HIFRAM   0x10000-    (upper, the rest of ``fram``): the activations that do not fit lower FRAM
             (``.upper.persistent``), then large constants (``__attribute__((upper))``), and the
             step functions when lower FRAM cannot hold them (``.upper.text``)

Rules:

- **Constants** (weights, biases, tables) live in FRAM. A constant larger than ``hifram_threshold``
  goes to ``hifram``; the others go to lower ``fram`` smallest first while it has room (after the
  code estimate, the step descriptors and the FRAM activations), the rest to ``hifram``. When that
  overflows HIFRAM, the constants are split again so that lower FRAM's free bytes take as many
  as they can (the largest sum that fits, whatever the sizes: a subset sum over the constants),
  the rest HIFRAM; only when no split fits is it an error, naming the region that overflows and by
  how much (with the constant that cannot move when the bytes would fit but the objects do not).
- **Activations** live in SRAM when they fit, else FRAM. Storage is shared between buffers whose
  lifetimes do not overlap (greedy best-fit by size: the largest buffer first, each into the
  smallest gap between already-placed buffers that are live at the same time). A buffer is live
  from the step that writes it (program inputs: from step 0) to the last step that reads it
  (program outputs: to the last step), as transpiler.lir.liveness defines it; a step's inputs and
  outputs are live together, so a step never writes storage that it reads. While the SRAM plan is over budget the largest buffer live at the
  peak moves to FRAM (``fram_activations=false`` forbids that and makes it an error instead).
  With ``persistent=true`` every activation goes to FRAM (intermittent execution: SRAM is lost at
  every power failure). The gNet feature vector always goes to FRAM (:func:`fram_pinned`).
- **HIFRAM activations**: FRAM activations live in lower FRAM while its arena fits beside the code
  and the descriptors; while it does not, the largest buffer live at the arena's peak (inputs of
  sparse steps last: :func:`sparse_inputs`) moves to a third arena in HIFRAM (packed the same way,
  at the start of the ``hifram`` space, before the constants there), and the program is built with
  ``-mlarge``. Only models that need it get it: everything that fits keeps the small memory
  model. ``hifram_activations=false`` forbids the move (the overflow is then an error). The HIFRAM
  arena counts against the FRAM budget (``fram``) like the constants placed there; when both do
  not fit, the error names the HIFRAM activations live together at their peak and the largest
  constants.
- **Step code in HIFRAM**: when lower FRAM cannot hold the code and the step descriptors even
  after the activations moved (hundreds of steps: an unrolled recurrence, ~110-140 B of code and
  descriptor per step), the step functions (:func:`step_code_bytes`) move to HIFRAM: the plan is made
  again in the large model from the first activation split, with HIFRAM's capacity less the step
  code for the activations and constants there, and ``Program.meta["step-code"] = "hifram"`` tells
  emit-c to mark them ``FX_HICODE`` (``__attribute__((upper))``, ``.upper.text``). The run loop, the
  runtime kernels, the descriptors and the step table stay in lower FRAM (the table holds 20-bit
  function pointers). ``hifram_code=false`` forbids the move; when HIFRAM cannot hold the step
  code with the rest, the error names it.
- **Aliases** (``alias %other``) have no storage: they keep ``space``/``offset`` unset and extend
  the lifetime of the buffer they view.
- Offsets are byte offsets inside their space, aligned to the element size (2 for i16, 4 for i32).
  In ``fram`` and ``hifram`` the activation arena starts at 0 and the constants follow it.
- SRAM keeps ``stack`` bytes (default 1 KiB) free for the call stack and the runtime's own state,
  and :data:`SPARSE_LONG_STACK` more when a conv_sparse step has an output channel of more than
  FX_SPARSE_RUN_TAPS stored taps (:func:`sparse_stack`); the activations get the rest. Lower FRAM keeps room for the code and the read-only tables
  (unless ``code`` is given, :func:`estimate_code_bytes` and :func:`estimate_rodata_bytes`), and
  ``app_reserve`` bytes (default 2 KiB) for what links with the model: crt0, the application's main
  and I/O (the simulator harness main_sim.c with its CIO output: ~1.9 KiB); the model gets at most
  ``0xBF80 - app_reserve`` bytes of lower FRAM.

Code estimate (what ``freeml-tx report`` compares with the linked ELF, within 5 %): the runtime's
part is exact up to compiler changes: ``passes/msp430_code_sizes.py`` (written by
``tools/msp430_code_sizes.py`` from the compiled runtime and libgcc) holds every section's size and
references, and :func:`runtime_bytes` adds up what ``--gc-sections`` keeps: the sections reachable
from the entry points the program's ops call (:data:`OP_ENTRY_POINTS`; ``fx_requant``, libgcc's
division helpers and the like counted once). The generated part (one step function per step, the
run loop, helpers; :data:`GENERATED_CODE`) is measured on the samples. Both depend on the memory
model: the large one (``-mlarge``, 20-bit pointers), which the C emitter picks when a buffer lives
in HIFRAM or an object exceeds 32767 bytes, has bigger code and 4-byte pointers in the descriptors;
the plan is made with the small model's figures and redone with the large ones when it needs HIFRAM.

Stats: ``sram_peak``, ``fram_weights``/``fram_bias``/``fram_descriptors``/``fram_activations``,
``hifram_activations``, ``hifram_bytes``, ``reuse_savings_sram``/``reuse_savings_fram`` (bytes saved
by sharing), ``spilled_to_fram``, ``spilled_to_hifram``, the budgets, ``memory_model`` (small/large), ``code_estimate`` and
``step_code``/``hifram_code`` (where the step functions are, their bytes in HIFRAM),
``rodata_estimate`` (descriptors with the model's pointer size, the step table, the runtime's tables);
also left in ``PassContext.extra["plan-memory"]`` for emit-c's report and manifest.

A plan that cannot fit raises :class:`BudgetError` before any code is generated, naming the largest
buffers (bytes, lifetime, the steps that write and read them) and what would help.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from transpiler.errors import BudgetError, Location, PassError
from transpiler.lir.cost import SPARSE_RUN_TAPS, per_output_nnz
from transpiler.lir.ir import DTYPES, Buffer, Program, Step
from transpiler.lir.liveness import liveness, overlaps
from transpiler.pass_infra import Pass, PassResult, register

LOWER_FRAM_BYTES = 0xFF80 - 0x4000   # lower FRAM of the MSP430FR5994: 0x4000-0xFF7F
VECTOR_BYTES = 0x10000 - 0xFF80      # the interrupt vectors 0xFF80-0xFFFF: FRAM, but not for data
HIFRAM_START = 0x10000               # upper FRAM: 0x10000 - (the budget less lower FRAM and the vectors)
RUNTIME_CODE_BYTES = 6144            # kernels + run loop, when passes/msp430_code_sizes.py is absent
CODE_BYTES_PER_STEP = 96             # one step function + its table entry, likewise
SMALL_MODEL_MAX_OBJECT = 32767       # the small memory model's largest object (16-bit size_t)
#: ``Program.meta`` key that plan-memory sets to ``hifram`` when the step functions live in HIFRAM
#: (emit-c then marks them ``FX_HICODE``, ``__attribute__((upper))``, and builds with ``-mlarge``).
STEP_CODE_META = "step-code"

#: The runtime functions the C of each LIR op calls (backends/c/printers.py).
OP_ENTRY_POINTS: dict[str, tuple[str, ...]] = {
    "conv": ("fx_conv_units",), "conv_sparse": ("fx_conv_sparse",), "fc": ("fx_fc",),
    "fc_sparse": ("fx_fc_sparse",), "maxpool": ("fx_maxpool",), "avgpool": ("fx_avgpool",),
    "add": ("fx_add",), "mul": ("fx_mul",), "layernorm": ("fx_layernorm",), "matmul": ("fx_matmul",),
    "softmax": ("fx_softmax",), "embed": ("fx_embed",), "act": ("fx_act",), "lut": ("fx_lut",), "concat": ("fx_requant_copy",),
    "argmax": ("fx_argmax",), "conv_cols": ("fx_conv_col_units",),
    "transpose": (), "slice": (), "upsample": (), "trees": ("fx_trees",), "tree_sum": ("fx_tree_sum",),
}
#: Code of an entry point missing from the measured table (a new kernel): a guess.
UNKNOWN_KERNEL_BYTES = 1024
#: Bytes of the generated C per memory model (msp430-elf-gcc -O2, measured on the samples):
#: ``run`` the run loop, ``step`` a step function that calls a kernel, ``op_extra`` more for ops
#: whose step has a loop of its own (per input for concat) or more arguments (conv: unit -> channel
#: and row, a division by the constant OH), ``helper`` the shared unit helper of
#: sparse convs (conv_sparse_units), ``step_entry`` one entry of the step table (fn, 3 x u16).
#: ``transpose_flat``: a transpose whose output has a unit middle or last axis (a sequence ``[T, 1, D]``
#: moved to ``[D, 1, T]``: GCC drops one index's divisions and wraps; 118 B a step measured on a
#: transformer).
#: With a single step GCC folds the step table into the run loop: ``run_one_step``, no table.
#: (``+ 2``: fx_<m>_reset, which main_sim.c calls before each new input.)
GENERATED_CODE: dict[str, dict[str, Any]] = {
    "small": {"run": 112 + 2, "run_one_step": 30 + 2, "step": 28, "helper": 170, "step_entry": 8, "pointer": 2,
              "op_extra": {"act": 80, "lut": 80, "add": 80, "mul": 80, "argmax": -4, "conv": 30, "transpose": 200, "transpose_flat": 90, "slice": 60, "upsample": 280}, "concat_per_input": 135},
    "large": {"run": 124 + 2, "run_one_step": 34 + 2, "step": 32, "helper": 178, "step_entry": 10, "pointer": 4,
              "op_extra": {"act": 88, "lut": 88, "add": 88, "mul": 88, "argmax": -4, "conv": 36, "transpose": 220, "transpose_flat": 100, "slice": 66, "upsample": 300}, "concat_per_input": 148},
}


@dataclass(frozen=True)
class Lifetime:
    """When a buffer's storage is in use: steps `start` to `end`, both included (transpiler.lir.liveness).

    Program inputs are live from step 0, outputs up to the last step, constants always; an unused
    buffer has the empty interval (0, -1). `writers`/`readers` are step indices (aliases included);
    `is_input`/`is_output` say whether a program port holds it.
    """

    start: int
    end: int
    writers: tuple[int, ...] = ()
    readers: tuple[int, ...] = ()
    is_input: bool = False
    is_output: bool = False

    def overlaps(self, other: "Lifetime") -> bool:
        return overlaps((self.start, self.end), (other.start, other.end))


def lifetimes(p: Program) -> dict[str, Lifetime]:
    """The lifetime of every buffer that owns storage (aliases count as their storage buffer)."""
    writes: dict[str, list[int]] = {}
    reads: dict[str, list[int]] = {}
    for i, s in enumerate(p.steps):
        for name in s.outputs:
            writes.setdefault(p.storage_of(name).name, []).append(i)
        for name in s.inputs:
            reads.setdefault(p.storage_of(name).name, []).append(i)
    inputs = {p.storage_of(port.buffer).name for port in p.inputs}
    outputs = {p.storage_of(port.buffer).name for port in p.outputs}
    return {name: Lifetime(first, last, tuple(writes.get(name, [])), tuple(reads.get(name, [])),
                           name in inputs, name in outputs)
            for name, (first, last) in liveness(p).items()}


def live_at(p: Program, lives: dict[str, Lifetime], names: list[str]) -> tuple[int, list[str]]:
    """The step index where the named buffers need the most bytes, and those live."""
    best_t, best_bytes = 0, -1
    for t in range(max(len(p.steps), 1)):
        total = sum(p.buffers[n].nbytes for n in names if lives[n].start <= t <= lives[n].end)
        if total > best_bytes:
            best_t, best_bytes = t, total
    return best_t, sorted(n for n in names if lives[n].start <= best_t <= lives[n].end)


def descriptor_bytes(s: Step, pointer: int = 4) -> int:
    """FRAM bytes of a step's kernel descriptor and shift table (``pointer``: 4 in the large memory
    model, 2 in the small one; the default over-estimates)."""
    act = 8
    shifts = len(s.attrs.get("shift", [])) if isinstance(s.attrs.get("shift"), list) else 0
    # conv: the geometry, three pointers, the activation, then the derived fields (seven uint16,
    # two int32, eight size_t: size_t is as wide as a pointer in both memory models)
    size = {"conv": 22 * 2 + 2 * 4 + 11 * pointer + act, "fc": 2 * 2 + 3 * pointer + act,
            "conv_sparse": 15 * 2 + 5 * pointer + act, "fc_sparse": 3 * 2 + 5 * pointer + act,
            "maxpool": 16 * 2, "avgpool": 16 * 2, "add": 4 + act, "mul": 2 + act, "act": act,
            "layernorm": 2 * pointer + 8 + 2 + 2 + act, "matmul": 2 * 2 + 2 + act,
            "softmax": pointer + 2 * 2 + 2, "embed": pointer + 2 * 2,
            "lut": pointer + 4 + 2 * 2 + 4, "trees": 4 * pointer,
            "tree_sum": 2 * 2 + 2 + 3 * pointer}.get(s.op, 0)
    if s.op == "concat":
        shifts = len(s.inputs)
    return _align_up(size + shifts, 2)


def _code_table() -> Mapping[str, Any] | None:
    """The measured runtime table (passes/msp430_code_sizes.py), None when it is absent."""
    try:
        from passes.msp430_code_sizes import GRAPHS
    except ImportError:
        return None
    return GRAPHS


def code_table_stale() -> bool:
    """Whether passes/msp430_code_sizes.py was generated from other runtime sources than the installed
    runtime_c/fx_*.[ch] (then the code estimate may be off: run tools/msp430_code_sizes.py --write)."""
    import hashlib

    try:
        from passes.msp430_code_sizes import SOURCES_SHA256
        from backends.c.runtime_files import runtime_dir
    except ImportError:
        return False
    h = hashlib.sha256()
    for f in sorted(runtime_dir().glob("fx_*.[ch]")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest() != SOURCES_SHA256


def closure_bytes(entries: Iterable[str], graph: Mapping[str, Any]) -> tuple[int, int, list[str]]:
    """(code bytes, read-only bytes, unknown entry points) of what ``entries`` reach in ``graph``.

    ``graph`` is one memory model of passes/msp430_code_sizes.py: ``sections`` (key -> [bytes, kind]),
    ``edges`` (key -> keys it refers to), ``entries`` (function -> key). Every section counts once.
    """
    sections: Mapping[str, Any] = graph["sections"]
    edges: Mapping[str, Any] = graph["edges"]
    starts: list[str] = []
    unknown: list[str] = []
    for e in entries:
        key = graph["entries"].get(e)
        if key is None:
            unknown.append(e)
        else:
            starts.append(key)
    seen: set[str] = set()
    while starts:
        k = starts.pop()
        if k in seen:
            continue
        seen.add(k)
        starts.extend(edges.get(k, []))
    code = sum(int(sections[k][0]) for k in seen if k in sections and sections[k][1] == "code")
    rodata = sum(int(sections[k][0]) for k in seen if k in sections and sections[k][1] != "code")
    return code, rodata, sorted(set(unknown))


def runtime_bytes(ops: Iterable[str], large: bool = False) -> tuple[int, int]:
    """(code, read-only tables) of the runtime kernels that steps of these ops pull into the ELF.

    Ops without a kernel add nothing; a kernel missing from the table counts
    :data:`UNKNOWN_KERNEL_BYTES`. Without the table: :data:`RUNTIME_CODE_BYTES` for everything.
    """
    graphs = _code_table()
    if graphs is None:
        return RUNTIME_CODE_BYTES, 0
    entries = sorted({e for op in ops for e in OP_ENTRY_POINTS.get(op, ())})
    code, rodata, unknown = closure_bytes(entries, graphs["large" if large else "small"])
    return code + UNKNOWN_KERNEL_BYTES * len(unknown), rodata


def step_code_bytes(p: Program, large: bool = False) -> int:
    """Bytes of the step functions alone: the part of the generated code that moves to HIFRAM when
    lower FRAM cannot hold it (``step-code`` in the module docstring); without the measured table,
    :data:`CODE_BYTES_PER_STEP` each, like :func:`estimate_code_bytes`."""
    if _code_table() is None:
        return CODE_BYTES_PER_STEP * len(p.steps)
    return _step_functions(p, GENERATED_CODE["large" if large else "small"])


def _step_functions(p: Program, g: Mapping[str, Any]) -> int:
    """Bytes of the step functions with the figures ``g`` of one memory model (:data:`GENERATED_CODE`)."""
    total = int(g["step"]) * len(p.steps)
    for s in p.steps:
        if s.op == "concat":
            total += int(g["concat_per_input"]) * len(s.inputs)
        elif s.op == "transpose" and 1 in p.buffers[s.outputs[0]].shape[1:]:
            total += int(g["op_extra"]["transpose_flat"])
        else:
            total += int(g["op_extra"].get(s.op, 0))
    return total


def generated_code_bytes(p: Program, large: bool = False) -> int:
    """Bytes of the C emitter's code for ``p``: run loop, step functions, unit helpers."""
    g = GENERATED_CODE["large" if large else "small"]
    total = int(g["run_one_step" if len(p.steps) == 1 else "run"]) + _step_functions(p, g)
    helper = any(s.op == "conv_sparse" for s in p.steps)
    return total + int(g["helper"]) * helper


def fram_pinned(p: Program) -> set[str]:
    """Activations that live in FRAM in every plan: the gNet feature vector (the output of
    `gnet_feature` steps), which an early exit reads after any step and which must survive power
    failures."""
    return {p.storage_of(s.outputs[0]).name for s in p.steps if s.op == "gnet_feature" and s.outputs}


def sparse_inputs(p: Program) -> set[str]:
    """Activations that sparse steps (conv_sparse, fc_sparse) read as their input: runtime_c/fx_sparse.c
    walks the input with 16-bit address arithmetic on its fast paths, so an input above 64 KiB takes
    its portable fallbacks (1.5-5x the cycles); plan-memory moves them to HIFRAM only when no other
    buffer live at the peak can go."""
    return {p.storage_of(s.inputs[0]).name for s in p.steps if s.op in ("conv_sparse", "fc_sparse") and s.inputs}


def kernel_ops(p: Program, budget: int = 0) -> list[str]:
    """The ops whose kernels the program calls: every step's op, and ``conv_cols`` (fx_conv_col_units)
    for a dense conv with column units, or that the tile pass will give column units under
    ``budget`` cycles per power cycle (passes/tile.py: needs_column_units)."""
    from passes.tile import needs_column_units

    ops = [s.op for s in p.steps]
    if any(needs_column_units(p, s, budget) for s in p.steps if s.op == "conv"):
        ops.append("conv_cols")
    return ops


def estimate_code_bytes(p: Program, large: bool = False, budget: int = 0) -> int:
    """Bytes of code the program needs in lower FRAM: the generated C and the runtime kernels it
    calls, libgcc helpers included (see the module docstring); ``large`` for ``-mlarge``;
    ``budget``: the power-cycle budget the tile pass will size for (:func:`kernel_ops`)."""
    if _code_table() is None:
        return RUNTIME_CODE_BYTES + CODE_BYTES_PER_STEP * len(p.steps)
    return generated_code_bytes(p, large) + runtime_bytes(kernel_ops(p, budget), large)[0]


def estimate_rodata_bytes(p: Program, large: bool = False) -> int:
    """Read-only bytes besides the constants: kernel descriptors and shift tables (with the memory
    model's pointer size), the step table, and the runtime's own tables."""
    g = GENERATED_CODE["large" if large else "small"]
    descr = sum(descriptor_bytes(s, int(g["pointer"])) for s in p.steps)
    table = int(g["step_entry"]) * len(p.steps) if len(p.steps) > 1 else 0
    return descr + table + runtime_bytes(kernel_ops(p), large)[1]


def uses_large_model(p: Program) -> bool:
    """Whether the C emitter builds a planned program with ``-mlarge``: a buffer (constant or
    activation) in HIFRAM, or an object (constant, activation arena) larger than the small model
    can declare."""
    if p.meta.get(STEP_CODE_META) == "hifram" or any(b.space == "hifram" for b in p.buffers.values()
                                                     if b.alias is None):
        return True
    acts, consts = _storage_buffers(p)
    s = memory_summary(p)
    largest = max([b.nbytes for b in consts] + [s["fram_activations"], s["sram_peak"]])
    return largest > SMALL_MODEL_MAX_OBJECT


def fmt_bytes(n: int) -> str:
    """`900 B`, `6.8 KiB (6912 B)`."""
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB ({n} B)"


def suggest_size(n: int) -> str:
    """A budget flag value at least `n` bytes: whole KiB."""
    return f"{max(1, -(-n // 1024))}KiB"


#: SRAM beyond the ``stack`` reserve that runtime_c/fx_sparse.c's grouped path needs (fx_sparse_long:
#: a conv_sparse channel of more than FX_SPARSE_RUN_TAPS stored taps, its band's partial sums and a
#: group's taps beside the fast path's tables): its deepest call chain less the fast path's
#: (fx_sparse_borders), measured with -fstack-usage: about 304 bytes in the small model, 320 in the
#: large one; rounded up.
SPARSE_LONG_STACK = 352


def sparse_stack(p: Program) -> int:
    """The SRAM a program's sparse convs need beyond the ``stack`` reserve: SPARSE_LONG_STACK when
    some conv_sparse step has an output channel of more than SPARSE_RUN_TAPS stored taps, else 0."""
    wide = any(s.op == "conv_sparse" and max(per_output_nnz(p, s), default=0) > SPARSE_RUN_TAPS
               for s in p.steps)
    return SPARSE_LONG_STACK if wide else 0


@dataclass(frozen=True)
class PlanMemoryOptions:
    """Options of `plan-memory` (sizes in bytes; the pipeline text accepts ``16KiB``)."""

    sram: int | None = None            # SRAM size; default PassContext.sram_bytes (--sram)
    fram: int | None = None            # FRAM size; default PassContext.fram_bytes (--fram)
    stack: int = 1024                  # SRAM reserved for the call stack and runtime state
    persistent: bool = False           # every activation in FRAM (intermittent mode)
    fram_activations: bool = True      # activations that do not fit SRAM may spill to FRAM
    hifram_activations: bool = True    # FRAM activations that do not fit lower FRAM may move to HIFRAM
    hifram_code: bool = True           # the step functions may move to HIFRAM when lower FRAM cannot hold them
    hifram_threshold: int = 8192       # constants larger than this go to HIFRAM
    code: int | None = None            # bytes of code in lower FRAM; estimated when None
    app_reserve: int = 2048            # lower FRAM left to what links with the model (crt0, main, I/O)
    budget: int = 0                    # cycles per power cycle the tile pass sizes for (its column
                                       # units' kernel is code too); 0: --cycles-per-power-cycle / --power
    reuse: bool = True                 # share storage between buffers with disjoint lifetimes


@dataclass
class _Item:
    """One buffer to place: its aligned size, alignment and lifetime."""

    name: str
    size: int
    align: int
    life: Lifetime
    offset: int = 0


@dataclass
class Packing:
    """The result of packing items into one address space."""

    offsets: dict[str, int] = field(default_factory=dict)
    total: int = 0        # bytes the arena needs
    unshared: int = 0     # bytes it would need without reuse

    @property
    def savings(self) -> int:
        return self.unshared - self.total


def _align_up(value: int, align: int) -> int:
    return (value + align - 1) // align * align


def pack(items: list[_Item], reuse: bool = True) -> Packing:
    """Greedy best-fit by size over lifetimes (the TFLite "greedy by size" arena planner).

    Items are placed largest first; each goes into the smallest gap between the already-placed items
    whose lifetimes overlap its own, or after the highest of them. Without ``reuse`` every item gets
    its own bytes. Deterministic: ties are broken by start of life, then name.
    """
    out = Packing()
    placed: list[_Item] = []
    for it in sorted(items, key=lambda i: (-i.size, i.life.start, i.name)):
        out.unshared = _align_up(out.unshared, it.align) + it.size
        if not reuse:
            it.offset = _align_up(out.total, it.align)
        else:
            busy = sorted((p.offset, p.offset + p.size) for p in placed if p.life.overlaps(it.life))
            best: int | None = None
            best_gap = 0
            cursor = 0
            for lo, hi in busy:
                cand = _align_up(cursor, it.align)
                gap = lo - cand
                if gap >= it.size and (best is None or gap < best_gap):
                    best, best_gap = cand, gap
                cursor = max(cursor, hi)
            it.offset = best if best is not None else _align_up(cursor, it.align)
        placed.append(it)
        out.offsets[it.name] = it.offset
        out.total = max(out.total, it.offset + it.size)
    return out


def _check_overlaps(items: list[_Item]) -> None:
    """Internal consistency check: no two live-together items share a byte."""
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            if a.life.overlaps(b.life) and a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                raise AssertionError(f"plan-memory placed {a.name} and {b.name} in the same bytes")


def _storage_buffers(p: Program) -> tuple[list[Buffer], list[Buffer]]:
    """(activations, constants) that own storage, in declaration order."""
    acts = [b for b in p.buffers.values() if b.alias is None and not b.is_const]
    consts = [b for b in p.buffers.values() if b.alias is None and b.is_const]
    return acts, consts


def _item(b: Buffer, life: Lifetime) -> _Item:
    align = max(2, DTYPES[b.dtype].itemsize)
    return _Item(b.name, _align_up(b.nbytes, 2), align, life)


def _describe(p: Program, name: str, life: Lifetime) -> str:
    """`%t1  6.8 KiB (6912 B)  i16[6,24,24]  steps 1..2: written by 'conv1', read by 'pool1'`."""
    b = p.buffers[name]
    shape = ",".join(str(d) for d in b.shape)
    writers = [f"'{w}'" for w in sorted({p.steps[i].name for i in life.writers})]
    if life.is_input:
        writers.insert(0, "the program input")
    readers = [f"'{r}'" for r in sorted({p.steps[i].name for i in life.readers})]
    if life.is_output:
        readers.append("the program output")
    writer = ", ".join(writers) or "nothing"
    read = ", ".join(readers) or "nothing"
    return (f"%{name}  {fmt_bytes(b.nbytes)}  {b.dtype}[{shape}]  steps {life.start}..{life.end}: "
            f"written by {writer}, read by {read}")


@register
class PlanMemory(Pass):
    """Place every buffer in SRAM, FRAM or HIFRAM and reuse storage by liveness; fail early if over budget.

    Before -> after: ``buffer %t : i16[6,24,24] q=10`` -> ``buffer %t : i16[6,24,24] q=10 sram @1568``
    (see the module docstring for the rules and the memory map).
    """

    name = "plan-memory"
    options_type = PlanMemoryOptions
    level = "lir"
    ensures = frozenset({"memory-planned"})

    def run(self, model: Program) -> PassResult[Program]:
        o: PlanMemoryOptions = self.options
        budget = o.budget or int(self.context.extra.get("cycles_per_power_cycle", 0) or 0)
        p = model
        sram = o.sram if o.sram is not None else self.context.sram_bytes
        fram = o.fram if o.fram is not None else self.context.fram_bytes
        if o.stack < 0 or o.stack > sram:
            raise PassError(f"stack reserve {o.stack} B does not fit in {sram} B of SRAM",
                            location=Location(pass_name=self.name),
                            hint="give plan-memory{stack=...} a value below --sram")
        lives = lifetimes(p)
        acts, consts = _storage_buffers(p)
        for b in acts:
            if b.dtype not in ("i16", "u16", "i8"):
                raise PassError(f"activation %{b.name} has type {b.dtype}; activations are i16",
                                location=Location(pass_name=self.name, node=b.name),
                                hint="this is a bug in the pass that produced the LIR (lower)")
        before = {n: (b.space, b.offset) for n, b in p.buffers.items()}

        # --- activations: SRAM first, spill to FRAM --------------------------------------------
        stack = o.stack + sparse_stack(p)
        sram_cap = sram - stack
        pinned = fram_pinned(p)      # the gNet feature vector persists in FRAM (DESIGN.md section 8)
        in_fram: list[Buffer] = list(acts) if o.persistent else [b for b in acts if b.name in pinned]
        in_sram: list[Buffer] = [] if o.persistent else [b for b in acts if b.name not in pinned]
        spilled: list[str] = []
        while True:
            items = [_item(b, lives[b.name]) for b in in_sram]
            sram_pack = pack(items, o.reuse)
            if sram_pack.total <= sram_cap:
                break
            step_at, live = live_at(p, lives, [b.name for b in in_sram])
            if not o.fram_activations:
                self._sram_error(p, lives, sram_pack.total, sram, stack, step_at, live, spill_allowed=False)
            victim = max(live, key=lambda n: (p.buffers[n].nbytes, n))
            spilled.append(victim)
            in_sram = [b for b in in_sram if b.name != victim]
            in_fram.append(p.buffers[victim])
        _check_overlaps(items)

        # --- FRAM activations: lower FRAM first, spill to HIFRAM; constants: lower FRAM or HIFRAM --
        # First with the small memory model's code; when that plan needs -mlarge (HIFRAM, or an
        # object over 32767 bytes), again with the large model's bigger code and pointers (which
        # may spill more activations: the spill only grows).
        # When even then lower FRAM cannot hold the code and the descriptors (many steps: an
        # unrolled recurrence), the step functions move to HIFRAM (large model) and the plan is
        # made again from the activations' first split.
        # the application's own code and data share lower FRAM with the model: main_sim.c, its CIO output
        # and crt0 take ~1.9 KiB; a plan filling lower FRAM to the byte linked into an overflow
        lower_cap = min(fram, LOWER_FRAM_BYTES - o.app_reserve)
        hifram_cap = max(0, fram - LOWER_FRAM_BYTES - VECTOR_BYTES)
        first_fram = list(in_fram)
        in_hifram: list[Buffer] = []
        large = max([b.nbytes for b in consts] + [sram_pack.total], default=0) > SMALL_MODEL_MAX_OBJECT
        code_up = False
        while True:
            code = o.code if o.code is not None else estimate_code_bytes(p, large, budget)
            hicode = step_code_bytes(p, large) if code_up else 0
            low_code = code - hicode
            hi_room = max(0, hifram_cap - hicode)
            descr = estimate_rodata_bytes(p, large)
            in_fram, in_hifram, fram_pack, fram_items = self._spill_to_hifram(
                p, lives, in_fram, in_hifram, lower_cap - low_code - descr, hi_room > 0)
            hifram_items = [_item(b, lives[b.name]) for b in in_hifram]
            hifram_pack = pack(hifram_items, o.reuse)
            placement, lower_used, hi_off = self._place_constants(
                consts, low_code + descr + fram_pack.total, lower_cap, hi_room, fram_pack.total,
                hifram_pack.total)
            if (low_code + descr + fram_pack.total > lower_cap and not code_up and o.hifram_code
                    and o.code is None and hifram_cap > 0):
                code_up = large = True
                in_fram, in_hifram = list(first_fram), []
                continue
            needs_large = (hi_off > 0 or fram_pack.total > SMALL_MODEL_MAX_OBJECT)
            if large or not needs_large:
                break
            large = True
        _check_overlaps(fram_items)
        _check_overlaps(hifram_items)
        if low_code + descr + fram_pack.total > lower_cap:
            self._fram_error(p, lives, sram, fram, lower_cap, low_code, descr, fram_pack.total, in_fram, consts,
                             hicode)
        if hi_off + hicode > hifram_cap:
            self._hifram_error(p, lives, fram, lower_cap, hifram_cap, low_code, descr, fram_pack.total,
                               hifram_pack.total, in_hifram, consts, placement, hi_off, hicode)

        # --- write the plan --------------------------------------------------------------------
        for b in in_sram:
            b.space, b.offset = "sram", sram_pack.offsets[b.name]
        for b in in_fram:
            b.space, b.offset = "fram", fram_pack.offsets[b.name]
        for b in in_hifram:
            b.space, b.offset = "hifram", hifram_pack.offsets[b.name]
        for b in consts:
            b.space, b.offset = placement[b.name]
        for b in p.buffers.values():
            if b.alias is not None:
                b.space, b.offset = None, None
        changed = any(before[n] != (b.space, b.offset) for n, b in p.buffers.items())
        changed |= (p.meta.get(STEP_CODE_META) == "hifram") != code_up
        if code_up:
            p.meta[STEP_CODE_META] = "hifram"
        else:
            p.meta.pop(STEP_CODE_META, None)

        summary = memory_summary(p)
        stats: dict[str, Any] = {
            **summary,
            "sram_budget": sram,
            "sram_available": sram_cap,
            "stack_reserve": stack,
            "fram_budget": fram,
            "lower_fram_capacity": lower_cap,
            "lower_fram_used": lower_used,
            "hifram_capacity": hifram_cap,
            "code_estimate": code,
            "step_code": "hifram" if code_up else "fram",
            "hifram_code": hicode,
            "rodata_estimate": descr,
            "memory_model": "large" if large else "small",
            "reuse_savings_sram": sram_pack.savings,
            "reuse_savings_fram": fram_pack.savings + hifram_pack.savings,
            "spilled_to_fram": spilled,
            "spilled_to_hifram": [b.name for b in in_hifram],
            "persistent": o.persistent,
        }
        self.context.extra["plan-memory"] = stats
        self.context.say(
            f"plan-memory: SRAM {fmt_bytes(summary['sram_peak'])} of {fmt_bytes(sram_cap)} "
            f"({fmt_bytes(stack)} reserved for the stack), FRAM weights {fmt_bytes(summary['fram_weights'])}, "
            f"activations in FRAM {fmt_bytes(summary['fram_activations'])}"
            + (f" and HIFRAM {fmt_bytes(summary['hifram_activations'])}" if in_hifram else "")
            + (f", step functions in HIFRAM (~{fmt_bytes(hicode)} of code)" if code_up else "")
            + ", reuse saved "
            f"{fmt_bytes(sram_pack.savings + fram_pack.savings)}")
        return PassResult(p, changed, stats)

    def _spill_to_hifram(self, p: Program, lives: dict[str, Lifetime], in_fram: list[Buffer],
                         in_hifram: list[Buffer], room: int, hifram: bool
                         ) -> tuple[list[Buffer], list[Buffer], Packing, list[_Item]]:
        """Pack the FRAM activations into lower FRAM's ``room`` bytes (what the code and the
        descriptors leave); while the arena is larger, the largest buffer live at its peak moves to
        HIFRAM (when ``hifram``, the budget has HIFRAM, and the option allows it), inputs of sparse
        steps last (:func:`sparse_inputs`). Returns (lower FRAM activations, HIFRAM activations,
        the lower FRAM packing and its items)."""
        o: PlanMemoryOptions = self.options
        in_fram, in_hifram = list(in_fram), list(in_hifram)
        keep_low = sparse_inputs(p)
        while True:
            items = [_item(b, lives[b.name]) for b in in_fram]
            packing = pack(items, o.reuse)
            if packing.total <= room or not in_fram or not hifram or not o.hifram_activations:
                return in_fram, in_hifram, packing, items
            _, live = live_at(p, lives, [b.name for b in in_fram])
            victim = max(live, key=lambda n: (n not in keep_low, p.buffers[n].nbytes, n))
            in_fram = [b for b in in_fram if b.name != victim]
            in_hifram.append(p.buffers[victim])

    def _place_constants(self, consts: list[Buffer], lower_used: int, lower_cap: int, hifram_cap: int,
                         arena: int, hi_arena: int) -> tuple[dict[str, tuple[str, int]], int, int]:
        """Split the constants between lower FRAM (after ``lower_used`` bytes, offsets after the FRAM
        arena of ``arena`` bytes) and HIFRAM (after its activation arena of ``hi_arena`` bytes), and
        give each its offset.

        First the preferred split: the large ones (over ``hifram_threshold``) to HIFRAM, the others
        smallest first into lower FRAM while they fit, the rest to HIFRAM. If that overflows HIFRAM,
        lower FRAM takes the subset with the largest sum that fits its free bytes
        (:func:`_fill_lower`) and HIFRAM the rest. Returns (name -> (space, offset), lower FRAM bytes
        used, HIFRAM bytes used, its activation arena included); the caller checks the HIFRAM bytes
        against ``hifram_cap``.
        """
        o: PlanMemoryOptions = self.options
        low: list[Buffer] = []
        high: list[Buffer] = []
        used = lower_used
        for b in sorted(consts, key=lambda b: (b.nbytes, b.name)):
            wants_high = b.nbytes > o.hifram_threshold and hifram_cap > 0
            if not wants_high and used + _align_up(b.nbytes, 2) <= lower_cap:
                low.append(b)
                used += _align_up(b.nbytes, 2)
            else:
                high.append(b)
        placement, low_bytes, hi_off = _layout(low, high, _align_up(arena, 4), hi_arena)
        if hi_off > hifram_cap:
            low = _fill_lower(consts, lower_cap - lower_used)
            names = {b.name for b in low}
            balanced = _layout(low, [b for b in consts if b.name not in names], _align_up(arena, 4), hi_arena)
            if balanced[2] < hi_off:
                placement, low_bytes, hi_off = balanced
        return placement, lower_used + low_bytes, hi_off

    # --- errors ---------------------------------------------------------------------------------
    def _sram_error(self, p: Program, lives: dict[str, Lifetime], need: int, sram: int, stack: int,
                    step_at: int, live: list[str], spill_allowed: bool) -> None:
        where = f"at step {step_at} '{p.steps[step_at].name}'" if 0 <= step_at < len(p.steps) else "at step 0"
        biggest = sorted(live, key=lambda n: (-p.buffers[n].nbytes, n))
        details = [f"live {where}:"] + ["  " + _describe(p, n, lives[n]) for n in biggest[:6]]
        helps = [f"a larger SRAM budget: --sram {suggest_size(need + stack)}"]
        if not spill_allowed:
            helps.insert(0, "let activations spill to FRAM (drop --sram-only / plan-memory{fram-activations=false})")
        if 0 <= step_at < len(p.steps):
            helps.append(f"tile the layer '{p.steps[step_at].name}' (the tile pass) so that it works in SRAM")
        raise BudgetError(
            f"activations need {fmt_bytes(need)} of SRAM but {fmt_bytes(sram - stack)} are available "
            f"({fmt_bytes(sram)} SRAM - {fmt_bytes(stack)} reserved for the stack)",
            location=Location(pass_name=self.name,
                              node=p.steps[step_at].name if 0 <= step_at < len(p.steps) else None),
            details=details, hint="; ".join(helps))

    def _fram_error(self, p: Program, lives: dict[str, Lifetime], sram: int, fram: int, lower_cap: int,
                    code: int, descr: int, fram_acts: int, in_fram: list[Buffer], consts: list[Buffer],
                    hicode: int = 0) -> None:
        """Lower FRAM cannot hold the code (what stays there: ``hicode`` bytes of step functions
        moved to HIFRAM), the descriptors and the FRAM activations that may not move to HIFRAM (the
        budget has none, or plan-memory{hifram-activations=false} / {hifram-code=false})."""
        details = ["largest buffers:"] + _largest(p, lives, [*consts, *in_fram])
        o: PlanMemoryOptions = self.options
        if not in_fram:
            moved = f", the step functions (~{fmt_bytes(hicode)}) moved to HIFRAM" if hicode else ""
            msg = (f"lower FRAM (0x4000-0xFF7F, {fmt_bytes(lower_cap)}) cannot hold the code "
                   f"(~{fmt_bytes(code)}{moved}) and the step descriptors ({fmt_bytes(descr)})")
            per_step = (code + descr) // max(len(p.steps), 1)
            details.insert(0, f"{len(p.steps)} steps, each with its own code and descriptor "
                              f"(~{fmt_bytes(per_step)} per step on average)")
            helps = ["fewer steps: fewer layers (an unrolled LSTM/GRU/RNN makes a dozen or so steps "
                     "per time step: a shorter sequence or a strided Conv1d front end before it), "
                     "or fewer kinds of kernels"]
            if not hicode and not o.hifram_code:
                helps.insert(0, "let the step functions move to HIFRAM (drop plan-memory{hifram-code=false})")
            elif not hicode and fram <= LOWER_FRAM_BYTES + VECTOR_BYTES:
                helps.insert(0, f"a FRAM budget with HIFRAM for the step functions (--fram "
                                f"{suggest_size(LOWER_FRAM_BYTES + VECTOR_BYTES + code)} or more; the FR5994 has 256KiB)")
            raise BudgetError(msg, location=Location(pass_name=self.name), details=details, hint="; ".join(helps))
        msg = (f"lower FRAM (0x4000-0xFF7F, {fmt_bytes(lower_cap)}) cannot hold the code (~{fmt_bytes(code)}), "
               f"the step descriptors ({fmt_bytes(descr)}) and the FRAM activations ({fmt_bytes(fram_acts)})")
        helps = []
        if not o.hifram_activations:
            helps.append("let activations move to HIFRAM (drop plan-memory{hifram-activations=false})")
        elif fram <= LOWER_FRAM_BYTES + VECTOR_BYTES:
            helps.append(f"a FRAM budget with HIFRAM for them (--fram {suggest_size(LOWER_FRAM_BYTES + VECTOR_BYTES + fram_acts)}"
                         f" or more; the FR5994 has 256KiB)")
        helps.append(f"more SRAM (--sram {suggest_size(sram + fram_acts)}) so they stay there")
        helps.append("smaller feature maps (fewer channels in the largest layers, an earlier stride or pool)")
        raise BudgetError(msg, location=Location(pass_name=self.name), details=details, hint="; ".join(helps))

    def _hifram_error(self, p: Program, lives: dict[str, Lifetime], fram: int, lower_cap: int, hifram_cap: int,
                      code: int, descr: int, fram_acts: int, hi_acts: int, in_hifram: list[Buffer],
                      consts: list[Buffer], placement: Mapping[str, tuple[str, int]], hi_need: int,
                      hicode: int = 0) -> None:
        """HIFRAM (the step functions' ``hicode`` bytes when they moved there, its activation arena
        of ``hi_acts`` bytes and the constants that the best split leaves it) needs ``hi_need +
        hicode`` bytes, more than it has: name the region that overflows, by how much, what is in
        it, and whether bytes or whole objects are short."""
        free = lower_cap - code - descr - fram_acts
        in_low = sum(_align_up(b.nbytes, 2) for b in consts if placement[b.name][0] == "fram")
        total = sum(_align_up(b.nbytes, 2) for b in consts)
        over = hi_need + hicode - hifram_cap
        lower = (f"lower FRAM also holds the code ~{fmt_bytes(code)}, the descriptors {fmt_bytes(descr)} and "
                 f"the FRAM activations {fmt_bytes(fram_acts)}")
        if hifram_cap > 0:
            acts = (f"the activations that do not fit lower FRAM need {fmt_bytes(hi_acts)} there "
                    f"({len(in_hifram)} buffer{'s' if len(in_hifram) != 1 else ''}, storage shared by lifetime) and "
                    if in_hifram else "")
            constants = (f"the constants need {fmt_bytes(hi_need - hi_acts)} there with lower FRAM's free "
                         f"{fmt_bytes(free)} holding {fmt_bytes(in_low)} of them (constants {fmt_bytes(total)}; "
                         f"{lower})" if consts else f"there are no constants ({lower})")
            steps = (f"the step functions of the {len(p.steps)} steps, which lower FRAM cannot hold, "
                     f"need ~{fmt_bytes(hicode)} of code there, " if hicode else "")
            msg = (f"HIFRAM (0x{HIFRAM_START:X}-0x{HIFRAM_START + hifram_cap - 1:X}, {fmt_bytes(hifram_cap)}) "
                   f"overflows by {fmt_bytes(over)}: {steps}{acts}{constants}")
        else:
            msg = (f"lower FRAM (0x4000-0xFF7F, {fmt_bytes(lower_cap)}; the budget of {fmt_bytes(fram)} has no "
                   f"HIFRAM) overflows by {fmt_bytes(over)}: the constants need {fmt_bytes(total)} but "
                   f"{fmt_bytes(free)} are free after the code (~{fmt_bytes(code)}), the descriptors "
                   f"({fmt_bytes(descr)}) and the FRAM activations ({fmt_bytes(fram_acts)})")
        details = ["largest buffers:"] + _largest(p, lives, [*consts, *in_hifram])
        if in_hifram:
            step_at, live = live_at(p, lives, [b.name for b in in_hifram])
            where = f"step {step_at} '{p.steps[step_at].name}'" if 0 <= step_at < len(p.steps) else "step 0"
            details += [f"HIFRAM activations live at {where}:"]
            details += ["  " + _describe(p, n, lives[n])
                        for n in sorted(live, key=lambda n: (-p.buffers[n].nbytes, n))[:6]]
        high = sorted((b for b in consts if placement[b.name][0] == "hifram"), key=lambda b: (b.nbytes, b.name))
        if high and total <= free + hifram_cap - hi_acts - hicode:
            details.insert(0, f"the bytes would fit ({fmt_bytes(total)} of constants, "
                              f"{fmt_bytes(free + hifram_cap - hi_acts - hicode)} free in both regions) but not as whole "
                              f"objects: no constant in HIFRAM fits the {fmt_bytes(free - in_low)} left in lower "
                              f"FRAM (the smallest there: %{high[0].name} {fmt_bytes(high[0].nbytes)})")
        helps = ["compress the weights (sparsify{budget=...}, separate)"] if high else []
        if hicode:
            helps.append("fewer steps (an unrolled LSTM/GRU/RNN makes a dozen or so per time step: a shorter sequence)")
        if in_hifram:
            helps.append("smaller feature maps (fewer channels in the largest layers, an earlier stride or pool)")
        helps.append(f"raise the budget with --fram {suggest_size(fram + over)} if the part has more FRAM")
        raise BudgetError(msg, location=Location(pass_name=self.name), details=details,
                          hint="; ".join(helps))


def _largest(p: Program, lives: dict[str, Lifetime], bufs: list[Buffer], n: int = 6) -> list[str]:
    """One line for each of the ``n`` largest buffers: a constant with the steps that read it, an
    activation with its lifetime (:func:`_describe`)."""
    readers: dict[str, list[str]] = {}
    for s in p.steps:
        for name in s.inputs:
            readers.setdefault(p.storage_of(name).name, []).append(s.name)
    lines = []
    for b in sorted(bufs, key=lambda b: (-b.nbytes, b.name))[:n]:
        if b.is_const:
            names = sorted(set(readers.get(b.name, [])))
            used = ", ".join(f"'{r}'" for r in names[:4]) or "no step"
            if len(names) > 4:
                used += f" and {len(names) - 4} more steps"
            shape = ",".join(str(d) for d in b.shape)
            lines.append(f"const %{b.name}  {fmt_bytes(b.nbytes)}  {b.dtype}[{shape}]  used by {used}")
        else:
            lines.append("activation " + _describe(p, b.name, lives[b.name]))
    return lines


def _layout(low: list[Buffer], high: list[Buffer], const_off: int, hi_arena: int = 0
            ) -> tuple[dict[str, tuple[str, int]], int, int]:
    """Offsets for constants in lower FRAM (from ``const_off``, in the order given) and in HIFRAM
    (after its activation arena of ``hi_arena`` bytes, in the order given), each aligned to its
    element size. Returns (name -> (space, offset), lower FRAM bytes taken (padding included),
    HIFRAM bytes: the activation arena and the constants; the arena alone when there are none)."""
    placement: dict[str, tuple[str, int]] = {}
    start = const_off
    for b in low:
        const_off = _align_up(const_off, max(2, DTYPES[b.dtype].itemsize))
        placement[b.name] = ("fram", const_off)
        const_off += _align_up(b.nbytes, 2)
    hi_off = hi_arena
    for b in high:
        hi_off = _align_up(hi_off, max(2, DTYPES[b.dtype].itemsize))
        placement[b.name] = ("hifram", hi_off)
        hi_off += _align_up(b.nbytes, 2)
    return placement, const_off - start, hi_off


def _fill_lower(consts: list[Buffer], free: int) -> list[Buffer]:
    """The constants that fill ``free`` bytes of lower FRAM best: the subset with the largest sum
    of sizes (rounded to their alignment) that fits, found exactly by a subset sum over 2-byte
    units (a bit set of reachable sums per prefix; ``free`` is below 48 KiB, so at most 24,576
    bits). Returned in layout order: 4-byte-aligned ones first, then by size, so that no padding
    is needed between them. Deterministic: the constants are considered largest first, by name."""
    units = max(0, free) // 2
    mask = (1 << (units + 1)) - 1
    order = sorted(consts, key=lambda b: (-b.nbytes, b.name))
    sizes = [_align_up(b.nbytes, max(2, DTYPES[b.dtype].itemsize)) // 2 for b in order]
    reach = [1]                          # reach[i]: sums (in units) reachable with order[:i]
    for n in sizes:
        reach.append((reach[-1] | (reach[-1] << n)) & mask)
    target = reach[-1].bit_length() - 1
    chosen: list[Buffer] = []
    for i in range(len(order) - 1, -1, -1):
        if not (reach[i] >> target) & 1:     # not reachable without order[i]: it is in the subset
            chosen.append(order[i])
            target -= sizes[i]
    return sorted(chosen, key=lambda b: (-max(2, DTYPES[b.dtype].itemsize), b.nbytes, b.name))


def memory_summary(p: Program) -> dict[str, Any]:
    """Bytes by memory kind of a planned program (used by the pass stats, the report and the manifest).

    Keys: ``sram_peak`` (SRAM activation arena), ``fram_activations`` (lower FRAM activation arena),
    ``hifram_activations`` (HIFRAM activation arena), ``fram_weights`` (i16/i8 constants),
    ``fram_bias`` (i32 constants), ``fram_other`` (other constants, e.g. u16 indices),
    ``fram_descriptors`` (kernel descriptor structs and shift tables, estimated), ``hifram_bytes``
    (all of HIFRAM: its activation arena and the constants placed there, which are also counted in
    the kinds above),
    ``fram_constants`` (all constants), ``parameters`` (number of constant elements).
    """
    acts, consts = _storage_buffers(p)
    sram_peak = max((b.offset + b.nbytes for b in acts if b.space == "sram" and b.offset is not None), default=0)
    weights = sum(b.nbytes for b in consts if b.dtype in ("i16", "i8"))
    bias = sum(b.nbytes for b in consts if b.dtype == "i32")
    other = sum(b.nbytes for b in consts if b.dtype not in ("i16", "i8", "i32"))
    hifram_acts = arena_bytes(acts, "hifram")
    return {
        "sram_peak": sram_peak,
        "fram_activations": arena_bytes(acts, "fram"),
        "hifram_activations": hifram_acts,
        "fram_weights": weights,
        "fram_bias": bias,
        "fram_other": other,
        "fram_constants": weights + bias + other,
        "fram_descriptors": sum(descriptor_bytes(s) for s in p.steps),
        "hifram_bytes": sum(b.nbytes for b in consts if b.space == "hifram") + hifram_acts,
        "parameters": sum(b.size for b in consts),
    }


def arena_bytes(acts: Iterable[Buffer], space: str) -> int:
    """Bytes of the activation arena of ``space`` (``fram`` or ``hifram``): from its lowest placed
    buffer to the end of its highest (0 when none is there)."""
    placed = [b for b in acts if b.space == space and b.offset is not None]
    if not placed:
        return 0
    return max(b.offset + b.nbytes for b in placed) - min(b.offset for b in placed)  # type: ignore[operator]


def is_planned(p: Program) -> bool:
    """True when every buffer that owns storage has a space and an offset."""
    return all(b.space is not None and b.offset is not None
               for b in p.buffers.values() if b.alias is None)
