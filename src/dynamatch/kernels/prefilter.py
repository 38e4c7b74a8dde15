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


@kernel
def prefilter_states(u, indices, zero, pole):
    """``(states, energy)`` of ``z = H(u)``, ``H(z) = (1 - zero·z⁻¹)/(1 - pole·z⁻¹)`` from zero state:
    ``states[k] = [u[i-1], z[i-1]]`` at each (ascending) index ``i = indices[k]`` (zeros for ``i = 0``),
    where a chunk kernel resumes the whole-signal filter with the same recursion, and ``energy = Σ z²``
    over all of ``u`` (float64, summed in blocks of 2¹⁶).  One serial pass, nothing of ``u``'s length stored."""
    states = np.zeros((indices.size, 2))
    u_prev = 0.0
    z_prev = 0.0
    energy = 0.0
    k = 0
    for block in range(0, u.size, 1 << 16):
        partial = 0.0
        for n in range(block, min(block + (1 << 16), u.size)):
            while k < indices.size and indices[k] == n:
                states[k, 0] = u_prev
                states[k, 1] = z_prev
                k += 1
            u_n = np.float64(u[n])
            z_prev = u_n - zero * u_prev + pole * z_prev
            u_prev = u_n
            partial += z_prev * z_prev
        energy += partial
    while k < indices.size:
        states[k, 0] = u_prev
        states[k, 1] = z_prev
        k += 1
    return states, energy
