"""Unit conversions shared by every layer (no dependencies beyond numpy)."""

from __future__ import annotations

import numpy as np

RISE_TIME_CONSTANT = 2200.0  # 10-90 % rise time of a one-pole is 2.2 time constants, in ms units
DB_TO_LOG = float(np.log(10.0) / 20.0)  # 10**(v/20) == exp(DB_TO_LOG * v)
DETECTOR_FLOOR = 1e-10  # the level detectors' floor: -200 dB


def ms_to_coefficient(time_ms, sample_rate: float):
    """One-pole coefficient for a 10–90 % time: ``alpha = 1 - exp(-2200 / (time_ms * sample_rate))``."""
    return -np.expm1(-RISE_TIME_CONSTANT / (np.asarray(time_ms, dtype=float) * float(sample_rate)))


def coefficient_to_ms(alpha, sample_rate: float):
    """Inverse of :func:`ms_to_coefficient`."""
    return -RISE_TIME_CONSTANT / (float(sample_rate) * np.log1p(-np.asarray(alpha, dtype=float)))


def db_to_gain(value_db):
    """Linear amplitude for a level in dB."""
    return 10.0 ** (np.asarray(value_db, dtype=float) / 20.0)


def gain_to_db(gain, floor_db: float = -200.0):
    """Level in dB of a linear amplitude, floored at ``floor_db``."""
    g = np.maximum(np.abs(np.asarray(gain, dtype=float)), 10.0 ** (floor_db / 20.0))
    return 20.0 * np.log10(g)
