"""Calibration / training data: a `Dataset` of model inputs (and optional labels) from an npz file.

File format (``numpy.savez``; a ``.npy`` file, ``numpy.save``, holds the inputs of a single-input
model and nothing else):

- ``x``: the inputs of a single-input model, first axis = samples (``[n, ...]``); the input's
  name, ``X``, or the file's only array besides the labels and ``split`` do as well
  (:func:`input_key`);
- ``y`` (optional): labels, first axis = samples (class indices ``[n]``, or one-hot ``[n, k]``
  which is turned into indices; a regressor's real-valued targets ``[n]`` or ``[n, outputs]`` stay
  as they are); ``Y`` or ``labels`` if there is no ``y`` (:func:`label_key`);
- a multi-input model uses its input *names* as keys;
- ``split`` (optional): which part each sample belongs to, ``[n]`` strings ``"train"``/``"val"``/
  ``"test"`` or small ints ``0``/``1``/``2`` meaning the same. It pins the held-out samples, so a
  file can say which samples the model never saw (see "The split" below);
- instead of ``split``, the parts may come as separate arrays, as ``keras.datasets`` and
  scikit-learn's ``train_test_split`` habits store them: ``x_train``/``x_test``, ``y_train``/
  ``y_test`` (and ``_val``, ``_valid`` or ``_validation``), for any of the keys above
  (:func:`join_parts`). They are concatenated in the order train, val, test and marked so.

Each input is checked against the model: the per-sample shape must be the model input's shape
without its batch axis (``input_specs``). Size-1 axes are the only freedom: ``x`` of shape
``[n, 28, 28]`` fits a model input ``[1, 1, 28, 28]`` (per-sample ``[1, 28, 28]``), and so does
``[n, 1, 1, 28, 28]`` (the batch-1 axis kept); the data is reshaped, which is unambiguous because
dropping size-1 axes from both sides leaves the same shape. Anything else (``[n, 784]`` for a
``[1, 28, 28]`` input, say) is a :class:`DataError` naming the file, the key, the expected and the
actual per-sample shape. Images stored channel-last (``[n, 32, 32, 3]``) for a channel-first input
(``[3, 32, 32]``), or the converse, are such an error too, never transposed silently: it says the data
is channel-last and gives the ``np.moveaxis`` call that fixes it (a single channel, ``[n, 28, 28, 1]``
for ``[1, 28, 28]``, differs only by a size-1 axis and is reshaped). Values become float32 (token ids too: exact below 2^24; they are cast to
the model's integer dtype where onnxruntime is fed). Token-id inputs (int64/int32 inputs that index
an embedding table, :func:`token_vocab`) must hold integers in ``[0, V)``: anything else is a
:class:`DataError` naming the input, the sample, the position and the value.

The split (:meth:`Dataset.split`) is explicit and reproducible: sample indices are permuted by
``numpy.random.default_rng(seed).permutation(n)`` and cut into consecutive parts whose sizes are
``round(cumsum(fractions) * n)`` differences; inside a part the samples keep their file order. The
same seed, fractions and ``n`` give the same parts on every machine and numpy version that keeps
``PCG64`` stable (numpy guarantees this for ``default_rng``).

With a ``split`` array in the file the marked parts are honoured: a requested part named ``"test"``
is exactly the samples marked ``test`` (and those samples never go anywhere else: without a
``"test"`` part they are left out), a requested ``"val"`` part is exactly the samples marked ``val``
when the file marks any (else marked-``val`` samples do not exist and ``val`` is carved like the
rest). The other requested parts (``"train"``, and ``"val"`` when the file marks none) are carved
from the remaining samples (the *pool*, in file order) by the same seeded permutation over the pool,
with their fractions renormalised to sum to 1. So the sample files, which mark the images the model
was trained on ``train`` and the never-seen ones ``val``/``test``, give fine-tuning data, an honest
validation part and an untouched test part.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transpiler.errors import DataError, Location

DEFAULT_SPLIT: tuple[tuple[str, float], ...] = (("train", 0.6), ("val", 0.2), ("test", 0.2))
SPLIT_KEY = "split"
SPLIT_MARKS: tuple[str, ...] = ("train", "val", "test")
"""The values of a file's ``split`` array (as ints: their positions, 0, 1, 2)."""
INPUT_KEYS: tuple[str, ...] = ("x", "X")
"""Keys that hold a single-input model's inputs when no array has the input's name."""
LABEL_KEYS: tuple[str, ...] = ("y", "Y", "labels")
"""Keys that hold the labels, first found first (a key that names a model input is an input)."""
PART_SUFFIXES: dict[str, str] = {"_train": "train", "_val": "val", "_valid": "val", "_validation": "val",
                                 "_test": "test"}
