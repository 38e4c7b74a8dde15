"""The one place that sets numba's compilation flags.

``fastmath`` leaves out ``nnan``/``ninf`` so NaN and infinity checks inside kernels still work,
``error_model="numpy"`` gives IEEE results (inf, NaN) instead of exceptions on division by zero, and
``cache=True`` keeps the compile time (a few seconds) out of every run after the first.

numba's SSA pass recurses once per basic block on the way to a definition; the generated kernels of the
larger members (``opto-hp``: hundreds of branch-selected sensitivities) go deeper than Python's default
limit of 1000 frames, so the limit is raised once here.
"""

from __future__ import annotations

import os
import sys

# numba's parallel kernels run on GNU OpenMP here, whose idle threads spin after each parallel region: on a
# busy 2-core machine the spinning thread takes the core the next region (or the serial code between) needs,
# and the in-place FIR of a 20-min capture took 0.4-5.7 s instead of 0.3-0.5 s (load 3-4).  Waiting threads
# sleep instead; set before numba loads libgomp (which reads it once), an OMP_WAIT_POLICY of the user's is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import llvmlite.binding as llvm  # noqa: E402
import numba  # noqa: E402

#: LLVM loop-vectoriser limits raised for the generated lane kernels (``codegen.numba_module``): their loop
#: over 4 lanes loads and stores every carried value of a sample (hundreds for the larger members) in a few
#: arrays LLVM cannot prove apart, and with the default limits (100 dependences, 8 runtime memory checks, a
#: minimum trip count of 16 for a loop of known trip count) it leaves the loop scalar and the lanes lose their
#: point.  Process-wide options,
#: they only let the vectoriser take loops it would otherwise skip.
LLVM_VECTORIZER_LIMITS = {
    "max-dependences": 100_000,
    "runtime-memory-check-threshold": 100_000,
    "vectorize-memory-check-threshold": 100_000,
    "memory-check-merge-threshold": 100_000,
    "vectorizer-min-trip-count": 4,
}
for _name, _value in LLVM_VECTORIZER_LIMITS.items():
    llvm.set_option("dynamatch", f"-{_name}={_value}")

#: Python frames numba's SSA reconstruction may need for the largest generated kernel.
COMPILE_RECURSION_LIMIT = 10_000
if sys.getrecursionlimit() < COMPILE_RECURSION_LIMIT:
    sys.setrecursionlimit(COMPILE_RECURSION_LIMIT)

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def kernel(function=None, *, parallel: bool = False):
    """``numba.njit`` with dynamatch's flags; usable bare or with ``parallel=True``."""

    def wrap(f):
        return numba.njit(cache=True, fastmath=FASTMATH, parallel=parallel, nogil=True, error_model="numpy")(f)

    return wrap(function) if function is not None else wrap
