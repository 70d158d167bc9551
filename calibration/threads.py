"""One BLAS thread for the many small fits and products of calibration.

The calibrator's L-BFGS fits (a few hundred rows, a dozen columns) and the priority ranker's lazy
steps are many small BLAS calls: multi-threaded OpenBLAS spends more on waking and parking its
threads than on the work. Measured on this 2-core machine: one ``fit_gate`` on 250 labels took
1.3 s with OpenBLAS's two threads and 0.15 s with one (the README's measurements), and it was
worse on a busy machine. A context manager rather than a process-wide setting: a user's
notebook keeps its own threads for everything else.

>>> with single_threaded_blas():
...     pass
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

__all__ = ["single_threaded_blas"]


def single_threaded_blas() -> threadpool_limits:
    """Limit BLAS libraries to one thread inside a ``with`` block (~1 ms to enter)."""
    return threadpool_limits(limits=1, user_api="blas")
