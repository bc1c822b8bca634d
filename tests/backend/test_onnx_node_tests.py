"""Validation link 6 (DESIGN.md section 9): the ONNX backend node tests of every op we claim.

Every node test of the ops in ``onnx_node_cases.OP_MODULES`` (Conv, Gemm, MatMul, Relu, Clip,
LeakyRelu, MaxPool, AveragePool, GlobalAveragePool, Add, Sub, Mul, Div, Concat, Flatten, Reshape,
BatchNormalization, Softmax, ArgMax, Identity, Dropout, ReduceMean, the element-wise functions, Resize,
Upsample, ConvTranspose, PRelu; their ``_expanded`` function
forms included) is prepared as a user would export it, compiled with ``normalize,quantize,lower``
(calibrated on its own inputs) and run by the LIR interpreter; onnx_node_cases.py documents the
preparation and the error bound. Each case must either

- pass: every output within the bound its Q formats imply, or
- be rejected as its ``onnx_node_cases.EXPECTATIONS`` rule says: a FreemlError (not an internal
  failure) whose text gives the documented reason and names the offending op or input, or
- be a known bug: ``xfail(strict=True)`` with the bug described, so a fix turns it into a failure
  that asks for the rule to be removed.

The programs that compile are also emitted as C (plan-memory, emit-c), built together with gcc and
the generated Makefile's sanitizer flags (-Wall -Wextra -Werror, ASan + UBSan) and must equal the
interpreter bit for bit on the test inputs and on full-range int16 inputs.

docs/onnx-node-tests.md lists every case with its outcome; regenerate it with
``python tests/backend/test_onnx_node_tests.py --write-doc`` (it also runs the C check) and
``test_doc_lists_every_case_with_its_outcome`` keeps it true.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parent
ROOT = BACKEND.parents[1]
for _p in (ROOT, BACKEND.parent, BACKEND):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import onnx_node_cases as nc  # noqa: E402

from transpiler.errors import FreemlError  # noqa: E402

DOC = ROOT / "docs" / "onnx-node-tests.md"
NAMES = list(nc.load_cases())


def _param(name: str) -> object:
    rule = nc.expectation(name)
    marks = [pytest.mark.xfail(strict=True, reason=f"bug: {rule.reason}")] if rule and rule.status == nc.BUG else []
    return pytest.param(name, id=name.removeprefix("test_"), marks=marks)


def _names_culprit(prep: nc.Prepared, text: str) -> bool:
    """Does the error text name an op or node of the graph (node tests leave nodes unnamed: normalize
    calls them ``<op>_<n>``), or a graph input (for input-level rejections)?"""
    ops = {n.op_type for n in prep.model.graph.node}
    inputs = {vi.name for vi in prep.model.graph.input}
    return (any(re.search(rf"\b{re.escape(op)}(_\d+)?\b", text) for op in ops)
            or any(f"'{i}'" in text for i in inputs))


@pytest.mark.parametrize("name", [_param(n) for n in NAMES])
def test_node_case(name: str) -> None:
    prep, out = nc.outcome(name)
    rule = nc.expectation(name)
    if rule is None or rule.status == nc.BUG:
        assert out.status == "pass", f"{name} ({'; '.join(prep.steps) or 'as is'}): {out.status}: {out.message}"
        return
    assert out.status == "unsupported", (f"{name} should be rejected ({rule.reason}) but is "
                                         f"{out.status}: {out.summary}")
    assert isinstance(out.error, FreemlError)
    text = out.error.render()
    assert re.search(rule.match, text), f"{name}: expected the reason /{rule.match}/ in:\n{text}"
    assert _names_culprit(prep, text), f"{name}: the error names no op or input of the model:\n{text}"


def test_every_claimed_op_has_node_tests_and_every_rule_is_used() -> None:
    ops = Counter(case.op for case in nc.load_cases().values())
    assert set(ops) == set(nc.OPS), f"ops without node tests: {sorted(set(nc.OPS) - set(ops))}"
    unused = [rule.pattern for rule in nc.EXPECTATIONS if not any(re.search(rule.pattern, n) for n in NAMES)]
    assert not unused, f"expectation rules that match no case: {unused}"


def _c_cases() -> list[str]:
    return [n for n in NAMES if nc.expectation(n) is None and nc.outcome(n)[1].status == "pass"]


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None, reason="needs gcc and make")
def test_generated_c_equals_interpreter(tmp_path: Path) -> None:
    names = _c_cases()
    assert names
    problems = nc.check_c(names, tmp_path)
    assert not problems, "\n".join(f"{n}: {p}" for n, p in sorted(problems.items()))


# -- docs/onnx-node-tests.md -------------------------------------------------------------------------

RESULT = {"pass": "pass", "unsupported": "unsupported", "bug": "**bug**"}


def _result(name: str) -> tuple[str, str]:
    """(result column, details column) of a case."""
    prep, out = nc.outcome(name)
    rule = nc.expectation(name)
    if rule is not None and rule.status == nc.BUG:
        return "bug", f"{rule.reason} (xfail)"
    if rule is not None:
        return "unsupported", rule.reason
    if out.status == "pass":
        return "pass", (f"max error {out.err_lsb:.2f} LSB of the output format "
                        f"({out.max_err:.2g} <= bound {out.max_bound:.2g})")
    return out.status, out.message


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_doc(c_checked: int | None = None) -> str:
    """The text of docs/onnx-node-tests.md from the outcomes (and the number of C-checked cases)."""
    cases = nc.load_cases()
    rows = {n: _result(n) for n in cases}
    per_op: dict[str, Counter[str]] = {op: Counter() for op in nc.OPS}
    for n, case in cases.items():
        per_op[case.op][rows[n][0]] += 1
    total = Counter(r for r, _ in rows.values())
    lines = [
        "# ONNX backend node tests through the compiler",
        "",
        "Generated by `python tests/backend/test_onnx_node_tests.py --write-doc`; do not edit by hand.",
        "`tests/backend/test_onnx_node_tests.py` runs every case below and checks that this file lists each",
        "one with its current result (validation link 6 of DESIGN.md section 9).",
        "",
        "## What is run",
        "",
        "Every node test of onnx " + _onnx_version() + " (`onnx.backend.test.case.node`, the cases",
        "`load_model_tests(kind=\"node\")` returns; generated in memory, nothing is downloaded) of the ops",
        "the normal form accepts or removes (docs/normal-form.md), including their `_expanded` function",
        "forms. Each case is prepared the way a user would export such a layer:",
        "",
        "- **Parameters become initializers.** Node tests feed weights as graph inputs; Conv W/B, Gemm",
        "  B/C, MatMul B, BatchNormalization scale/B/mean/var, Clip min/max, Reshape shape, ReduceMean",
        "  axes, Dropout ratio/training_mode, and the second operand of Add/Sub/Mul/Div when it",
        "  broadcasts onto the first, become initializers holding the test's values. Same-shape operands",
        "  of a binary op stay activations.",
        "- **Batch 1.** The compiler runs one sample at a time. An activation `[N, ...]` with `N > 1` is",
        "  re-declared `[1, ...]` and the N samples run one by one; a rank-1 activation `[n]` is",
        "  re-declared `[1, n]`. The rewrite is kept only if the onnx reference evaluator, running the",
        "  rewritten model sample by sample, reproduces the test's expected outputs. When a constant",
        "  shape holds the batch (a Reshape to `[2, -1]`), the model is compiled as it is and run on the",
        "  batch-1 samples if `batch-one` (normalize) rewrites it into a model that reproduces them;",
        "  otherwise the case is compiled unchanged (and must be rejected).",
        "",
        "The prepared model is loaded like the CLI loads a file and compiled with",
        "`normalize,quantize,lower`, calibrated on the test's own inputs (`Dataset.from_arrays`). The LIR",
        "interpreter runs each quantised sample; the dequantised outputs must lie within the worst-case",
        "error bound the program's Q formats imply for that run (`backends/lower_bounds.py`: input",
        "rounding `2^-(q_in+1)` propagated through the step, weight and bias rounding, half an LSB per",
        "requantisation, divround, clip bound or leaky slope), plus `1e-6 * (1 + max|expected|)` for the",
        "float32 reference, with no saturated buffer. A final Softmax is dropped by `lower` (the device",
        "returns logits): it is applied on the host, and logits within `e` give probabilities within",
        "`exp(2e) - 1`. The lowered program must also pass the LIR verifier.",
        "",
        "The generated C of every passing case (plan-memory, emit-c) is built with gcc and the generated",
        "Makefile's sanitizer flags (`-Wall -Wextra -Werror`, ASan + UBSan; all packages in one build",
        "and one process, to keep it fast) and must equal the interpreter bit for bit on the quantised",
        "test inputs and on full-range int16 inputs"
        + (f" ({c_checked} programs, all bit-exact when this file was written)." if c_checked else "."),
        "",
        "A rejected case must fail with a `FreemlError` (not an internal error) that gives the reason",
        "listed below and names the offending op or input.",
        "",
        "## Summary",
        "",
        f"{len(rows)} node tests: **{total['pass']} pass**, {total['unsupported']} unsupported (expected, "
        f"reason given), {total['bug']} bug(s), "
        f"{sum(v for k, v in total.items() if k not in ('pass', 'unsupported', 'bug'))} other failure(s).",
        "",
        "| op | tests | pass | unsupported | bug |",
        "|---|---:|---:|---:|---:|",
    ]
    for op in nc.OPS:
        c = per_op[op]
        lines.append(f"| {op} | {sum(c.values())} | {c['pass']} | {c['unsupported']} | {c['bug']} |")
    bugs = [r for r in nc.EXPECTATIONS if r.status == nc.BUG]
    lines += ["", "## Bugs found", ""]
    lines += [f"- `{r.pattern.strip('^$')}`: {r.reason}." for r in bugs] or ["None."]
    lines += ["", "## Notes", ""] + [f"- {note}" for note in nc.NOTES]
    lines += ["", "## Every case", "", "| test | op | prepared | result | reason / figures |", "|---|---|---|---|---|"]
    for n, case in cases.items():
        prep, _ = nc.outcome(n)
        result, detail = rows[n]
        lines.append(f"| `{n}` | {case.op} | {_cell('; '.join(prep.steps) or 'as is')} | "
                     f"{RESULT.get(result, '**' + result + '**')} | {_cell(detail)} |")
    return "\n".join(lines) + "\n"


def _onnx_version() -> str:
    import onnx

    return onnx.__version__


_ROW = re.compile(r"^\| `(test_[A-Za-z0-9_]+)` \| [^|]+ \| [^|]* \| (\*\*)?([a-z]+)(\*\*)? \|")


def test_doc_lists_every_case_with_its_outcome() -> None:
    """docs/onnx-node-tests.md has one row per case with the result the test finds now."""
    assert DOC.is_file(), "docs/onnx-node-tests.md is missing: python tests/backend/test_onnx_node_tests.py --write-doc"
    listed = {m.group(1): m.group(3) for m in map(_ROW.match, DOC.read_text(encoding="utf-8").splitlines()) if m}
    now = {n: _result(n)[0] for n in NAMES}
    stale = {n: (listed.get(n), r) for n, r in now.items() if listed.get(n) != r}
    stale.update({n: (r, None) for n, r in listed.items() if n not in now})
    assert not stale, ("docs/onnx-node-tests.md is out of date (case: (listed, now)); regenerate it with "
                       f"`python tests/backend/test_onnx_node_tests.py --write-doc`: {stale}")


def main(argv: list[str]) -> int:
    if argv[1:] != ["--write-doc"]:
        print(f"usage: python {Path(__file__).relative_to(ROOT)} --write-doc", file=sys.stderr)
        return 2
    import tempfile

    names = _c_cases()
    with tempfile.TemporaryDirectory(prefix="fx-node-c-") as tmp:
        problems = nc.check_c(names, tmp)
    if problems:
        for n, p in sorted(problems.items()):
            print(f"{n}: {p}", file=sys.stderr)
        print("generated C != interpreter: fix that first (the doc states the C is bit-exact)", file=sys.stderr)
        return 1
    DOC.write_text(render_doc(len(names)), encoding="utf-8")
    total = Counter(_result(n)[0] for n in NAMES)
    print(f"wrote {DOC.relative_to(ROOT)}: {len(NAMES)} cases, {dict(total)}; C checked on {len(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
