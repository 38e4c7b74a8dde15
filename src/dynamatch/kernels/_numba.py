"""The one place that sets numba's compilation flags.

``fastmath`` leaves out ``nnan``/``ninf`` so NaN and infinity checks inside kernels still work,
``error_model="numpy"`` gives IEEE results (inf, NaN) instead of exceptions on division by zero, and
``cache=True`` keeps the compile time (a few seconds) out of every run after the first.
"""

from __future__ import annotations

import numba

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def kernel(function=None, *, parallel: bool = False):
    """``numba.njit`` with dynamatch's flags; usable bare or with ``parallel=True``."""

    def wrap(f):
        return numba.njit(cache=True, fastmath=FASTMATH, parallel=parallel, nogil=True, error_model="numpy")(f)

    return wrap(function) if function is not None else wrap
