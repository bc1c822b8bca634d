"""The ONNX backend node tests of every op freeml-tx claims, run through the compiler (DESIGN.md 9.6).

What this module does for one node test (``test_onnx_node_tests.py`` runs it for all of them and
``python tests/backend/test_onnx_node_tests.py --write-doc`` writes docs/onnx-node-tests.md):

1. **Load.** onnx 1.23 ships no node-test data on disk; the test cases (model + input/output arrays)
   are generated in memory by importing the ``onnx.backend.test.case.node.<op>`` modules of the ops
   below (the same generators ``load_model_tests(kind="node")`` runs for every op; each export
   reseeds numpy with 0, so the data are the same on every run). No file is read or written.
2. **Prepare** (:func:`prepare`), the same steps a user would take to export such a layer:
   - *parameters become initializers*: node tests feed weights as graph inputs; the inputs listed in
     :data:`PARAM_INPUTS` (Conv and ConvTranspose W/B, Gemm B/C, MatMul B, PRelu slope, Resize
     roi/scales/sizes, Upsample scales, BatchNormalization scale/B/mean/var, Clip
     min/max, Reshape shape, ReduceMean axes, Dropout ratio/training_mode) and the second operand of
     Add/Sub/Mul/Div when it broadcasts (a shape other than the first operand's) are turned into
     initializers holding the test's values;
   - *batch*: the compiler runs batch 1. An activation input ``[N, ...]`` with ``N > 1`` is
     re-declared ``[1, ...]`` and the N samples run one by one; a rank-1 activation ``[n]`` is
     re-declared ``[1, n]``. Either rewrite is kept only when the onnx reference evaluator, running
     the rewritten model sample by sample, reproduces the test's expected outputs (same values,
     ``[1, ...]`` slices of the expected shapes). When a constant shape holds the batch (a Reshape
     to ``[2, -1]``), the model is kept as it is and run on the batch-1 samples if normalize's
     ``batch-one`` rewrites it into a model that reproduces them; otherwise the case is compiled
     as it is and must be rejected.
3. **Compile**: ``normalize,quantize,lower`` with the test's own (prepared) inputs as calibration data
   (``Dataset.from_arrays``), then the LIR interpreter on each quantised sample.
4. **Compare** the dequantised outputs with the test's expected outputs. The tolerance is the
   worst-case error bound the program's Q formats imply for that run
   (``backends.lower_bounds.error_bounds``: input rounding ``2^-(q_in+1)`` propagated through the step
   -- through ``sum |w|`` for conv/fc, added for ``add`` -- plus weight rounding ``2^-(f_w+1)`` times
   the largest sum of ``|x|`` over one output's window, bias rounding, and half an LSB ``2^-(q_out+1)`` for every requantisation, divround,
   clip bound or leaky slope), plus a float32 slack of ``1e-6 * (1 + max|expected|)``. No buffer may
   saturate (the bound assumes none does). A dropped final Sigmoid is applied on the host to the
   logits (the bound: a quarter of theirs, its largest slope). A dropped final Softmax is applied on the host to the
   logits the program returns (the documented contract); logits within ``e`` of the float ones give
   probabilities within ``exp(2e) - 1`` of the expected ones, which is the tolerance there.

An :class:`Outcome` says what happened: ``pass``, ``unsupported`` (a :class:`FreemlError` that is
not an internal failure), ``crash`` (an internal exception, a PassError wrapping one, or a
VerificationError), ``invalid`` (the lowered program fails the LIR verifier) or ``mismatch`` (numbers
outside the bound).
"""

from __future__ import annotations

import functools
import importlib
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from backends.lower_bounds import error_bounds
from transpiler.data import Dataset
from transpiler.errors import FreemlError, PassError, VerificationError
from transpiler.lir.interp import run_program
from transpiler.lir.ir import Program
from transpiler.lir.qio import dequantize_outputs, quantize_inputs
from transpiler.lir.verify import verify_program
from transpiler.manager import run_pipeline
from transpiler.pass_infra import PassContext, registry

#: Every op the normal form (docs/normal-form.md) accepts or removes, and the node-test module
#: (onnx/backend/test/case/node/<module>.py) that generates its tests.
OP_MODULES: dict[str, str] = {
    "Conv": "conv", "Gemm": "gemm", "MatMul": "matmul", "Relu": "relu", "Clip": "clip",
    "LeakyRelu": "leakyrelu", "MaxPool": "maxpool", "AveragePool": "averagepool",
    "GlobalAveragePool": "globalaveragepool", "GlobalMaxPool": "globalmaxpool", "Add": "add", "Sub": "sub",
    "Mul": "mul", "Div": "div",
    "Concat": "concat", "Flatten": "flatten", "Reshape": "reshape", "Transpose": "transpose", "BatchNormalization": "batch_normalization",
    "Softmax": "softmax", "ArgMax": "argmax", "Identity": "identity", "Dropout": "dropout",
    "ReduceMean": "reducemean",
    # element-wise regions (passes/elementwise.py): one lut step each
    "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSigmoid": "hardsigmoid", "HardSwish": "hardswish",
    "Gelu": "gelu", "Erf": "erf", "Elu": "elu", "Selu": "selu", "Softplus": "softplus",
    "Softsign": "softsign", "Mish": "mish",
    # nearest upsampling, transposed convolution (zero insertion + Conv), PRelu (LeakyRelu or Convs)
    "Resize": "resize", "Upsample": "upsample", "ConvTranspose": "convtranspose", "PRelu": "prelu",
}
OPS = tuple(OP_MODULES)

