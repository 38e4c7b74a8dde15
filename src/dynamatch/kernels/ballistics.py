r"""The 4A-2A feed-forward compressor, sample by sample.

For input x[n] (linked channels use the per-sample maximum of |x| for detection):

.. math::

    x_{dB}[n] &= 20\log_{10}\max(|x[n]|, \varepsilon) \\
    \hat g[n] &= 10^{\min(0,\,(CT - x_{dB}[n])(1 - 1/R))/20} \\
    g[n] &= \alpha\,\hat g[n] + (1-\alpha)\,g[n-1],\quad
        \alpha = \alpha_a \text{ if } \hat g[n] < g[n-1] \text{ else } \alpha_r,\quad g[-1] = 1 \\
    y[n] &= x[n]\,g[n]\,10^{\gamma/20}

The coefficient for a 10–90 % time ``t_ms`` is ``alpha = 1 - exp(-2200 / (t_ms * sample_rate))``.
"""

from __future__ import annotations

import numpy as np

from ._numba import kernel

EPSILON = 1e-10  # detector floor: -200 dB
DB_TO_LOG = np.log(10.0) / 20.0  # 10**(v/20) == exp(DB_TO_LOG * v)


@kernel
def static_gain(level_db, threshold_db, ratio):
    """Hard-knee static curve: linear gain for a detector level in dB."""
    over = level_db - threshold_db
    if over <= 0.0:
        return 1.0
    return np.exp(-DB_TO_LOG * over * (1.0 - 1.0 / ratio))


@kernel
def linked_peak(x, n):
    """Detector input of linked channels: max over channels of |x[c, n]|."""
    peak = 0.0
    for c in range(x.shape[0]):
        a = abs(x[c, n])
        if a > peak:
            peak = a
    return peak


@kernel
def gain_linked(x, threshold_db, ratio, alpha_attack, alpha_release, gain_start, out_gain):
    """Smoothed linear gain of a block ``x`` of shape (channels, samples) with linked detection.

    Writes the gain into ``out_gain`` (length = samples) and returns the last gain (the state).
    """
    g = gain_start
    for n in range(x.shape[1]):
        peak = max(linked_peak(x, n), EPSILON)
        target = static_gain(20.0 * np.log10(peak), threshold_db, ratio)
        alpha = alpha_attack if target < g else alpha_release
        g = alpha * target + (1.0 - alpha) * g
        out_gain[n] = g
    return g
