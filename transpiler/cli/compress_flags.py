"""The compile command's compression flags: ``--max-drop``, ``--task`` and ``--compress``.

    freeml-tx model.onnx -o build/ --data d.npz --fram 32KiB --max-drop 1.0

When the model's parameters, in Q15 with indices, biases, shifts and descriptors
(passes/compress_size.py), do not fit what the FRAM budget leaves after code, tables and FRAM
activations (:func:`passes.compress_size.measured_fram_overhead`), the default pipeline gains
``separate{budget=B,max-drop=D},sparsify{budget=B,max-drop=D}`` right after normalize
(:func:`with_compression`): first the low-rank separation of oversized layers, then pruning with
fine-tuning to the budget, both bounded by ``--max-drop`` accuracy points on the validation part of
``--data``. Refused at once with a BudgetError that gives the figures, instead of after minutes of
compression: a model whose code, tables and FRAM activations alone fill the budget (no compression of
the weights can help), and one whose parameters exceed the budget even at the strongest compression
SparseComp reaches (:func:`passes.compress_size.compression_floor`). Without ``--data`` compressing is
an error too (it needs data); ``--compress never`` leaves the pipeline alone (plan-memory then
reports the overflow). The compile summary and
report.txt gain the per-layer table: :func:`compression_summary` / :func:`format_compression`.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any, NoReturn

from transpiler.errors import BudgetError, Location

if TYPE_CHECKING:
    from passes.compress_size import FramOverhead


GNET_HINT = "a smaller gNet head (fewer exits: --gnet exits=...; --gnet-pool 1x1)"


def add_compress_arguments(parser: argparse.ArgumentParser) -> None:
    """--max-drop, --task and --compress."""
    parser.add_argument("--max-drop", type=_points, default=1.0, metavar="POINTS",
                        help="accuracy points the compression may lose on the validation part of --data "
                             "(default 1.0; used when the model must be compressed to fit --fram); for a "
                             "regressor points of R^2: 1.0 lets R^2 fall by 0.01")
    parser.add_argument("--task", choices=("auto", "classify", "regress"), default="auto",
                        help="what the compression guards: top-1 accuracy of a classifier or R^2 of a regressor's "
                             "outputs (default auto: real-valued labels, a single output, an output shaped like "
                             "the input or a map mean regress; see docs/sparsecomp.md)")
    parser.add_argument("--compress", choices=("auto", "never"), default="auto",
                        help="auto (default): separate + sparsify when the Q15 model does not fit the FRAM "
                             "budget; never: compile as is")


def _points(text: str) -> float:
    """--max-drop's value: a finite number of points, at least 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of accuracy points (e.g. 1.0)") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of points >= 0 (e.g. 1.0; 0 allows no drop)")
    return value


def compression_spec(args: argparse.Namespace, model: Any, data: Any,
                     input_shapes: dict[str, tuple[int, ...]] | None = None) -> str | None:
    """The ``separate{...},sparsify{...}`` text the flags and the model ask for, or None when the
    model fits (or ``--compress never``). Raises BudgetError when compression is needed without data."""
    from passes.compress_size import FRAM_MARGIN, compression_floor, measured_fram_overhead, model_size
    from transpiler.cli.gnet_flags import gnet_spec_text
    from passes.normalize import Normalize
    from transpiler.pass_infra import PassContext

    if getattr(args, "compress", "auto") == "never":
        return None
    normalized = Normalize(context=PassContext(data=data, input_shapes=dict(input_shapes or {}))).run(model.copy()).model
    sizes = model_size(normalized)
    size = sizes.total
    floor = compression_floor(sizes)
    ceiling = int(args.fram * (1.0 - FRAM_MARGIN))
    if floor > ceiling:     # over even the whole of --fram: refused before measuring code and activations
        _refuse(args, sizes, floor, ceiling, "of --fram")
    stack = getattr(args, "stack", None)
    overhead = measured_fram_overhead(normalized, args.sram, *([stack] if stack is not None else []),
                                      persistent=_persistent(args), gnet=gnet_spec_text(args), data=data)
    budget = max(ceiling - overhead.total, 0)
    if size <= budget:
        return None
    if budget <= 0:
        if overhead.uncompressed < args.fram:
            _refuse_no_room(args, size, floor, overhead, ceiling)
        return None     # the code and the activations alone fill --fram: plan-memory's error names what overflows
    if floor > budget:
        head = f" and the gNet head ({overhead.gnet:,} B of weights)" if overhead.gnet else ""
        _refuse(args, sizes, floor, budget, f"left for them after code, FRAM activations{head}",
                gnet=bool(overhead.gnet))
    if data is None:
        raise BudgetError(f"the model's parameters take {size:,} B in Q15 but --fram {args.fram:,} B leaves about "
                          f"{budget:,} B for them (after code and FRAM activations); compressing them to fit "
                          f"needs data", location=Location(file=str(getattr(args, "model", "")) or None),
                          hint="pass --data d.npz (inputs 'x', labels 'y' if you have them: without labels the "
                               "compressed model learns from the original model's outputs), or a larger --fram")
    options = f"budget={budget},max-drop={args.max_drop:g}"
    task = getattr(args, "task", "auto")
    if task != "auto":
        options += f",task={task}"
    return f"separate{{{options}}},sparsify{{{options}}}"


