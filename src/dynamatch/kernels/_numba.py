"""The one place that sets numba's compilation flags.

``fastmath`` leaves out ``nnan``/``ninf`` so NaN and infinity checks inside kernels still work,
``error_model="numpy"`` gives IEEE results (inf, NaN) instead of exceptions on division by zero, and
``cache=True`` keeps the compile time (a few seconds) out of every run after the first.

numba's SSA pass recurses once per basic block on the way to a definition; the generated kernels of the
larger members (``opto-hp``: hundreds of branch-selected sensitivities) go deeper than Python's default
limit of 1000 frames, so the limit is raised once here.
"""

from __future__ import annotations

import itertools
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


def _save_cache_entry_locked(self, key, data) -> None:
    """``IndexDataCacheFile.save`` under an exclusive lock, data file before index entry.

    numba reads a function's cache index, picks the first free data-file number and writes both back with
    no lock: two processes compiling two signatures of one function at once (``pytest -n 2``, Dask workers on
    a cold cache) can both pick ``<function>.1.nbc``; the index then maps one signature to the other's machine
    code, which later runs on the wrong types (seen: NaN levels from a float32 kernel given float64 arrays).
    Under the lock the index is re-read, so numbers are never shared, and the data is written before the index
    names it.
    """
    with open(self._index_path + ".lock", "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            overloads = self._load_index()
            data_name = overloads.get(key)
            if data_name is None:
                taken = set(overloads.values())
                data_name = next(name for name in map(self._data_name, itertools.count(1)) if name not in taken)
            self._save_data(data_name, data)
            if overloads.get(key) != data_name:
                overloads[key] = data_name
                self._save_index(overloads)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: numba's own unlocked save
    pass
else:
    from numba.core.caching import IndexDataCacheFile

    IndexDataCacheFile.save = _save_cache_entry_locked


def kernel(function=None, *, parallel: bool = False):
    """``numba.njit`` with dynamatch's flags; usable bare or with ``parallel=True``."""

    def wrap(f):
        return numba.njit(cache=True, fastmath=FASTMATH, parallel=parallel, nogil=True, error_model="numpy")(f)

    return wrap(function) if function is not None else wrap
