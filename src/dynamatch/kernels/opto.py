r"""The simulated optical levelling amplifier, sample by sample (see :mod:`dynamatch.models.opto`).

State: panel light :math:`\ell`, fast and slow gain-reduction stages :math:`f, s` (dB), cell memory
:math:`m \in [0, 1)` and the last gain :math:`g` (feedback).  For each sample, with linked channels
detected by their maximum :math:`|x|`:

.. math::

    \ell[n] &= \max\big(k\,|x[n]|\,g[n-1],\ \ell[n-1]\,e^{-1/(\tau_p f_s)}\big)
        && \text{panel: output-driven, fast decay} \\
    T[n] &= \min\big(20\log_{10}(1 + \ell[n]^p),\ T_{max}\big)
        && \text{cell target (dB), integer } p \\
    s &\leftarrow s + \alpha_s\,((1-w)T - s),\quad
        \alpha_s = \alpha_{sa} \text{ if rising else } 1 - e^{-1/\tau(m)},\quad
        \tau(m) = \tau_{short} + m\,(\tau_{long} - \tau_{short}) \\
    f &\leftarrow f + \alpha_f\,(\max(T - s, 0) - f),\quad
        \alpha_f = \alpha_{a} \text{ if rising else } \alpha_{fr} \\
    m &\leftarrow m + \alpha_m\,(h - m),\quad h = T / (T + H),\quad
        \alpha_m = \alpha_{mc} \text{ if } h > m \text{ else } \alpha_{md} \\
    g[n] &= 10^{-(f + s)/20}

:math:`\tau` are time constants in samples; :math:`1 - e^{-r}` is evaluated by its cubic Taylor
polynomial (relative error :math:`r^3/24 < 10^{-13}` at any sample rate ≥ 8 kHz).
:math:`T_{max}` keeps :math:`g > 0` for any finite input.
"""

from __future__ import annotations

import numpy as np

from ..units import DB_TO_LOG
from ._numba import kernel

NEPER_TO_DB = 20.0 / np.log(10.0)  # 20*log10(v) == NEPER_TO_DB * ln(v)
MAX_REDUCTION_DB = 300.0  # cap on the cell target (also catches overflow to inf); keeps the gain above 1e-21
STATE_SIZE = 5  # light, fast_db, slow_db, memory, gain
STATE_LIGHT, STATE_FAST_DB, STATE_SLOW_DB, STATE_MEMORY, STATE_GAIN = range(STATE_SIZE)


@kernel
def linked_peak(x, n):
    """Detector input of linked channels: max over channels of |x[c, n]|."""
    peak = 0.0
    for c in range(x.shape[0]):
        a = abs(x[c, n])
        if a > peak:
            peak = a
    return peak


def initial_state() -> np.ndarray:
    """State of a rested device: dark panel, no gain reduction, no memory, unity gain."""
    state = np.zeros(STATE_SIZE)
    state[STATE_GAIN] = 1.0
    return state


@kernel
def opto_gain(
    x,
    sidechain_gain,
    exponent,
    panel_decay,
    alpha_attack,
    alpha_slow_attack,
    alpha_fast_release,
    slow_samples_short,
    slow_samples_long,
    alpha_memory_charge,
    alpha_memory_discharge,
    fast_fraction,
    hardness_db,
    state,
    out_gain,
):
    """Linear gain of a block ``x`` (channels, samples); advances ``state`` (length 5) in place.

    Coefficients and time constants are per sample (the model converts from ms); ``exponent`` is an int.
    """
    samples = x.shape[1]
    light = state[STATE_LIGHT]
    fast_db = state[STATE_FAST_DB]
    slow_db = state[STATE_SLOW_DB]
    memory = state[STATE_MEMORY]
    g = state[STATE_GAIN]
    slow_share = 1.0 - fast_fraction
    slow_samples_span = slow_samples_long - slow_samples_short
    for n in range(samples):
        drive = sidechain_gain * linked_peak(x, n) * g
        light = light * panel_decay
        if drive > light:
            light = drive
        target = NEPER_TO_DB * np.log(1.0 + light**exponent)
        if target > MAX_REDUCTION_DB:
            target = MAX_REDUCTION_DB

        slow_target = slow_share * target
        if slow_target > slow_db:
            slow_db += alpha_slow_attack * (slow_target - slow_db)
        else:
            rate = 1.0 / (slow_samples_short + memory * slow_samples_span)
            alpha_slow_release = rate * (1.0 - rate * (0.5 - rate / 6.0))
            slow_db += alpha_slow_release * (slow_target - slow_db)

        fast_target = max(target - slow_db, 0.0)
        alpha = alpha_attack if fast_target > fast_db else alpha_fast_release
        fast_db += alpha * (fast_target - fast_db)

        hardness = target / (target + hardness_db)
        alpha_memory = alpha_memory_charge if hardness > memory else alpha_memory_discharge
        memory += alpha_memory * (hardness - memory)

        g = np.exp(-DB_TO_LOG * (fast_db + slow_db))
        out_gain[n] = g
    state[STATE_LIGHT] = light
    state[STATE_FAST_DB] = fast_db
    state[STATE_SLOW_DB] = slow_db
    state[STATE_MEMORY] = memory
    state[STATE_GAIN] = g