#: Node inputs (by position) that hold parameters; they become initializers with the test's values.
PARAM_INPUTS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2), "Gemm": (1, 2), "MatMul": (1,), "BatchNormalization": (1, 2, 3, 4), "Clip": (1, 2),
    "Reshape": (1,), "ReduceMean": (1,), "Dropout": (1, 2),
    "ConvTranspose": (1, 2), "PRelu": (1,), "Resize": (1, 2, 3), "Upsample": (1,),
}
#: Binary ops: the second operand is a parameter when it broadcasts onto the first.
BINARY = ("Add", "Sub", "Mul", "Div")
PIPELINE = "normalize,quantize,lower"
_EXPANDED = re.compile(r"_expanded(_ver\d+)?$")


@dataclass
class NodeCase:
    """One ONNX node test: its model and its first data set (every node test has exactly one)."""

    name: str
    op: str                      # the op under test (for an expanded case: the op it expands)
    model: onnx.ModelProto
    inputs: list[Any]
    outputs: list[Any]
    node: onnx.NodeProto         # the node under test (for an expanded case: the base case's node)


@functools.lru_cache(maxsize=1)
def load_cases() -> dict[str, NodeCase]:
    """Every node test of the ops in :data:`OP_MODULES`, by name, in generation order."""
    from onnx.backend.test.case import node as node_pkg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in OP_MODULES.values():
            importlib.import_module(f"onnx.backend.test.case.node.{module}")
    raw = {c.name: c for c in node_pkg._NodeTestCases}
    cases: dict[str, NodeCase] = {}
    for name, tc in raw.items():
        base = raw.get(_EXPANDED.sub("", name)) if _EXPANDED.search(name) else tc
        if base is None or len(base.model.graph.node) != 1 or base.model.graph.node[0].op_type not in OP_MODULES:
            continue
        inputs, outputs = tc.data_sets[0]
        cases[name] = NodeCase(name, base.model.graph.node[0].op_type, tc.model, list(inputs), list(outputs),
                               base.model.graph.node[0])
    return cases


# -- preparation --------------------------------------------------------------------------------

@dataclass
class Prepared:
    """What is compiled for a case: the model, the runs (feeds) and the expected outputs per run."""

    case: NodeCase
    model: onnx.ModelProto
    feeds: list[dict[str, np.ndarray]]
    expected: list[list[np.ndarray]]       # per run, in graph-output order
    steps: list[str] = field(default_factory=list)   # what prepare did, for the report

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.model.graph.output]


def _is_array(v: Any) -> bool:
    return isinstance(v, np.ndarray)


def param_names(case: NodeCase) -> set[str]:
    """The graph inputs of `case` that hold parameters (see the module docstring)."""
    node = case.node
    names = {node.input[i] for i in PARAM_INPUTS.get(case.op, ()) if i < len(node.input) and node.input[i]}
    if case.op in BINARY and len(node.input) == 2:
        values = dict(zip([i.name for i in case.model.graph.input], case.inputs))
        a, b = (values.get(n) for n in node.input)
        if _is_array(a) and _is_array(b) and a.shape != b.shape:
            names.add(node.input[1])
    return names


def _with_initializers(case: NodeCase, params: set[str]) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph = model.graph
    values = dict(zip([i.name for i in graph.input], case.inputs))
    keep = [vi for vi in graph.input if vi.name not in params]
    for name in sorted(params):
        graph.initializer.append(numpy_helper.from_array(np.asarray(values[name]), name))
    del graph.input[:]
    graph.input.extend(keep)
    return model


