"""numba's on-disk cache under concurrent writers (two pytest workers, Dask workers on a cold cache).

Reference: what each process saved.  Two processes save different keys of one function's cache at once;
afterwards every key must load the data saved under it.  numba's own save picks data-file numbers from
an index it read without a lock, so there two keys end up sharing one file (and one signature would run
the other's machine code); dynamatch's locked save (``kernels._numba``) must never lose or swap an entry.
"""

from __future__ import annotations

import multiprocessing

import pytest

from dynamatch.kernels import _numba
from numba.core.caching import IndexDataCacheFile

SAVES = 150


def _save_many(cache_path: str, writer: int, start) -> None:
    cache = IndexDataCacheFile(cache_path, "kernel-1.py311", source_stamp=("stamp", 1))
    start.wait()
    for j in range(SAVES):
        cache.save((writer, j), {"writer": writer, "entry": j})


@pytest.mark.skipif(not hasattr(_numba, "fcntl"), reason="the locked save needs POSIX file locks")
def test_concurrent_saves_keep_every_entry(tmp_path):
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)
    writers = [context.Process(target=_save_many, args=(str(tmp_path), w, start)) for w in range(2)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(60)
        assert process.exitcode == 0
    cache = IndexDataCacheFile(str(tmp_path), "kernel-1.py311", source_stamp=("stamp", 1))
    for w in range(2):
        for j in range(SAVES):
            assert cache.load((w, j)) == {"writer": w, "entry": j}, (w, j)
