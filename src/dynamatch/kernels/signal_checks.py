"""One-pass kernels over whole recordings: a short FIR (fractional delay), the input statistics, and
the sums the checks, the alignment and the objective need.

All read float32 or float64 and accumulate in float64; all run over fixed blocks of
:data:`BLOCK_SAMPLES` (in parallel on long signals) and combine the blocks' sums in block order, so every result is the
same whatever the number of threads (``np.dot`` is not: OpenBLAS splits long dot products over its
threads, and a Dask worker process runs it with one thread, which changed fits in their last digits).
"""

from __future__ import annotations

import numba
import numpy as np

from ._numba import kernel

BLOCK_SAMPLES = 1 << 16


#: Below this many samples the serial drivers run: a parallel region costs milliseconds when the cores
#: are busy, more than the pass itself on a short signal.
PARALLEL_MIN_SAMPLES = 1 << 22


@kernel
def _fir_block(x, taps, reversed_taps, centre, out, start, stop):  # pragma: no cover - compiled
    samples = x.size
    length = taps.size
    for n in range(start, stop):
        first = n + centre - (length - 1)
        acc = 0.0
        if first >= 0 and n + centre < samples:
            for i in range(length):  # a forward walk over x vectorises (5x faster than walking back)
                acc += reversed_taps[i] * x[first + i]
        else:
            for k in range(length):
                m = n + centre - k
                if 0 <= m < samples:
                    acc += taps[k] * x[m]
        out[n] = acc


@kernel(parallel=True)
def _fir_same_parallel(x, taps, centre, out):  # pragma: no cover - compiled
    reversed_taps = taps[::-1].copy()
    blocks = (x.size + BLOCK_SAMPLES - 1) // BLOCK_SAMPLES
    for b in numba.prange(blocks):
        _fir_block(x, taps, reversed_taps, centre, out, b * BLOCK_SAMPLES, min((b + 1) * BLOCK_SAMPLES, x.size))


@kernel
def _fir_same_serial(x, taps, centre, out):  # pragma: no cover - compiled
    reversed_taps = taps[::-1].copy()
    blocks = (x.size + BLOCK_SAMPLES - 1) // BLOCK_SAMPLES
    for b in range(blocks):
        _fir_block(x, taps, reversed_taps, centre, out, b * BLOCK_SAMPLES, min((b + 1) * BLOCK_SAMPLES, x.size))


#: Samples either side of a block that its FIR outputs may read (at least the taps' reach).
HALO_SAMPLES = 128


#: Blocks of the in-place FIR share this many scratch buffers (one pair per group of consecutive blocks):
#: a pair allocated and freed per block made the parallel pass 0.4 → 5.6 s on a loaded 2-core VM (each
#: large free is an munmap, whose TLB shootdown waits for the other thread's preempted core).
FIR_IN_PLACE_GROUPS = 16


@kernel
def _fir_block_in_place(x, taps, reversed_taps, centre, left_halo, right_halo, start, stop, ext_buffer,
                        out_buffer):  # pragma: no cover - compiled
    # the original signal over [start - halo, stop + halo) clipped to the signal: the same slice, so the same
    # sums, as fir_same on the whole signal (no output of the block reaches past it); the scratch buffers hold
    # at least BLOCK_SAMPLES + 2 * HALO_SAMPLES samples and are used through views of the block's extent
    left = left_halo.size if start > 0 else 0
    right = min(right_halo.size, x.size - stop)
    size = left + (stop - start) + right
    ext = ext_buffer[:size]
    ext[:left] = left_halo[left_halo.size - left:]
    ext[left: left + stop - start] = x[start:stop]
    ext[left + stop - start:] = right_halo[:right]
    out = out_buffer[:size]
    _fir_block(ext, taps, reversed_taps, centre, out, left, left + stop - start)
    x[start:stop] = out[left: left + stop - start]


