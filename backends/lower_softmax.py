"""The exp table of a `softmax` step (docs/lir.md, "softmax") and its worst error.

``t[i] = round(2^14 exp(-i h))`` with ``h = 2^(step - q_x)`` the spacing in real units, ``step =
max(q_x - 6, 0)`` (so ``h <= 2^-6``: linear interpolation is then within ``h^2 / 8 <= 2^-15`` of
exp), up to the first entry that rounds to 0 (``exp(-a) < 2^-15``: ``a > 10.4``, about 700 entries at
``h = 2^-6``); the output of a softmax is in q = 15 (a probability; 1.0 saturates to 32767).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from transpiler.lir.kernels import SOFTMAX_TABLE_Q, softmax_exp

SOFTMAX_OUT_Q = 15
SPACING_BITS = 6
"""``h = 2^-6`` once the input format is that fine."""


def exp_table(q_x: int) -> tuple[np.ndarray, int]:
    """The table (int16) and its ``step`` for inputs of format ``q_x``."""
    step = max(q_x - SPACING_BITS, 0)
    h = 2.0 ** (step - q_x)
    count = int(math.ceil((SOFTMAX_TABLE_Q + 1) * math.log(2.0) / h)) + 2
    values = np.floor(2.0 ** SOFTMAX_TABLE_Q * np.exp(-np.arange(count) * h) + 0.5)
    zero = int(np.argmax(values == 0)) if np.any(values == 0) else count - 1
    table = values[:zero + 1].astype(np.int16)
    table[-1] = 0
    return table, step


@functools.lru_cache(maxsize=64)
def _table_error(table_bytes: bytes, step: int, q_x: int) -> float:
    table = np.frombuffer(table_bytes, dtype=np.int16)
    a = np.arange(0, (table.size - 1) * (1 << step) + 1, dtype=np.int64)
    got = softmax_exp(a, table, step).astype(np.float64) * 2.0 ** -SOFTMAX_TABLE_Q
    return float(np.max(np.abs(got - np.exp(-a * 2.0 ** -q_x))))


def table_error(table: np.ndarray, step: int, q_x: int) -> float:
    """The largest ``|t(a) 2^-14 - exp(-a 2^-q_x)|`` over every input ``a >= 0`` the table reads
    (beyond its end it is 0 against ``exp < 2^-15``, which the last entries bound)."""
    return _table_error(np.asarray(table, dtype=np.int16).tobytes(), step, q_x)