"""Key suffixes of arrays that hold one part of the samples (``x_train``), and the part they mark."""


@dataclass
class Dataset:
    """Model inputs by input name, each ``float32 [n, *per-sample shape]``, plus optional labels.

    ``labels`` is an ``int64 [n]`` array of class indices (or whatever numeric labels the file held,
    first axis ``n``) or None. ``source`` is the file it came from, for messages. ``marks`` is the
    file's ``split`` array as strings (``"train"``/``"val"``/``"test"`` per sample) or None.
    """

    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None = None
    source: str | None = None
    indices: np.ndarray | None = field(default=None, repr=False)
    marks: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        counts = {name: int(a.shape[0]) for name, a in self.inputs.items()}
        if not counts:
            raise DataError("a dataset needs at least one input array",
                            location=Location(file=self.source))
        if len(set(counts.values())) != 1:
            raise DataError(f"the inputs have different sample counts: {counts}",
                            location=Location(file=self.source),
                            hint="every input array needs the same first (sample) axis")
        n = next(iter(counts.values()))
        if self.labels is not None and int(self.labels.shape[0]) != n:
            raise DataError(f"labels 'y' have {self.labels.shape[0]} rows but the inputs have {n} samples",
                            location=Location(file=self.source),
                            hint="give one label per sample (first axis of 'y')")
        if self.indices is None:
            self.indices = np.arange(n, dtype=np.int64)
        if self.marks is not None:
            self.marks = _marks(np.asarray(self.marks), n, self.source)

    def __len__(self) -> int:
        return int(next(iter(self.inputs.values())).shape[0])

    @property
    def names(self) -> list[str]:
        """The model input names this dataset feeds."""
        return list(self.inputs)

    @property
    def x(self) -> np.ndarray:
        """The inputs of a single-input dataset, ``[n, ...]``."""
        if len(self.inputs) != 1:
            raise DataError(f"dataset has {len(self.inputs)} inputs ({', '.join(self.inputs)}); use .inputs[name]",
                            location=Location(file=self.source))
        return next(iter(self.inputs.values()))

    def subset(self, indices: Sequence[int] | np.ndarray) -> "Dataset":
        """The samples at `indices` (positions in this dataset), in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        assert self.indices is not None
        return Dataset(inputs={k: v[idx] for k, v in self.inputs.items()},
                       labels=None if self.labels is None else self.labels[idx],
                       source=self.source, indices=self.indices[idx],
                       marks=None if self.marks is None else self.marks[idx])

    def take(self, n: int) -> "Dataset":
        """The first `n` samples (all of them if there are fewer)."""
        return self.subset(np.arange(min(n, len(self))))

    def inputs_for(self, i: int) -> dict[str, np.ndarray]:
        """Sample `i` as onnxruntime feeds: ``{name: float32 [1, *per-sample shape]}``."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample {i} out of range for a dataset of {len(self)}")
        return {k: v[i:i + 1] for k, v in self.inputs.items()}

    def held_out(self) -> "Dataset":
        """The samples the file's ``split`` marks ``val`` or ``test`` (those the model never trained
        on), in file order; every sample when the file has no marks."""
        if self.marks is None:
            return self
        return self.subset(np.flatnonzero(self.marks != "train"))

    def batches(self, size: int) -> Iterator["Dataset"]:
        """Consecutive sub-datasets of `size` samples (the last may be shorter), in order."""
        if size < 1:
            raise ValueError(f"batch size must be >= 1, got {size}")
        for start in range(0, len(self), size):
            yield self.subset(np.arange(start, min(start + size, len(self))))

    def with_classes(self, classes: Sequence[Any] | None) -> "Dataset":
        """This dataset with its labels turned into indices of ``classes``, a classifier's class labels
        (its output ``k`` means ``classes[k]``; :func:`class_indices`); unchanged when either is None."""
        if classes is None or self.labels is None:
            return self
        return Dataset(inputs=self.inputs, labels=class_indices(self.labels, classes, self.source),
                       source=self.source, indices=self.indices, marks=self.marks)

    def split(self, seed: int = 0,
              fractions: Sequence[tuple[str, float]] = DEFAULT_SPLIT) -> dict[str, "Dataset"]:
        """Split into named parts by a seeded permutation (see the module docstring).

        ``fractions`` are ``(name, fraction)`` pairs, positive, summing to 1. Parts are disjoint and
        cover every sample (unless the file's ``split`` marks test samples and no part is named
        ``"test"``: those are left out); a part may be empty when the dataset is tiny. Parts come
        back in the order of ``fractions``.
        """
        names = [name for name, _ in fractions]
        values = np.array([float(f) for _, f in fractions], dtype=np.float64)
        if not names or len(set(names)) != len(names):
            raise DataError(f"split part names must be unique and non-empty, got {names}")
        if np.any(values <= 0) or abs(float(values.sum()) - 1.0) > 1e-6:
            raise DataError(f"split fractions must be positive and sum to 1, got {dict(zip(names, values.tolist()))}",
                            hint="e.g. (('train', 0.6), ('val', 0.2), ('test', 0.2))")
        pool = np.arange(len(self), dtype=np.int64)
        fixed: dict[str, np.ndarray] = {}
        if self.marks is not None:
            pinned = [m for m in ("val", "test") if m in names and (m == "test" or np.any(self.marks == m))]
            for mark in pinned:
                fixed[mark] = np.flatnonzero(self.marks == mark)
            out = self.marks == "test" if "test" not in names else np.zeros(len(self), dtype=bool)
            taken = np.isin(pool, np.concatenate([*fixed.values(), np.flatnonzero(out)]))
            pool = pool[~taken]
        free = [(name, value) for name, value in zip(names, values.tolist()) if name not in fixed]
        carved = _carve(pool, free, seed)
        return {name: self.subset(fixed[name] if name in fixed else carved[name]) for name in names}

    def calibration_part(self, seed: int = 0, min_samples: int = 20) -> "Dataset":
        """The part to calibrate/train on: the "train" part of :meth:`split`, or everything if tiny.

        "Tiny" means the train part would have fewer than `min_samples` samples.
        """
        train = self.split(seed)["train"]
        return train if len(train) >= min_samples else self

    @classmethod
    def from_arrays(cls, inputs: Mapping[str, Any], labels: Any = None,
                    source: str | None = None, marks: Any = None) -> "Dataset":
        """A dataset from in-memory arrays (no shape checks against a model; values become float32);
        ``marks`` is an optional ``split`` array as a file would hold it."""
        return cls(inputs={k: np.asarray(v, dtype=np.float32) for k, v in inputs.items()},
                   labels=None if labels is None else _labels(np.asarray(labels), source),
                   source=source, marks=None if marks is None else np.asarray(marks))


