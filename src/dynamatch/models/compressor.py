"""A grey-box compressor in real units: any member of :mod:`dynamatch.models.family`.

The default member is ``ff5``, the 4A-2A differentiable feed-forward compressor, whose five parameters
are always in this order (:data:`PARAMETER_NAMES`): threshold (dB), ratio, attack (ms, 10–90 % rise of
the linear gain), release (ms) and make-up gain (dB)::

    >>> comp = Compressor(threshold_db=-20, ratio=4, attack_ms=5, release_ms=100)
    >>> y = comp.process(x, sample_rate=44100)                      # doctest: +SKIP
    >>> opto = Compressor(model="opto", threshold_db=-20, slow_share=0.5)  # others at their defaults

Parameters a member has beyond FF-5's take their default when not given.  Rendering uses the member's
generated kernel (:mod:`dynamatch.kernels.generated`); streaming is bit-identical to one-shot processing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import NonFiniteAudioError, ParameterError
from ..kernels.generated import kernels_of
from ..units import db_to_gain
from .family import ModelSpec, model_spec
from .shapes import as_channel_block, channels_of, check_sample_rate

PARAMETER_NAMES: tuple[str, ...] = model_spec("ff5").parameter_names


class Compressor:
    """A family member with its parameters in real units; immutable, validated on construction."""

    __slots__ = ("model", "_values")

    def __init__(self, threshold_db: float | None = None, ratio: float | None = None,
                 attack_ms: float | None = None, release_ms: float | None = None,
                 makeup_db: float | None = None, *, model: str = "ff5", **parameters: float) -> None:
        spec = model_spec(model)
        given = {"threshold_db": threshold_db, "ratio": ratio, "attack_ms": attack_ms,
                 "release_ms": release_ms, "makeup_db": makeup_db}
        given = {k: v for k, v in given.items() if v is not None} | parameters
        unknown = sorted(set(given) - set(spec.parameter_names))
        if unknown:
            raise ParameterError(
                f"model {model!r} has no parameter(s) {', '.join(unknown)}; it has {', '.join(spec.parameter_names)}"
            )
        values = {p.name: p.check(given.get(p.name, p.default), model) for p in spec.parameters}
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "_values", values)

    # -- values ---------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> float:
        try:
            return object.__getattribute__(self, "_values")[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} {self.model!r} has no parameter {name!r}") from None

    def __setattr__(self, name, value) -> None:
        raise AttributeError("Compressor is immutable: use with_params(...)")

    def __eq__(self, other) -> bool:
        return isinstance(other, Compressor) and self.model == other.model and self._values == other._values

    def __hash__(self) -> int:
        return hash((self.model, tuple(self._values.values())))

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v:.6g}" for k, v in self._values.items())
        prefix = "" if self.model == "ff5" else f"model={self.model!r}, "
        return f"Compressor({prefix}{values})"

    def __reduce__(self):
        return (_rebuild, (self.model, dict(self._values)))

    @property
    def spec(self) -> ModelSpec:
        return model_spec(self.model)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self.spec.parameter_names

    def to_dict(self) -> dict[str, float]:
        """Parameters in real units, in the member's order."""
        return dict(self._values)

    def to_vector(self) -> np.ndarray:
        """Parameters as a float64 array in the member's order."""
        return np.array(list(self._values.values()), dtype=float)

    @classmethod
    def from_vector(cls, vector, model: str = "ff5") -> "Compressor":
        """Inverse of :meth:`to_vector`."""
        names = model_spec(model).parameter_names
        values = np.asarray(vector, dtype=float).ravel()
        if values.shape != (len(names),):
            raise ParameterError(f"model {model!r} takes {len(names)} parameters {names}, got {values.size}")
        return cls(model=model, **dict(zip(names, values.tolist())))

    def with_params(self, **changes: float) -> "Compressor":
        """A copy with some parameters changed."""
        return Compressor(model=self.model, **(self._values | changes))

    def as_model(self, model: str) -> "Compressor":
        """This compressor as another member: shared parameters carried over, the others at their
        neutral values (where the member has one) or defaults.  For a nested extension of this model
        the result renders identically (up to the sigmoid margin of bounded neutral values)."""
        spec = model_spec(model)
        values = {}
        for p in spec.parameters:
            if p.name in self._values:
                values[p.name] = self._values[p.name]
            else:
                values[p.name] = p.neutral if p.neutral is not None else p.default
        return Compressor(model=model, **values)

    # -- kernel space -----------------------------------------------------------------------------
    def kernel_vector(self, sample_rate: float) -> np.ndarray:
        """Kernel-space parameters (coefficients for times/frequencies), ``makeup_db`` last."""
        check_sample_rate(sample_rate)
        return np.array([float(p.to_kernel(self._values[p.name], sample_rate)) for p in self.spec.parameters])

    @classmethod
    def from_kernel_vector(cls, q, sample_rate: float, model: str = "ff5") -> "Compressor":
        """Inverse of :meth:`kernel_vector`."""
        spec = model_spec(model)
        q = np.asarray(q, dtype=float).ravel()
        if q.shape != (len(spec.parameters),):
            raise ParameterError(f"model {model!r} takes {len(spec.parameters)} kernel parameters, got {q.size}")
        return cls(model=model, **{p.name: float(p.from_kernel(v, sample_rate)) for p, v in zip(spec.parameters, q)})

    def coefficients(self, sample_rate: float) -> tuple[float, float]:
        """(attack, release) one-pole coefficients at ``sample_rate``."""
        q = self.kernel_vector(sample_rate)
        names = self.spec.kernel_names
        return float(q[names.index("alpha_attack")]), float(q[names.index("alpha_release")])

    # -- processing -----------------------------------------------------------------------------
    def gain(self, x: np.ndarray, sample_rate: float) -> np.ndarray:
        """Linear gain (before make-up) for ``x``; one gain per linked channel group: (samples,) for
        (samples,) or (channels, samples) input, (batch, samples) for (batch, channels, samples)."""
        x = np.asarray(x)
        if x.ndim == 3:
            return np.stack([self.stream(sample_rate, x.shape[1]).gain(item) for item in x])
        return self.stream(sample_rate, channels=channels_of(x)).gain(x)

    def process(self, x: np.ndarray, sample_rate: float) -> np.ndarray:
        """Compress ``x``: shape (samples,) mono, (channels, samples) stereo-linked, or
        (batch, channels, samples); returns float64 of the same shape."""
        x = np.asarray(x)
        if x.ndim == 3:
            return np.stack([self.stream(sample_rate, x.shape[1]).process(item) for item in x])
        return self.stream(sample_rate, channels=channels_of(x)).process(x)

    __call__ = process

    def stream(self, sample_rate: float, channels: int = 1) -> "CompressorStream":
        """A stateful processor for block-by-block use (output identical for any block size)."""
        return CompressorStream(self, float(sample_rate), int(channels))


