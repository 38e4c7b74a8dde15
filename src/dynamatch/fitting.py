"""Fit the 4A-2A compressor to a dry/wet pair: validate, align, start, optimise.

This is the one pipeline every entry point uses (CLI, map fitting, Python API)::

    from dynamatch.fitting import fit_files
    capture = fit_files("dry.wav", "wet.wav")
    print(capture.result)              # parameters in real units, ESR, iterations
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .data.alignment import Alignment, align_pair
from .data.audio import AudioPair, check_signal, load_pair
from .models.compressor import Compressor
from .optimize import Bounds, FitResult, minimize
from .optimize.objective import CompressorObjective

#: The 4A-2A paper's initial point; make-up is then set so that RMS levels match.
DEFAULT_START = Compressor(threshold_db=-36.0, ratio=4.0, attack_ms=1.0, release_ms=200.0, makeup_db=0.0)
#: Stop when the Newton decrement (the ESR decrease the quadratic model still predicts) is below this
#: fraction of the ESR: further iterations would change the ESR in its seventh digit.
DECREMENT_TOLERANCE = 1e-6
#: Signals longer than this get a coarse first pass on evenly spaced excerpts (see :func:`fit_arrays`).
COARSE_MIN_SECONDS = 240.0
COARSE_FRACTION = 0.125
COARSE_EXCERPT_SECONDS = 12.0


@dataclass(frozen=True)
class CaptureFit:
    """A fit of a recorded pair: the optimiser's result, the alignment applied and the aligned audio."""

    result: FitResult
    alignment: Alignment | None
    pair: AudioPair

    @property
    def compressor(self) -> Compressor:
        return self.result.params


def starting_point(objective: CompressorObjective, initial: Compressor | None = None) -> Compressor:
    """``initial`` as given (warm start), or the default start with RMS-matched make-up."""
    if initial is not None:
        return initial
    return DEFAULT_START.with_params(makeup_db=objective.matched_makeup_db(DEFAULT_START))


def coarse_excerpts(
    dry: np.ndarray, wet: np.ndarray, sample_rate: float, fraction: float = COARSE_FRACTION,
    excerpt_seconds: float = COARSE_EXCERPT_SECONDS,
) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced excerpts covering ``fraction`` of the signal, concatenated (dry, wet)."""
    length = int(round(excerpt_seconds * sample_rate))
    count = max(1, int(round(fraction * dry.size / length)))
    starts = np.linspace(0, dry.size - length, count).astype(np.int64)
    return (np.concatenate([dry[a:a + length] for a in starts]), np.concatenate([wet[a:a + length] for a in starts]))


def fit_arrays(
    dry: np.ndarray,
    wet: np.ndarray,
    sample_rate: float,
    *,
    method: str = "newton",
    initial: Compressor | None = None,
    bounds: Bounds | None = None,
    chunk_seconds: float = 12.0,
    warmup_seconds: float = 1.0,
    max_iterations: int = 50,
    coarse: bool | None = None,
    callback: Callable[[FitResult], None] | None = None,
    **options,
) -> FitResult:
    """Fit the compressor to aligned mono arrays (no validation beyond shapes).

    Long signals (> :data:`COARSE_MIN_SECONDS`, or ``coarse=True``) are fitted coarse-to-fine: first on
    evenly spaced 12 s excerpts covering 1/8 of the audio, from ``initial`` or the default start (the
    far-from-optimum iterations are the same work on less audio), then on all of it from that point.  The result is the optimum of the
    full objective either way; ``coarse=False`` switches the first pass off.  ``options`` go to the
    optimiser (e.g. ``decrement_tolerance``).
    """
    dry = np.asarray(dry, dtype=float)
    wet = np.asarray(wet, dtype=float)
    bounds = bounds or Bounds()
    if method != "adam":
        options.setdefault("decrement_tolerance", DECREMENT_TOLERANCE)
    if coarse is None:
        coarse = dry.size > COARSE_MIN_SECONDS * sample_rate
    coarse_result = None
    if coarse:
        excerpt_dry, excerpt_wet = coarse_excerpts(dry, wet, sample_rate)
        coarse_result = fit_arrays(
            excerpt_dry, excerpt_wet, sample_rate, method=method, initial=initial, bounds=bounds,
            chunk_seconds=chunk_seconds, warmup_seconds=warmup_seconds, max_iterations=max_iterations,
            coarse=False, callback=callback, **{**options, "decrement_tolerance": 1e-4} if method != "adam" else options,
        )
        initial = coarse_result.params
    objective = CompressorObjective(
        dry, wet, sample_rate, chunk_seconds=chunk_seconds, warmup_seconds=warmup_seconds,
    )
    start = starting_point(objective, initial)
    q0 = CompressorObjective.kernel_params(start, sample_rate)
    result = minimize(objective, q0, method=method, bounds=bounds, max_iterations=max_iterations,
                      callback=callback, **options)
    if coarse_result is None:
        return result
    return replace(
        result,
        elapsed_seconds=result.elapsed_seconds + coarse_result.elapsed_seconds,
        message=f"{result.message} (after a coarse pass: {coarse_result.nit} iterations on "
                f"{len(excerpt_dry) / sample_rate:.0f} s of excerpts)",
    )


def fit_pair(
    pair: AudioPair,
    *,
    align: bool = True,
    **options,
) -> CaptureFit:
    """Validate, align (latency and polarity) and fit an :class:`AudioPair`."""
    check_signal(pair.dry, pair.dry_name)
    check_signal(pair.wet, pair.wet_name)
    alignment = None
    if align:
        pair, alignment = align_pair(pair)
    result = fit_arrays(pair.dry, pair.wet, pair.sample_rate, **options)
    return CaptureFit(result=result, alignment=alignment, pair=pair)


def fit_files(
    dry_path: str | os.PathLike,
    wet_path: str | os.PathLike,
    *,
    sample_rate: float | None = None,
    align: bool = True,
    **options,
) -> CaptureFit:
    """Read, validate, align and fit a dry/wet pair of audio files."""
    pair = load_pair(dry_path, wet_path, sample_rate=sample_rate)
    return fit_pair(pair, align=align, **options)
