r"""Levenberg–Marquardt damped Newton, in the unconstrained variables u.

The loss is a sum of squares, but we use its *exact* Hessian H (not the Gauss–Newton JᵀJ), so this is
Levenberg–Marquardt damping applied to Newton's method: the step solves

.. math::

    (H + \mu D)\,p = -g, \qquad D = \operatorname{diag}(\max(|H_{ii}|, \epsilon\max_j |H_{jj}|))
    \ \text{(Marquardt scaling) or } D = I,

with μ raised until H + μD is positive definite (Cholesky) and the step decreases the loss.  The gain
ratio ρ = (f(u) − f(u + p)) / (−gᵀp − ½pᵀHp) of actual to predicted decrease accepts the step when
ρ > 10⁻⁴ and adapts μ (Nielsen 1999): μ ← μ·max(⅓, 1 − (2ρ − 1)³) on success,
μ ← μ·ν, ν ← 2ν on failure.  Rejected trials call only ``objective.loss``; ``loss_grad_hess`` runs once
per accepted iterate.  Steps are capped as in :mod:`.newton`, and the convergence tests are Newton's (the last,
most damped trial plays the part of the smallest line-search step).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import ParameterError
from .newton import modified_newton_step, step_failure_result, stopping_result
from .parametrization import Bounds, Parametrization, start_kernel_params
from .result import FitRecorder, FitResult, Status, is_finite

MIN_GAIN_RATIO = 1e-4  # accept a step that achieves this fraction of the predicted decrease


def minimize_levenberg_marquardt(
    objective: Any,
    q0,
    *,
    bounds: Bounds | None = Bounds(),
    max_iterations: int = 50,
    gradient_tolerance: float = 1e-9,
    decrement_tolerance: float = 1e-9,
    step_tolerance: float = 1e-12,
    loss_tolerance: float = 1e-10,
    stall_iterations: int = 3,
    max_logit_step: float = 3.0,
    max_free_step: float = 24.0,
    initial_damping: float = 1e-3,
    scaling: str = "marquardt",
    max_rejections: int = 40,
    eigenvalue_floor: float = 1e-10,
    callback: Callable[[FitResult], None] | None = None,
) -> FitResult:
    """Minimise ``objective`` from ``q0`` by Levenberg–Marquardt damped Newton (exact Hessian).

    Same objective protocol, bounds, tolerances and callback as
    :func:`~dynamatch.optimize.newton.minimize_newton`.  ``scaling`` is ``"marquardt"`` (damp by
    diag|H|) or ``"identity"`` (damp by I); ``max_rejections`` bounds the trials at one iterate.
    """
    if scaling not in ("marquardt", "identity"):
        raise ParameterError(f"scaling must be 'marquardt' or 'identity', got {scaling!r}")
    parametrization = Parametrization.for_objective(objective, bounds)
    recorder = FitRecorder(objective, "levenberg-marquardt", parametrization.to_kernel)
    u = parametrization.from_kernel(start_kernel_params(objective, q0))
    f, g, h = parametrization.transform(u, *recorder.loss_grad_hess(parametrization.to_kernel(u)))
    if not is_finite(f, g, h):
        return recorder.result(u, f, Status.NON_FINITE, "the objective is not finite at the start")
    damping, growth = float(initial_damping), 2.0
    step_size, last_step = 0.0, np.full_like(u, np.inf)

    while True:
        _, decrement, positive_definite = modified_newton_step(g, h, eigenvalue_floor)
        gradient_norm = float(np.max(np.abs(g)))
        recorder.record(f, gradient_norm, step_size, decrement)
        iteration = len(recorder.history) - 1
        if iteration > 0 and recorder.stop_requested(callback, u, f):
            return recorder.result(u, f, Status.CALLBACK_STOP, "the callback raised StopIteration")
        done = stopping_result(
            recorder, u, f, decrement, positive_definite, last_step if step_size == 1.0 else None,
            gradient_tolerance=gradient_tolerance, decrement_tolerance=decrement_tolerance,
            step_tolerance=step_tolerance, loss_tolerance=loss_tolerance, stall_iterations=stall_iterations,
            max_iterations=max_iterations,
        )
        if done is not None:
            return done

        scale = _damping_scale(h, scaling, eigenvalue_floor)
        f_trial = np.nan
        for _ in range(max_rejections):
            try:
                factor = np.linalg.cholesky(h + damping * np.diag(scale))
            except np.linalg.LinAlgError:
                damping, growth = damping * growth, growth * 2.0
                continue
            step = -np.linalg.solve(factor.T, np.linalg.solve(factor, g))
            step, _ = parametrization.limit_step(step, max_logit_step, max_free_step)
            predicted = -(g @ step + 0.5 * step @ h @ step)
            f_trial = recorder.loss(parametrization.to_kernel(u + step))
            ratio = (f - f_trial) / predicted if np.isfinite(f_trial) and predicted > 0 else -np.inf
            if ratio > MIN_GAIN_RATIO:
                damping *= max(1.0 / 3.0, 1.0 - (2.0 * ratio - 1.0) ** 3)
                growth = 2.0
                break
            damping, growth = damping * growth, growth * 2.0
        else:
            return step_failure_result(
                recorder, u, f, f_trial, loss_tolerance, f"no decreasing step in {max_rejections} damping increases"
            )

        u_next = u + step
        f_next, g_next, h_next = parametrization.transform(
            u_next, *recorder.loss_grad_hess(parametrization.to_kernel(u_next))
        )
        if not is_finite(f_next, g_next, h_next):
            return recorder.result(
                u, f, Status.NON_FINITE, "the objective's gradient or Hessian is not finite at the next iterate"
            )
        last_step, step_size = step, 1.0
        u, f, g, h = u_next, f_next, g_next, h_next


def _damping_scale(hessian: np.ndarray, scaling: str, floor: float) -> np.ndarray:
    """Diagonal D of the damping term: max(|H_ii|, floor·max|H_jj|), or ones."""
    if scaling == "identity":
        return np.ones(hessian.shape[0])
    diagonal = np.abs(np.diag(hessian))
    return np.maximum(diagonal, max(floor * float(np.max(diagonal)), np.finfo(float).tiny))
