"""Knob → compressor-parameter maps (the 4A-2A paper's main result, for any device).

A map holds, per mode ("compress"/"limit"), knots of the knob (peak reduction) and every parameter
of one family member (``model``, :mod:`dynamatch.models.family`) in real units fitted at each knot.
Between knots each parameter is interpolated independently in real units (threshold dB, ratio,
attack ms, …, make-up dB), linearly or with a not-a-knot cubic spline (as the paper); outside the
knots the end values are held (clamped), so a knob anywhere in 0–100 gives a valid compressor.

File format (JSON, ``format_version`` 2; version 1 files have no ``model`` and are ``ff5``)::

    {"format": "dynamatch.parameter_map", "format_version": 2, "model": "opto-hp", "knob": "peak_reduction",
     "interpolation": "linear" | "spline", "sample_rate": 44100,
     "modes": {"compress": {"peak_reduction": [...], "threshold_db": [...], ...}, "limit": {...}},
     "fit_statistics": {"compress": [{"peak_reduction": 40, "esr": ...}, ...], ...},
     "provenance": {...}}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline

from ..documents import PARAMETER_MAP, read_document, write_document
from ..errors import ModelFileError, ParameterError
from ..models.compressor import Compressor
from ..models.family import current_name, model_spec
from ..models.parameters import MODES  # noqa: F401  (re-exported)
from ..models.parameters import Parameter

MAP_FORMAT = PARAMETER_MAP.format
PRESETS_DIR_VARIABLE = "DYNAMATCH_PRESETS_DIR"
MAP_FORMAT_VERSION = PARAMETER_MAP.version
INTERPOLATIONS = ("linear", "spline")
PRESETS = ("la2a",)


@dataclass(frozen=True)
class ParameterMap:
    """Per-mode knots of peak reduction → the parameters of family member ``model`` in real units."""

    modes: dict[str, dict[str, np.ndarray]]
    interpolation: str = "linear"
    sample_rate: float | None = None
    fit_statistics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    model: str = "ff5"
    knob: str = "peak_reduction"  # what the knots are: the LA-2A's peak reduction, or a captured control's name

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ParameterError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if not self.modes:
            raise ParameterError("a parameter map needs at least one mode")
        names = model_spec(self.model).parameter_names
        clean: dict[str, dict[str, np.ndarray]] = {}
        for mode, table in self.modes.items():
            columns = ("peak_reduction",) + names
            missing = [c for c in columns if c not in table]
            if missing:
                raise ParameterError(f"mode {mode!r} of the map lacks {missing}")
            arrays = {c: np.asarray(table[c], dtype=float) for c in columns}
            order = np.argsort(arrays["peak_reduction"])
            arrays = {c: a[order] for c, a in arrays.items()}
            knots = arrays["peak_reduction"]
            if knots.ndim != 1 or knots.size < 1 or any(a.shape != knots.shape for a in arrays.values()):
                raise ParameterError(f"mode {mode!r}: every column needs one value per knot")
            if np.any(np.diff(knots) <= 0):
                raise ParameterError(f"mode {mode!r}: knots must be distinct, got {knots.tolist()}")
            if not all(np.all(np.isfinite(a)) for a in arrays.values()):
                raise ParameterError(f"mode {mode!r}: the map contains non-finite values")
            clean[mode] = arrays
        object.__setattr__(self, "modes", clean)
        object.__setattr__(self, "_splines", {})

    # -- evaluation --------------------------------------------------------------------------
    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The model's parameters, in the order :meth:`parameters` returns them."""
        return model_spec(self.model).parameter_names

    def knots(self, mode: str = "compress") -> np.ndarray:
        """Peak-reduction values at which the map was fitted."""
        return self._table(mode)["peak_reduction"].copy()

    def parameters(self, peak_reduction: float | np.ndarray, mode: str = "compress") -> np.ndarray:
        """Interpolated parameters in real units, shape (..., P) in :attr:`parameter_names` order."""
        table = self._table(mode)
        names = self.parameter_names
        knots = table["peak_reduction"]
        pr = np.clip(np.asarray(peak_reduction, dtype=float), knots[0], knots[-1])
        if knots.size == 1:
            return np.broadcast_to(np.array([table[n][0] for n in names]), pr.shape + (len(names),)).copy()
        if self.interpolation == "linear" or knots.size < 3:
            columns = [np.interp(pr, knots, table[n]) for n in names]
        else:
            columns = [self._spline(mode, n)(pr) for n in names]
        return np.stack(columns, axis=-1)

    def compressor(self, peak_reduction: float, mode: str = "compress") -> Compressor:
        """The compressor at one knob setting (parameters clamped to valid ranges, see :func:`clamp`)."""
        if not np.isfinite(peak_reduction):
            raise ParameterError(f"peak_reduction must be finite, got {peak_reduction}")
        values = self.parameters(float(peak_reduction), mode)
        spec = model_spec(self.model)
        return Compressor(model=self.model, **{p.name: clamp(p, v) for p, v in zip(spec.parameters, values)})

    def spline_segments(self, mode: str = "compress") -> dict[str, np.ndarray]:
        """Piecewise-cubic coefficients of every parameter for a C++ port.

        Returns ``{"breakpoints": x (n,), name: c (4, n-1)}`` such that on [x_k, x_{k+1}]
        ``p(v) = c[0,k] d³ + c[1,k] d² + c[2,k] d + c[3,k]`` with ``d = v − x_k`` (scipy's PPoly layout);
        for linear interpolation the cubic and quadratic rows are zero.
        """
        table = self._table(mode)
        knots = table["peak_reduction"]
        out: dict[str, np.ndarray] = {"breakpoints": knots.copy()}
        for name in self.parameter_names:
            values = table[name]
            if knots.size == 1:
                out[name] = np.array([[0.0], [0.0], [0.0], [values[0]]])
            elif self.interpolation == "spline" and knots.size >= 3:
                out[name] = self._spline(mode, name).c.copy()
            else:
                slope = np.diff(values) / np.diff(knots)
                zeros = np.zeros_like(slope)
                out[name] = np.stack([zeros, zeros, slope, values[:-1]])
        return out

    def with_interpolation(self, interpolation: str) -> "ParameterMap":
        """The same knots with another interpolation."""
        return ParameterMap(self.modes, interpolation, self.sample_rate, self.fit_statistics, self.provenance, self.model,
                            self.knob)

    # -- files -------------------------------------------------------------------------------
    def to_document(self) -> dict[str, Any]:
        return {
            "format": MAP_FORMAT,
            "format_version": MAP_FORMAT_VERSION,
            "model": self.model,
            "knob": self.knob,
            "interpolation": self.interpolation,
            "sample_rate": self.sample_rate,
            "modes": {m: {c: a.tolist() for c, a in t.items()} for m, t in self.modes.items()},
            "fit_statistics": self.fit_statistics,
            "provenance": self.provenance,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the map as versioned JSON, atomically."""
        return write_document(path, PARAMETER_MAP, self.to_document())

    @classmethod
    def from_document(cls, document: dict[str, Any], source: str = "<map>") -> "ParameterMap":
        try:
            knob = str(document.get("knob", "peak_reduction"))
            tables = list(document["modes"].values())
            names = [name for name in tables[0] if name != knob] if tables and isinstance(tables[0], dict) else []
            return cls(
                modes=document["modes"],
                interpolation=document.get("interpolation", "linear"),
                sample_rate=document.get("sample_rate"),
                fit_statistics=document.get("fit_statistics", {}),
                provenance=document.get("provenance", {}),
                model=current_name(document.get("model", "ff5"), names),
                knob=knob,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ModelFileError(f"{source}: malformed parameter map ({error}); re-export it") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ParameterMap":
        """Read a map file written by :meth:`save` (or a shipped preset file)."""
        return cls.from_document(read_document(path, PARAMETER_MAP, what="model file"), str(path))

    @classmethod
    def preset(cls, name: str = "la2a", interpolation: str | None = None) -> "ParameterMap":
        """A built-in map, or the user's own fit installed under that name (see :func:`install_preset`).

        ``"la2a"``: the 4A-2A paper's published LA-2A fits (see its provenance), until a fit of the real
        SignalTrain set is installed in its place.
        """
        user_file = user_presets_dir() / f"{name}.json"
        if user_file.is_file():
            loaded = cls.load(user_file)
        elif name in PRESETS:
            with resources.as_file(resources.files("dynamatch") / "presets" / f"{name}.json") as path:
                loaded = cls.load(path)
        else:
            raise ParameterError(f"unknown preset {name!r}; available: {', '.join(available_presets())}")
        return loaded if interpolation is None else loaded.with_interpolation(interpolation)

    # -- internals ---------------------------------------------------------------------------
    def _table(self, mode: str) -> dict[str, np.ndarray]:
        if mode not in self.modes:
            raise ParameterError(f"mode {mode!r} is not in this map (it has: {', '.join(self.modes)})")
        return self.modes[mode]

    def _spline(self, mode: str, name: str) -> CubicSpline:
        key = (mode, name)
        cache = self._splines  # type: ignore[attr-defined]
        if key not in cache:
            table = self._table(mode)
            cache[key] = CubicSpline(table["peak_reduction"], table[name], bc_type="not-a-knot")
        return cache[key]


def clamp(parameter: Parameter, value: float) -> float:
    """``value`` moved into the parameter's valid range (interpolation, a spline especially, can leave it):
    ratio >= 1, times >= 1 µs, frequencies >= 0 Hz, shares in [0, 1]."""
    value = float(value)
    if parameter.kind == "ratio":
        return max(value, 1.0)
    if parameter.kind == "time":
        return max(value, 1e-3)
    if parameter.kind == "hz":
        return max(value, 0.0)
    if parameter.kind == "share":
        return min(max(value, 0.0), 1.0)
    return value


def user_presets_dir() -> Path:
    """Where installed presets live: ``$DYNAMATCH_PRESETS_DIR`` or ``~/.local/share/dynamatch/presets``."""
    configured = os.environ.get(PRESETS_DIR_VARIABLE)
    return Path(configured) if configured else Path.home() / ".local" / "share" / "dynamatch" / "presets"


def available_presets() -> list[str]:
    """Shipped presets and installed ones."""
    directory = user_presets_dir()
    installed = [p.stem for p in directory.glob("*.json")] if directory.is_dir() else []
    return sorted(set(PRESETS) | set(installed))


def install_preset(parameter_map: ParameterMap, name: str) -> Path:
    """Install ``parameter_map`` as preset ``name`` (it then replaces a shipped preset of that name)."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ParameterError(f"preset names are letters, digits, - and _; got {name!r}")
    return parameter_map.save(user_presets_dir() / f"{name}.json")