def _carve(pool: np.ndarray, parts: Sequence[tuple[str, float]], seed: int) -> dict[str, np.ndarray]:
    """Cut ``pool`` (sample positions) into ``parts`` by a seeded permutation; each part sorted.

    The fractions are renormalised to sum to 1 (they already do when nothing is pinned).
    """
    if not parts:
        return {}
    n = int(pool.size)
    values = np.array([f for _, f in parts], dtype=np.float64)
    values = values / values.sum()
    perm = pool[np.random.default_rng(seed).permutation(n)]
    cuts = np.rint(np.cumsum(values) * n).astype(np.int64)
    cuts[-1] = n
    out: dict[str, np.ndarray] = {}
    start = 0
    for (name, _), stop in zip(parts, cuts.tolist()):
        stop = max(start, min(stop, n))
        out[name] = np.sort(perm[start:stop])
        start = stop
    return out


def _marks(marks: np.ndarray, n: int, source: str | None) -> np.ndarray:
    """A file's ``split`` array as strings from SPLIT_MARKS (ints 0/1/2 name them by position)."""
    where = Location(file=source, shape=str(list(marks.shape)))
    hint = (f"store '{SPLIT_KEY}' as [n] strings {'/'.join(SPLIT_MARKS)} (or ints 0/1/2), one per sample; "
            f"'test' marks samples the model never saw")
    if marks.ndim != 1 or int(marks.shape[0]) != n:
        raise DataError(f"'{SPLIT_KEY}' has shape {list(marks.shape)}, the data {n} samples", location=where,
                        hint=hint)
    if marks.dtype.kind in "iu":
        bad = (marks < 0) | (marks >= len(SPLIT_MARKS))
        if np.any(bad):
            raise DataError(f"'{SPLIT_KEY}' holds {marks[bad][0]}, not one of 0, 1, 2", location=where, hint=hint)
        return np.asarray(SPLIT_MARKS)[marks.astype(np.int64)]
    if marks.dtype.kind in "US":
        text = marks.astype(str)
        bad = ~np.isin(text, SPLIT_MARKS)
        if np.any(bad):
            raise DataError(f"'{SPLIT_KEY}' holds {str(text[bad][0])!r}, not one of {', '.join(SPLIT_MARKS)}",
                            location=where, hint=hint)
        return text.astype("<U5")
    raise DataError(f"'{SPLIT_KEY}' has dtype {marks.dtype}", location=where, hint=hint)


