"""Open any model source the CLI accepts: a fitted compressor file, a parameter map file or a preset."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ModelFileError, ParameterError
from .maps.parameter_map import MAP_FORMAT, ParameterMap
from .models.compressor import Compressor
from .models.model_file import COMPRESSOR_FORMAT, load_compressor


def load_processor(
    source: str | Path,
    *,
    peak_reduction: float = 50.0,
    mode: str = "compress",
    interpolation: str | None = None,
    knob: str | None = None,
) -> Compressor:
    """The compressor described by ``source``: ``preset:NAME``, a map file (evaluated at the knob) or a model file.

    ``knob`` names the map's control that ``peak_reduction`` sets (``threshold_db`` for a map of a captured
    plugin); a map over another control is refused, so is a knob for a single compressor."""
    source = str(source)
    if source.startswith("preset:"):
        return ParameterMap.preset(source.split(":", 1)[1], interpolation).compressor(peak_reduction, mode)
    path = Path(source)
    try:
        kind = json.loads(path.read_text()).get("format") if path.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        kind = None
    if kind == MAP_FORMAT:
        parameter_map = ParameterMap.load(path)
        if knob is not None and knob != parameter_map.knob:
            raise ParameterError(f"{path}: the map's knob is {parameter_map.knob!r}, not {knob!r}; "
                                 f"use --knob {parameter_map.knob}=VALUE")
        if interpolation:
            parameter_map = parameter_map.with_interpolation(interpolation)
        return parameter_map.compressor(peak_reduction, mode)
    if kind == COMPRESSOR_FORMAT or kind is None:
        if knob is not None and knob != "peak_reduction":
            raise ParameterError(f"{path}: --knob is for maps; a single fitted compressor has no knob")
        return load_compressor(path)
    raise ModelFileError(f"{path}: a '{kind}' file cannot be used here; give a compressor or parameter-map file")
