"""Numpy's products in ranking and learning run BLAS on one thread.

The ranking's products are small (one query against 10k notes, or 128 queries): fanning them out across the
cores of a busy 2-core machine made one product cost 17 ms instead of 0.5 ms, and a reranker fit 5.5 s instead
of 3.4 s (measured at 10k notes under load). In learning, BLAS threads left waiting after the rank checks'
products took the cores from torch's training steps in between: `vaultlearn learn` on mathwiki took 30.9 s
instead of 15.4 s.
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