def _refuse(args: argparse.Namespace, sizes: Any, floor: int, budget: int, what: str, gnet: bool = False) -> NoReturn:
    """Raise the BudgetError of a model whose :func:`passes.compress_size.compression_floor` (``floor``)
    exceeds ``budget`` bytes (``what`` says which budget; ``gnet``: a gNet head takes part of it)."""
    from passes.compress_size import STRONGEST_DENSITY

    weights = sum(layer.weights for layer in sizes.layers)
    over = floor / budget
    raise BudgetError(
        f"the model cannot fit --fram {args.fram:,} B: its {weights:,} weights take {sizes.total:,} B in Q15 and "
        f"even compressed as far as SparseComp goes (keeping {100 * STRONGEST_DENSITY['conv']:g} % of a conv's "
        f"weights, {100 * STRONGEST_DENSITY['fc']:g} % of a fully connected layer's) they would take at least "
        f"{floor:,} B, {over:.1f}x the {budget:,} B {what}",
        location=Location(file=str(getattr(args, "model", "")) or None),
        hint=f"use a smaller model (about {over:.0f}x fewer weights: fewer or narrower layers, a width "
             f"multiplier, fewer classes), or a larger --fram"
             + (f"; {GNET_HINT}" if gnet else ""))


def _refuse_no_room(args: argparse.Namespace, size: int, floor: int, overhead: FramOverhead,
                    ceiling: int) -> NoReturn:
    """Raise the BudgetError of a model whose code, tables and FRAM activations (``overhead``, a
    :class:`passes.compress_size.FramOverhead`) with the code compression adds leave no room for any
    parameters in ``ceiling``, the usable part of --fram: compressing the weights cannot help."""
    from passes.compress_size import FRAM_MARGIN

    persistent = _persistent(args)
    where = ("every activation is kept in FRAM for intermittent power" if persistent
             else f"the activations that do not fit --sram {args.sram:,} B")
    needed = -(-(overhead.total + floor) // (1024 * (1.0 - FRAM_MARGIN)))
    ways = [f"a larger --fram (at least about {needed:.0f}KiB: these and the parameters compressed as far as "
            f"SparseComp goes; the FR5994 has 256KiB)"]
    if overhead.activations and not persistent:
        ways.append("more --sram, so that fewer activations move to FRAM")
    if overhead.activations:
        ways.append("smaller feature maps (fewer channels in the largest layers, an earlier stride or pool)")
    if overhead.gnet:
        ways.append(GNET_HINT)
    parts = [f"the code (~{overhead.code:,} B)", f"the descriptors and tables ({overhead.tables:,} B)",
             f"the FRAM activations ({overhead.activations:,} B: {where})"]
    if overhead.gnet:
        parts.append(f"the gNet head's weights ({overhead.gnet:,} B)")
    raise BudgetError(
        f"the model cannot fit --fram {args.fram:,} B, however its weights are compressed: of the {ceiling:,} B "
        f"usable (--fram less a {100 * FRAM_MARGIN:g} % margin), {', '.join(parts[:-1])} and {parts[-1]} take "
        f"{overhead.uncompressed:,} B, and the sparse kernels and steps compression adds ~{overhead.compression_code:,} "
        f"B more, leaving nothing for the {size:,} B of parameters",
        location=Location(file=str(getattr(args, "model", "")) or None), hint="; ".join(ways))


def _persistent(args: argparse.Namespace) -> bool:
    """Whether the build keeps every activation in FRAM (--persistent, or a power budget)."""
    from transpiler.cli.power_flags import power_budget

    return bool(getattr(args, "persistent", False)) or power_budget(args)[0] is not None


def with_compression(pipeline: str, spec: str | None) -> str:
    """``pipeline`` with ``spec`` inserted right after normalize (before attach-gnet and quantize);
    unchanged when ``spec`` is None or the pipeline already compresses."""
    from transpiler.pipeline import format_pipeline, parse_pipeline

    if spec is None:
        return pipeline
    specs = parse_pipeline(pipeline)
    names = [s.name for s in specs]
    if "sparsify" in names or "separate" in names:
        return pipeline
    at = names.index("normalize") + 1 if "normalize" in names else 0
    return format_pipeline([*specs[:at], *parse_pipeline(spec), *specs[at:]])


def compression_summary(context: Any, report: Any = None) -> dict[str, Any] | None:
    """The figures of separate/sparsify for the compile summary (None when sparsify did not run):
    sizes, accuracies and one row per layer (with lower's storage choice when ``report`` has it)."""
    stats = context.extra.get("sparsify")
    if not stats:
        return None
    storage: dict[str, dict[str, Any]] = {}
    separated: list[dict[str, Any]] = []
    separate_measure = separate_max_drop = None
    float32 = stats.get("float32_bytes")
    for record in getattr(report, "records", []) or []:
        if record.name == "lower":
            storage = {r["step"]: r for r in record.pass_stats.get("weight_storage", [])}
        if record.name == "separate":
            separated = [r for r in record.pass_stats.get("layers", []) if r.get("kept")]
            float32 = record.pass_stats.get("float32_bytes", float32)   # the model before separation
            separate_measure = record.pass_stats.get("measure")
            separate_max_drop = record.pass_stats.get("max_drop")
    rows = []
    for layer in stats.get("layers", []):
        lowered = storage.get(layer["node"])
        rows.append({"node": layer["node"], "shape": layer["shape"], "density": layer["density"],
                     "nnz": layer["nnz"], "bytes_before": layer.get("bytes_before"), "bytes": layer["bytes"],
                     "storage": lowered["storage"] if lowered else layer["storage"],
                     "lowered_bytes": lowered["bytes"] if lowered else None, "fragile": layer.get("fragile", False)})
    return {"budget": stats.get("budget"), "size_before": stats.get("size_before"), "size_after": stats.get("size_after"),
            "float32_bytes": float32, "measure": stats.get("measure"),
            "accuracy_reference": stats.get("accuracy_reference"), "accuracy_before": stats.get("accuracy_before"),
            "accuracy_after": stats.get("accuracy_after"), "drop": stats.get("drop"),
            "val_samples": stats.get("val_samples"), "steps": len(stats.get("steps", [])),
            "agreement_after": stats.get("agreement_after"), "original_confidence": stats.get("original_confidence"),
            "max_drop": stats.get("max_drop", separate_max_drop), "separate_measure": separate_measure,
            "separated": [{"node": r["node"], "kind": r["kind"], "ranks": r["ranks"], "accuracy": r.get("accuracy"),
                           "drop": r.get("drop")} for r in separated],
            "units_removed": stats.get("units_removed", []), "layers": rows}


def format_compression(c: dict[str, Any]) -> list[str]:
    """Summary/report lines: sizes, accuracy before/after and the per-layer table."""
    def pct(value: Any) -> str:
        return f"{100 * value:.2f} %" if isinstance(value, (int, float)) else "-"

    before, after, f32 = c.get("size_before") or 0, c.get("size_after") or 0, c.get("float32_bytes") or 0
    lines = [f"  compression {before:,} B -> {after:,} B Q15 parameters (budget {c.get('budget') or 0:,} B; "
             f"{f32 / max(after, 1):.1f}x smaller than the {f32:,} B of float32), {c.get('steps')} sparsify steps"]
    if c.get("measure") is not None:  # sparsify measured (it has nothing to say when separate met the budget)
        lines.append(f"              {c.get('measure')} on {c.get('val_samples')} val samples: original "
                     f"{pct(c.get('accuracy_reference'))}, before {pct(c.get('accuracy_before'))}, after "
                     f"{pct(c.get('accuracy_after'))} (drop {c.get('drop')} points)")
    measure = c.get("measure") or c.get("separate_measure")
    if isinstance(measure, str) and measure.startswith("R^2"):
        points = float(c.get("max_drop") or 0.0)
        lines.append(f"              a regressor: accuracies are R^2 in percent and drops points of R^2 (max-drop "
                     f"{points:g} lets R^2 fall by {points / 100:g}: the unexplained variance may grow by "
                     f"{points:g} % of the targets' variance)")
    lines += _small_val_note(c, measure)
    agreement, drop = c.get("agreement_after"), c.get("max_drop")
    if isinstance(agreement, float) and isinstance(drop, (int, float)) and agreement < 1.0 - 2.0 * drop / 100.0:
        lines.append(f"              note: the compressed model's top-1 agrees with the original's on "
                     f"{pct(agreement)} of val (the original's mean top-1 probability is "
                     f"{pct(c.get('original_confidence'))}): without labels the bound is on the accuracy the "
                     f"original expects, not on agreeing with it; give labels ('y') to bound the real drop")
    for sep in c.get("separated", []):
        what = f"{c['separate_measure']} on val" if c.get("separate_measure") else "val"
        measured = f": {what} {pct(sep['accuracy'])} (drop {sep.get('drop')} points)" \
            if sep.get("accuracy") is not None else ""
        lines.append(f"              separated '{sep['node']}' ({sep['kind']}, rank "
                     f"{'x'.join(map(str, sep['ranks']))}){measured}")
    for unit in c.get("units_removed", []):
        lines.append(f"              dead units removed after '{unit['first']}': {unit['units_before']} -> "
                     f"{unit['units_after']}")
    lines.append(f"    {'layer':<30} {'shape':<14} {'storage':<7} {'density':>8} {'nnz':>7} {'bytes before':>13} "
                 f"{'bytes':>8}")
    for row in c.get("layers", []):
        shape = "x".join(map(str, row["shape"]))
        fragile = "  fragile" if row.get("fragile") else ""
        lines.append(f"    {row['node'][:30]:<30} {shape:<14} {row['storage']:<7} {row['density']:>8.4f} "
                     f"{row['nnz']:>7} {row.get('bytes_before') or 0:>13,} {row['bytes']:>8,}{fragile}")
    return lines


def _small_val_note(c: dict[str, Any], measure: Any) -> list[str]:
    """A note when sparsify's val part is too small for the bound it decided by: the standard error
    of a top-1 accuracy on it exceeds max-drop. Every step was kept or rolled back on the same val
    samples, so the figure after is optimistic; on new data the drop may exceed the bound (a dynamo
    CNN on 200 val digits: val drop 0.0 after 59 steps, 4.6 points on its 197 test digits)."""
    n, p, bound = c.get("val_samples"), c.get("accuracy_reference"), c.get("max_drop")
    if (c.get("measure") is None or not isinstance(measure, str) or measure.startswith("R^2") or not c.get("steps")
            or not isinstance(n, int) or n < 1 or not isinstance(p, (int, float))
            or not isinstance(bound, (int, float))):
        return []
    error = 100.0 * math.sqrt(max(p * (1.0 - p), 0.25 / n) / n)
    if error <= bound:
        return []
    return [f"              note: on {n} val samples {measure} has a standard error of about {error:.1f} points "
            f"(one sample is {100 / n:.2g}), more than the {bound:g}-point bound, and they decided every one of "
            f"the {c.get('steps')} steps: the drop on new data may exceed the bound; a val part of about "
            f"{_samples_for(p, bound):,} samples ('val' marks in the data's 'split') brings the error to half the "
            f"bound"]


def _samples_for(p: float, bound: float) -> int:
    """Val samples at which the standard error of an accuracy ``p`` is half of ``bound`` points."""
    return int(math.ceil(max(p * (1.0 - p), 0.01) / (bound / 200.0) ** 2 / 100.0) * 100)


__all__ = ["add_compress_arguments", "compression_spec", "compression_summary", "format_compression",
           "with_compression"]
