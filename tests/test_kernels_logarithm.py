"""The vectorisable logarithm of the objective kernels and the resumed pre-filter states, against numpy."""

from __future__ import annotations

import numpy as np
from scipy import signal

from dynamatch.kernels.chunks import chunk_bounds, chunk_count
from dynamatch.kernels.objective import detector_log_level
from dynamatch.kernels.prefilter import PREFILTER_POLE, prefilter_states


def test_detector_level_is_within_two_ulp_of_numpy_log():
    rng = np.random.default_rng(0)
    magnitudes = 10.0 ** rng.uniform(-12, 3, 200_000) * rng.choice([-1.0, 1.0], 200_000)
    special = np.array([0.0, -0.0, 1.0, -1.0, 2.0, 0.5, np.sqrt(0.5), np.sqrt(2.0), 1e-10, 9.99e-11, 1e300,
                        np.nextafter(1.0, 2.0), np.nextafter(1.0, 0.0)])
    x = np.concatenate((magnitudes, special))
    expected = np.log(np.maximum(np.abs(x), 1e-10))
    got = detector_log_level(x)
    ulps = np.abs(got - expected) / np.spacing(np.maximum(np.abs(expected), np.finfo(float).tiny))
    assert ulps.max() <= 2.0  # 4e-16 relative: far below what moves an objective sum
    assert got[-13 + 2] == 0.0  # ln 1 exactly
    narrow = x[np.abs(x) < 1e38].astype(np.float32)
    np.testing.assert_array_equal(detector_log_level(narrow), detector_log_level(narrow.astype(np.float64)))


def test_prefilter_states_resume_the_whole_signal_filter():
    """Each chunk's state where it starts counting, and Σ z², against scipy's lfilter over the whole signal."""
    u = np.random.default_rng(1).standard_normal(50_000)
    z = signal.lfilter([1.0, -1.0], [1.0, -PREFILTER_POLE], u)
    total, chunk, warmup = u.size, 12_000, 1_000
    starts = np.array([chunk_bounds(k, total, chunk, warmup)[2] for k in range(chunk_count(total, chunk, warmup))])
    states, energy = prefilter_states(u, starts, 1.0, PREFILTER_POLE)
    for (u_prev, z_prev), i in zip(states, starts):
        assert (u_prev, z_prev) == ((0.0, 0.0) if i == 0 else (u[i - 1], pytest_approx(z[i - 1])))
    assert abs(energy - np.sum(z**2)) <= 1e-12 * np.sum(z**2)
    no_filter_states, no_filter_energy = prefilter_states(u, starts, 0.0, 0.0)
    np.testing.assert_array_equal(no_filter_states[1:, 1], u[starts[1:] - 1])
    assert abs(no_filter_energy - np.sum(u**2)) <= 1e-12 * np.sum(u**2)


def pytest_approx(value):
    import pytest

    return pytest.approx(value, rel=1e-12, abs=1e-15)
