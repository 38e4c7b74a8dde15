"""Fit the 4A-2A compressor to a dry/wet pair: validate, align, start, optimise.

This is the one pipeline every entry point uses (CLI, map fitting, Python API)::

    from dynamatch.fitting import fit_files
    capture = fit_files("dry.wav", "wet.wav")
    print(capture.result)              # parameters in real units, ESR, iterations
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .data.alignment import Alignment, align_pair
from .data.audio import AudioPair, check_signal, load_pair
from .models.compressor import Compressor
from .optimize import Bounds, FitResult, minimize
from .optimize.objective import CompressorObjective

#: The 4A-2A paper's initial point; make-up is then set so that RMS levels match.
DEFAULT_START = Compressor(threshold_db=-36.0, ratio=4.0, attack_ms=1.0, release_ms=200.0, makeup_db=0.0)


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
    callback: Callable[[FitResult], None] | None = None,
) -> FitResult:
    """Fit the compressor to aligned mono arrays (no validation beyond shapes)."""
    objective = CompressorObjective(
        np.asarray(dry, dtype=float), np.asarray(wet, dtype=float), sample_rate,
        chunk_seconds=chunk_seconds, warmup_seconds=warmup_seconds,
    )
    start = starting_point(objective, initial)
    q0 = CompressorObjective.kernel_params(start, sample_rate)
    return minimize(
        objective, q0, method=method, bounds=bounds or Bounds(), max_iterations=max_iterations, callback=callback
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