@kernel(parallel=True)
def _fir_same_in_place(x, taps, centre):  # pragma: no cover - compiled
    reversed_taps = taps[::-1].copy()
    blocks = (x.size + BLOCK_SAMPLES - 1) // BLOCK_SAMPLES
    halo = HALO_SAMPLES
    # the halos of every block boundary, saved before any block is overwritten
    tails = np.zeros((blocks + 1, halo), dtype=x.dtype)  # tails[b]: the last samples before block b
    heads = np.zeros((blocks + 1, halo), dtype=x.dtype)  # heads[b]: the first samples of block b
    for b in range(1, blocks):
        tails[b] = x[b * BLOCK_SAMPLES - halo: b * BLOCK_SAMPLES]
        head = x[b * BLOCK_SAMPLES: min(b * BLOCK_SAMPLES + halo, x.size)]
        heads[b, :head.size] = head
    groups = min(blocks, FIR_IN_PLACE_GROUPS)
    for g in numba.prange(groups):
        ext = np.empty(BLOCK_SAMPLES + 2 * halo, dtype=x.dtype)
        out = np.empty_like(ext)
        for b in range(g * blocks // groups, (g + 1) * blocks // groups):
            _fir_block_in_place(x, taps, reversed_taps, centre, tails[b], heads[b + 1], b * BLOCK_SAMPLES,
                                min((b + 1) * BLOCK_SAMPLES, x.size), ext, out)


def fir_same(x, taps, centre, out) -> None:
    """``out[n] = sum_k taps[k] * x[n + centre - k]`` (zero outside ``x``), for every n, in float64 sums.

    With ``centre = (len(taps) - 1) // 2`` and taps ``h[k] = g(k - centre)`` this is the convolution
    ``y[n] = sum_j g(j) x[n - j]``: a causal-centred FIR of the same length as ``x``.  Blocks in parallel
    on long signals; the same result either way.
    """
    (_fir_same_parallel if x.size >= PARALLEL_MIN_SAMPLES else _fir_same_serial)(x, taps, centre, out)


def fir_same_in_place(x, taps, centre) -> None:
    """:func:`fir_same` of the 1-D contiguous ``x`` written over ``x`` (the same values, bit for bit), holding
    only one block and its halos besides: blocks in parallel, each from a copy of its input span."""
    if taps.size > HALO_SAMPLES or not 0 <= centre < taps.size:
        raise ValueError(f"fir_same_in_place reaches at most {HALO_SAMPLES} samples, got {taps.size} taps")
    _fir_same_in_place(x, taps, centre)


@kernel
def _statistics_block(x, start, stop, clip_level, clip_run):  # pragma: no cover - compiled
    samples = x.size
    s = 0.0
    q = 0.0
    nb = 0
    fb = -1
    peak = 0.0
    nf = 0
    # fast path without branches (vectorises): exact when every sample is finite, which the sums show
    for n in range(start, stop):
        v = np.float64(x[n])
        s += v
        q += v * v
        a = abs(v)
        peak = max(peak, a)
        nf += 1 if a >= clip_level else 0
    if not (np.isfinite(s) and np.isfinite(q) and np.isfinite(peak)):  # a NaN/inf (or an overflow): count them
        s = 0.0
        q = 0.0
        peak = 0.0
        nf = 0
        for n in range(start, stop):
            v = np.float64(x[n])
            if np.isfinite(v):
                s += v
                q += v * v
                a = abs(v)
                if a > peak:
                    peak = a
                if a >= clip_level:
                    nf += 1
            else:
                nb += 1
                if fb < 0:
                    fb = n
    # clipped runs starting in [start, stop): none without a full-scale sample in the block
    c = 0
    if nf == 0:
        return nb, fb, s, q, c, peak, nf
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
    return nb, fb, s, q, c, peak, nf


@kernel
def _combine_statistics(per_block):  # pragma: no cover - compiled
    first = -1
    bad = 0
    total = 0.0
    total_squares = 0.0
    clipped = 0
    peak = 0.0
    full_scale = 0
    for b in range(per_block.shape[0]):
        bad += int(per_block[b, 0])
        if first < 0 and per_block[b, 1] >= 0:
            first = int(per_block[b, 1])
        total += per_block[b, 2]
        total_squares += per_block[b, 3]
        clipped += int(per_block[b, 4])
        peak = max(peak, per_block[b, 5])
        full_scale += int(per_block[b, 6])
    return bad, first, total, total_squares, clipped, peak, full_scale


@kernel(parallel=True)
def _statistics_parallel(x, clip_level, clip_run):  # pragma: no cover - compiled
    blocks = (x.size + BLOCK_SAMPLES - 1) // BLOCK_SAMPLES
    per_block = np.zeros((blocks, 7))  # counts < 2^53 are exact in float64
    for b in numba.prange(blocks):
        nb, fb, s, q, c, peak, nf = _statistics_block(x, b * BLOCK_SAMPLES, min((b + 1) * BLOCK_SAMPLES, x.size),
                                                      clip_level, clip_run)
        per_block[b, 0], per_block[b, 1], per_block[b, 2], per_block[b, 3] = nb, fb, s, q
        per_block[b, 4], per_block[b, 5], per_block[b, 6] = c, peak, nf
    return _combine_statistics(per_block)


@kernel
def _statistics_serial(x, clip_level, clip_run):  # pragma: no cover - compiled
    blocks = (x.size + BLOCK_SAMPLES - 1) // BLOCK_SAMPLES
    per_block = np.zeros((blocks, 7))
    for b in range(blocks):
        nb, fb, s, q, c, peak, nf = _statistics_block(x, b * BLOCK_SAMPLES, min((b + 1) * BLOCK_SAMPLES, x.size),
                                                      clip_level, clip_run)
        per_block[b, 0], per_block[b, 1], per_block[b, 2], per_block[b, 3] = nb, fb, s, q
        per_block[b, 4], per_block[b, 5], per_block[b, 6] = c, peak, nf
    return _combine_statistics(per_block)


def signal_statistics(x, clip_level, clip_run):
    """One pass over ``x`` (1-D): (non-finite count, first non-finite index or -1, sum, sum of squares,
    samples in flat full-scale runs of at least ``clip_run`` identical samples with |x| >= clip_level,
    peak |x| of the finite samples, samples with |x| >= clip_level).

    Blocks are independent (in parallel on long signals, the same result either way); a clipped run that
    crosses a block edge is counted by the block where it starts (each block reads on past its end to
    finish the run)."""
    return (_statistics_parallel if x.size >= PARALLEL_MIN_SAMPLES else _statistics_serial)(x, clip_level, clip_run)


@kernel
def sum_of_products(a, b):  # pragma: no cover - compiled
    """``Σ a[n]·b[n]`` in float64 (1-D, same length): one serial pass (memory-bound, so threads gain little,
    and a parallel region costs milliseconds on a loaded machine), block sums added in block order."""
    samples = a.size
    total = 0.0
    for start in range(0, samples, BLOCK_SAMPLES):
        stop = min(start + BLOCK_SAMPLES, samples)
        acc = 0.0
        for n in range(start, stop):
            acc += np.float64(a[n]) * np.float64(b[n])
        total += acc
    return total


@kernel
def gram_sums(a, b):  # pragma: no cover - compiled
    """``(Σ a², Σ b², Σ a·b)`` in float64 in one serial pass (1-D, same length), block sums in block order."""
    samples = a.size
    aa = 0.0
    bb = 0.0
    ab = 0.0
    for start in range(0, samples, BLOCK_SAMPLES):
        stop = min(start + BLOCK_SAMPLES, samples)
        block_aa = 0.0
        block_bb = 0.0
        block_ab = 0.0
        for n in range(start, stop):
            x = np.float64(a[n])
            y = np.float64(b[n])
            block_aa += x * x
            block_bb += y * y
            block_ab += x * y
        aa += block_aa
        bb += block_bb
        ab += block_ab
    return aa, bb, ab


@kernel
def _frame_energy(x, start, frame):  # pragma: no cover - compiled
    acc = 0.0
    for n in range(start, start + frame):
        v = np.float64(x[n])
        acc += v * v
    return acc


@kernel
def _frame_energies_serial(x, offset, frame, count):  # pragma: no cover - compiled
    out = np.zeros(count)
    for k in range(count):
        out[k] = _frame_energy(x, offset + k * frame, frame)
    return out


@kernel(parallel=True)
def _frame_energies_parallel(x, offset, frame, count):  # pragma: no cover - compiled
    out = np.zeros(count)
    for k in numba.prange(count):  # each frame summed alone, in sample order: the serial driver's numbers
        out[k] = _frame_energy(x, offset + k * frame, frame)
    return out


def frame_energies(x, offset, frame, count):
    """``Σ x[n]²`` over ``count`` consecutive frames of ``frame`` samples from ``offset`` (float64), frames
    in parallel when they cover a long signal (each frame's sum is the same either way)."""
    parallel = count * frame >= PARALLEL_MIN_SAMPLES
    return (_frame_energies_parallel if parallel else _frame_energies_serial)(x, offset, frame, count)


ROTATION_RESYNC = 64


@kernel
def correlation_and_derivatives(real, imaginary, delta, tau):  # pragma: no cover - compiled
    """``(Σ Re{X_n e^{iω_nτ}}, −Σ ω_n Im{X_n e^{iω_nτ}}, −Σ ω_n² Re{X_n e^{iω_nτ}})``, ``ω_n = n·delta``, for
    ``X = real + i·imaginary``: the band-limited correlation at lag ``tau`` and its first two derivatives.

    ``e^{iω_nτ}`` advances by one complex rotation per bin and is recomputed from cos/sin every
    :data:`ROTATION_RESYNC` bins (error a few ulps; no trigonometry per bin, no temporaries)."""
    bins = real.size
    step_cos = np.cos(delta * tau)
    step_sin = np.sin(delta * tau)
    r0 = 0.0
    r1 = 0.0
    r2 = 0.0
    for start in range(0, bins, ROTATION_RESYNC):
        stop = min(start + ROTATION_RESYNC, bins)
        angle = (start * delta) * tau
        c = np.cos(angle)
        s = np.sin(angle)
        for n in range(start, stop):
            w = n * delta
            re = real[n] * c - imaginary[n] * s
            im = real[n] * s + imaginary[n] * c
            r0 += re
            r1 -= w * im
            r2 -= w * w * re
            c, s = c * step_cos - s * step_sin, c * step_sin + s * step_cos
    return r0, r1, r2


def dot(a: np.ndarray, b: np.ndarray | None = None) -> float:
    """``Σ a·b`` (``Σ a²`` without ``b``) of 1-D float32/float64 arrays, float64 sums, the same result on
    any number of threads (see the module docstring)."""
    a = _float_vector(a)
    b = a if b is None else _float_vector(b)
    if a.shape != b.shape:
        raise ValueError(f"dot of arrays of different shapes {a.shape} and {b.shape}")
    return float(sum_of_products(a, b))


def gram(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """``(Σ a², Σ b², Σ a·b)`` of 1-D float32/float64 arrays of one length: the three :func:`dot` values in one pass."""
    a, b = _float_vector(a), _float_vector(b)
    if a.shape != b.shape:
        raise ValueError(f"gram of arrays of different shapes {a.shape} and {b.shape}")
    aa, bb, ab = gram_sums(a, b)
    return float(aa), float(bb), float(ab)


def _float_vector(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    return np.ascontiguousarray(x.reshape(-1))


def warm_up() -> None:
    """Compile (or load from the cache) every kernel here for float32 and float64 input, serial and parallel
    drivers both (``dynamatch warmup``)."""
    taps = np.full(4, 0.25)
    for dtype in (np.float32, np.float64):
        x = np.linspace(-1.0, 1.0, 64).astype(dtype)
        out = np.empty_like(x)
        for fir in (_fir_same_serial, _fir_same_parallel):
            fir(x, taps, 1, out)
        _fir_same_in_place(x.copy(), taps, 1)
        for statistics in (_statistics_serial, _statistics_parallel):
            statistics(x, 0.9999, 4)
        sum_of_products(x, x)
        gram_sums(x, x)
        for energies in (_frame_energies_serial, _frame_energies_parallel):
            energies(x, 0, 8, 8)
    spectrum = np.ones(8)
    correlation_and_derivatives(spectrum, spectrum, 0.1, 0.5)


def load_long_capture_kernels() -> None:
    """Load (from numba's cache, or compile) the kernels that checking and aligning a long float32 capture
    calls first: the parallel statistics and in-place FIR, the sums, the correlation.  ``dynamatch fit`` runs
    this in a thread while libsndfile reads the files without the GIL, so that numba's first-call cost
    (its registries, then one cache load per kernel: ≈ 0.3 s) is not paid after the read."""
    x = np.linspace(-1.0, 1.0, 64).astype(np.float32)
    _statistics_parallel(x, 0.9999, 4)
    _fir_same_in_place(x.copy(), np.full(4, 0.25), 1)
    sum_of_products(x, x)
    gram_sums(x, x)
    _frame_energies_parallel(x, 0, 8, 8)
    weights = np.ones(8)
    sum_of_products(weights, weights)
    correlation_and_derivatives(weights, weights, 0.1, 0.5)
