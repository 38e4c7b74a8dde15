r"""The 4A-2A fitting objective: pre-filtered ESR of the compressor against a target, with exact
gradient and Hessian from one streaming forward-mode pass (:mod:`dynamatch.kernels.objective`).

Parameters live in *kernel space* ``q = (threshold_db, ratio, alpha_attack, alpha_release,
makeup_db)``: the time constants are one-pole coefficients, not ms.  With ``m = 10^(γ/20)``,
``c = ln10/20``, the pre-filtered prediction ``z`` (before make-up), its sensitivities ``z_i``,
``z_ij`` and the pre-filtered target ``t``, ``r = m z - t``:

.. math::

    \mathrm{ESR} &= \frac{\sum r^2}{\sum t^2},\qquad
    \partial_i L = 2m \sum r z_i,\qquad \partial_\gamma L = 2cm \sum r z \\
    \partial^2_{ij} L &= 2m^2 \sum z_i z_j + 2m \sum r z_{ij},\qquad
    \partial^2_{i\gamma} L = 2cm \sum (m z z_i + r z_i),\qquad
    \partial^2_{\gamma\gamma} L = 2c^2 m \sum (m z^2 + r z)

Mono only: the fit uses one channel (a stereo-linked objective is not provided).  Chunking follows the
4A-2A reference: 12 s chunks, each restarted from unity gain and excluded from the loss for its first
1 s of warm-up, except the first chunk, which starts at the true start of the signal.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import AudioError, LengthMismatchError, ParameterError, SilentAudioError
from ..kernels.ballistics import DB_TO_LOG
from ..kernels.objective import PAIRS, chunked_sums, detector_log_level
from ..kernels.prefilter import PREFILTER_POLE, prefilter as prefilter_signal
from ..models.compressor import Compressor
from ..units import coefficient_to_ms

KERNEL_PARAMETER_NAMES: tuple[str, ...] = ("threshold_db", "ratio", "alpha_attack", "alpha_release", "makeup_db")


class CompressorObjective:
    """Pre-filtered ESR of the 4A-2A compressor against a target, with exact derivatives."""

    n_parameters = len(KERNEL_PARAMETER_NAMES)

    def __init__(self, dry: np.ndarray, wet: np.ndarray, sample_rate: float, *, chunk_seconds: float = 12.0,
                 warmup_seconds: float = 1.0, prefilter: bool = True) -> None:
        dry = np.asarray(dry)
        wet = np.asarray(wet)
        if dry.ndim != 1 or wet.ndim != 1:
            raise AudioError(
                f"the objective fits mono signals: expected 1-D dry and wet, got {dry.shape} and {wet.shape}"
            )
        if dry.shape != wet.shape:
            raise LengthMismatchError(f"dry has {dry.size} samples but wet has {wet.size}: trim or align them first")
        if not (math.isfinite(sample_rate) and sample_rate > 0):
            raise ParameterError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
        self.sample_rate = float(sample_rate)
        self.chunk_samples = int(round(chunk_seconds * self.sample_rate))
        self.warmup_samples = int(round(warmup_seconds * self.sample_rate))
        if not 0 <= self.warmup_samples < self.chunk_samples:
            raise ParameterError(
                f"need 0 <= warmup_seconds < chunk_seconds, got {warmup_seconds} and {chunk_seconds}"
            )
        self._dry = np.ascontiguousarray(dry, dtype=np.float64)
        self._level_log = detector_log_level(self._dry)
        wet = np.ascontiguousarray(wet, dtype=np.float64)
        self._target = prefilter_signal(wet) if prefilter else wet
        self._zero, self._pole = (1.0, PREFILTER_POLE) if prefilter else (0.0, 0.0)
        self.target_energy = float(np.dot(self._target, self._target))
        if not self.target_energy > 0.0:
            raise SilentAudioError("the (pre-filtered) target has no energy: choose a clip with programme material")

    # -- objective ------------------------------------------------------------------------------
    def loss(self, q: np.ndarray) -> float:
        """Pre-filtered ESR at kernel parameters ``q``."""
        return float(self._sums(0, self._check(q))[0] / self.target_energy)

    def loss_grad(self, q: np.ndarray) -> tuple[float, np.ndarray]:
        """ESR and its exact gradient (5,) in kernel space."""
        q = self._check(q)
        s = self._sums(1, q)
        return float(s[0] / self.target_energy), _gradient(s, q) / self.target_energy

    def loss_grad_hess(self, q: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """ESR, exact gradient (5,) and exact symmetric Hessian (5, 5) in kernel space."""
        q = self._check(q)
        s = self._sums(2, q)
        c = DB_TO_LOG
        m = math.exp(c * q[4])
        hess = np.empty((5, 5))
        for k, (i, j) in enumerate(PAIRS):
            hess[i, j] = hess[j, i] = 2.0 * m * m * s[12 + k] + 2.0 * m * s[22 + k]
        hess[:4, 4] = hess[4, :4] = 2.0 * c * m * (m * s[8:12] + s[4:8])
        hess[4, 4] = 2.0 * c * c * m * (m * s[1] + s[3])
        e = self.target_energy
        return float(s[0] / e), _gradient(s, q) / e, hess / e

    # -- real units -----------------------------------------------------------------------------
    def esr(self, compressor: Compressor) -> float:
        """Pre-filtered ESR of ``compressor`` (real units)."""
        return self.loss(self.kernel_params(compressor, self.sample_rate))

    def matched_makeup_db(self, compressor: Compressor) -> float:
        """Make-up (dB) that makes the RMS of the (pre-filtered, counted) prediction equal the target's."""
        q = self.kernel_params(compressor, self.sample_rate)
        q[4] = 0.0
        prediction_energy = self._sums(0, self._check(q))[1]
        if not prediction_energy > 0.0:
            raise SilentAudioError("the compressor's prediction has no energy: lower the ratio or raise the threshold")
        return float(10.0 * math.log10(self.target_energy / prediction_energy))

    @staticmethod
    def kernel_params(compressor: Compressor, sample_rate: float) -> np.ndarray:
        """Real units -> kernel space ``(threshold_db, ratio, alpha_attack, alpha_release, makeup_db)``."""
        alpha_attack, alpha_release = compressor.coefficients(sample_rate)
        return np.array([compressor.threshold_db, compressor.ratio, alpha_attack, alpha_release, compressor.makeup_db])

    @staticmethod
    def compressor_from_kernel_params(q: np.ndarray, sample_rate: float) -> Compressor:
        """Kernel space -> :class:`~dynamatch.models.compressor.Compressor` in real units."""
        q = np.asarray(q, dtype=float).ravel()
        if q.shape != (5,):
            raise ParameterError(f"expected 5 kernel parameters {KERNEL_PARAMETER_NAMES}, got {q.size}")
        return Compressor(
            threshold_db=q[0],
            ratio=q[1],
            attack_ms=float(coefficient_to_ms(q[2], sample_rate)),
            release_ms=float(coefficient_to_ms(q[3], sample_rate)),
            makeup_db=q[4],
        )

    # -- internals ------------------------------------------------------------------------------
    def _check(self, q) -> np.ndarray:
        q = np.asarray(q, dtype=np.float64).ravel()
        if q.shape != (5,):
            raise ParameterError(f"expected 5 kernel parameters {KERNEL_PARAMETER_NAMES}, got {q.size}")
        if not np.all(np.isfinite(q)):
            raise ParameterError(f"kernel parameters must be finite, got {q.tolist()}")
        if not q[1] > 0.0:
            raise ParameterError(f"ratio must be > 0, got {q[1]}")
        if not (0.0 < q[2] <= 1.0 and 0.0 < q[3] <= 1.0):
            raise ParameterError(f"alpha_attack and alpha_release must be in (0, 1], got {q[2]} and {q[3]}")
        return q

    def _sums(self, order: int, q: np.ndarray) -> np.ndarray:
        """Kernel sums of ``order`` (0 loss, 1 gradient, 2 Hessian) at already validated ``q``."""
        return chunked_sums(order, self._dry, self._level_log, self._target, q[0], q[1], q[2], q[3], math.exp(DB_TO_LOG * q[4]),
                      self.chunk_samples, self.warmup_samples, self._zero, self._pole)


def _gradient(s: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Unnormalised gradient of ``L`` from the gradient sums ``s`` at ``q``."""
    m = math.exp(DB_TO_LOG * q[4])
    grad = np.empty(5)
    grad[:4] = 2.0 * m * s[4:8]
    grad[4] = 2.0 * DB_TO_LOG * m * s[3]
    return grad
