"""Fitting: damped Newton, Levenberg–Marquardt damped Newton and Adam, one result type.

>>> result = minimize(objective, Compressor(), method="newton")   # doctest: +SKIP
>>> print(result)                                                 # doctest: +SKIP

``objective`` is any object with ``n_parameters``, ``loss(q)``, ``loss_grad(q) -> (f, g)`` and
``loss_grad_hess(q) -> (f, g, H)`` in kernel parameters q (for a compressor also ``sample_rate``,
``kernel_params`` and ``compressor_from_kernel_params``), e.g. :class:`CompressorObjective`.
"""

from __future__ import annotations

from typing import Any

from ..errors import ParameterError
from .adam import minimize_adam
from .levenberg_marquardt import minimize_levenberg_marquardt
from .newton import minimize_newton
from .objective import CompressorObjective
from .parametrization import Bounds, Parametrization
from .result import FitResult, IterationRecord, Status

METHODS = {"newton": minimize_newton, "lm": minimize_levenberg_marquardt, "adam": minimize_adam}


def minimize(objective: Any, q0, method: str = "newton", **options: Any) -> FitResult:
    """Minimise ``objective`` from ``q0`` (kernel parameters, or a Compressor) with ``method``:
    ``"newton"`` (:func:`minimize_newton`), ``"lm"`` (:func:`minimize_levenberg_marquardt`) or
    ``"adam"`` (:func:`minimize_adam`); ``options`` go to that function."""
    try:
        function = METHODS[method]
    except KeyError:
        raise ParameterError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}") from None
    return function(objective, q0, **options)


__all__ = [
    "Bounds",
    "CompressorObjective",
    "FitResult",
    "IterationRecord",
    "METHODS",
    "Parametrization",
    "Status",
    "minimize",
    "minimize_adam",
    "minimize_levenberg_marquardt",
    "minimize_newton",
]
