"""Limit the BLAS thread pool while the engine trains.

The engine's matrix products are small (a LeNet layer is a 16 x 150 by 150 x 6400 product), so BLAS
threads gain little, and when other processes share the cores (pytest-xdist, a build) OpenBLAS's
spinning threads make training several times slower: measured on 2 busy cores, one LeNet-5 epoch
over 3000 images took 2.9 s with 2 threads and 0.6 s with 1. :func:`blas_threads` caps the pool
through ``threadpoolctl`` when it is installed (it comes with scikit-learn); without it the
pool is left as it is and only speed differs, never results' meaning.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def blas_threads(limit: int | None) -> Iterator[bool]:
    """Within the block, BLAS uses at most ``limit`` threads (None: unchanged).

    Yields whether a limit is in force.
    """
    if limit is None:
        yield False
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: the engine is correct without it, only slower on busy machines
        yield False
        return
    with threadpool_limits(limits=limit, user_api="blas"):
        yield True
