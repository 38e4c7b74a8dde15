r"""Bounded reparametrisation: optimise an unconstrained vector u, evaluate the kernel parameters q(u).

The map is elementwise.  A bounded component is a scaled logistic sigmoid, a free one is the identity:

.. math::

    q_i = \ell_i + (h_i - \ell_i)\,\sigma(u_i), \qquad \sigma(u) = 1 / (1 + e^{-u}),

so for the 4A-2A compressor (the reference parametrisation) threshold_db = u0, ratio in
[ratio_lo, ratio_hi], the attack and release *coefficients* between α(t_hi) and α(t_lo) with
α(t) = 1 − exp(−2200 / (t·sample_rate)) (the sigmoid lives in coefficient space), and makeup_db = u4;
every other family member likewise, from its parameters' bounds (:class:`Bounds`).

The chain rule for f(u) = F(q(u)) with a diagonal Jacobian J = diag(q'(u)):

.. math::

    \nabla_u f = J\,\nabla_q F, \qquad
    \nabla_u^2 f = J\,\nabla_q^2 F\,J + \operatorname{diag}(\nabla_q F \odot q''(u)),

with σ' = σ(1 − σ) and σ'' = σ(1 − σ)(1 − 2σ).
"""

from __future__ import annotations

import math
import numpy as np

from ..errors import ParameterError
from ..models.compressor import Compressor

INSIDE_MARGIN = 1e-6  # from_kernel keeps sigmoid fractions in [margin, 1 - margin] (|u| <= 13.8)


def expit(u) -> np.ndarray:
    """σ(u) = 1/(1 + e^{−u}), without overflow: e^{−|u|}/(1 + e^{−|u|}) for u < 0 (numpy; scipy.special
    would cost 0.3 s of imports to every command)."""
    u = np.asarray(u, dtype=np.float64)
    decay = np.exp(-np.abs(u))
    return np.where(u >= 0.0, 1.0 / (1.0 + decay), decay / (1.0 + decay))