def _redeclare(model: onnx.ModelProto, inputs: dict[str, list[int]],
               outputs: Sequence[Sequence[int]]) -> onnx.ModelProto:
    """A copy with the given input shapes and output shapes (in graph-output order)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    targets = [(vi, inputs[vi.name]) for vi in out.graph.input if vi.name in inputs]
    targets += list(zip(out.graph.output, outputs))
    for vi, shape in targets:
        tt = vi.type.tensor_type
        tt.shape.Clear()
        for d in shape:
            tt.shape.dim.add().dim_value = int(d)
    return out


def _reproduces(model: onnx.ModelProto, feeds: Sequence[dict[str, np.ndarray]],
                expected: Sequence[Sequence[np.ndarray]]) -> bool:
    """Does the onnx reference evaluator, on each feed, give the expected outputs (shape and values)?"""
    from onnx.reference import ReferenceEvaluator

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx.checker.check_model(model)
            ref = ReferenceEvaluator(model)
            for feed, want in zip(feeds, expected):
                got = ref.run(None, feed)
                if len(got) != len(want):
                    return False
                for g, w in zip(got, want):
                    g, w = np.asarray(g), np.asarray(w)
                    if g.shape != w.shape or g.dtype != w.dtype:
                        return False
                    if not np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=1e-5, atol=1e-6,
                                       equal_nan=True):
                        return False
    except Exception:  # the rewritten model is invalid or fails to run: the rewrite does not apply
        return False
    return True


def prepare(case: NodeCase) -> Prepared:
    """Parameters -> initializers; batch N -> N runs of batch 1 (or a rank-1 input -> [1, n]) when the
    rewritten model reproduces the expected outputs (see the module docstring)."""
    params = param_names(case)
    model = _with_initializers(case, params)
    values = dict(zip([i.name for i in case.model.graph.input], case.inputs))
    acts = {vi.name: values[vi.name] for vi in model.graph.input}
    steps = []
    if params:
        steps.append(f"initializers: {', '.join(sorted(params))}")
    whole = Prepared(case, model, [dict(acts)], [list(case.outputs)], steps)
    arrays = list(acts.values())
    if not arrays or not all(_is_array(a) for a in arrays) or not all(_is_array(o) for o in case.outputs):
        return whole
    ranks = {a.ndim for a in arrays}
    if all(a.ndim >= 2 for a in arrays) and len({a.shape[0] for a in arrays}) == 1:
        n = arrays[0].shape[0]
        if n == 1 or n == 0:
            return whole
        if any(o.ndim == 0 or o.shape[0] != n for o in case.outputs):
            return whole
        shapes = {k: [1, *v.shape[1:]] for k, v in acts.items()}
        feeds = [{k: v[i:i + 1] for k, v in acts.items()} for i in range(n)]
        expected = [[o[i:i + 1] for o in case.outputs] for i in range(n)]
        what = f"batch {n} split into {n} runs of batch 1"
    elif ranks == {1}:
        shapes = {k: [1, v.shape[0]] for k, v in acts.items()}
        feeds = [{k: v.reshape(1, -1) for k, v in acts.items()}]
        expected = [[o.reshape(1, *o.shape) for o in case.outputs]]
        what = "rank-1 input(s) declared [1, n]"
    else:
        return whole
    adapted = _redeclare(model, shapes, [o.shape for o in expected[0]])
    if _reproduces(adapted, feeds, expected):
        return Prepared(case, adapted, feeds, expected, steps + [what])
    if ranks != {1} and _batch_one_reproduces(model, feeds, expected):
        # a constant shape holds the batch: normalize's batch-one rewrites it, so the model is
        # compiled as it is and run on the batch-1 feeds
        return Prepared(case, model, feeds, expected, steps + [f"{what} (batch-one rewrites the model)"])
    return whole


def _batch_one_reproduces(model: onnx.ModelProto, feeds: Sequence[dict[str, np.ndarray]],
                          expected: Sequence[Sequence[np.ndarray]]) -> bool:
    """Does `batch-one` turn ``model`` into a one-sample model that gives the expected outputs?"""
    from passes.batch_one import BatchOne
    from transpiler.model import OnnxModel

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    result = BatchOne().run(OnnxModel.from_proto(copy))
    if not result.changed:
        return False
    rewritten = result.model.to_proto()
    return _reproduces(_redeclare(rewritten, {}, [o.shape for o in expected[0]]), feeds, expected)


# -- compile and compare --------------------------------------------------------------------------

@dataclass
class Outcome:
    """What the compiler did with a prepared case."""

    status: str                         # "pass" | "unsupported" | "crash" | "invalid" | "mismatch"
    message: str = ""
    error: BaseException | None = None
    program: Program | None = None
    qfeeds: list[dict[str, np.ndarray]] = field(default_factory=list)   # quantised program inputs
    max_err: float = 0.0                # worst |got - expected| over runs and outputs
    max_bound: float = 0.0              # the tolerance at that output
    err_lsb: float = 0.0                # max_err in LSBs of the output format
    runs: int = 0

    @property
    def summary(self) -> str:
        if self.status == "pass":
            return (f"max error {self.max_err:.2g} = {self.err_lsb:.2f} LSB (bound {self.max_bound:.2g}), "
                    f"{self.runs} run(s)")
        return self.message


def _internal(exc: BaseException) -> bool:
    """An internal failure rather than a user-facing rejection."""
    if isinstance(exc, VerificationError):
        return True
    if isinstance(exc, PassError) and exc.__cause__ is not None and not isinstance(exc.__cause__, FreemlError):
        return True
    return not isinstance(exc, FreemlError)


def calibration_data(prep: Prepared) -> Dataset | None:
    """The prepared feeds as one Dataset, one sample per run: several runs are ``[1, ...]`` feeds
    (concatenated), a single run (the case as it is) is one sample of its whole arrays. None when an
    input is not an array (sequence/optional types)."""
    names = [vi.name for vi in prep.model.graph.input]
    if not names or not all(_is_array(f[n]) for f in prep.feeds for n in names):
        return None
    if len(prep.feeds) == 1:
        arrays = {n: np.asarray(prep.feeds[0][n])[None] for n in names}
    else:
        arrays = {n: np.concatenate([np.asarray(f[n]) for f in prep.feeds]) for n in names}
    return Dataset.from_arrays(arrays, source=prep.case.name)


def compile_prepared(prep: Prepared, data: Dataset | None) -> Program:
    """Load the prepared model like the CLI does (transpiler.loader.load on a file), then
    normalize,quantize,lower with `data` as calibration data."""
    import tempfile
    from pathlib import Path

    from transpiler.loader import load

    registry()
    with tempfile.TemporaryDirectory(prefix="fx-node-") as tmp:
        path = Path(tmp) / f"{prep.case.name}.onnx"
        onnx.save(prep.model, str(path))
        model = load(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program, _ = run_pipeline(model, PIPELINE, PassContext(data=data), verify=False)
    assert isinstance(program, Program)
    return program


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64) - np.max(x, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def run_case(prep: Prepared) -> Outcome:
    """Compile `prep`, run the interpreter on every feed and compare (see the module docstring)."""
    data = calibration_data(prep)
    try:
        program = compile_prepared(prep, data)
    except BaseException as exc:  # noqa: BLE001 - classified below; KeyboardInterrupt re-raised
        if isinstance(exc, KeyboardInterrupt):
            raise
        text = exc.render() if isinstance(exc, FreemlError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, FreemlError) and exc.__cause__ is not None and _internal(exc):
            text += f" [cause: {type(exc.__cause__).__name__}: {exc.__cause__}]"
        return Outcome("crash" if _internal(exc) else "unsupported", text, exc)
    try:
        verify_program(program)
    except FreemlError as exc:
        return Outcome("invalid", f"lower produced an invalid LIR program: {exc.render()}", exc, program)
    out = Outcome("pass", program=program, runs=len(prep.feeds))
    softmax = {}
    if program.meta.get("softmax"):
        import json

        softmax = {probs: logits for logits, probs in json.loads(program.meta["softmax"]).items()}
    problems = []
    try:
        for run, (feed, expected) in enumerate(zip(prep.feeds, prep.expected)):
            q = quantize_inputs(program, feed)
            out.qfeeds.append(q)
            trace = run_program(program, q, trace=True)
            got = dequantize_outputs(program, trace)
            bounds = error_bounds(program, trace)
            if not bounds.valid:
                problems.append(f"run {run}: saturated buffers {bounds.saturated}")
            for name, want in zip(prep.output_names, expected):
                want = np.asarray(want, dtype=np.float64)
                if name in got:
                    value, bound = got[name].astype(np.float64), bounds.outputs[name]
                    port = name
                elif name in softmax and softmax[name] in got:
                    port = softmax[name]
                    e = bounds.outputs[port]
                    value, bound = _softmax(got[port].astype(np.float64)), float(np.expm1(2.0 * e))
                elif prep.case.node.op_type == "Sigmoid" and prep.case.node.input[0] in got:
                    # a final Sigmoid is dropped like a final Softmax: applied here to the logits,
                    # it moves their error by at most a quarter (its largest slope)
                    port = prep.case.node.input[0]
                    value = 1.0 / (1.0 + np.exp(-got[port].astype(np.float64)))
                    bound = 0.25 * bounds.outputs[port]
                else:
                    problems.append(f"run {run}: output '{name}' is not a program output "
                                    f"(ports: {[p.onnx_name for p in program.outputs]})")
                    continue
                if value.shape != want.shape:
                    problems.append(f"run {run}: output '{name}' has shape {list(value.shape)}, expected "
                                    f"{list(want.shape)}")
                    continue
                err = float(np.max(np.abs(value - want))) if want.size else 0.0
                tol = bound * (1 + 1e-6) + 1e-6 * (1.0 + (float(np.max(np.abs(want))) if want.size else 0.0))
                buf = program.storage_of(next(p.buffer for p in program.outputs if p.onnx_name == port))
                lsb = 2.0 ** -buf.q if isinstance(buf.q, int) else 1.0
                if err >= out.max_err:
                    out.max_err, out.max_bound, out.err_lsb = err, tol, err / lsb
                if not err <= tol:
                    i = np.unravel_index(int(np.argmax(np.abs(value - want))), want.shape)
                    problems.append(f"run {run}: output '{name}' off by {err:.4g} (tolerance {tol:.4g}, "
                                    f"{err / lsb:.1f} LSB of q={buf.q}) at {list(map(int, i))}: got "
                                    f"{value[i]:.6g}, expected {want[i]:.6g}")
    except FreemlError as exc:
        return Outcome("crash", f"running the program: {exc.render()}", exc, program)
    if problems:
        out.status, out.message = "mismatch", "; ".join(problems[:3]) + (
            f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")
    return out


@functools.lru_cache(maxsize=None)
def outcome(name: str) -> tuple[Prepared, Outcome]:
    """Prepare and run the case `name` once per process."""
    prep = prepare(load_cases()[name])
    return prep, run_case(prep)


# -- generated C == interpreter ---------------------------------------------------------------------

def c_name(case_name: str) -> str:
    """The C model name of a case (``fx_<name>_run``)."""
    return re.sub(r"[^a-z0-9_]", "_", case_name.lower().removeprefix("test_"))


def c_inputs(program: Program, out: Outcome, seed: int, extra: int = 4) -> list[dict[str, np.ndarray]]:
    """The quantised test inputs plus `extra` full-range int16 inputs (all-max, all-min, random)."""
    from emit_c_helpers import random_inputs

    return list(out.qfeeds) + random_inputs(program, extra, seed)


DRIVER = """/* node_driver.c - runs many generated models in one process (tests/backend/onnx_node_cases.py).
 * usage: node_driver JOBS  -- each line of JOBS: MODEL COUNT INPUT.raw OUTPUT.raw (as main_host.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

%(includes)s

typedef int (*run_fn)(const int16_t *in, int16_t *out);
typedef struct {
    const char *name;
    run_fn run;
    size_t in_size, out_size;
} model_t;

static const model_t MODELS[] = {
%(table)s
};

static int run_job(const model_t *m, unsigned long count, const char *in_path, const char *out_path)
{
    size_t n_in = (size_t)count * m->in_size, n_out = (size_t)count * m->out_size, k;
    int16_t *in = (int16_t *)calloc(n_in + 1u, sizeof(int16_t));
    int16_t *out = (int16_t *)calloc(n_out + 1u, sizeof(int16_t));
    FILE *f = fopen(in_path, "rb");
    int rc = 1;
    if (in == NULL || out == NULL || f == NULL || fread(in, sizeof(int16_t), n_in, f) != n_in) {
        fprintf(stderr, "%%s: cannot read %%s\\n", m->name, in_path);
        goto done;
    }
    for (k = 0; k < (size_t)count; ++k) {
        if (m->run(in + k * m->in_size, out + k * m->out_size) != 0) {
            fprintf(stderr, "%%s: run failed on sample %%lu\\n", m->name, (unsigned long)k);
            goto done;
        }
    }
    fclose(f);
    f = fopen(out_path, "wb");
    if (f == NULL || fwrite(out, sizeof(int16_t), n_out, f) != n_out) {
        fprintf(stderr, "%%s: cannot write %%s\\n", m->name, out_path);
        goto done;
    }
    rc = 0;
done:
    if (f != NULL) {
        fclose(f);
    }
    free(in);
    free(out);
    return rc;
}

int main(int argc, char **argv)
{
    char name[256], in_path[4096], out_path[4096];
    unsigned long count;
    FILE *jobs;
    size_t i;
    int rc = 0;
    if (argc != 2 || (jobs = fopen(argv[1], "r")) == NULL) {
        fprintf(stderr, "usage: node_driver JOBS\\n");
        return 2;
    }
    while (fscanf(jobs, "%%255s %%lu %%4095s %%4095s", name, &count, in_path, out_path) == 4) {
        for (i = 0; i < sizeof MODELS / sizeof MODELS[0]; ++i) {
            if (strcmp(MODELS[i].name, name) == 0) {
                break;
            }
        }
        if (i == sizeof MODELS / sizeof MODELS[0]) {
            fprintf(stderr, "unknown model %%s\\n", name);
            rc = 1;
        } else if (run_job(&MODELS[i], count, in_path, out_path) != 0) {
            rc = 1;
        }
    }
    fclose(jobs);
    return rc;
}
"""


def _make_var(makefile: str, var: str) -> str:
    """The value of ``VAR ?= ...`` (with backslash continuations) in a generated Makefile."""
    m = re.search(rf"^{var} \?=((?:.*\\\n)*.*)$", makefile, re.M)
    assert m is not None, f"no {var} in the generated Makefile"
    return " ".join(m.group(1).replace("\\\n", " ").split())


def check_c(names: Sequence[str], work: Any, cc: str = "gcc", sanitize: bool = True,
            workers: int = 2) -> dict[str, str]:
    """Generated C == interpreter, bit for bit, for every case in `names` (all must have compiled).

    Each program goes through plan-memory and emit-c into ``work/<c name>/``. To keep this fast the
    packages are built together: every model's ``<m>.c`` and ``<m>_weights.c`` (their ``fx_<m>_``
    names do not clash), the runtime files they need (the same runtime for all) and a driver that
    runs model after model in one process, compiled with the flags of the generated Makefile
    (``ASAN_CFLAGS``: -Wall -Wextra -Werror, ASan + UBSan, when `sanitize`, else ``CFLAGS``) by
    ``make -j``. Inputs: the quantised test inputs plus full-range int16 ones. Returns
    {case: problem} for each case whose C output differs (or that fails to emit); a build failure
    raises ToolchainError with the compiler's output.
    """
    import subprocess
    from pathlib import Path

    from emit_c_helpers import emit, interp_outputs, pack_inputs

    from transpiler.errors import ToolchainError

    work = Path(work)
    problems: dict[str, str] = {}
    jobs = []   # (case, c name, package dir, inputs)
    for k, name in enumerate(names):
        _, out = outcome(name)
        assert out.program is not None, name
        m = c_name(name)
        try:
            emit(out.program, work / m, name=m)
        except FreemlError as exc:
            problems[name] = f"emit failed: {exc.render()}"
            continue
        jobs.append((name, m, work / m, c_inputs(out.program, out, seed=k)))
    if not jobs:
        return problems
    build = work / "_all"
    (build / "runtime").mkdir(parents=True, exist_ok=True)
    runtime: dict[str, bytes] = {}
    for _, _, d, _ in jobs:
        for f in sorted((d / "runtime").iterdir()):
            if f.is_file():
                data = f.read_bytes()
                assert runtime.setdefault(f.name, data) == data, f"runtime/{f.name} differs between packages"
    for fname, data in runtime.items():
        (build / "runtime" / fname).write_bytes(data)
    makefile0 = (jobs[0][2] / "Makefile").read_text(encoding="utf-8")
    cflags = _make_var(makefile0, "ASAN_CFLAGS" if sanitize else "CFLAGS")
    (build / "node_driver.c").write_text(DRIVER % {
        "includes": "\n".join(f'#include "{d.name}/{m}.h"' for _, m, d, _ in jobs),
        "table": "\n".join(f'    {{"{m}", fx_{m}_run, FX_{m.upper()}_IN_SIZE, FX_{m.upper()}_OUT_SIZE}},'
                           for _, m, _, _ in jobs)}, encoding="utf-8")
    objs, rules = [], []

    def compile_rule(obj: str, src: str, includes: str) -> None:
        objs.append(obj)
        rules.append(f"{obj}: {src}\n\t@mkdir -p obj\n\t$(CC) $(CFLAGS) {includes} -Iruntime -c -o $@ $<\n")

    for _, m, d, _ in jobs:
        for src in (f"{m}.c", f"{m}_weights.c"):
            compile_rule(f"obj/{src[:-2]}.o", f"{d}/{src}", f"-I{d}")
    for fname in sorted(runtime):
        if fname.endswith(".c"):
            compile_rule(f"obj/rt_{fname[:-2]}.o", f"runtime/{fname}", "")
    compile_rule("obj/node_driver.o", "node_driver.c", f"-I{work}")
    (build / "Makefile").write_text(
        f"CC := {cc}\nCFLAGS := {cflags}\n\nnode_driver: {' '.join(objs)}\n\t$(CC) $(CFLAGS) -o $@ $^\n\n"
        + "\n".join(rules), encoding="utf-8")
    proc = subprocess.run(["make", "-s", f"-j{workers}", "-C", str(build)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"building the node-test packages with {cc} failed",
                             details=(proc.stdout + proc.stderr).strip().splitlines()[-30:])
    lines, wants = [], {}
    for name, m, d, inputs in jobs:
        program = outcome(name)[1].program
        assert program is not None
        wants[name] = interp_outputs(program, inputs)
        np.ascontiguousarray(pack_inputs(program, inputs), dtype="<i2").tofile(build / f"{m}.in")
        lines.append(f"{m} {len(inputs)} {build / (m + '.in')} {build / (m + '.out')}")
    (build / "jobs.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.run([str(build / "node_driver"), str(build / "jobs.txt")], capture_output=True, text=True,
                          timeout=600)
    for name, m, d, inputs in jobs:
        want = wants[name]
        path = build / f"{m}.out"
        if not path.is_file():
            problems[name] = f"no output (driver exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"
            continue
        got = np.fromfile(path, dtype="<i2").astype(np.int16)
        if got.size != want.size:
            problems[name] = f"C wrote {got.size} values, expected {want.size}"
            continue
        got = got.reshape(want.shape)
        if not np.array_equal(got, want):
            bad = np.argwhere(got != want)
            first = tuple(bad[0])
            problems[name] = (f"C != interpreter at {len(bad)} value(s); first at input/value "
                              f"{list(map(int, first))}: C {int(got[first])}, interpreter {int(want[first])}")
    if proc.returncode != 0 and not problems:
        problems["(driver)"] = f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}"
    return problems


# -- what each case is expected to do ---------------------------------------------------------------

@dataclass(frozen=True)
class Expect:
    """The expected outcome of the cases whose name matches `pattern` (re.search; first rule wins).

    status: "unsupported" (rejected with a FreemlError whose text matches `match`, naming the op) or
    "bug" (a known compiler bug: the case is an xfail(strict=True) until it is fixed).
    """

    pattern: str
    status: str
    reason: str
    match: str = ""


UNSUPPORTED = "unsupported"
BUG = "bug"

#: Every case not matched here must pass. Reasons are what docs/onnx-node-tests.md prints.
EXPECTATIONS: tuple[Expect, ...] = (
    # known bugs first (they override the categories below); none open
    # forms outside the normal form, by category
    # (the activations' expanded bodies whose CastLike of a constant `fold-constants` folds pass)
    Expect(r"^(?!test_clip(_example|_splitbounds|_min_greater_than_max|_default_min|_default_max|_inbounds"
           r"|_outbounds)?_expanded$)(?!test_(relu_expanded_ver18|leakyrelu(_example|_default)?_expanded"
           r"|gelu_(tanh|default)_[12]_expanded|(hardsigmoid|elu|selu)(_example|_default)?_expanded_ver18"
           r"|(softplus|softsign)(_example)?_expanded_ver18)$)"
           r"test_.*(?<!test_hardswish)(?<!test_mish)_expanded(_ver\d+)?$", UNSUPPORTED,
           "function-expanded form: the graph is the op's function body (Less/Where, CastLike/Max, "
           "ReduceMax/Exp/ReduceSum/Div, Identity), whose ops are outside the normal form",
           r"is not supported|cannot be compiled"),
    Expect(r"_u?int\d+(_|$)", UNSUPPORTED,
           "integer tensors: the compiler takes float32 models and quantises them itself",
           r"dtype u?int\d+; only float32"),
    Expect(r"^test_(max|average)pool_3d_", UNSUPPORTED, "3-D pooling (rank-5 input): only 1-D and 2-D feature maps",
           r"is not \[1,C,L\] or \[1,C,H,W\]"),
    Expect(r"^test_averagepool_2d_dilations$", UNSUPPORTED, "dilated average pooling (the avgpool op has no dilation)",
           r"dilated average pooling"),
    Expect(r"^test_maxpool_with_argmax_", UNSUPPORTED, "the Indices output of MaxPool is a graph output",
           r"Indices output is used"),
    Expect(r"^test_gemm_default_matrix_bias$", UNSUPPORTED,
           "bias C is a [3, 4] matrix (a different bias per row), so the batch cannot be split; batch 3 is rejected",
           r"inputs must be \[1, \.\.\.\]"),
    Expect(r"^test_gemm_(transposeA|all_attributes)$", UNSUPPORTED,
           "transA=1: the activation is transposed (its first axis is not the batch), no batch-1 form",
           r"transA=1"),
    Expect(r"^test_matmul_(3d|4d|bcast|1d_3d|4d_1d|1d_1d)$", UNSUPPORTED,
           "not a [1, K] x constant [K, N] product: batched, broadcast or vector operands",
           r"MatMul is not supported"),
    Expect(r"^test_div(_example)?$", UNSUPPORTED, "quotient of two activations (only Div by a constant)",
           r"only division by a constant"),
    Expect(r"^test_concat_(1d_axis_0|2d_axis_0|2d_axis_negative_2|3d_axis_0|3d_axis_negative_3)$", UNSUPPORTED,
           "concatenation along the batch axis 0 (no batch-1 form)", r"inputs must be \[1, \.\.\.\]"),
    Expect(r"^test_flatten_(axis0|negative_axis4)$", UNSUPPORTED,
           "Flatten(axis=0) folds the batch into the features (no batch-1 form)", r"inputs must be \[1, \.\.\.\]"),
    Expect(r"^test_flatten_(axis2|axis3|negative_axis2|negative_axis1)$", UNSUPPORTED,
           "Flatten(axis>=2) keeps a non-batch axis in front ([6, 20], [24, 5]): not a [1, N] layout",
           r"reshape to \[\d+, \d+\]"),
    Expect(r"^test_reshape_allowzero_reordered$", UNSUPPORTED, "zero-size tensor ([0, 3, 4], allowzero=1)",
           r"shape inference failed"),
    Expect(r"^test_reshape_(reordered_all_dims|one_dim|negative_extended_dims)$", UNSUPPORTED,
           "the constant target shape moves the batch 2 ([4, 2, 3], [24], [1, 2, 3, 4]): the samples "
           "cannot be split (batch-one says so) and the result is not a [1, ...] layout",
           r"inputs must be \[1, \.\.\.\]"),
    Expect(r"^test_transpose_(default|all_permutations_[2-5])$", UNSUPPORTED,
           "the permutation moves the batch axis 0 of [2, 3, 4] (no batch-1 form)", r"keep the batch axis first"),
    Expect(r"^test_batchnorm_.*_training_mode$", UNSUPPORTED,
           "training-mode BatchNormalization (batch statistics, running mean/var outputs)",
           r"BatchNormalization is not supported"),
    Expect(r"^test_softmax_axis_0$", UNSUPPORTED, "Softmax over the batch axis 0 (no batch-1 form)",
           r"Softmax over axis 0"),
    Expect(r"^test_softmax_axis_1$", UNSUPPORTED, "Softmax over the channel axis of [1, 4, 5] (not the last axis)",
           r"Softmax over axis 1"),
    Expect(r"^test_softmax_(axis_2|negative_axis|default_axis)$", UNSUPPORTED,
           "Softmax over the last axis of a [1, 4, 5] map (one softmax per channel): only a final Softmax "
           "over [1, classes] scores is dropped (check-supported says so)",
           r"Softmax over axis (2|-1) of \[1,4,5\]"),
    Expect(r"^test_argmax_", UNSUPPORTED,
           "a stand-alone ArgMax (int64 output): the class index comes from lower's argmax step after a "
           "final Softmax or a classifier tail; ArgMax nodes are only accepted in the skl2onnx label tail",
           r"ArgMax is not supported"),
    Expect(r"^test_identity$", UNSUPPORTED,
           "the whole model is one Identity from the graph input to the graph output; normalize cannot "
           "remove it (no program is left)", r"Identity is not supported"),
    Expect(r"^test_identity_(sequence|opt)$", UNSUPPORTED, "sequence / optional types (tensors only)",
           r"has no declared shape"),
    Expect(r"^test_dropout_default_mask", UNSUPPORTED, "the Dropout mask is a graph output",
           r"Dropout is not supported"),
    Expect(r"^test_training_dropout", UNSUPPORTED, "training-mode Dropout (training_mode=True)",
           r"Dropout is not supported"),
    Expect(r"^test_dropout_", UNSUPPORTED,
           "the whole model is one inference-mode Dropout from the graph input to the graph output; "
           "normalize cannot remove it (no program is left)", r"Dropout is not supported"),
    Expect(r"^test_resize_.*cubic", UNSUPPORTED, "cubic interpolation: nearest and linear resizing only",
           r"Resize in mode 'cubic'"),
    Expect(r"^test_resize_tf_crop_and_resize", UNSUPPORTED,
           "tf_crop_and_resize (a region of interest, extrapolation outside it)", r"'tf_crop_and_resize'"),
    Expect(r"^test_resize_downsample_(scales|sizes)_linear_antialias$", UNSUPPORTED,
           "antialiased linear downscaling (a wider filter than two taps)", r"antialiased linear downscaling"),
    Expect(r"^test_resize_downsample_scales_linear_align_corners$", UNSUPPORTED,
           "align_corners to a height of 1: the coordinate divides by zero, and onnxruntime (which the "
           "compiler follows) and the test's reference values differ", r"align_corners resizing to length 1"),
    Expect(r"^test_resize_downsample_(scales|sizes)_nearest", UNSUPPORTED,
           "nearest downsampling (factors 1/2, 3/4) with round_prefer_floor: a non-integer resize is reproduced "
           "only with floor/ceil rounding", r"not an integer upsampling"),
    Expect(r"^test_resize_upsample_sizes_nearest(_axes_2_3|_axes_3_2|_not_larger)?$", UNSUPPORTED,
           "sizes [7, 8] (or [7, 7]) from [2, 2] with round_prefer_floor: a non-integer resize is reproduced only "
           "with floor/ceil rounding", r"scale 7/2x[78]/2 \(not an integer upsampling"),
    Expect(r"^test_resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric$", UNSUPPORTED,
           "factor 2 with round_prefer_ceil: the index rule picks other rows than i // 2, and a non-integer map is "
           "reproduced only with floor/ceil rounding", r"not an integer upsampling"),
    Expect(r"^test_convtranspose_3d$", UNSUPPORTED, "3-D transposed convolution (rank-5 input): only 1-D and 2-D",
           r"is not \[1, C, L\] or \[1, C, H, W\]"),
    Expect(r"^test_convtranspose_(output_shape|kernel_shape|autopad_same)$", UNSUPPORTED,
           "output_shape or auto_pad=SAME_UPPER instead of explicit pads", r"auto_pad or output_shape"),
    Expect(r"^test_prelu_example$", UNSUPPORTED,
           "the slope [3, 4, 5] covers the batch axis (a different slope per sample): batch-one cannot split "
           "it, batch 3 is rejected", r"inputs must be \[1, \.\.\.\]"),
    Expect(r"^test_prelu_broadcast$", UNSUPPORTED,
           "the [5] slope varies along the length axis of [1, 4, 5]: only one slope or one per channel",
           r"not a constant with one value or one per channel"),
    Expect(r"^test_reduce_mean_default_axes_", UNSUPPORTED,
           "mean over every axis including the batch (no batch-1 form)", r"ReduceMean is not supported"),
)


def expectation(name: str) -> Expect | None:
    """The rule for case `name`, or None: it must pass."""
    return next((e for e in EXPECTATIONS if re.search(e.pattern, name)), None)


#: Findings that fail no case (the rejection is clear) but are worth fixing; docs/onnx-node-tests.md
#: prints them.
NOTES: tuple[str, ...] = (
    "A model that is one inference-mode Dropout (`test_dropout_default`, `_default_ratio`, `_default_old`, "
    "`_random_old`) is rejected with the hint \"export the model in inference mode (model.eval())\", "
    "although it is in inference mode; the real reason is that the no-op joins the graph input to the "
    "graph output and cannot be removed (the Identity hint says so).",
    "`test_gemm_default_matrix_bias`, `test_gemm_transposeA` and `test_gemm_all_attributes` list, "
    "besides the real reasons (batch, transA, matrix bias), \"Gemm is not canonical ...; run the whole "
    "`normalize` pass\" although the whole normalize ran.",
    "`test_identity_sequence` / `test_identity_opt`: a sequence / optional input is reported as "
    "\"input has no declared shape\" with an `--input-shape` hint; \"only tensor inputs\" would be the "
    "real reason.",
    "`test_reshape_allowzero_reordered`: the zero-size input dimension 0 is taken for a dynamic batch "
    "and set to 1, and the error is then onnx's shape-inference message; \"zero-size tensors are not "
    "supported\" would be clearer.",
    "No ReduceMean node test reaches the supported form (a mean over all spatial axes of a "
    "`[1, C, H, W]` map): they reduce the channel axis or every axis. The `reduce-mean-to-gap` rewrite "
    "is covered by tests/passes; GlobalAveragePool's own node tests pass.",
    "A stand-alone final ArgMax over a `[1, N]` vector maps onto the LIR `argmax` step but is rejected; "
    "only the skl2onnx label tail and a final Softmax produce that step.",
)
