"""The ranking's numeric work runs BLAS on one thread.

Its products are small (one query against 10k notes, or 128 queries): fanning them out across the cores of
a busy 2-core machine made one product cost 17 ms instead of 0.5 ms, and a reranker fit 5.5 s instead of
3.4 s (measured at 10k notes under load).
"""

from __future__ import annotations

from functools import lru_cache

from threadpoolctl import ThreadpoolController


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_blas_thread():
    """A context manager limiting BLAS to one thread inside it."""
    return _controller().limit(limits=1, user_api="blas")