def logit(fraction) -> np.ndarray:
    """σ⁻¹(f) = ln(f/(1 − f))."""
    fraction = np.asarray(fraction, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(fraction / (1.0 - fraction))


class Bounds:
    """Fitting ranges in real units: each parameter's own bounds (:mod:`dynamatch.models.family`), with
    any of them replaced by a ``(low, high)`` given here, e.g. ``Bounds(ratio=(1, 40), knee_db=(0, 12))``.
    ``None`` for a parameter makes it free.  Threshold and make-up are free by default."""

    def __init__(self, **ranges: tuple[float, float] | None) -> None:
        clean: dict[str, tuple[float, float] | None] = {}
        for name, pair in ranges.items():
            if pair is None:
                clean[name] = None
                continue
            try:
                low, high = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise ParameterError(f"Bounds.{name} must be a (low, high) pair of numbers, got {pair!r}") from None
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ParameterError(f"Bounds.{name} must be finite with low < high, got ({low}, {high})")
            if name == "ratio" and low < 1.0:
                raise ParameterError(f"Bounds.ratio must start at >= 1 (1 = no compression), got {low}")
            if (name.endswith("_ms") and low <= 0.0) or (name.endswith("_hz") and low < 0.0):
                raise ParameterError(f"Bounds.{name} must be > 0, got ({low}, {high})")
            clean[name] = (low, high)
        self._ranges = clean

    def __repr__(self) -> str:
        return f"Bounds({', '.join(f'{k}={v}' for k, v in self._ranges.items())})"

    def of(self, spec) -> dict[str, tuple[float, float] | None]:
        """Real-unit bounds of every parameter of model ``spec`` (None = free)."""
        unknown = sorted(set(self._ranges) - set(spec.parameter_names))
        if unknown:
            raise ParameterError(
                f"Bounds for {', '.join(unknown)}: model {spec.name!r} has no such parameter "
                f"(it has {', '.join(spec.parameter_names)})"
            )
        return {p.name: self._ranges.get(p.name, p.bounds) for p in spec.parameters}

    def kernel_limits(self, spec, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) kernel-parameter limits of model ``spec``; ±inf for free ones.

        A longer time gives a smaller coefficient, so the lower coefficient limit is α(longest time).
        """
        if not (math.isfinite(sample_rate) and sample_rate > 0):
            raise ParameterError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
        ranges = self.of(spec)
        limits = [p.kernel_limits(sample_rate, ranges[p.name]) for p in spec.parameters]
        return np.array([low for low, _ in limits]), np.array([high for _, high in limits])


class Parametrization:
    """Elementwise map between unconstrained u and kernel parameters q (sigmoid where bounded)."""

    def __init__(self, lower, upper) -> None:
        lower = np.asarray(lower, dtype=float).ravel()
        upper = np.asarray(upper, dtype=float).ravel()
        if lower.shape != upper.shape:
            raise ParameterError(f"lower and upper limits differ in length: {lower.size} and {upper.size}")
        self.bounded = np.isfinite(lower) & np.isfinite(upper)
        free = np.isneginf(lower) & np.isposinf(upper)
        if not np.all(self.bounded | free) or np.any(lower[self.bounded] >= upper[self.bounded]):
            raise ParameterError("each parameter must be either free (-inf, inf) or bounded with finite low < high")
        self.lower = np.where(self.bounded, lower, 0.0)
        self.width = np.where(self.bounded, upper - lower, 1.0)

    @classmethod
    def for_objective(cls, objective, bounds: Bounds | None) -> "Parametrization":
        """The bounded parametrisation of ``objective``'s model (``objective.kernel_limits``), or the
        identity (unbounded) when ``bounds`` is None."""
        n_parameters = int(objective.n_parameters)
        if bounds is None:
            return cls.identity(n_parameters)
        limits = getattr(objective, "kernel_limits", None)
        if limits is None:
            raise ParameterError(
                "bounds apply to compressor objectives (with kernel_limits); pass bounds=None to optimise "
                "without bounds"
            )
        return cls(*limits(bounds))

    @classmethod
    def identity(cls, n_parameters: int) -> "Parametrization":
        """No bounds: u = q."""
        return cls(np.full(n_parameters, -np.inf), np.full(n_parameters, np.inf))

    @property
    def n_parameters(self) -> int:
        return self.lower.size

    def to_kernel(self, u) -> np.ndarray:
        """q(u)."""
        u = self._check(u)
        return np.where(self.bounded, self.lower + self.width * expit(u), u)

    def from_kernel(self, q) -> np.ndarray:
        """u with q(u) = q, bounded components first clipped strictly inside their range."""
        q = self._check(q)
        fraction = np.clip((q - self.lower) / self.width, INSIDE_MARGIN, 1.0 - INSIDE_MARGIN)
        return np.where(self.bounded, logit(fraction), q)

    def derivatives(self, u) -> tuple[np.ndarray, np.ndarray]:
        """(q'(u), q''(u)), elementwise."""
        u = self._check(u)
        s = expit(u)
        first = np.where(self.bounded, self.width * s * (1.0 - s), 1.0)
        second = np.where(self.bounded, self.width * s * (1.0 - s) * (1.0 - 2.0 * s), 0.0)
        return first, second

    def transform(self, u, f: float, g_q, h_q=None) -> tuple[float, np.ndarray, np.ndarray | None]:
        """Loss, gradient and Hessian with respect to u from those with respect to q = q(u).

        ``h_q`` may be None (gradient only); the returned Hessian is then None as well.
        """
        first, second = self.derivatives(u)
        g_q = np.asarray(g_q, dtype=float)
        g_u = first * g_q
        if h_q is None:
            return f, g_u, None
        h_u = first[:, None] * np.asarray(h_q, dtype=float) * first[None, :] + np.diag(g_q * second)
        return f, g_u, h_u

    def limit_step(self, step: np.ndarray, max_logit_step: float, max_free_step: float) -> tuple[np.ndarray, float]:
        """Scale ``step`` (keeping its direction) so no bounded component moves more than
        ``max_logit_step`` and no free one more than ``max_free_step``; returns (step, scale <= 1)."""
        limits = np.where(self.bounded, max_logit_step, max_free_step)
        excess = np.max(np.abs(step) / limits)
        scale = 1.0 / excess if excess > 1.0 else 1.0
        return step * scale, scale

    def _check(self, v) -> np.ndarray:
        v = np.asarray(v, dtype=float).ravel()
        if v.shape != self.lower.shape:
            raise ParameterError(f"expected {self.n_parameters} parameters, got {v.size}")
        return v


def start_kernel_params(objective, q0) -> np.ndarray:
    """The starting kernel-parameter vector: ``q0`` itself, or the kernel parameters of a Compressor."""
    if isinstance(q0, Compressor):
        q0 = objective.kernel_params(q0)
    q = np.asarray(q0, dtype=float).ravel()
    if q.size != int(objective.n_parameters):
        raise ParameterError(f"the start has {q.size} parameters, the objective takes {objective.n_parameters}")
    if not np.all(np.isfinite(q)):
        raise ParameterError(f"the start must be finite, got {q.tolist()}")
    return q
