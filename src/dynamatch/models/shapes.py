"""Signal shapes shared by the models: mono (samples,) or linked channels (channels, samples)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import AudioError, ParameterError


def channels_of(x) -> int:
    """Linked channels of ``x``: 1 for (samples,), else the second-to-last axis."""
    shape = np.shape(x)
    return 1 if len(shape) == 1 else shape[-2]


def as_channel_block(block, channels: int) -> np.ndarray:
    """``block`` as a contiguous float64 (channels, samples) array, or AudioError naming the shapes."""
    x = np.asarray(block, dtype=np.float64)
    x2d = x[None, :] if x.ndim == 1 else x
    if x2d.ndim != 2 or x2d.shape[0] != channels:
        raise AudioError(f"expected a block of shape (samples,) or ({channels}, samples), got {x.shape}")
    return np.ascontiguousarray(x2d)


def check_sample_rate(sample_rate: float) -> None:
    """ParameterError unless ``sample_rate`` is a positive finite number of Hz."""
    if not (math.isfinite(sample_rate) and sample_rate > 0):
        raise ParameterError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
