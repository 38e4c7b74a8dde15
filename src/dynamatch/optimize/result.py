"""The one result type every dynamatch optimiser returns (scipy.optimize style).

A fit ends with a :class:`Status` (an integer code), a one-sentence ``message`` and a ``success`` flag;
``history`` holds one :class:`IterationRecord` per iterate, iterate 0 being the start.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ParameterError
from ..models.compressor import Compressor


class Status(enum.IntEnum):
    """How a fit ended; shared by Newton, Levenberg–Marquardt and Adam (RUNNING only in callbacks)."""

    RUNNING = -1  #: an intermediate result handed to the callback

    CONVERGED_GRADIENT = 0  #: max |gradient| (in the unconstrained variables) under the tolerance
    CONVERGED_DECREMENT = 1  #: Newton decrement g^T H^-1 g / 2 under tolerance x |loss|, H positive definite
    CONVERGED_STEP = 2  #: the full step taken was negligible relative to the parameters
    CONVERGED_LOSS = 7  #: the loss fell by under tolerance x |loss| in each of the last few iterations
    MAX_ITERATIONS = 3  #: iteration budget spent before any convergence test passed
    LINE_SEARCH_FAILED = 4  #: no step along the search direction decreased the loss enough
    CALLBACK_STOP = 5  #: the callback raised StopIteration
    NON_FINITE = 6  #: the objective returned NaN or infinity where a finite value was needed

    @property
    def converged(self) -> bool:
        return self in (
            Status.CONVERGED_GRADIENT,
            Status.CONVERGED_DECREMENT,
            Status.CONVERGED_STEP,
            Status.CONVERGED_LOSS,
        )


@dataclass(frozen=True)
class IterationRecord:
    """One iterate of a fit.

    ``step_size`` is the multiplier of the search direction that produced this iterate (the line-search
    fraction of the full Newton step for Newton, 1 for an accepted Levenberg–Marquardt step, the learning
    rate for Adam; 0 at iteration 0).  ``decrement`` is the Newton decrement ``g^T H~^-1 g / 2`` at this
    iterate with the (modified, positive definite) Hessian H~ (NaN for Adam, or when not computed).
    """

    iteration: int
    loss: float
    gradient_norm: float
    step_size: float
    decrement: float
    elapsed_seconds: float


@dataclass(frozen=True, eq=False)
class FitResult:
    """Outcome of a fit.

    ``x`` is the kernel parameter vector (threshold_db, ratio, alpha_attack, alpha_release, makeup_db for
    FF-5; see :mod:`dynamatch.models.parameters`), ``params`` the fitted
    :class:`~dynamatch.models.compressor.Compressor` in real units or
    None when the problem is not a compressor.  ``nfev`` counts every call to the objective (loss, loss and
    gradient, or loss, gradient and Hessian, one each).
    """

    x: np.ndarray
    loss: float
    success: bool
    status: Status
    message: str
    nit: int
    nfev: int
    history: tuple[IterationRecord, ...]
    elapsed_seconds: float
    method: str
    params: Compressor | None = None

    def __str__(self) -> str:
        lines = [
            f"{self.method}: {self.status.name} ({'success' if self.success else 'failure'}): {self.message}",
            f"  loss {self.loss:.6g} after {self.nit} iterations, {self.nfev} evaluations, "
            f"{self.elapsed_seconds:.3g} s",
        ]
        if self.params is not None:
            if self.params.model != "ff5":
                lines.append(f"  model {self.params.model}")
            rows = list(self.params.to_dict().items())
        else:
            rows = [(f"x[{i}]", float(v)) for i, v in enumerate(np.ravel(self.x))]
        width = max(len(name) for name, _ in rows)
        lines += [f"  {name:<{width}}  {value:>12.6g}" for name, value in rows]
        return "\n".join(lines)


class FitRecorder:
    """Bookkeeping shared by the optimisers: counts evaluations, keeps the history, builds results.

    Wraps ``objective`` so every call is counted; ``to_kernel`` maps the optimiser's variables to the
    kernel parameters reported in :attr:`FitResult.x`.
    """

    def __init__(self, objective: Any, method: str, to_kernel) -> None:
        self.objective = objective
        self.method = method
        self.to_kernel = to_kernel
        self.nfev = 0
        self.history: list[IterationRecord] = []
        self.start = time.perf_counter()

    def elapsed_seconds(self) -> float:
        return time.perf_counter() - self.start

    def loss(self, q: np.ndarray) -> float:
        self.nfev += 1
        return float(self.objective.loss(q))

    def loss_grad(self, q: np.ndarray) -> tuple[float, np.ndarray]:
        self.nfev += 1
        f, g = self.objective.loss_grad(q)
        return float(f), np.asarray(g, dtype=float)

    def loss_grad_hess(self, q: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        self.nfev += 1
        f, g, h = self.objective.loss_grad_hess(q)
        return float(f), np.asarray(g, dtype=float), np.asarray(h, dtype=float)

    def record(self, loss: float, gradient_norm: float, step_size: float, decrement: float) -> None:
        self.history.append(
            IterationRecord(
                iteration=len(self.history),
                loss=float(loss),
                gradient_norm=float(gradient_norm),
                step_size=float(step_size),
                decrement=float(decrement),
                elapsed_seconds=self.elapsed_seconds(),
            )
        )

    def loss_stalled(self, loss_tolerance: float, iterations: int) -> bool:
        """True when each of the last ``iterations`` iterations lowered the loss by at most
        ``loss_tolerance`` times its value (a stall: the loss is flat to that precision)."""
        losses = [record.loss for record in self.history[-(iterations + 1) :]]
        return len(losses) == iterations + 1 and all(
            before - after <= loss_tolerance * abs(after) for before, after in zip(losses, losses[1:])
        )

    def stop_requested(self, callback, u: np.ndarray, loss: float) -> bool:
        """Call ``callback(intermediate_result)``; True when it raised StopIteration (scipy convention)."""
        if callback is None:
            return False
        try:
            callback(self.result(u, loss, Status.RUNNING, f"iteration {len(self.history) - 1}"))
        except StopIteration:
            return True
        return False

    def result(self, u: np.ndarray, loss: float, status: Status, message: str) -> FitResult:
        q = np.asarray(self.to_kernel(u), dtype=float)
        return FitResult(
            x=q,
            loss=float(loss),
            success=status.converged,
            status=status,
            message=message,
            nit=max(len(self.history) - 1, 0),
            nfev=self.nfev,
            history=tuple(self.history),
            elapsed_seconds=self.elapsed_seconds(),
            method=self.method,
            params=_compressor_of(self.objective, q),
        )


def _compressor_of(objective: Any, q: np.ndarray) -> Compressor | None:
    """The Compressor for kernel parameters ``q`` when the objective knows how to build one."""
    convert = getattr(objective, "compressor", None)
    if convert is None:
        return None
    try:
        return convert(q)
    except ParameterError:  # e.g. an unbounded fit that left the valid range
        return None


def is_finite(*values) -> bool:
    """True when every value (scalars or arrays) is finite."""
    return all(bool(np.all(np.isfinite(v))) for v in values)
