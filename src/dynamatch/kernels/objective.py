r"""What every generated objective kernel computes (see :mod:`dynamatch.kernels.generated`).

For a member with kernel parameters ``q_1 … q_P`` (make-up excluded: it enters in closed form) the
prediction ``u = x g`` and each non-zero sensitivity ``u_i = x g_i``, ``u_ij = x g_ij`` go through the
same first-order filter ``H(z) = (1 - zero·z⁻¹)/(1 - pole·z⁻¹)`` (``zero = 1, pole = 0.995`` is the
4A-2A pre-filter; ``zero = pole = 0`` is no filter): ``z = H(x g)``, ``z_i = H(x g_i)``, ``z_ij = H(x g_ij)``.
With ``r = m z - t`` (``t``: the target, pre-filtered over the whole signal) the kernels return running
sums over the counted samples, from which the loss ``L = Σ r²`` and its exact gradient and Hessian
follow (:mod:`dynamatch.optimize.objective`).  Sums of ``r`` rather than of ``z`` and ``t`` separately
keep the loss accurate near a perfect fit (no cancellation).

Sum layouts (float64), pairs ``i <= j`` in the module's ``PAIRS`` order:

- loss (``LOSS_SUMS = 4``): ``Σr², Σz², Σzt, Σrz``
- gradient (``GRADIENT_SUMS = 4 + 2P``): the loss sums, ``Σ r z_i`` (P), ``Σ z z_i`` (P)
- Hessian (``HESSIAN_SUMS``): the gradient sums, ``Σ z_i z_j`` (pairs), ``Σ r z_ij`` (pairs).

The detector level of the peak-detecting members, ``level_log = ln max(|x|, ε)``, is computed per chunk
into a chunk-long scratch array by :func:`detector_levels` (one vectorised pass, :mod:`.logarithm`) and
the target ``t`` is pre-filtered as it is read, from the filter's state where the chunk starts counting
(:func:`dynamatch.kernels.prefilter.prefilter_states`): the objective holds no full-length array beyond the
dry and the wet.  Chunking: :mod:`dynamatch.kernels.chunks`.
"""

from __future__ import annotations

import numpy as np

from ..units import DETECTOR_FLOOR as EPSILON
from ._numba import kernel
from .logarithm import log_positive


def detector_log_level(x: np.ndarray) -> np.ndarray:
    """Natural log of the peak detector level, ``ln max(|x|, EPSILON)`` (float64, same shape)."""
    x = np.ascontiguousarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    out = np.empty(x.shape)
    detector_levels(x.reshape(-1), 0, out.reshape(-1))
    return out


@kernel
def detector_levels(x, start, out):  # pragma: no cover - compiled
    """``out[i] = ln max(|x[start + i]|, EPSILON)`` for every ``i < out.size`` (float64)."""
    for i in range(out.size):
        out[i] = log_positive(max(abs(np.float64(x[start + i])), EPSILON))
