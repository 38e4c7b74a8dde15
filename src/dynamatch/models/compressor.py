"""The 4A-2A differentiable feed-forward compressor, in real units.

Five parameters, always in this order (:data:`PARAMETER_NAMES`): threshold (dB), ratio, attack (ms,
10–90 % rise of the linear gain), release (ms) and make-up gain (dB).  Detection is instantaneous
(``|x|``), the knee is hard, the ballistics are a one-pole on the *linear* gain whose coefficient
switches between attack and release; see :mod:`dynamatch.kernels.ballistics` for the equations.

>>> comp = Compressor(threshold_db=-20, ratio=4, attack_ms=5, release_ms=100)
>>> y = comp.process(x, sample_rate=44100)            # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import ParameterError
from ..kernels.ballistics import gain_linked
from ..units import db_to_gain, ms_to_coefficient
from .shapes import as_channel_block, channels_of, check_sample_rate

PARAMETER_NAMES: tuple[str, ...] = ("threshold_db", "ratio", "attack_ms", "release_ms", "makeup_db")


@dataclass(frozen=True)
class Compressor:
    """Feed-forward compressor with the 4A-2A topology; immutable, validated on construction."""

    threshold_db: float = -36.0
    ratio: float = 4.0
    attack_ms: float = 1.0
    release_ms: float = 200.0
    makeup_db: float = 0.0

    def __post_init__(self) -> None:
        for name in PARAMETER_NAMES:
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ParameterError(f"{name} must be finite, got {value}")
            object.__setattr__(self, name, value)
        if self.ratio < 1.0:
            raise ParameterError(f"ratio must be >= 1 (1 = no compression), got {self.ratio}")
        if self.attack_ms <= 0.0 or self.release_ms <= 0.0:
            raise ParameterError(
                f"attack_ms and release_ms must be > 0, got {self.attack_ms} and {self.release_ms}"
            )

    # -- parameter vector -------------------------------------------------------------------
    def to_vector(self) -> np.ndarray:
        """Parameters as a float64 array in :data:`PARAMETER_NAMES` order."""
        return np.array([getattr(self, n) for n in PARAMETER_NAMES], dtype=float)

    @classmethod
    def from_vector(cls, vector) -> "Compressor":
        """Inverse of :meth:`to_vector`."""
        values = np.asarray(vector, dtype=float).ravel()
        if values.shape != (len(PARAMETER_NAMES),):
            raise ParameterError(f"expected {len(PARAMETER_NAMES)} parameters {PARAMETER_NAMES}, got {values.size}")
        return cls(**dict(zip(PARAMETER_NAMES, values.tolist())))

    def to_dict(self) -> dict[str, float]:
        return {n: getattr(self, n) for n in PARAMETER_NAMES}

    def with_params(self, **changes: float) -> "Compressor":
        """A copy with some parameters changed."""
        return replace(self, **changes)

    # -- processing -------------------------------------------------------------------------
    def coefficients(self, sample_rate: float) -> tuple[float, float]:
        """(attack, release) one-pole coefficients at ``sample_rate``."""
        check_sample_rate(sample_rate)
        return float(ms_to_coefficient(self.attack_ms, sample_rate)), float(
            ms_to_coefficient(self.release_ms, sample_rate)
        )

    def gain(self, x: np.ndarray, sample_rate: float) -> np.ndarray:
        """Smoothed linear gain (before make-up) for ``x``; same leading shape as :meth:`process`,
        one gain per linked channel group: (samples,), (samples,) for (channels, samples) input,
        (batch, samples) for (batch, channels, samples)."""
        x = np.asarray(x)
        if x.ndim == 3:
            return np.stack([self.stream(sample_rate, x.shape[1]).gain(item) for item in x])
        return self.stream(sample_rate, channels=channels_of(x)).gain(x)

    def process(self, x: np.ndarray, sample_rate: float) -> np.ndarray:
        """Compress ``x``: shape (samples,) mono, (channels, samples) stereo-linked, or
        (batch, channels, samples); returns float64 of the same shape."""
        x = np.asarray(x)
        if x.ndim == 3:
            return np.stack([self.stream(sample_rate, x.shape[1]).process(item) for item in x])
        return self.stream(sample_rate, channels=channels_of(x)).process(x)

    __call__ = process

    def stream(self, sample_rate: float, channels: int = 1) -> "CompressorStream":
        """A stateful processor for block-by-block use (output identical for any block size)."""
        return CompressorStream(self, float(sample_rate), int(channels))


@dataclass
class CompressorStream:
    """Block-by-block processing with the gain state carried across calls."""

    compressor: Compressor
    sample_rate: float
    channels: int = 1
    state_gain: float = field(default=1.0)

    def __post_init__(self) -> None:
        check_sample_rate(self.sample_rate)
        self._alpha_attack, self._alpha_release = self.compressor.coefficients(self.sample_rate)
        self._makeup = float(db_to_gain(self.compressor.makeup_db))

    def reset(self) -> None:
        """Back to unity gain, as at the start of a signal."""
        self.state_gain = 1.0

    def gain(self, block: np.ndarray) -> np.ndarray:
        """Advance the state over ``block`` and return its smoothed linear gain (no make-up)."""
        x2d = as_channel_block(block, self.channels)
        out = np.empty(x2d.shape[1], dtype=np.float64)
        c = self.compressor
        self.state_gain = gain_linked(
            x2d, c.threshold_db, c.ratio, self._alpha_attack, self._alpha_release, self.state_gain, out
        )
        return out

    def process(self, block: np.ndarray) -> np.ndarray:
        """Compress one block: (samples,) for mono or (channels, samples)."""
        x = np.asarray(block, dtype=np.float64)
        return x * (self.gain(x) * self._makeup)

