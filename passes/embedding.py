"""Embeddings: ``Gather(table, ids, axis=0)`` of a constant ``[V, D]`` table by token ids.

torch's ``nn.Embedding`` (legacy and dynamo exporters alike; ``padding_idx`` is only a zero row of
the table) writes one ``Gather`` whose data is the weight table and whose indices are an integer
graph input ``[1, T]`` (int64; int32 is accepted as well). That node is in the
normal form as it is (docs/normal-form.md, "Embeddings") and lowers to one ``embed`` step
(docs/lir.md): the program input holds the ids (a ``u16`` buffer, no Q format) and the step copies
row ``ids[t]`` of the table (stored in FRAM in the table's own Q format, chosen by `quantize` from
its values) into row ``t`` of the output ``[1, T, D]``.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from passes.normalize_util import shape_text, static_shape

VOCAB_MAX = 65535
"""Rows of a table at most (the ids are uint16 on the device)."""


def is_token_input(tensor: gs.Tensor) -> bool:
    """Whether ``tensor`` is a graph input of an integer dtype (token ids)."""
    return (isinstance(tensor, gs.Variable) and tensor.dtype is not None
            and np.dtype(tensor.dtype).kind in "iu" and not tensor.inputs)


def is_embedding(node: gs.Node) -> bool:
    """A ``Gather`` of a constant table by integer indices (whether or not it is in the form lower
    takes: :func:`embedding_problems` says)."""
    return (node.op == "Gather" and len(node.inputs) == 2 and isinstance(node.inputs[0], gs.Constant)
            and isinstance(node.inputs[1], gs.Variable) and node.inputs[1].dtype is not None
            and np.dtype(node.inputs[1].dtype).kind in "iu")


def embedding_problems(node: gs.Node) -> list[tuple[str, str]]:
    """(reason, hint) pairs why an embedding ``Gather`` is outside the normal form (empty: it is in it):
    a float ``[V, D]`` table with ``V <= 65535``, gathered on axis 0 by a token-id graph input ``[1, T]``,
    giving ``[1, T, D]``."""
    table, ids = node.inputs[0], node.inputs[1]
    values = np.asarray(table.values)
    hint = ("an embedding is supported as Gather(table [V, D], ids [1, T], axis=0) with the ids a graph input "
            "of an integer type (nn.Embedding on a [1, T] tensor of token ids)")
    problems: list[tuple[str, str]] = []
    if values.ndim != 2 or values.dtype.kind != "f":
        problems.append((f"the table is {values.dtype}{list(values.shape)}, not a float [V, D] matrix", hint))
    elif int(node.attrs.get("axis", 0)) % 2 != 0:
        problems.append((f"Gather on axis {node.attrs.get('axis')} of the table (columns)", hint))
    elif values.shape[0] > VOCAB_MAX:
        problems.append((f"a table of {values.shape[0]} rows", f"at most {VOCAB_MAX} rows (the ids are "
                                                               f"16-bit on the device); shrink the vocabulary"))
    if not is_token_input(ids):
        problems.append((f"the ids '{ids.name}' are computed in the graph, not a graph input", hint))
    shape = static_shape(ids)
    if shape is None or len(shape) != 2 or shape[0] != 1:
        problems.append((f"ids {shape_text(ids)} are not [1, T]", hint + "; give a static sequence length "
                                                                        "with --input-shape ids=1xT"))
    return problems
