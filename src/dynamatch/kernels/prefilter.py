r"""The 4A-2A loss "pre-emphasis": a first-order DC blocker (≈ 35 Hz high-pass at 44.1 kHz).

.. math::

    H(z) = \frac{1 - z^{-1}}{1 - p\,z^{-1}},\qquad p = 0.995,\qquad
    z[n] = u[n] - u[n-1] + p\,z[n-1]

State starts at zero (``u[-1] = z[-1] = 0``), as ``scipy.signal.lfilter([1, -1], [1, -p], u)``.
"""

from __future__ import annotations

import numpy as np

from ._numba import kernel

PREFILTER_POLE = 0.995


@kernel
def prefilter_block(u, out, state, pole):
    """Filter the 1-D block ``u`` into ``out``, carrying ``state = [u[-1], z[-1]]`` (updated in place)."""
    u_prev = state[0]
    z_prev = state[1]
    for n in range(u.shape[0]):
        z_prev = u[n] - u_prev + pole * z_prev
        u_prev = u[n]
        out[n] = z_prev
    state[0] = u_prev
    state[1] = z_prev


@kernel
def _prefilter_rows(u, out, pole):
    state = np.zeros(2)
    for row in range(u.shape[0]):
        state[0] = 0.0
        state[1] = 0.0
        prefilter_block(u[row], out[row], state, pole)


def prefilter(x: np.ndarray) -> np.ndarray:
    """Pre-filter ``x`` along its last axis with zero initial state; returns float64 of the same shape."""
    u = np.ascontiguousarray(x, dtype=np.float64)
    if u.size == 0:
        return u.copy()
    rows = u.reshape(-1, u.shape[-1]) if u.ndim else u.reshape(1, 1)
    out = np.empty_like(rows)
    _prefilter_rows(rows, out, PREFILTER_POLE)
    return out.reshape(u.shape)
