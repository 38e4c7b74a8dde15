"""Chunking of the 4A-2A objective, shared by every generated objective kernel.

Chunk ``k`` covers ``[k·hop, min(k·hop + chunk, n))`` with ``hop = chunk - warmup``; every chunk starts
from the model's rest state and zero filter state; chunk 0 counts from its first sample, the others
after ``warmup`` samples, so each sample is counted exactly once.
"""

from __future__ import annotations

import numpy as np

from ._numba import kernel


@kernel
def chunk_count(total_samples, chunk_samples, warmup_samples):
    """Number of chunks that cover ``total_samples`` (hop = chunk - warm-up)."""
    if total_samples <= chunk_samples:
        return 1
    hop = chunk_samples - warmup_samples
    return 1 + (total_samples - chunk_samples + hop - 1) // hop


@kernel
def lane_groups(chunks, lanes):
    """How many groups of ``lanes`` consecutive chunks a lane kernel runs: every full group, and a last group
    padded with idle lanes when at most one of its lanes would idle (one lane running alone is slower than
    the one-chunk kernel, a nearly full group is faster than its chunks one by one).  It depends on the
    signal alone, never on the thread count, so the sums are the same on any number of threads."""
    return chunks // lanes + (1 if chunks % lanes >= lanes - 1 else 0)


@kernel
def chunk_bounds(k, total_samples, chunk_samples, warmup_samples):
    """(start, stop, count_from) of chunk ``k``."""
    start = k * (chunk_samples - warmup_samples)
    stop = min(start + chunk_samples, total_samples)
    count_from = start if k == 0 else start + warmup_samples
    return start, stop, count_from


@kernel
def sum_rows(per_chunk):
    """Column sums of ``per_chunk`` (chunks, width), in chunk order (deterministic)."""
    total = np.zeros(per_chunk.shape[1])
    for k in range(per_chunk.shape[0]):
        for j in range(per_chunk.shape[1]):
            total[j] += per_chunk[k, j]
    return total