def token_vocab(graph: Any) -> dict[str, int]:
    """Graph inputs of an integer dtype (token ids) -> the vocabulary size V their ids must stay below.

    A token input is read by ``Gather(table, ids, axis=0)`` of constant tables ``[V, D]`` (an
    embedding, docs/normal-form.md); V is the smallest table's row count. Integer inputs read any
    other way are not listed (normalize rejects them).
    """
    out: dict[str, int] = {}
    for tensor in graph.inputs:
        if tensor.dtype is None or np.dtype(tensor.dtype).kind not in "iu":
            continue
        rows = [int(n.inputs[0].shape[0]) for n in tensor.outputs
                if n.op == "Gather" and len(n.inputs) == 2 and n.inputs[1] is tensor
                and int(n.attrs.get("axis", 0)) == 0 and n.inputs[0].shape is not None
                and len(n.inputs[0].shape) == 2 and hasattr(n.inputs[0], "values")]
        if rows and len(rows) == len(tensor.outputs):
            out[tensor.name] = min(rows)
    return out


def check_token_ids(values: Any, name: str, vocab: int, source: str | None = None) -> np.ndarray:
    """Token ids ``[n, ...]`` (or one sample) as int64 after checking that every one is an integer in
    ``[0, vocab)``; a :class:`DataError` names the input, the first bad sample, position and value.

    The device never reads outside its table (an id outside the range gives a row of zeros,
    docs/lir.md "embed"), but onnxruntime rejects such an id, so the data is refused here.
    """
    arr = np.asarray(values)
    where = Location(file=source, shape=str(list(arr.shape)))
    flat = arr.reshape(arr.shape[0], -1) if arr.ndim >= 2 else arr.reshape(1, -1)
    bad = ~np.isfinite(flat.astype(np.float64)) | (flat != np.floor(flat.astype(np.float64))) \
        | (flat < 0) | (flat >= vocab)
    if np.any(bad):
        row, pos = (int(v[0]) for v in np.nonzero(bad))
        raise DataError(f"input '{name}' holds the token id {float(flat[row, pos]):g} (sample {row}, position {pos}); "
                        f"ids must be integers in [0, {vocab}) (the rows of its embedding table)",
                        location=where,
                        hint=f"map unknown tokens to a valid id (e.g. a padding or out-of-vocabulary row) "
                             f"before saving the data; {int(np.count_nonzero(bad))} id(s) are outside the range")
    return arr.astype(np.int64)


def input_specs(graph: Any) -> dict[str, tuple[int, ...]]:
    """Per-sample input shapes of an onnx-graphsurgeon graph (its inputs without the batch axis).

    A graph input of rank 0 or 1 has no batch axis to drop and is returned as is. Dynamic dims
    (strings / None) in axis 0 are the batch; elsewhere they raise :class:`DataError`.
    """
    specs: dict[str, tuple[int, ...]] = {}
    for tensor in graph.inputs:
        shape = list(tensor.shape or [])
        rest = shape[1:] if len(shape) >= 2 else shape
        if any(not isinstance(d, int) or d < 0 for d in rest):
            raise DataError(f"model input '{tensor.name}' has a dynamic shape {shape}",
                            hint="fix it with --input-shape name=1x...")
        specs[tensor.name] = tuple(int(d) for d in rest)
    return specs


