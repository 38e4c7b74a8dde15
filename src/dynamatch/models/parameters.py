r"""Model parameters in real units, and the *kernel space* the kernels and optimisers work in.

Every parameter has a kind that fixes its unit and its kernel-space value:

========== ============================ =====================================================
kind       real unit (name suffix)      kernel value
========== ============================ =====================================================
``db``     dB (``_db``)                 the same number
``ratio``  ``:1`` (``ratio``)           the same number
``time``   ms (``_ms``), 10–90 % time   one-pole coefficient :math:`\alpha = 1 - e^{-2200/(t f_s)}`
``hz``     Hz (``_hz``), 0 Hz allowed     one-pole coefficient :math:`\alpha = 1 - e^{-2\pi f / f_s}`
``share``  unitless fraction in [0, 1]  the same number
========== ============================ =====================================================

Coefficients rather than times are what the recursions contain, so derivatives are taken (and bounded
sigmoids live) in coefficient space, as in the 4A-2A reference parametrisation.  A time parameter
``attack_ms`` has the kernel name ``alpha_attack``; a frequency ``emphasis_hz`` has ``alpha_emphasis``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..units import coefficient_to_ms, ms_to_coefficient

KINDS = ("db", "ratio", "time", "hz", "share")
UNITS = {"db": "dB", "ratio": ": 1", "time": "ms", "hz": "Hz", "share": ""}


MODES: tuple[str, ...] = ("compress", "limit")  # the LA-2A switch; every map, dataset and model uses these two


@dataclass(frozen=True)
class Parameter:
    """One model parameter: real-unit ``name``, ``kind``, fitting ``bounds`` (None = free), the
    ``default`` start, the ``neutral`` value at which the model reduces to its parent (None when there is
    none) and further ``starts`` tried for it when a richer model is fitted from its parent's optimum."""

    name: str
    kind: str
    default: float
    bounds: tuple[float, float] | None = None
    neutral: float | None = None
    starts: tuple[float, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"parameter {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.bounds is not None:
            low, high = (float(v) for v in self.bounds)
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ParameterError(f"parameter {self.name!r}: bounds must be finite with low < high, got {self.bounds}")
            if (self.kind == "time" and low <= 0.0) or (self.kind == "hz" and low < 0.0):
                raise ParameterError(f"parameter {self.name!r}: a {self.kind} bound must be > 0, got {low}")
            object.__setattr__(self, "bounds", (low, high))

    @property
    def kernel_name(self) -> str:
        """Name of the kernel-space value: ``alpha_<stem>`` for times and frequencies, else ``name``."""
        if self.kind == "time":
            return "alpha_" + self.name.removesuffix("_ms")
        if self.kind == "hz":
            return "alpha_" + self.name.removesuffix("_hz")
        return self.name

    @property
    def unit(self) -> str:
        return UNITS[self.kind]

    def to_kernel(self, value, sample_rate: float):
        """Real units -> kernel space."""
        if self.kind == "time":
            return ms_to_coefficient(value, sample_rate)
        if self.kind == "hz":
            return -np.expm1(-2.0 * np.pi * np.asarray(value, dtype=float) / float(sample_rate))
        return np.asarray(value, dtype=float)

    def from_kernel(self, value, sample_rate: float):
        """Kernel space -> real units."""
        if self.kind == "time":
            return coefficient_to_ms(value, sample_rate)
        if self.kind == "hz":
            return -float(sample_rate) * np.log1p(-np.asarray(value, dtype=float)) / (2.0 * np.pi)
        return np.asarray(value, dtype=float)

    def kernel_limits(self, sample_rate: float, bounds: tuple[float, float] | None) -> tuple[float, float]:
        """(lower, upper) kernel-space limits for real-unit ``bounds`` (±inf when free).

        Coefficients fall as times grow, so a time's lower coefficient limit is α(longest time)."""
        if bounds is None:
            return -math.inf, math.inf
        ends = sorted(float(self.to_kernel(v, sample_rate)) for v in bounds)
        return ends[0], ends[1]

    def check(self, value: float, model: str) -> float:
        """``value`` as a float, or ParameterError when it is not a valid value of this parameter."""
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ParameterError(f"{model}: {self.name} must be a number, got {value!r}") from None
        if not math.isfinite(value):
            raise ParameterError(f"{model}: {self.name} must be finite, got {value}")
        if self.kind == "ratio" and value < 1.0:
            raise ParameterError(f"{model}: {self.name} must be >= 1 (1 = no compression), got {value}")
        if self.kind == "time" and value <= 0.0:
            raise ParameterError(f"{model}: {self.name} must be > 0 {self.unit}, got {value}")
        if self.kind == "hz" and value < 0.0:
            raise ParameterError(f"{model}: {self.name} must be >= 0 {self.unit}, got {value}")
        if self.kind == "share" and not 0.0 <= value <= 1.0:
            raise ParameterError(f"{model}: {self.name} must be between 0 and 1, got {value}")
        return value
