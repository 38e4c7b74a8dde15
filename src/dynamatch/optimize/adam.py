r"""Adam (Kingma & Ba 2015) in the unconstrained variables u: the first-order baseline.

With gradient g_k of f(u) = F(q(u)) (one ``loss_grad`` call per iteration):

.. math::

    m_k = \beta_1 m_{k-1} + (1-\beta_1) g_k,\quad v_k = \beta_2 v_{k-1} + (1-\beta_2) g_k^2,\quad
    u_{k+1} = u_k - \eta\,\frac{m_k/(1-\beta_1^k)}{\sqrt{v_k/(1-\beta_2^k)} + \epsilon}.

Adam does not decrease the loss monotonically, so the result is the iterate with the lowest loss seen.
It stops on max|g| ≤ ``gradient_tolerance`` or after ``max_iterations``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .parametrization import Bounds, Parametrization, start_kernel_params
from .result import FitRecorder, FitResult, Status, is_finite


def minimize_adam(
    objective: Any,
    q0,
    *,
    bounds: Bounds | None = Bounds(),
    learning_rate: float = 0.05,
    max_iterations: int = 1000,
    gradient_tolerance: float = 1e-9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
    callback: Callable[[FitResult], None] | None = None,
) -> FitResult:
    """Minimise ``objective`` from ``q0`` (array, or a Compressor) with Adam on ``loss_grad``.

    ``objective`` needs ``loss_grad(q) -> (f, g)`` and ``n_parameters`` (plus ``sample_rate`` when
    ``bounds`` is not None).  ``learning_rate`` is in units of u (dB for threshold and make-up, logits for
    the bounded parameters).  ``callback`` as for :func:`~dynamatch.optimize.newton.minimize_newton`.
    """
    parametrization = Parametrization.for_objective(objective, bounds)
    recorder = FitRecorder(objective, "adam", parametrization.to_kernel)
    u = parametrization.from_kernel(start_kernel_params(objective, q0))
    f, g, _ = parametrization.transform(u, *recorder.loss_grad(parametrization.to_kernel(u)))
    if not is_finite(f, g):
        return recorder.result(u, f, Status.NON_FINITE, "the objective is not finite at the start")
    best_u, best_f = u, f
    first_moment, second_moment = np.zeros_like(u), np.zeros_like(u)

    while True:
        gradient_norm = float(np.max(np.abs(g)))
        iteration = len(recorder.history)
        recorder.record(f, gradient_norm, learning_rate if iteration > 0 else 0.0, np.nan)
        if f < best_f:
            best_u, best_f = u, f
        if iteration > 0 and recorder.stop_requested(callback, u, f):
            return recorder.result(best_u, best_f, Status.CALLBACK_STOP, "the callback raised StopIteration")
        if gradient_norm <= gradient_tolerance:
            message = f"max |gradient| {gradient_norm:.3g} <= {gradient_tolerance:g}"
            return recorder.result(best_u, best_f, Status.CONVERGED_GRADIENT, message)
        if iteration >= max_iterations:
            return recorder.result(
                best_u, best_f, Status.MAX_ITERATIONS, f"reached max_iterations = {max_iterations} (lowest loss kept)"
            )

        step = iteration + 1
        first_moment = beta1 * first_moment + (1.0 - beta1) * g
        second_moment = beta2 * second_moment + (1.0 - beta2) * g * g
        corrected_first = first_moment / (1.0 - beta1**step)
        corrected_second = second_moment / (1.0 - beta2**step)
        u = u - learning_rate * corrected_first / (np.sqrt(corrected_second) + epsilon)
        f, g, _ = parametrization.transform(u, *recorder.loss_grad(parametrization.to_kernel(u)))
        if not is_finite(f, g):
            return recorder.result(best_u, best_f, Status.NON_FINITE, "the objective is not finite at the next iterate")
