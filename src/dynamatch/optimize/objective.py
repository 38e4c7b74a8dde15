r"""The fitting objective: pre-filtered ESR of a family member against a target, with the exact gradient
and Hessian from one streaming forward-mode pass (the member's generated kernels).

Parameters live in *kernel space* ``q``: the member's parameters with times and frequencies as one-pole
coefficients (:mod:`dynamatch.models.parameters`), ``makeup_db`` last.  With ``m = 10^(γ/20)``,
``c = ln10/20``, the pre-filtered prediction ``z`` (before make-up), its sensitivities ``z_i``, ``z_ij``
and the pre-filtered target ``t``, ``r = m z - t``:

.. math::

    \mathrm{ESR} &= \frac{\sum r^2}{\sum t^2},\qquad
    \partial_i L = 2m \sum r z_i,\qquad \partial_\gamma L = 2cm \sum r z \\
    \partial^2_{ij} L &= 2m^2 \sum z_i z_j + 2m \sum r z_{ij},\qquad
    \partial^2_{i\gamma} L = 2cm \sum (m z z_i + r z_i),\qquad
    \partial^2_{\gamma\gamma} L = 2c^2 m \sum (m z^2 + r z)

Mono only: the fit uses one channel.  Chunking follows the 4A-2A reference: 12 s chunks, each restarted
from the model's rest state and excluded from the loss for its first 1 s of warm-up, except the first
chunk, which starts at the true start of the signal (:mod:`dynamatch.kernels.chunks`).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..errors import AudioError, LengthMismatchError, ParameterError, SilentAudioError
from ..kernels.chunks import chunk_bounds, chunk_count
from ..kernels.generated import kernels_of
from ..kernels.prefilter import PREFILTER_POLE, prefilter_states
from ..models.compressor import Compressor
from ..models.family import model_spec
from ..units import DB_TO_LOG
from .parametrization import Bounds


class CompressorObjective:
    """Pre-filtered ESR of family member ``model`` against a target, with exact derivatives."""

    def __init__(self, dry: np.ndarray, wet: np.ndarray, sample_rate: float, *, model: str = "ff5",
                 chunk_seconds: float = 12.0, warmup_seconds: float = 1.0, prefilter: bool = True) -> None:
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
        self._set_model(model)
        self.sample_rate = float(sample_rate)
        self.chunk_samples = int(round(chunk_seconds * self.sample_rate))
        self.warmup_samples = int(round(warmup_seconds * self.sample_rate))
        if not 0 <= self.warmup_samples < self.chunk_samples:
            raise ParameterError(
                f"need 0 <= warmup_seconds < chunk_seconds, got {warmup_seconds} and {chunk_seconds}"
            )
        # float32 signals (what 32-bit float and PCM files hold exactly) are kept as they are, every sum is
        # float64; the kernels compute the detector level per chunk and pre-filter the target as they read
        # it, so the objective holds the two signals and nothing else of their length
        dtype = np.float32 if dry.dtype == np.float32 and wet.dtype == np.float32 else np.float64
        self._dry = np.ascontiguousarray(dry, dtype=dtype)
        self._wet = np.ascontiguousarray(wet, dtype=dtype)
        self._zero, self._pole = (1.0, PREFILTER_POLE) if prefilter else (0.0, 0.0)
        chunks = chunk_count(self._dry.size, self.chunk_samples, self.warmup_samples)
        counted_from = np.array([chunk_bounds(k, self._dry.size, self.chunk_samples, self.warmup_samples)[2]
                                 for k in range(chunks)], dtype=np.int64)
        self._target_states, self.target_energy = prefilter_states(self._wet, counted_from, self._zero, self._pole)
        if not self.target_energy > 0.0:
            raise SilentAudioError("the (pre-filtered) target has no energy: choose a clip with programme material")

    def with_model(self, model: str) -> "CompressorObjective":
        """The same signals (shared, not copied) fitted by another family member."""
        other = object.__new__(CompressorObjective)
        other.__dict__.update(self.__dict__)
        other._set_model(model)
        return other

    def _set_model(self, model: str) -> None:
        self.spec = model_spec(model)
        self.model = model
        self._kernels = kernels_of(self.spec.module_name)
        self.n_parameters = len(self.spec.parameters)
        self.parameter_names = self.spec.kernel_names + ("makeup_db",)

    # -- objective ------------------------------------------------------------------------------
    def loss(self, q: np.ndarray) -> float:
        """Pre-filtered ESR at kernel parameters ``q``."""
        return float(self._sums(0, self._check(q))[0] / self.target_energy)

    def loss_grad(self, q: np.ndarray) -> tuple[float, np.ndarray]:
        """ESR and its exact gradient in kernel space."""
        q = self._check(q)
        s = self._sums(1, q)
        return float(s[0] / self.target_energy), self._gradient(s, q) / self.target_energy

    def loss_grad_hess(self, q: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """ESR, exact gradient and exact symmetric Hessian in kernel space."""
        q = self._check(q)
        s = self._sums(2, q)
        p = self.n_parameters - 1
        pairs = self._kernels.PAIRS
        c = DB_TO_LOG
        m = math.exp(c * q[-1])
        gauss_newton = s[4 + 2 * p: 4 + 2 * p + len(pairs)]
        curvature = s[4 + 2 * p + len(pairs):]
        hess = np.empty((p + 1, p + 1))
        for k, (i, j) in enumerate(pairs):
            hess[i, j] = hess[j, i] = 2.0 * m * m * gauss_newton[k] + 2.0 * m * curvature[k]
        hess[:p, p] = hess[p, :p] = 2.0 * c * m * (m * s[4 + p: 4 + 2 * p] + s[4: 4 + p])
        hess[p, p] = 2.0 * c * c * m * (m * s[1] + s[3])
        e = self.target_energy
        return float(s[0] / e), self._gradient(s, q) / e, hess / e

    # -- real units -----------------------------------------------------------------------------
    def esr(self, compressor: Compressor) -> float:
        """Pre-filtered ESR of ``compressor`` (real units; a member of this objective's model)."""
        return self.loss(self.kernel_params(compressor))

    def matched_makeup_db(self, compressor: Compressor) -> float:
        """Make-up (dB) that makes the RMS of the (pre-filtered, counted) prediction equal the target's."""
        q = self.kernel_params(compressor)
        q[-1] = 0.0
        prediction_energy = self._sums(0, self._check(q))[1]
        if not prediction_energy > 0.0:
            raise SilentAudioError("the compressor's prediction has no energy: lower the ratio or raise the threshold")
        return float(10.0 * math.log10(self.target_energy / prediction_energy))

    def kernel_params(self, compressor: Compressor) -> np.ndarray:
        """Real units -> kernel space (``compressor`` must be a member of this objective's model)."""
        if compressor.model != self.model:
            raise ParameterError(
                f"this objective fits model {self.model!r}, got a {compressor.model!r} compressor; "
                f"convert it with compressor.as_model({self.model!r})"
            )
        return compressor.kernel_vector(self.sample_rate)

    def compressor(self, q: np.ndarray) -> Compressor:
        """Kernel space -> :class:`~dynamatch.models.compressor.Compressor` in real units."""
        return Compressor.from_kernel_vector(q, self.sample_rate, self.model)

    def kernel_limits(self, bounds: Bounds) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) kernel-space limits of ``bounds`` for this model at this sample rate."""
        return bounds.kernel_limits(self.spec, self.sample_rate)

    # -- internals ------------------------------------------------------------------------------
    def _check(self, q) -> np.ndarray:
        q = np.asarray(q, dtype=np.float64).ravel()
        if q.shape != (self.n_parameters,):
            raise ParameterError(f"expected {self.n_parameters} kernel parameters {self.parameter_names}, got {q.size}")
        if not np.all(np.isfinite(q)):
            raise ParameterError(f"kernel parameters must be finite, got {q.tolist()}")
        for p, value in zip(self.spec.parameters, q):
            if p.kind == "ratio" and not value > 0.0:
                raise ParameterError(f"{p.name} must be > 0, got {value}")
            if p.kind == "time" and not 0.0 < value <= 1.0:
                raise ParameterError(f"{p.kernel_name} (the coefficient of {p.name}) must be in (0, 1], got {value}")
            if p.kind == "hz" and not 0.0 <= value <= 1.0:
                raise ParameterError(f"{p.kernel_name} (the coefficient of {p.name}) must be in [0, 1], got {value}")
        return q

    def _sums(self, order: int, q: np.ndarray) -> np.ndarray:
        """Kernel sums of ``order`` (0 loss, 1 gradient, 2 Hessian) at already validated ``q``."""
        return self._kernels.chunked_sums(
            order, self._dry, self._wet, self._target_states, np.ascontiguousarray(q[:-1]),
            math.exp(DB_TO_LOG * q[-1]), self.chunk_samples, self.warmup_samples, self._zero, self._pole,
            numba.get_num_threads(),
        )

    def _gradient(self, s: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Unnormalised gradient of ``L`` from the gradient sums ``s`` at ``q``."""
        p = self.n_parameters - 1
        m = math.exp(DB_TO_LOG * q[-1])
        grad = np.empty(p + 1)
        grad[:p] = 2.0 * m * s[4: 4 + p]
        grad[p] = 2.0 * DB_TO_LOG * m * s[3]
        return grad

