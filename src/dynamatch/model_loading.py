"""One resolver for every model source a command or the Python API accepts.

A *model source* is what a user types where a model is expected (``process MODEL``, ``evaluate --model``,
``export plugin``, ``train-hybrid``, ``bench rtf --compressor``, …):

* a preset: ``la2a`` or ``preset:la2a`` — shipped, or installed with ``fit-map --install-preset NAME``
  (an installed preset of a shipped name replaces it; see :func:`dynamatch.maps.parameter_map.available_presets`);
* a parameter map file (``dynamatch.parameter_map``), a fitted compressor file (``dynamatch.compressor``)
  or a trained neural model file (``dynamatch.neural``);
* a run folder holding ``model.json`` (what ``train`` and ``train-hybrid`` write).

:func:`resolve_model_source` says which it is (one line naming the source and the presets on failure);
:class:`ModelSource` loads it.  A file named like a preset wins over the preset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .documents import COMPRESSOR, NEURAL, PARAMETER_MAP, document_format, kind_of
from .errors import ModelFileError, ParameterError
from .maps.parameter_map import ParameterMap, available_presets
from .models.compressor import Compressor
from .models.model_file import load_compressor

PRESET_PREFIX = "preset:"
RUN_FOLDER_MODEL = "model.json"
KINDS = ("preset", "map", "compressor", "neural")


@dataclass(frozen=True)
class ModelSource:
    """A resolved model source: ``kind`` is one of :data:`KINDS`; ``name`` is the preset name or file stem."""

    kind: str
    name: str
    path: Path | None = None
    given: str = ""

    @property
    def label(self) -> str:
        """A short name for tables: the preset, or the file's stem (the run folder's name for ``model.json``)."""
        if self.path is not None and self.path.name == RUN_FOLDER_MODEL and self.path.parent.name:
            return self.path.parent.name
        return self.name

    @property
    def is_map(self) -> bool:
        return self.kind in ("preset", "map")

    def parameter_map(self, interpolation: str | None = None) -> ParameterMap:
        """The parameter map (presets and map files); other kinds are refused with one line."""
        if self.kind == "preset":
            return ParameterMap.preset(self.name, interpolation)
        if self.kind != "map":
            raise ModelFileError(f"{self.given}: is a {_NOUNS[self.kind]}, not a parameter map; give a map file "
                                 f"(fit-map -o map.json) or a preset ({', '.join(available_presets())})")
        loaded = ParameterMap.load(self.path)
        return loaded if interpolation is None else loaded.with_interpolation(interpolation)

    def compressor(self, *, peak_reduction: float = 50.0, mode: str = "compress", interpolation: str | None = None,
                   knob: str | None = None) -> Compressor:
        """The compressor: a map evaluated at the knob, or a fitted compressor file as it is.

        ``knob`` names the map's control that ``peak_reduction`` sets (``threshold_db`` for a map of a captured
        plugin); a map over another control is refused, so is a knob for a single compressor."""
        if self.is_map:
            parameter_map = self.parameter_map(interpolation)
            if knob is not None and knob != parameter_map.knob:
                raise ParameterError(f"{self.given}: the map's knob is {parameter_map.knob!r}, not {knob!r}; "
                                     f"use --knob {parameter_map.knob}=VALUE")
            return parameter_map.compressor(peak_reduction, mode)
        if self.kind == "compressor":
            if knob is not None and knob != "peak_reduction":
                raise ParameterError(f"{self.given}: --knob is for maps; a single fitted compressor has no knob")
            return load_compressor(self.path)
        raise ModelFileError(f"{self.given}: is a {_NOUNS[self.kind]}; give a compressor or parameter-map file, "
                             f"or a preset ({', '.join(available_presets())})")

    def neural_model(self):
        """The trained torch module of a neural model file (needs ``dynamatch[nn]``)."""
        if self.kind != "neural":
            raise ModelFileError(f"{self.given}: is a {_NOUNS[self.kind]}, not a trained neural model; give the "
                                 "model.json (or run folder) written by train or train-hybrid")
        from .neural.registry import load_model

        return load_model(self.path)

    def load(self, **options: Any) -> ParameterMap | Compressor | Any:
        """The model itself: a :class:`ParameterMap`, a :class:`Compressor` or a torch module."""
        if self.is_map:
            return self.parameter_map(options.get("interpolation"))
        if self.kind == "compressor":
            return load_compressor(self.path)
        return self.neural_model()


_NOUNS = {"preset": "preset", "map": PARAMETER_MAP.noun, "compressor": COMPRESSOR.noun, "neural": NEURAL.noun}
_KIND_BY_FORMAT = {PARAMETER_MAP.format: "map", COMPRESSOR.format: "compressor", NEURAL.format: "neural"}


def _presets_hint() -> str:
    return f"presets: {', '.join(available_presets())}"


def resolve_model_source(source: str | os.PathLike | ModelSource) -> ModelSource:
    """What ``source`` names (see the module docstring); :class:`ModelFileError` with one line when nothing."""
    if isinstance(source, ModelSource):
        return source
    given = str(source)
    if given.startswith(PRESET_PREFIX):
        name = given[len(PRESET_PREFIX):]
        if name not in available_presets():
            raise ModelFileError(f"{given}: unknown preset {name!r}; {_presets_hint()}")
        return ModelSource("preset", name, None, given)
    path = Path(given)
    if path.is_dir():
        if not (path / RUN_FOLDER_MODEL).is_file():
            raise ModelFileError(f"{given}: a folder without {RUN_FOLDER_MODEL}; give a model or map file, a run "
                                 f"folder or a preset ({_presets_hint()})")
        path = path / RUN_FOLDER_MODEL
    if path.is_file():
        format_id = document_format(path)
        kind = kind_of(format_id)
        if kind is None or kind.format in _KIND_BY_FORMAT:
            # unreadable or foreign files go to the compressor loader, whose errors say what is wrong
            name = _KIND_BY_FORMAT.get(kind.format if kind else "", "compressor")
            return ModelSource(name, path.stem, path, given)
        raise ModelFileError(f"{given}: is a {kind.noun} ('{kind.format}'), not a model; give a compressor, "
                             f"parameter-map or neural model file, or a preset ({_presets_hint()})")
    if given in available_presets():
        return ModelSource("preset", given, None, given)
    raise ModelFileError(f"{given}: no such model file, run folder or preset; {_presets_hint()}")


def load_processor(
    source: str | Path | ModelSource,
    *,
    peak_reduction: float = 50.0,
    mode: str = "compress",
    interpolation: str | None = None,
    knob: str | None = None,
) -> Compressor:
    """The compressor described by ``source`` (any model source; a map is evaluated at the knob)."""
    return resolve_model_source(source).compressor(peak_reduction=peak_reduction, mode=mode,
                                                   interpolation=interpolation, knob=knob)


def load_parameter_map(source: str | Path | ModelSource, interpolation: str | None = None) -> ParameterMap:
    """The parameter map of ``source`` (a preset name or map file)."""
    return resolve_model_source(source).parameter_map(interpolation)