def load_dataset(path: str | os.PathLike[str], input_specs: Mapping[str, Sequence[int]],
                 vocab: Mapping[str, int] | None = None) -> Dataset:
    """Load an npz file and check it against the model inputs (see the module docstring).

    `input_specs` maps each model input name to its per-sample shape (the input's shape without the
    batch axis), as :func:`input_specs` returns it. `vocab` maps token-id inputs to their vocabulary
    size (:func:`token_vocab`): their arrays must hold integers in ``[0, V)`` (:func:`check_token_ids`).
    """
    path = os.fspath(path)
    where = Location(file=path)
    if not os.path.exists(path):
        raise DataError("data file not found", location=where,
                        hint="pass an .npz made with numpy.savez(path, x=inputs, y=labels)")
    specs = {name: tuple(int(d) for d in shape) for name, shape in input_specs.items()}
    if not specs:
        raise DataError("the model has no inputs to feed", location=where)
    arrays = read_arrays(path, list(specs))
    inputs: dict[str, np.ndarray] = {}
    for name, spec in specs.items():
        key = _key_for(name, specs, arrays, path)
        inputs[name] = _fit(arrays[key], spec, key, name, path)
        if vocab and name in vocab:
            check_token_ids(inputs[name], name, vocab[name], path)
    key = label_key(list(specs), list(arrays))
    labels = arrays[key] if key is not None else None
    marks = arrays.get(SPLIT_KEY) if SPLIT_KEY not in specs else None
    return Dataset(inputs=inputs, labels=None if labels is None else _labels(labels, path), source=path,
                   marks=marks)


def input_key(name: str, input_names: Sequence[str], keys: Sequence[str]) -> str | None:
    """The key of a data file's arrays that holds model input ``name``: its own name; for a
    single-input model also ``x``, ``X`` or the only array that is neither labels nor ``split``."""
    if name in keys:
        return name
    if len(input_names) != 1:
        return None
    for key in INPUT_KEYS:
        if key in keys:
            return key
    rest = [k for k in keys if k not in LABEL_KEYS and k != SPLIT_KEY]
    return rest[0] if len(rest) == 1 else None


def label_key(input_names: Sequence[str], keys: Sequence[str]) -> str | None:
    """The key of the labels in a data file's arrays (:data:`LABEL_KEYS`), None without labels."""
    inputs = {input_key(name, input_names, keys) for name in input_names}
    return next((k for k in LABEL_KEYS if k in keys and k not in inputs and k not in input_names), None)


def _key_for(name: str, specs: Mapping[str, tuple[int, ...]], arrays: Mapping[str, np.ndarray],
             path: str) -> str:
    key = input_key(name, list(specs), list(arrays))
    if key is not None:
        return key
    wanted = f"'{name}' or 'x'" if len(specs) == 1 else f"'{name}'"
    raise DataError(f"no array for model input '{name}' (keys in the file: {sorted(arrays) or 'none'})",
                    location=Location(file=path),
                    hint=f"store the inputs under {wanted}"
                         + ("" if len(specs) == 1 else f"; a multi-input model needs one key per input: "
                            f"{', '.join(specs)}"))


