"""Hosting third-party plugins headless, for captures and baselines: one interface over plugin formats.

:func:`open_plugin` takes a VST3 path (``/usr/lib/vst3/ZamComp.vst3``, hosted by pedalboard).  A
:class:`HostedPlugin` lists its parameters (:meth:`HostedPlugin.parameters`) and renders mono audio
at a setting (:meth:`HostedPlugin.render`); a setting names parameters by pedalboard's snake-case
name (``threshold_db``) or by the plugin's own display name (``"Peak Reduction"``), case-insensitively.
Values are in the parameter's own units; out-of-range values raise :class:`ParameterError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import AudioFileError, ParameterError


@dataclass(frozen=True)
class PluginParameter:
    """One automatable parameter: its key (used in settings), display name, unit, range and current value."""

    key: str
    name: str
    unit: str
    min_value: float
    max_value: float
    value: float


class HostedPlugin:
    """A VST3 plugin loaded by pedalboard."""

    def __init__(self, path: str | Path) -> None:
        try:
            import pedalboard
        except ImportError as error:  # pragma: no cover - pedalboard is a core dependency of capture
            raise ImportError(f"hosting VST3 plugins needs pedalboard ({error})") from None
        self.path = str(path)
        if not Path(self.path).exists():
            raise AudioFileError(f"{self.path}: plugin not found; give the path of a .vst3 bundle")
        try:
            self._plugin = pedalboard.load_plugin(self.path)
        except Exception as error:  # pedalboard raises ImportError/RuntimeError with the loader's message
            raise AudioFileError(f"{self.path}: cannot load the plugin ({str(error).splitlines()[0]})") from None
        self.name = getattr(self._plugin, "name", Path(self.path).stem)

    def __repr__(self) -> str:
        return f"HostedPlugin({self.path!r})"

    def parameters(self) -> list[PluginParameter]:
        """The plugin's parameters (read-only meters and host bookkeeping left out)."""
        out = []
        for key, parameter in self._plugin.parameters.items():
            if key in ("buffer_size_frames", "sample_rate_frames", "current_program", "bypass"):
                continue
            try:
                low, high = float(parameter.min_value), float(parameter.max_value)
                value = float(getattr(self._plugin, key))
            except (TypeError, ValueError, AttributeError):
                continue  # choice/boolean parameters with text values
            out.append(PluginParameter(key, parameter.name, (parameter.label or "").strip(), low, high, value))
        return out

    def resolve(self, name: str) -> PluginParameter:
        """The parameter called ``name`` (key or display name, case-insensitive)."""
        wanted = name.strip().lower()
        parameters = self.parameters()
        for parameter in parameters:
            if wanted in (parameter.key.lower(), parameter.name.lower()):
                return parameter
        known = ", ".join(p.key for p in parameters)
        raise ParameterError(f"{self.path}: no parameter {name!r}; it has: {known} (see `dynamatch capture PLUGIN --list`)")

    def apply(self, settings: Mapping[str, float]) -> dict[str, float]:
        """Set parameters; returns the values the plugin actually holds (plugins snap to their steps)."""
        applied = {}
        for name, value in settings.items():
            parameter = self.resolve(name)
            if not (parameter.min_value - 1e-9 <= float(value) <= parameter.max_value + 1e-9):
                raise ParameterError(f"{self.path}: {parameter.key} = {value} is outside "
                                     f"{parameter.min_value:g} … {parameter.max_value:g} {parameter.unit}".rstrip())
            setattr(self._plugin, parameter.key, float(value))
            applied[parameter.key] = float(getattr(self._plugin, parameter.key))
        return applied

    def render(self, audio: np.ndarray, sample_rate: float, settings: Mapping[str, float] | None = None) -> np.ndarray:
        """Process mono ``audio`` from a reset state at ``settings``; mono float64 of the same length.

        A stereo-only plugin gets the signal on both channels and its first output channel is returned.
        """
        if settings:
            self.apply(settings)
        x = np.asarray(audio, dtype=np.float32)[None]
        self._plugin.reset()
        try:
            y = self._plugin.process(x, float(sample_rate), reset=True)
        except (ValueError, RuntimeError):
            self._plugin.reset()
            y = self._plugin.process(np.repeat(x, 2, axis=0), float(sample_rate), reset=True)
        return np.asarray(y[0], dtype=np.float64)


def open_plugin(spec: str | Path) -> HostedPlugin:
    """Load the plugin at ``spec`` (a VST3 bundle path)."""
    path = Path(spec)
    if path.suffix.lower() != ".vst3":
        raise ParameterError(f"{spec}: only VST3 plugins (.vst3 bundles) can be hosted so far")
    return HostedPlugin(path)
