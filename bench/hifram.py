"""What activations in HIFRAM (above 64 KiB) cost on the MSP430 simulator, and the cost model's fit.

    python bench/hifram.py                 # all four parts
    python bench/hifram.py --parts address model

Every measurement is a per-step cycle count (msp430.mk with MSP430_COUNTERS=1: -O2, MPY32) of
one inference:

1. ``address``: the same program in the large memory model (-mlarge), once with every activation
   in lower FRAM and once with every activation in HIFRAM (plan-memory{persistent=true} and a code
   figure that leaves lower FRAM no room for them). The MSP430X's cycle counts do not depend on the
   address, and the large model's code addresses every pointer with 20-bit instructions whatever
   its value, so the dense kernels cost the same: printed per step and checked.
2. ``memory-model``: the samples that fit the small memory model, built small and built -mlarge
   (activations in lower FRAM both times): what 20-bit pointers (CALLA/RETA, PUSHM.A, MOVA,
   ADDA, MOVX for globals) cost. A model that needs HIFRAM activations pays this once, like a model
   with HIFRAM constants; transpiler/lir/cost.py has one set of constants for both models.
3. ``model``: CIFAR-shaped CNNs (tests/tiny_models.cifar_like: 3x32x32, conv 3->c1, c1 = 16 or 32,
   whose first feature map is in HIFRAM) compiled for the FR5994: the cost model's prediction vs
   the simulator per step and for the whole run.
4. ``sparse``: pruned models compiled sparse (lower{sparse=always}), every activation in HIFRAM vs
   in lower FRAM: runtime_c/fx_sparse.c's fast paths walk the input with 16-bit adds, so an input
   above 64 KiB takes the portable fallbacks (fx_fc_sparse_far, the chunked conv path). Fits the
   constants of those paths (transpiler/lir/cost.py, SPARSE_FAR: per output row of a channel, per
   output, per stored tap of an output; fc: per output and per stored weight) by non-negative
   least squares over the steps, and ``call`` (each further kernel call: the median over the steps
   built again in 8 calls each), and prints them as cost.py writes them, with the fit's error per
   step (copy them into SPARSE_FAR by hand).

Never part of the tests.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _pipeline as P  # noqa: E402

REPO = P.REPO
for sub in ("tests", "tests/backend"):
    if str(REPO / sub) not in sys.path:
        sys.path.insert(0, str(REPO / sub))

from emit_c_helpers import emit  # noqa: E402
from tiny_models import cifar_like  # noqa: E402

from passes.plan_memory import LOWER_FRAM_BYTES, estimate_rodata_bytes  # noqa: E402
from transpiler import hostrun  # noqa: E402
from transpiler.data import Dataset  # noqa: E402
from transpiler.lir import cost  # noqa: E402
from transpiler.lir.ir import Program  # noqa: E402
from transpiler.manager import run_pipeline  # noqa: E402
from transpiler.model import OnnxModel  # noqa: E402
from transpiler.pass_infra import PassContext  # noqa: E402
from transpiler.simpackage import run_package  # noqa: E402

PARTS = ("address", "memory-model", "model", "sparse")


def lowered(model: OnnxModel, ds: Dataset, lower: str = "lower") -> Program:
    program, _ = run_pipeline(model.copy(), f"normalize,quantize,{lower}", PassContext(data=ds), verify=False)
    assert isinstance(program, Program)
    return program


def step_counts(program: Program, ds: Dataset, out: Path, where: str, large: bool = False) -> list[int]:
    """Per-step cycles of one inference with every activation in ``where`` (fram or hifram);
    ``large``: build -mlarge even when the plan does not need it."""
    code = LOWER_FRAM_BYTES - estimate_rodata_bytes(program, large=True) if where == "hifram" else None
    emit(program, out, plan=True, persistent=True, hifram_activations=where == "hifram", code=code)
    man = hostrun.load_manifest(out)
    spaces = {b["space"] for b in man["buffers"] if b["kind"] == "activation"}
    assert spaces == {where}, f"{out.name}: activations in {sorted(spaces)}, wanted {where}"
    if large and man["plan"]["memory_model"] == "small":
        mk = out / "msp430.mk"
        mk.write_text(mk.read_text().replace("MSP430_LARGE := \n", "MSP430_LARGE := -mlarge\n"))
    x = hostrun.quantize(man, ds.inputs_for(0)).reshape(1, -1)
    return [s.cycles for s in run_package(out, x, counters="steps").steps[0]]


def part_address(work: Path) -> None:
    print("\n== 1. the same -mlarge program, activations in lower FRAM vs in HIFRAM")
    for name in ("lenet5_mnist", "cnn_digits", "tiny_residual"):
        model, ds = P.load_sample(name)
        program = lowered(model, ds)
        low = step_counts(program, ds, work / f"addr_{name}_fram", "fram", large=True)
        high = step_counts(program, ds, work / f"addr_{name}_hifram", "hifram")
        for i, s in enumerate(program.steps):
            print(f"  {name:14s} {i} {s.op:8s} lower FRAM {low[i]:10,d}  HIFRAM {high[i]:10,d}")
        print(f"  {name:14s} total      lower FRAM {sum(low):10,d}  HIFRAM {sum(high):10,d}  "
              f"{'identical' if low == high else 'DIFFERENT'}")


def part_memory_model(work: Path) -> None:
    print("\n== 2. small vs large memory model (activations in lower FRAM)")
    for name in ("tiny_residual", "tiny_conv1d", "mlp_digits_sklearn", "cnn_digits"):
        model, ds = P.load_sample(name)
        program = lowered(model, ds)
        small = step_counts(program, ds, work / f"mm_{name}_small", "fram")
        large = step_counts(program, ds, work / f"mm_{name}_large", "fram", large=True)
        steps = ", ".join(f"{s.op} {100 * (b / a - 1):+.0f} %" for s, a, b in zip(program.steps, small, large))
        print(f"  {name:20s} small {sum(small):10,d}  large {sum(large):10,d}  "
              f"{100 * (sum(large) / sum(small) - 1):+.1f} %   ({steps})")


def part_model(work: Path) -> None:
    print("\n== 3. CIFAR-shaped CNNs for the FR5994 (first feature map in HIFRAM): predicted vs simulated")
    for c1, c2 in ((16, 16), (32, 32)):
        proto, x = cifar_like(c1=c1, c2=c2, n=8, seed=1)
        ds = Dataset.from_arrays({"x": x})
        out = work / f"cifar_{c1}_{c2}"
        ctx = PassContext(data=ds, out_dir=str(out), command_line="bench", target="msp430fr5994")
        program, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize,quantize,lower,plan-memory,emit-c", ctx,
                                  verify=False)
        assert isinstance(program, Program)
        man = hostrun.load_manifest(out)
        hi = [b["name"] for b in man["buffers"] if b["kind"] == "activation" and b["space"] == "hifram"]
        sim = [s.cycles for s in run_package(out, hostrun.quantize(man, {"x": x[:1]}), counters="steps").steps[0]]
        pred = [cost.step_cycles(program, s) for s in program.steps]
        print(f"  cifar_like c1={c1} c2={c2} (HIFRAM: {', '.join(hi)}; {man['plan']['memory_model']} model)")
        for s, p, c in zip(program.steps, pred, sim):
            print(f"    {s.op:8s} {s.name:8s} predicted {p:12,.0f}  simulated {c:12,d}  {100 * (p - c) / c:+6.1f} %")
        print(f"    whole run         predicted {sum(pred):12,.0f}  simulated {sum(sim):12,d}  "
              f"{100 * (sum(pred) - sum(sim)) / sum(sim):+6.1f} %")


def _sparse_features(program: Program, step_index: int) -> tuple[str, list[float]]:
    """(op, the features of SPARSE_FAR's constants) of one sparse step: conv_sparse [channel rows,
    outputs, stored taps x outputs], fc_sparse [outputs, stored weights]."""
    s = program.steps[step_index]
    per = np.diff(np.asarray(program.buffers[s.inputs[3]].data, dtype=np.int64).reshape(-1))
    out = program.buffers[s.outputs[0]]
    if s.op == "fc_sparse":
        return s.op, [float(out.size), float(per.sum())]
    _, oh, ow = out.shape
    return s.op, [float(len(per) * oh), float(out.size), float(per.sum() * oh * ow)]


def split_calls(program: Program, calls: int) -> Program:
    """A copy of ``program`` whose sparse steps run in about ``calls`` kernel calls (tiles of the
    straight run loop, no commits)."""
    import copy

    from transpiler.lir.ir import TilePlan

    p = copy.deepcopy(program)
    for s in p.steps:
        if s.op not in ("conv_sparse", "fc_sparse"):
            continue
        out = p.buffers[s.outputs[0]]
        if s.op == "fc_sparse":
            s.tile = TilePlan([max(1, -(-out.size // calls))])
            continue
        cout, oh, ow = out.shape
        per = max(1, -(-cout * oh // calls))
        s.tile = TilePlan([per // oh, oh, ow] if per >= oh else [1, per, ow])
    return p


def part_sparse(work: Path) -> None:
    print("\n== 4. sparse steps with their input in HIFRAM (portable fallbacks) vs in lower FRAM")
    rows: dict[str, list[tuple[str, list[float], int, int]]] = {"conv_sparse": [], "fc_sparse": []}
    per_call: dict[str, list[float]] = {"conv_sparse": [], "fc_sparse": []}
    calls = 8
    cases: list[tuple[str, OnnxModel, Dataset]] = []
    for name, fraction in (("lenet5_mnist", 0.5), ("lenet5_mnist", 0.8), ("lenet5_mnist", 0.95),
                           ("cnn_digits", 0.5), ("cnn_digits", 0.8), ("tiny_residual", 0.7)):
        model, ds = P.load_sample(name)
        cases.append((f"{name}@{fraction}", _pruned(model, fraction), ds))
    for label, model, ds in cases:
        program = lowered(model, ds, "lower{sparse=always}")
        tag = label.replace("@", "_").replace(".", "")
        low = step_counts(program, ds, work / f"sp_{tag}_fram", "fram", large=True)
        high = step_counts(program, ds, work / f"sp_{tag}_hifram", "hifram")
        split = split_calls(program, calls)
        high_split = step_counts(split, ds, work / f"sp_{tag}_hifram_split", "hifram")
        for i, s in enumerate(program.steps):
            if s.op in rows:
                op, feats = _sparse_features(program, i)
                rows[op].append((f"{label} {s.name}", feats, high[i], low[i]))
                units = cost.step_work(split, split.steps[i]).units
                n = -(-units // cost.tile_unit_count(split, split.steps[i]))
                if n > 1:
                    per_call[op].append((high_split[i] - high[i]) / (n - 1))
    for op, data in rows.items():
        a = np.array([f for _, f, _, _ in data])
        y = np.array([float(h) for _, _, h, _ in data])
        wts = 1.0 / y                            # relative errors
        coef, _ = nnls(a * wts[:, None], y * wts)
        fit = dict(zip(["base", "store", "mac"] if op == "conv_sparse" else ["store", "mac"], coef))
        call = float(np.median(per_call[op])) if per_call[op] else 0.0
        now = cost.SPARSE_FAR[op]
        print(f'  {op}: "{op}": OpCost(base={fit.get("base", 0.0):.1f}, mac={fit["mac"]:.1f}, '
              f'store={fit["store"]:.1f}, call={call:.0f})   (now: base={now.base}, mac={now.mac}, '
              f'store={now.store}, call={now.call}; per further call measured '
              f'{min(per_call[op], default=0):.0f}..{max(per_call[op], default=0):.0f})')
        for (what, feats, high_c, low_c), pred in zip(data, a @ coef):
            print(f"    {what:40s} HIFRAM {high_c:10,d} (x{high_c / low_c:.2f} lower FRAM)  "
                  f"fit {pred:10,.0f} {100 * (pred - high_c) / high_c:+6.1f} %")


def _pruned(model: OnnxModel, fraction: float) -> OnnxModel:
    """The model with the smallest |w| ``fraction`` of every Conv/Gemm weight set to 0."""
    import onnx

    proto = onnx.ModelProto.FromString(model.to_proto().SerializeToString())
    weights = {n.input[1] for n in proto.graph.node if n.op_type in ("Conv", "Gemm") and len(n.input) > 1}
    for init in proto.graph.initializer:
        if init.name in weights:
            w = onnx.numpy_helper.to_array(init).copy()
            k = int(round(fraction * w.size))
            if k:
                w[np.abs(w) <= np.sort(np.abs(w).reshape(-1))[k - 1]] = 0.0
            init.CopyFrom(onnx.numpy_helper.from_array(w.astype(np.float32), init.name))
    return OnnxModel.from_proto(proto)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--keep", help="keep the packages in this directory")
    args = parser.parse_args(argv)
    from transpiler.pass_infra import registry

    registry()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="freeml-hifram-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for part, fn in (("address", part_address), ("memory-model", part_memory_model), ("model", part_model),
                         ("sparse", part_sparse)):
            if part in args.parts:
                fn(work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
