"""Versioned JSON model files (never pickle).

A fitted single compressor is stored as::

    {"format": "dynamatch.compressor", "format_version": 2, "model": "opto-hp",
     "parameters": {"threshold_db": ..., "ratio": ..., ..., "makeup_db": ...},
     "sample_rate": 44100, "fit": {...statistics...}, "provenance": {...}}

``model`` names the family member (:mod:`dynamatch.models.family`) and ``parameters`` holds every one of
its parameters in real units.  Version 1 files (dynamatch 0.1) have no ``model``: they are ``ff5``.
The format version is independent of the package version and is bumped only when the meaning of a
field changes; readers refuse versions newer than they know.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..documents import COMPRESSOR, DocumentKind, kind_of, read_document, write_document, write_json
from ..errors import ModelFileError, OutputPathError
from .compressor import Compressor
from .family import MODELS, current_name

COMPRESSOR_FORMAT = COMPRESSOR.format
COMPRESSOR_FORMAT_VERSION = COMPRESSOR.version


def check_writable(path: str | os.PathLike) -> Path:
    """Refuse, before any work is done, an output ``path`` whose folder cannot be created or written."""
    path = Path(path)
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if path.is_dir():
        raise OutputPathError(f"{path}: is a folder: give a file name for the output")
    if not existing.is_dir():
        raise OutputPathError(f"{path}: {existing} is a file, not a folder: choose another output path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(f"{path}: folder {existing} is not writable: choose another output path")
    return path


def write_json_atomic(path: str | os.PathLike, document: dict[str, Any]) -> Path:
    """Write ``document`` as indented JSON, atomically, mode 0644 (:func:`dynamatch.documents.write_json`)."""
    return write_json(path, document)


def read_json_document(path: str | os.PathLike, expected_format: str | None, max_version: int) -> dict[str, Any]:
    """Read a dynamatch JSON document, checking ``format`` and ``format_version`` (see :mod:`dynamatch.documents`)."""
    kind = None if expected_format is None else (kind_of(expected_format) or DocumentKind(expected_format, max_version, "file"))
    return read_document(path, kind, what="model file")


def save_compressor(
    path: str | os.PathLike,
    compressor: Compressor,
    *,
    sample_rate: float | None = None,
    fit: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Save a fitted compressor with its fit statistics and provenance."""
    document = {
        "model": compressor.model,
        "parameters": compressor.to_dict(),
        "sample_rate": sample_rate,
        "fit": fit or {},
        "provenance": provenance or {},
    }
    return write_document(path, COMPRESSOR, document)


def load_compressor(path: str | os.PathLike) -> Compressor:
    """Load the compressor of a ``dynamatch.compressor`` file."""
    document = read_document(path, COMPRESSOR, what="model file")
    return compressor_from_document(document, path)


def compressor_from_document(document: dict[str, Any], path: str | os.PathLike) -> Compressor:
    """The compressor of a ``dynamatch.compressor`` document (any version this reader knows)."""
    parameters = document.get("parameters")
    model = document.get("model", "ff5")
    if isinstance(parameters, dict) and isinstance(model, str):
        model = current_name(model, parameters)
    if model not in MODELS:
        raise ModelFileError(
            f"{path}: model {model!r} is not one this dynamatch knows ({', '.join(MODELS)}); upgrade dynamatch"
        )
    if not isinstance(parameters, dict):
        raise ModelFileError(f"{path}: no 'parameters' table; this is not a complete model file, re-export it")
    names = MODELS[model].parameter_names
    missing = [name for name in names if name not in parameters]
    if missing:
        raise ModelFileError(f"{path}: parameters {missing} of model {model!r} are missing; re-export the model")
    try:
        return Compressor(model=model, **{name: float(parameters[name]) for name in names})
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: invalid parameters ({error})") from None
