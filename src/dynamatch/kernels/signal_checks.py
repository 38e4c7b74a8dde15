"""One-pass kernels over whole recordings: a short FIR (fractional delay) and the input statistics.

Both read float32 or float64 and accumulate in float64; both run over blocks in parallel.
"""

from __future__ import annotations

import numba
import numpy as np

from ._numba import kernel

BLOCK_SAMPLES = 1 << 16


@kernel(parallel=True)
def fir_same(x, taps, centre, out):  # pragma: no cover - compiled
    """``out[n] = sum_k taps[k] * x[n + centre - k]`` (zero outside ``x``), for every n, in float64 sums.

    With ``centre = (len(taps) - 1) // 2`` and taps ``h[k] = g(k - centre)`` this is the convolution
    ``y[n] = sum_j g(j) x[n - j]``: a causal-centred FIR of the same length as ``x``.
    """
    samples = x.size
    length = taps.size
    blocks = (samples + BLOCK_SAMPLES - 1) // BLOCK_SAMPLES
    for b in numba.prange(blocks):
        start = b * BLOCK_SAMPLES
        stop = min(start + BLOCK_SAMPLES, samples)
        for n in range(start, stop):
            first = n + centre - (length - 1)
            acc = 0.0
            if first >= 0 and n + centre < samples:
                for k in range(length):
                    acc += taps[k] * x[n + centre - k]
            else:
                for k in range(length):
                    m = n + centre - k
                    if 0 <= m < samples:
                        acc += taps[k] * x[m]
            out[n] = acc


@kernel(parallel=True)
def signal_statistics(x, clip_level, clip_run):  # pragma: no cover - compiled
    """One pass over ``x`` (1-D): (non-finite count, first non-finite index or -1, sum, sum of squares,
    samples in flat full-scale runs of at least ``clip_run`` identical samples with |x| >= clip_level).

    Blocks are independent; a clipped run that crosses a block edge is counted by the block where
    it starts (each block reads on past its end to finish the run)."""
    samples = x.size
    blocks = (samples + BLOCK_SAMPLES - 1) // BLOCK_SAMPLES
    bad = np.zeros(blocks, np.int64)
    first_bad = np.full(blocks, -1, np.int64)
    sums = np.zeros(blocks)
    squares = np.zeros(blocks)
    clipped = np.zeros(blocks, np.int64)
    for b in numba.prange(blocks):
        start = b * BLOCK_SAMPLES
        stop = min(start + BLOCK_SAMPLES, samples)
        s = 0.0
        q = 0.0
        nb = 0
        fb = -1
        for n in range(start, stop):
            v = float(x[n])
            if np.isfinite(v):
                s += v
                q += v * v
            else:
                nb += 1
                if fb < 0:
                    fb = n
        # clipped runs starting in [start, stop)
        c = 0
        n = start
        if n > 0 and x[n] == x[n - 1] and abs(x[n]) >= clip_level:
            while n < stop and x[n] == x[n - 1]:  # run started in the previous block
                n += 1
        while n < stop:
            v = x[n]
            if abs(v) >= clip_level:
                m = n + 1
                while m < samples and x[m] == v:
                    m += 1
                if m - n >= clip_run:
                    c += m - n
                n = m
            else:
                n += 1
        bad[b], first_bad[b], sums[b], squares[b], clipped[b] = nb, fb, s, q, c
    first = -1
    for b in range(blocks):
        if first_bad[b] >= 0:
            first = first_bad[b]
            break
    return bad.sum(), first, sums.sum(), squares.sum(), clipped.sum()