def _rebuild(model: str, values: dict[str, float]) -> Compressor:
    return Compressor(model=model, **values)


@dataclass
class CompressorStream:
    """Block-by-block processing with the model's state carried across calls."""

    compressor: Compressor
    sample_rate: float
    channels: int = 1
    state: np.ndarray = field(default=None)  # type: ignore[assignment]
    output_state: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        check_sample_rate(self.sample_rate)
        self._kernels = kernels_of(self.compressor.spec.module_name)
        q = self.compressor.kernel_vector(self.sample_rate)
        self._q = np.ascontiguousarray(q[:-1])
        self._makeup = float(db_to_gain(self.compressor.makeup_db))
        if self.state is None:
            self.reset()

    def reset(self) -> None:
        """Back to the rest state, as at the start of a signal."""
        self.state = np.array(self._kernels.REST_STATE, dtype=np.float64)
        rest = np.array(self._kernels.OUTPUT_REST_STATE, dtype=np.float64)
        self.output_state = np.tile(rest, (self.channels, 1)).reshape(self.channels, rest.size)

    @property
    def state_gain(self) -> float:
        """The model's first state (the smoothed linear gain for the gain-ballistics members)."""
        return float(self.state[0])

    def render(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Advance the state over ``block``; (output before make-up, same shape as the block; linear gain)."""
        x = np.asarray(block, dtype=np.float64)
        x2d = as_channel_block(x, self.channels)
        if not np.isfinite(x2d).all():
            raise NonFiniteAudioError("input contains NaN or infinite samples; replace them before processing")
        out = np.empty_like(x2d)
        gain = np.empty(x2d.shape[1], dtype=np.float64)
        self._kernels.render(x2d, self._q, self.state, self.output_state, out, gain)
        return out.reshape(x.shape), gain

    def gain(self, block: np.ndarray) -> np.ndarray:
        """Advance the state over ``block`` and return its linked linear gain (no make-up)."""
        return self.render(block)[1]

    def process(self, block: np.ndarray) -> np.ndarray:
        """Compress one block: (samples,) for mono or (channels, samples)."""
        return self.render(block)[0] * self._makeup
