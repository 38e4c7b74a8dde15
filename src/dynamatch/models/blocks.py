r"""The building blocks of the grey-box compressors, written once as per-sample equations.

A compressor is detector → gain computer → ballistics → make-up (Giannoulis, Massberg & Reiss, JAES
2012); the members of :mod:`dynamatch.models.family` are compositions of the blocks below.  Each block is
plain arithmetic on whatever ``ops`` hands it, so the *same* text is

* interpreted with floats (:class:`FloatOps`): the slow per-sample reference the tests use, and
* traced with symbols (``dynamatch.codegen``): from which the streaming render kernels, the loss,
  gradient and exact-Hessian kernels (forward-mode sensitivities) and the plugin's C++ are generated.

Levels are natural logarithms ("nepers"): :math:`\lambda = \ln\max(|x|, \varepsilon)`, and a level
in dB is :math:`c\,L_{dB}` with :math:`c = \ln 10 / 20`.  Time constants enter as one-pole coefficients
α (see :mod:`dynamatch.models.parameters`).  Comparisons choose branches; a branch's choice is locally
constant, so its derivative is taken as zero, as in the 4A-2A paper.

The ``ops`` interface: ``let(name, value)`` names an intermediate (an assignment of the generated code),
``where(condition, a, b)``, ``exp``, ``log``, ``sqrt``, ``abs``.
"""

from __future__ import annotations

import math

from ..units import DB_TO_LOG, DETECTOR_FLOOR as EPSILON


class FloatOps:
    """Plain-float arithmetic: runs a model's equations one sample at a time (the naive reference)."""

    exp = staticmethod(math.exp)
    log = staticmethod(math.log)
    sqrt = staticmethod(math.sqrt)
    abs = staticmethod(abs)

    @staticmethod
    def let(name: str, value):
        return value

    @staticmethod
    def where(condition, a, b):
        return a if condition else b


# -- detectors: the level that drives the gain computer, ln(level) --------------------------------
def log_level(ops, magnitude):
    r""":math:`\ln\max(m, \varepsilon)` of a non-negative magnitude."""
    return ops.let("level_log", ops.log(ops.where(magnitude > EPSILON, magnitude, EPSILON)))


def rms_level(ops, x, power_prev, alpha_detector):
    r"""Power detector :math:`P = P_{n-1} + \alpha_d (x^2 - P_{n-1})`, level :math:`\tfrac12\ln\max(P, \varepsilon^2)`.

    Returns (level, new power state).  With :math:`\alpha_d = 1` it is the peak detector."""
    power = ops.let("power", power_prev + alpha_detector * (x * x - power_prev))
    level = ops.let("level_log", 0.5 * ops.log(ops.where(power > EPSILON * EPSILON, power, EPSILON * EPSILON)))
    return level, power


def emphasis(ops, x, lowpass_prev, emphasis_db, alpha_emphasis):
    r"""Side-chain high-frequency emphasis (a first-order high shelf):
    :math:`\ell = \ell_{n-1} + \alpha_e (x - \ell_{n-1})`, :math:`x_{sc} = x + (10^{E/20} - 1)(x - \ell)`.

    Returns (side-chain sample, new low-pass state); E = 0 dB passes x unchanged."""
    lowpass = ops.let("emphasis_lowpass", lowpass_prev + alpha_emphasis * (x - lowpass_prev))
    boost = ops.let("emphasis_boost", ops.exp(DB_TO_LOG * emphasis_db) - 1.0)
    return ops.let("sidechain", x + boost * (x - lowpass)), lowpass


# -- gain computers: static curve of level -> gain ------------------------------------------------
def slope_of(ops, ratio):
    r"""Slope of the static curve above the knee, :math:`1 - 1/R` (nepers of gain per neper of level)."""
    return ops.let("slope", 1.0 - 1.0 / ratio)


def hard_knee_gain(ops, level_log, threshold_db, slope):
    r"""Linear static gain, hard knee: :math:`\hat g = e^{-s\,(\lambda - c\,CT)}` above the threshold, else 1."""
    over = ops.let("over", level_log - DB_TO_LOG * threshold_db)
    return ops.let("target", ops.where(over > 0.0, ops.exp(-slope * over), 1.0))


KNEE_FLOOR = 1e-12  # nepers: narrower knees are computed as this narrow (only samples this close see them)


def _knee(ops, level_log, threshold_db, knee_db):
    """(o, h, 1/(4h)) of the quadratic knee, with h floored so a zero-width knee never divides by zero."""
    over = ops.let("over", level_log - DB_TO_LOG * threshold_db)
    half = ops.let("knee_half", 0.5 * DB_TO_LOG * knee_db)
    safe = ops.where(half > KNEE_FLOOR, half, KNEE_FLOOR)
    return over, half, ops.let("knee_quarter", 0.25 / safe)


def soft_knee_log_gain(ops, level_log, threshold_db, slope, knee_db):
    r"""Static gain in nepers with a quadratic knee of width W dB (Giannoulis et al., eq. 4):
    with :math:`o = \lambda - c\,CT` and :math:`h = c W / 2`,
    :math:`0` for :math:`o \le -h`, :math:`-s (o + h)^2 / (4h)` inside, :math:`-s\,o` for :math:`o \ge h`.
    W → 0 is the hard knee."""
    over, half, quarter = _knee(ops, level_log, threshold_db, knee_db)
    inside = ops.let("knee_inside", -slope * (over + half) * (over + half) * quarter)
    return ops.let("target_log", ops.where(over >= half, -slope * over, ops.where(over > -half, inside, 0.0)))


def soft_knee_gain(ops, level_log, threshold_db, slope, knee_db):
    r"""Linear static gain with the quadratic knee of :func:`soft_knee_log_gain`."""
    over, half, quarter = _knee(ops, level_log, threshold_db, knee_db)
    inside = ops.let("knee_inside", ops.exp(-slope * (over + half) * (over + half) * quarter))
    above = ops.where(over >= half, ops.exp(-slope * over), inside)
    return ops.let("target", ops.where(over > -half, above, 1.0))


# -- ballistics: one-poles whose coefficient switches between attack and release -------------------
def one_pole(ops, name, target, previous, alpha_attack, alpha_release, attacking):
    r"""Branching one-pole :math:`y = y_{n-1} + \alpha\,(u - y_{n-1})`, :math:`\alpha = \alpha_a` while
    ``attacking`` else :math:`\alpha_r` (Giannoulis et al.'s branching peak detector)."""
    alpha = ops.let(name + "_alpha", ops.where(attacking, alpha_attack, alpha_release))
    return ops.let(name, alpha * target + (1.0 - alpha) * previous)


def gain_one_pole(ops, name, target, previous, alpha_attack, alpha_release):
    """Ballistics on the linear gain (the 4A-2A placement): attack while the gain falls."""
    return one_pole(ops, name, target, previous, alpha_attack, alpha_release, target < previous)


# -- output stage (per channel, after the gain) -----------------------------------------------------
def output_highpass(ops, u, lowpass_prev, alpha_highpass):
    r"""First-order high-pass of the output (coupling capacitors, output transformer):
    :math:`\ell = \ell_{n-1} + \alpha (u - \ell_{n-1})`, :math:`y = u - \ell`, i.e.
    :math:`H(z) = (1-\alpha)(1 - z^{-1}) / (1 - (1-\alpha) z^{-1})`.  α = 0 (0 Hz) passes u unchanged.

    Returns (output, new low-pass state)."""
    lowpass = ops.let("output_lowpass", lowpass_prev + alpha_highpass * (u - lowpass_prev))
    return ops.let("output", u - lowpass), lowpass
