r"""Damped (modified) Newton with an Armijo backtracking line search, in the unconstrained variables u.

Each iteration, with gradient g and Hessian H of f(u) = F(q(u)) (see :mod:`.parametrization`):

1. Modified Newton direction.  With H = V diag(λ) Vᵀ, replace each eigenvalue by
   λ̃ = max(|λ|, ε·max|λ|) and take p = −V diag(1/λ̃) Vᵀ g.  H̃ is positive definite, so
   gᵀp = −gᵀH̃⁻¹g < 0 even where H is indefinite (far from the optimum); where H is positive definite
   and well conditioned p is the exact Newton step.
2. Step cap.  p is scaled (direction kept) so no sigmoid coordinate moves more than ``max_logit_step``
   and no free one (threshold, make-up dB) more than ``max_free_step`` per iteration.
3. Armijo backtracking: the first t in 1, ½, ¼, … (at most ``max_halvings`` halvings) with
   f(u + t p) ≤ f(u) + c₁ t gᵀp, c₁ = 10⁻⁴.  The line search calls only ``objective.loss``; the full
   ``loss_grad_hess`` runs once per accepted iterate.  After a step taken in full (t = 1, usual near the
   optimum) the next trial t = 1 is evaluated by ``loss_grad_hess`` directly (``speculate``): when Armijo
   holds there, as it usually does, that pass is the next iterate's and the loss-only pass is saved;
   when it fails, the search goes on from t = ½ as without it.  The iterates are the same either way.

Convergence: max|g| ≤ ``gradient_tolerance``, or the Newton decrement λ²/2 = gᵀH⁻¹g/2 (the decrease the
quadratic model predicts, ≈ f − f*) ≤ ``decrement_tolerance``·|f| with H positive definite (relative, so
it means the same for any loss scale; a zero-residual fit, f* = 0, ends on the gradient instead), or a
full step that is negligible relative to u, or a stall: the loss fell by at most ``loss_tolerance``·|f|
in each of the last ``stall_iterations`` iterations.  The 4A-2A loss is only piecewise smooth (the
attack/release branch and the knee switch), so near its optimum the quadratic model can stop predicting
the loss well enough for the decrement test; the stall test ends those fits.  A line search that fails
is reported as a failure (LINE_SEARCH_FAILED) unless the loss at the smallest trial step is within
``loss_tolerance``·|f| of f: flat to the tolerance, a non-smooth minimum (or rounding), so converged.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .parametrization import Bounds, Parametrization, start_kernel_params
from .result import FitRecorder, FitResult, Status, is_finite

ARMIJO = 1e-4  # sufficient-decrease constant c1
BACKTRACK = 0.5  # step reduction per halving


def modified_newton_step(
    gradient: np.ndarray, hessian: np.ndarray, eigenvalue_floor: float
) -> tuple[np.ndarray, float, bool]:
    """Direction p = −H̃⁻¹g, decrement gᵀH̃⁻¹g/2 and whether H was positive definite (H̃ = H).

    H̃ has the eigenvectors of H and eigenvalues max(|λ|, eigenvalue_floor·max|λ|).
    """
    eigenvalues, vectors = np.linalg.eigh(0.5 * (hessian + hessian.T))
    floor = max(eigenvalue_floor * float(np.max(np.abs(eigenvalues))), np.finfo(float).tiny)
    positive_definite = bool(eigenvalues[0] > floor)
    modified = np.maximum(np.abs(eigenvalues), floor)
    projected = vectors.T @ gradient
    step = -vectors @ (projected / modified)
    decrement = 0.5 * float(np.sum(projected**2 / modified))
    return step, decrement, positive_definite


def minimize_newton(
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
    max_halvings: int = 20,
    eigenvalue_floor: float = 1e-10,
    callback: Callable[[FitResult], None] | None = None,
    speculate: bool = True,
) -> FitResult:
    """Minimise ``objective`` from kernel parameters ``q0`` (array, or a Compressor) by modified Newton.

    ``objective`` needs ``loss(q)``, ``loss_grad_hess(q) -> (f, g, H)`` and ``n_parameters`` (plus
    ``sample_rate`` when ``bounds`` is not None).  ``bounds=None`` optimises q directly, unbounded.
    ``callback(intermediate_result)`` runs after every iteration; raising StopIteration ends the fit
    with :attr:`Status.CALLBACK_STOP`.  ``speculate``: after a full step, evaluate the Hessian pass at the
    next full step straight away and test Armijo on its loss (see step 3 of the module notes).
    """
    parametrization = Parametrization.for_objective(objective, bounds)
    recorder = FitRecorder(objective, "newton", parametrization.to_kernel)
    u = parametrization.from_kernel(start_kernel_params(objective, q0))
    f, g, h = parametrization.transform(u, *recorder.loss_grad_hess(parametrization.to_kernel(u)))
    if not is_finite(f, g, h):
        return recorder.result(u, f, Status.NON_FINITE, "the objective is not finite at the start")
    step_size, last_step, last_t = 0.0, np.full_like(u, np.inf), 0.0

    while True:
        direction, decrement, positive_definite = modified_newton_step(g, h, eigenvalue_floor)
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

        direction, scale = parametrization.limit_step(direction, max_logit_step, max_free_step)
        slope = float(g @ direction)  # < 0: H~ is positive definite
        t = 1.0
        evaluated = None
        if speculate and last_t == 1.0:
            # the last step was taken in full, so this one probably is too: evaluate loss, gradient and
            # Hessian at the full step at once; the Armijo test reads the loss of that pass (the same
            # iterates as below, one loss-only pass fewer when it holds, one wasted pass when it fails)
            u_full = u + direction
            evaluated = parametrization.transform(u_full, *recorder.loss_grad_hess(parametrization.to_kernel(u_full)))
            if not (np.isfinite(evaluated[0]) and evaluated[0] <= f + ARMIJO * slope):
                evaluated, t = None, BACKTRACK
        if evaluated is None:
            for _ in range(max_halvings + 1):
                f_trial = recorder.loss(parametrization.to_kernel(u + t * direction))
                if np.isfinite(f_trial) and f_trial <= f + ARMIJO * t * slope:
                    break
                t *= BACKTRACK
            else:
                reason = f"no Armijo step in {max_halvings} halvings"
                return step_failure_result(recorder, u, f, f_trial, loss_tolerance, reason)

        u_next = u + t * direction
        f_next, g_next, h_next = evaluated if evaluated is not None else parametrization.transform(
            u_next, *recorder.loss_grad_hess(parametrization.to_kernel(u_next))
        )
        if not is_finite(f_next, g_next, h_next):
            return recorder.result(
                u, f, Status.NON_FINITE, "the objective's gradient or Hessian is not finite at the next iterate"
            )
        last_step, step_size, last_t = u_next - u, t * scale, t
        u, f, g, h = u_next, f_next, g_next, h_next


def stopping_result(
    recorder: FitRecorder,
    u: np.ndarray,
    f: float,
    decrement: float,
    positive_definite: bool,
    full_step: np.ndarray | None,
    *,
    gradient_tolerance: float,
    decrement_tolerance: float,
    step_tolerance: float,
    loss_tolerance: float,
    stall_iterations: int,
    max_iterations: int,
) -> FitResult | None:
    """The result when a stopping test passes at the iterate just recorded, else None.

    ``full_step`` is the last step when it was taken in full (None otherwise)."""
    record = recorder.history[-1]
    if record.gradient_norm <= gradient_tolerance:
        message = f"max |gradient| {record.gradient_norm:.3g} <= {gradient_tolerance:g}"
        return recorder.result(u, f, Status.CONVERGED_GRADIENT, message)
    if positive_definite and decrement <= decrement_tolerance * abs(f):
        message = f"Newton decrement {decrement:.3g} <= {decrement_tolerance:g} x loss"
        return recorder.result(u, f, Status.CONVERGED_DECREMENT, message)
    if full_step is not None and np.max(np.abs(full_step)) <= step_tolerance * (1.0 + np.max(np.abs(u))):
        return recorder.result(u, f, Status.CONVERGED_STEP, "the last full step was negligible")
    if recorder.loss_stalled(loss_tolerance, stall_iterations):
        message = f"the loss fell by <= {loss_tolerance:g} x loss in each of the last {stall_iterations} iterations"
        return recorder.result(u, f, Status.CONVERGED_LOSS, message)
    if record.iteration >= max_iterations:
        return recorder.result(u, f, Status.MAX_ITERATIONS, f"reached max_iterations = {max_iterations}")
    return None


def step_failure_result(
    recorder: FitRecorder, u: np.ndarray, f: float, f_smallest: float, loss_tolerance: float, reason: str
) -> FitResult:
    """The result when no trial step was accepted: converged when the loss at the smallest trial step is
    within ``loss_tolerance``·|f| of f (flat to the tolerance: nothing left to gain), else a failure."""
    if np.isfinite(f_smallest) and f_smallest - f <= loss_tolerance * abs(f):
        return recorder.result(
            u, f, Status.CONVERGED_LOSS, f"{reason}, but the loss is flat to {loss_tolerance:g} x loss there"
        )
    return recorder.result(
        u, f, Status.LINE_SEARCH_FAILED, f"{reason}: the loss may be non-smooth here or its derivatives wrong"
    )