def read_arrays(path: str, input_names: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays of an .npz file by key, or a .npy file's one array as ``x`` (a single-input
    model's inputs); a :class:`DataError` if it is neither or holds objects."""
    where = Location(file=path)
    _reject_other_formats(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            arrays = {"x": loaded}
        else:
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"not a readable .npz or .npy file: {exc}", location=where,
                        hint="make it with numpy.savez(path, x=inputs, y=labels)") from exc
    if isinstance(loaded, np.ndarray) and len(input_names) != 1:
        raise DataError(f"a .npy file holds one array; the model has {len(input_names)} inputs "
                        f"({', '.join(input_names)})", location=where,
                        hint="give an .npz with one array per input name")
    return join_parts(arrays, path, input_names)


NUMPY_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")
"""The first bytes of an .npz (a zip archive, possibly empty) and of an .npy file."""


def _reject_other_formats(path: str) -> None:
    """A :class:`DataError` naming what ``path`` looks like when it is neither .npz nor .npy (a CSV or
    other text file, a pickle), with the lines that convert it; unreadable files are left to np.load."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return
    if not head or head.startswith(NUMPY_MAGICS):
        return
    text = head.decode("utf-8", errors="replace")
    if head.startswith(b"\x80"):
        what, hint = "a Python pickle", "load it and save the arrays with numpy.savez(path, x=inputs, y=labels)"
    elif "\ufffd" in text:         # binary but neither: np.load says what it is not
        return
    elif any(sep in text for sep in ",;\t"):
        what = "a text file: CSV?"
        hint = ("convert it, e.g. for a header line and the label in the last column: d = numpy.loadtxt(path, "
                "delimiter=',', skiprows=1); numpy.savez('d.npz', x=d[:, :-1].astype('float32'), "
                "y=d[:, -1].astype('int64'))")
    else:
        what, hint = "a text file", "make it with numpy.savez(path, x=inputs, y=labels)"
    raise DataError(f"not a readable .npz or .npy file ({what}): --data reads numpy .npz (one array per model "
                    f"input, labels as 'y') or .npy (the inputs of a single-input model)",
                    location=Location(file=path), hint=hint)


def join_parts(arrays: Mapping[str, np.ndarray], path: str,
               input_names: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Arrays stored per part (``x_train``, ``x_test``, ``y_train``, ...) joined into one array per key
    (``x``, ``y``) in the order train, val, test, plus the ``split`` array that marks the parts.

    Every key with parts must have the same parts with the same sample counts (``x_train`` and
    ``y_train`` the same rows); a file that has both parts and a ``split`` array, or parts and the
    joined key itself, is a :class:`DataError` (which would be meant is not clear). A key that is
    one of ``input_names`` is never a part.
    """
    parted: dict[str, dict[str, np.ndarray]] = {}
    rest: dict[str, np.ndarray] = {}
    for key, array in arrays.items():
        suffix = next((s for s in PART_SUFFIXES if key.endswith(s) and len(key) > len(s)), None)
        if suffix is None or key in input_names:
            rest[key] = array
            continue
        base, part = key[:-len(suffix)], PART_SUFFIXES[suffix]
        if array.ndim == 0:
            raise DataError(f"array '{key}' is a scalar; expected one row per sample of the {part} part",
                            location=Location(file=path))
        if part in parted.setdefault(base, {}):
            raise DataError(f"arrays '{key}' and another key both hold the {part} part of '{base}'",
                            location=Location(file=path), hint="keep one array per part")
        parted[base][part] = array
    if not parted:
        return dict(arrays)
    where = Location(file=path)
    hint = "store each part as <key>_train / <key>_val / <key>_test, or one array per key and a 'split' array"
    if SPLIT_KEY in rest:
        raise DataError(f"the file has both a '{SPLIT_KEY}' array and arrays per part "
                        f"({', '.join(sorted(k for k in arrays if k not in rest))})", location=where, hint=hint)
    order = [p for p in SPLIT_MARKS if p in next(iter(parted.values()))]
    counts: dict[str, int] = {}
    for base, parts in parted.items():
        if base in rest:
            raise DataError(f"the file has '{base}' and also '{base}' per part", location=where, hint=hint)
        if sorted(parts, key=SPLIT_MARKS.index) != order:
            raise DataError(f"'{base}' has the parts {sorted(parts)}, other keys {order}", location=where, hint=hint)
        for part, array in parts.items():
            rows = int(array.shape[0])
            if counts.setdefault(part, rows) != rows:
                raise DataError(f"'{base}_{part}' has {rows} samples, the other {part} arrays {counts[part]}",
                                location=where, hint="every array of a part needs one row per sample of it")
        rest[base] = np.concatenate([parts[p] for p in order], axis=0)
    rest[SPLIT_KEY] = np.concatenate([np.full(counts[p], p, dtype="<U5") for p in order])
    return rest


def _fit(array: np.ndarray, spec: tuple[int, ...], key: str, name: str, path: str) -> np.ndarray:
    """Check `array` [n, ...] against the per-sample `spec` and reshape when unambiguous."""
    where = Location(file=path, shape=str(list(array.shape)))
    if array.dtype.kind not in "fiub":
        raise DataError(f"array '{key}' has dtype {array.dtype}; expected numbers", location=where)
    if array.ndim == 0:
        raise DataError(f"array '{key}' is a scalar; expected [n, {', '.join(map(str, spec))}]",
                        location=where)
    got = tuple(int(d) for d in array.shape[1:])
    if got != spec:
        squeezed_got = tuple(d for d in got if d != 1)
        squeezed_spec = tuple(d for d in spec if d != 1)
        if squeezed_got != squeezed_spec:
            move = _channel_move(got, spec)
            note, call = _MOVES[move] if move is not None else ("", "")
            raise DataError(
                f"array '{key}' (model input '{name}') has per-sample shape {list(got)}, "
                f"expected {list(spec)}{note}",
                location=where,
                # the data is never transposed silently: which axis is the channel is the user's to say
                hint=f"store '{key}' as {call.format(key=key)} (per-sample {list(spec)}); the data is never "
                     f"transposed silently" if move is not None else
                f"store it as [n, {', '.join(map(str, spec))}] (first axis = samples); only size-1 axes may differ")
        array = array.reshape((array.shape[0],) + spec)
    out = array.astype(np.float32)
    if not np.all(np.isfinite(out)):
        bad = int(np.count_nonzero(~np.isfinite(out)))
        raise DataError(f"array '{key}' holds {bad} non-finite values (NaN/inf)", location=where)
    return out


def _channel_move(got: tuple[int, ...], spec: tuple[int, ...]) -> str | None:
    """How per-sample ``got`` differs from ``spec`` by the place of one axis: ``"swapped"`` (two axes
    the other way round: ``[128, 3]`` for ``[3, 128]``), ``"last-to-first"`` (channel-last data,
    ``[H, W, C]``, for a channel-first input ``[C, H, W]``), ``"first-to-last"`` (the converse), or
    None (also when the shape reads the same either way, e.g. ``[3, 3, 3]``)."""
    if len(got) < 2 or got == spec:
        return None
    if len(got) == 2 and got == spec[::-1]:
        return "swapped"
    if got == spec[1:] + spec[:1]:
        return "last-to-first"
    if got == spec[-1:] + spec[:-1]:
        return "first-to-last"
    return None


_MOVES = {"swapped": (" (its two axes are the other way round)", "np.swapaxes({key}, 1, 2)"),
          "last-to-first": (" (the data is channel-last, the model input channel-first)", "np.moveaxis({key}, -1, 1)"),
          "first-to-last": (" (the data is channel-first, the model input channel-last)", "np.moveaxis({key}, 1, -1)")}


def class_indices(labels: np.ndarray, classes: Sequence[Any], source: str | None = None) -> np.ndarray:
    """Labels ``[n]`` as indices into ``classes``, a classifier's class labels (scikit-learn's
    ``classes_``: ``["cat", "dog"]``, ``[1, 2, 3]``, ``[-1, 1]``).

    Labels that are all among ``classes`` are mapped to their positions; otherwise integer labels
    that are all in ``[0, len(classes))`` are taken as indices already; anything else is a
    :class:`DataError` naming the first label that is neither.
    """
    values = np.asarray(labels)
    if values.ndim != 1:
        return values
    known = {_plain(c): i for i, c in enumerate(classes)}
    keys = [_plain(v) for v in values.tolist()]
    if all(k in known for k in keys):
        return np.asarray([known[k] for k in keys], dtype=np.int64)
    if values.dtype.kind in "iu" and (values.size == 0 or (values.min() >= 0 and values.max() < len(classes))):
        return values.astype(np.int64)
    bad = next(v for v, k in zip(values.tolist(), keys) if k not in known)
    shown = ", ".join(map(str, list(classes)[:12])) + (", ..." if len(classes) > 12 else "")
    raise DataError(f"label {bad!r} in 'y' is not one of the model's {len(classes)} classes ({shown})",
                    location=Location(file=source, shape=str(list(values.shape))),
                    hint=f"store the classes the model was trained with, or their indices 0..{len(classes) - 1}")


def _plain(value: Any) -> Any:
    """A label as a hashable plain value: bytes decoded, integral floats as ints (``3.0`` is class ``3``)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _one_hot(labels: np.ndarray) -> bool:
    """Whether every row of ``labels [n, k]`` is one 1 among 0s."""
    return bool(np.isin(labels, (0, 1)).all() and (labels.sum(axis=1) == 1).all())


def _labels(labels: np.ndarray, source: str | None) -> np.ndarray:
    """Class indices from labels: one-hot [n, k] -> argmax; integral floats -> int64; anything else
    (real values, several targets per sample: a regressor's) stays as it is."""
    where = Location(file=source, shape=str(list(labels.shape)))
    if labels.ndim == 0:
        raise DataError("labels 'y' are a scalar; expected one label per sample", location=where)
    if labels.ndim == 2 and labels.shape[1] > 1 and labels.dtype.kind in "fiub" and _one_hot(labels):
        return np.argmax(labels, axis=1).astype(np.int64)
    if labels.dtype.kind in "iub":
        return labels.astype(np.int64)
    if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
        return labels.astype(np.int64)
    return labels
