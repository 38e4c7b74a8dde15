r"""Streaming forward-mode kernels for the pre-filtered squared error of the 4A-2A compressor.

Kernel parameters ``q = (CT, R, alpha_a, alpha_r)`` (threshold dB, ratio, one-pole coefficients) and
the make-up gain ``m = 10^(gamma/20)``.  Per sample, with ``c = ln10/20`` and ``D = CT - x_dB``:

.. math::

    g_s &= D\,(1 - 1/R) \text{ if } D < 0 \text{ else } 0,\qquad \hat g = e^{c g_s} \\
    \partial_{CT} g_s &= 1 - 1/R,\quad \partial_R g_s = D/R^2,\quad
    \partial^2_{CT,R} g_s = 1/R^2,\quad \partial^2_{R,R} g_s = -2D/R^3 \\
    \hat g_i &= c\,\hat g\,\partial_i g_s,\qquad \hat g_{ij} = c\,\hat g\,(c\,\partial_i g_s\,\partial_j g_s + \partial^2_{ij} g_s) \\
    g[n] &= \alpha\hat g + (1-\alpha)\,g[n-1],\qquad \alpha = \alpha_a \text{ if } \hat g < g[n-1] \text{ else } \alpha_r \\
    g_i &= \alpha\hat g_i + (1-\alpha)\,g_i[n-1] + \delta_i\,(\hat g - g[n-1]) \\
    g_{ij} &= \alpha\hat g_{ij} + (1-\alpha)\,g_{ij}[n-1] + \delta_i\,(\hat g_j - g_j[n-1]) + \delta_j\,(\hat g_i - g_i[n-1])

where ``delta_i = 1`` for the active coefficient's own index (the branch itself has zero derivative).
The prediction and every sensitivity go through the same first-order filter
``H(z) = (1 - zero·z⁻¹)/(1 - pole·z⁻¹)`` (``zero = 1, pole = 0.995`` is the 4A-2A pre-filter;
``zero = pole = 0`` is no filter): ``z = H(x g)``, ``z_i = H(x g_i)``, ``z_ij = H(x g_ij)``.

With ``r = m z - t`` (``t``: the target, already pre-filtered over the whole signal) the kernels
return running sums over the counted samples, from which the loss ``L = Σ r²`` and its exact
gradient and Hessian in ``q`` and ``gamma`` follow in closed form (see
:mod:`dynamatch.optimize.objective`).  Sums of ``r`` rather than of ``z`` and ``t`` separately keep
the loss accurate near a perfect fit (no cancellation).

The detector level enters as ``level_log = ln max(|x|, ε)`` (:func:`detector_log_level`), computed
once per signal by vectorised numpy rather than per evaluation: a scalar logarithm per sample would
cost more than the rest of the loss pass (measured here: 15 → 5 ns/sample).  Inside,
``c·D = c·CT - level_log`` (nepers).

Chunking: chunk ``k`` covers ``[k·hop, min(k·hop + chunk, n))`` with ``hop = chunk - warmup``; every
chunk starts from ``g = 1`` and zero filter state; chunk 0 counts from its first sample, the others
after ``warmup`` samples, so each sample is counted exactly once.  Chunks run in parallel; memory is
O(1) in the signal length.

Sum layouts (all float64):

- loss (``LOSS_SUMS = 4``): ``Σr², Σz², Σzt, Σrz``
- gradient (``GRADIENT_SUMS = 12``): the loss sums, ``Σ r z_i`` (4), ``Σ z z_i`` (4)
- Hessian (``HESSIAN_SUMS = 32``): the gradient sums, ``Σ z_i z_j`` (10), ``Σ r z_ij`` (10), pairs in
  :data:`PAIRS` order.
"""

from __future__ import annotations

import numba
import numpy as np

from ._numba import kernel
from .ballistics import DB_TO_LOG, EPSILON

N_KERNEL_PARAMETERS = 4  # threshold_db, ratio, alpha_attack, alpha_release
PAIRS = ((0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3))
LOSS_SUMS = 4
GRADIENT_SUMS = LOSS_SUMS + 2 * N_KERNEL_PARAMETERS
HESSIAN_SUMS = GRADIENT_SUMS + 2 * len(PAIRS)


def detector_log_level(x: np.ndarray) -> np.ndarray:
    """Natural log of the 4A-2A detector level, ``ln max(|x|, EPSILON)`` (float64, same shape)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty_like(x)
    _log_level(x.reshape(-1), out.reshape(-1))
    return out


@kernel(parallel=True)
def _log_level(x, out):
    for n in numba.prange(x.size):
        out[n] = np.log(max(abs(x[n]), EPSILON))


@kernel
def chunk_count(total_samples, chunk_samples, warmup_samples):
    """Number of chunks that cover ``total_samples`` (hop = chunk - warm-up)."""
    if total_samples <= chunk_samples:
        return 1
    hop = chunk_samples - warmup_samples
    return 1 + (total_samples - chunk_samples + hop - 1) // hop


@kernel
def _chunk_bounds(k, total_samples, chunk_samples, warmup_samples):
    start = k * (chunk_samples - warmup_samples)
    stop = min(start + chunk_samples, total_samples)
    count_from = start if k == 0 else start + warmup_samples
    return start, stop, count_from


@kernel
def _loss_chunk(x, level_log, t, start, stop, count_from, threshold_db, ratio, alpha_attack, alpha_release,
                makeup_gain, zero, pole, out):
    slope = 1.0 - 1.0 / ratio
    threshold_log = DB_TO_LOG * threshold_db
    g = 1.0
    w = 0.0
    z = 0.0
    r2 = 0.0
    z2 = 0.0
    zt = 0.0
    rz = 0.0
    for n in range(start, stop):
        xn = x[n]
        over = threshold_log - level_log[n]
        gh = np.exp(slope * over) if over < 0.0 else 1.0
        alpha = alpha_attack if gh < g else alpha_release
        g = alpha * gh + (1.0 - alpha) * g
        u = xn * g
        z = u + w
        w = pole * z - zero * u
        if n >= count_from:
            tn = t[n]
            r = makeup_gain * z - tn
            r2 += r * r
            z2 += z * z
            zt += z * tn
            rz += r * z
    out[0] = r2
    out[1] = z2
    out[2] = zt
    out[3] = rz


@kernel
def _gradient_chunk(x, level_log, t, start, stop, count_from, threshold_db, ratio, alpha_attack, alpha_release,
                    makeup_gain, zero, pole, out):
    c = DB_TO_LOG
    slope = 1.0 - 1.0 / ratio
    inv_ratio2 = 1.0 / (ratio * ratio)
    threshold_log = c * threshold_db
    g = 1.0
    g0 = g1 = g2 = g3 = 0.0
    w = w0 = w1 = w2 = w3 = 0.0
    z = z0 = z1 = z2 = z3 = 0.0
    r2 = zz = zt = rz = 0.0
    rz0 = rz1 = rz2 = rz3 = 0.0
    zz0 = zz1 = zz2 = zz3 = 0.0
    for n in range(start, stop):
        xn = x[n]
        over = threshold_log - level_log[n]
        if over < 0.0:
            gh = np.exp(slope * over)
            gh0 = c * gh * slope
            gh1 = gh * over * inv_ratio2
        else:
            gh = 1.0
            gh0 = gh1 = 0.0
        attack = gh < g
        alpha = alpha_attack if attack else alpha_release
        beta = 1.0 - alpha
        step = gh - g
        g0 = alpha * gh0 + beta * g0
        g1 = alpha * gh1 + beta * g1
        g2 = beta * g2
        g3 = beta * g3
        if attack:
            g2 += step
        else:
            g3 += step
        g = alpha * gh + beta * g
        u = xn * g
        u0 = xn * g0
        u1 = xn * g1
        u2 = xn * g2
        u3 = xn * g3
        z = u + w
        w = pole * z - zero * u
        z0 = u0 + w0
        w0 = pole * z0 - zero * u0
        z1 = u1 + w1
        w1 = pole * z1 - zero * u1
        z2 = u2 + w2
        w2 = pole * z2 - zero * u2
        z3 = u3 + w3
        w3 = pole * z3 - zero * u3
        if n >= count_from:
            tn = t[n]
            r = makeup_gain * z - tn
            r2 += r * r
            zz += z * z
            zt += z * tn
            rz += r * z
            rz0 += r * z0
            rz1 += r * z1
            rz2 += r * z2
            rz3 += r * z3
            zz0 += z * z0
            zz1 += z * z1
            zz2 += z * z2
            zz3 += z * z3
    out[0] = r2
    out[1] = zz
    out[2] = zt
    out[3] = rz
    out[4] = rz0
    out[5] = rz1
    out[6] = rz2
    out[7] = rz3
    out[8] = zz0
    out[9] = zz1
    out[10] = zz2
    out[11] = zz3


@kernel
def _hessian_chunk(x, level_log, t, start, stop, count_from, threshold_db, ratio, alpha_attack, alpha_release,
                   makeup_gain, zero, pole, out):
    c = DB_TO_LOG
    slope = 1.0 - 1.0 / ratio
    inv_ratio2 = 1.0 / (ratio * ratio)
    threshold_log = c * threshold_db
    # smoothed gain and its sensitivities (first order i, second order ij in PAIRS order)
    g = 1.0
    g0 = g1 = g2 = g3 = 0.0
    g00 = g01 = g02 = g03 = g11 = g12 = g13 = g22 = g23 = g33 = 0.0
    # pre-filter states (transposed direct form II, one per signal: z = u + w; w = pole·z − zero·u) and outputs z
    w = w0 = w1 = w2 = w3 = 0.0
    w00 = w01 = w02 = w03 = w11 = w12 = w13 = w22 = w23 = w33 = 0.0
    z = z0 = z1 = z2 = z3 = 0.0
    z00 = z01 = z02 = z03 = z11 = z12 = z13 = z22 = z23 = z33 = 0.0
    # running sums
    r2 = zz = zt = rz = 0.0
    rz0 = rz1 = rz2 = rz3 = 0.0
    zz0 = zz1 = zz2 = zz3 = 0.0
    p00 = p01 = p02 = p03 = p11 = p12 = p13 = p22 = p23 = p33 = 0.0
    q00 = q01 = q02 = q03 = q11 = q12 = q13 = q22 = q23 = q33 = 0.0
    for n in range(start, stop):
        xn = x[n]
        over = threshold_log - level_log[n]
        if over < 0.0:
            gh = np.exp(slope * over)
            cg = c * gh
            gh0 = cg * slope
            gh1 = gh * over * inv_ratio2
            gh00 = cg * c * slope * slope
            gh01 = cg * (slope * over + 1.0) * inv_ratio2
            gh11 = gh * over * (over * inv_ratio2 - 2.0 / ratio) * inv_ratio2
        else:
            gh = 1.0
            gh0 = gh1 = gh00 = gh01 = gh11 = 0.0
        attack = gh < g
        alpha = alpha_attack if attack else alpha_release
        beta = 1.0 - alpha
        # differences to the previous state, used by the coefficient's own derivative
        e0 = gh0 - g0
        e1 = gh1 - g1
        e2 = -g2
        e3 = -g3
        step = gh - g
        g00 = alpha * gh00 + beta * g00
        g01 = alpha * gh01 + beta * g01
        g11 = alpha * gh11 + beta * g11
        g02 = beta * g02
        g03 = beta * g03
        g12 = beta * g12
        g13 = beta * g13
        g22 = beta * g22
        g23 = beta * g23
        g33 = beta * g33
        g0 = alpha * gh0 + beta * g0
        g1 = alpha * gh1 + beta * g1
        g2 = beta * g2
        g3 = beta * g3
        if attack:
            g02 += e0
            g12 += e1
            g22 += 2.0 * e2
            g23 += e3
            g2 += step
        else:
            g03 += e0
            g13 += e1
            g23 += e2
            g33 += 2.0 * e3
            g3 += step
        g = alpha * gh + beta * g

        u = xn * g
        u0 = xn * g0
        u1 = xn * g1
        u2 = xn * g2
        u3 = xn * g3
        u00 = xn * g00
        u01 = xn * g01
        u02 = xn * g02
        u03 = xn * g03
        u11 = xn * g11
        u12 = xn * g12
        u13 = xn * g13
        u22 = xn * g22
        u23 = xn * g23
        u33 = xn * g33
        z = u + w
        w = pole * z - zero * u
        z0 = u0 + w0
        w0 = pole * z0 - zero * u0
        z1 = u1 + w1
        w1 = pole * z1 - zero * u1
        z2 = u2 + w2
        w2 = pole * z2 - zero * u2
        z3 = u3 + w3
        w3 = pole * z3 - zero * u3
        z00 = u00 + w00
        w00 = pole * z00 - zero * u00
        z01 = u01 + w01
        w01 = pole * z01 - zero * u01
        z02 = u02 + w02
        w02 = pole * z02 - zero * u02
        z03 = u03 + w03
        w03 = pole * z03 - zero * u03
        z11 = u11 + w11
        w11 = pole * z11 - zero * u11
        z12 = u12 + w12
        w12 = pole * z12 - zero * u12
        z13 = u13 + w13
        w13 = pole * z13 - zero * u13
        z22 = u22 + w22
        w22 = pole * z22 - zero * u22
        z23 = u23 + w23
        w23 = pole * z23 - zero * u23
        z33 = u33 + w33
        w33 = pole * z33 - zero * u33

        if n >= count_from:
            tn = t[n]
            r = makeup_gain * z - tn
            r2 += r * r
            zz += z * z
            zt += z * tn
            rz += r * z
            rz0 += r * z0
            rz1 += r * z1
            rz2 += r * z2
            rz3 += r * z3
            zz0 += z * z0
            zz1 += z * z1
            zz2 += z * z2
            zz3 += z * z3
            p00 += z0 * z0
            p01 += z0 * z1
            p02 += z0 * z2
            p03 += z0 * z3
            p11 += z1 * z1
            p12 += z1 * z2
            p13 += z1 * z3
            p22 += z2 * z2
            p23 += z2 * z3
            p33 += z3 * z3
            q00 += r * z00
            q01 += r * z01
            q02 += r * z02
            q03 += r * z03
            q11 += r * z11
            q12 += r * z12
            q13 += r * z13
            q22 += r * z22
            q23 += r * z23
            q33 += r * z33
    out[0] = r2
    out[1] = zz
    out[2] = zt
    out[3] = rz
    out[4] = rz0
    out[5] = rz1
    out[6] = rz2
    out[7] = rz3
    out[8] = zz0
    out[9] = zz1
    out[10] = zz2
    out[11] = zz3
    out[12] = p00
    out[13] = p01
    out[14] = p02
    out[15] = p03
    out[16] = p11
    out[17] = p12
    out[18] = p13
    out[19] = p22
    out[20] = p23
    out[21] = p33
    out[22] = q00
    out[23] = q01
    out[24] = q02
    out[25] = q03
    out[26] = q11
    out[27] = q12
    out[28] = q13
    out[29] = q22
    out[30] = q23
    out[31] = q33


@kernel(parallel=True)
def chunked_sums(order, x, level_log, t, threshold_db, ratio, alpha_attack, alpha_release, makeup_gain,
                 chunk_samples, warmup_samples, zero, pole):
    """Sums of the chunked prediction of ``x`` (detector ``level_log``) against the pre-filtered target
    ``t``, summed over chunks in parallel: ``order`` 0 = loss (``LOSS_SUMS``), 1 = + first-order
    (``GRADIENT_SUMS``), 2 = + second-order (``HESSIAN_SUMS``).  ``makeup_gain`` is linear and
    ``zero``/``pole`` define the pre-filter."""
    total = x.shape[0]
    chunks = chunk_count(total, chunk_samples, warmup_samples)
    width = LOSS_SUMS if order == 0 else (GRADIENT_SUMS if order == 1 else HESSIAN_SUMS)
    per_chunk = np.zeros((chunks, width))
    for k in numba.prange(chunks):
        start, stop, count_from = _chunk_bounds(k, total, chunk_samples, warmup_samples)
        if order == 0:
            _loss_chunk(x, level_log, t, start, stop, count_from, threshold_db, ratio, alpha_attack,
                        alpha_release, makeup_gain, zero, pole, per_chunk[k])
        elif order == 1:
            _gradient_chunk(x, level_log, t, start, stop, count_from, threshold_db, ratio, alpha_attack,
                            alpha_release, makeup_gain, zero, pole, per_chunk[k])
        else:
            _hessian_chunk(x, level_log, t, start, stop, count_from, threshold_db, ratio, alpha_attack,
                           alpha_release, makeup_gain, zero, pole, per_chunk[k])
    return _sum_rows(per_chunk)


@kernel
def _sum_rows(per_chunk):
    total = np.zeros(per_chunk.shape[1])
    for k in range(per_chunk.shape[0]):
        for j in range(per_chunk.shape[1]):
            total[j] += per_chunk[k, j]
    return total
