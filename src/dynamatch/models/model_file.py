"""Versioned JSON model files (never pickle).

A fitted single compressor is stored as::

    {"format": "dynamatch.compressor", "format_version": 1,
     "parameters": {"threshold_db": ..., "ratio": ..., "attack_ms": ..., "release_ms": ..., "makeup_db": ...},
     "sample_rate": 44100, "fit": {...statistics...}, "provenance": {...}}

The format version is independent of the package version and is bumped only when the meaning of a
field changes; readers refuse versions newer than they know.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ModelFileError
from .compressor import PARAMETER_NAMES, Compressor

COMPRESSOR_FORMAT = "dynamatch.compressor"
COMPRESSOR_FORMAT_VERSION = 1


def write_json_atomic(path: str | os.PathLike, document: dict[str, Any]) -> Path:
    """Write ``document`` as indented JSON, atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2, allow_nan=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json_document(path: str | os.PathLike, expected_format: str | None, max_version: int) -> dict[str, Any]:
    """Read a dynamatch JSON document, checking ``format`` and ``format_version``."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file; check the path")
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path}: not a readable JSON model file ({error}); re-export it") from None
    if not isinstance(document, dict) or "format" not in document:
        raise ModelFileError(f"{path}: missing 'format' field; this is not a dynamatch model file")
    if expected_format is not None and document["format"] != expected_format:
        raise ModelFileError(f"{path}: holds a '{document['format']}', expected a '{expected_format}'")
    version = document.get("format_version")
    if not isinstance(version, int) or version < 1 or version > max_version:
        raise ModelFileError(
            f"{path}: format_version {version!r} is not supported (this dynamatch reads 1..{max_version}); upgrade dynamatch"
        )
    return document


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
        "format": COMPRESSOR_FORMAT,
        "format_version": COMPRESSOR_FORMAT_VERSION,
        "parameters": compressor.to_dict(),
        "sample_rate": sample_rate,
        "fit": fit or {},
        "provenance": provenance or {},
    }
    return write_json_atomic(path, document)


def load_compressor(path: str | os.PathLike) -> Compressor:
    """Load the compressor of a ``dynamatch.compressor`` file."""
    document = read_json_document(path, COMPRESSOR_FORMAT, COMPRESSOR_FORMAT_VERSION)
    return compressor_from_document(document, path)


def compressor_from_document(document: dict[str, Any], path: str | os.PathLike) -> Compressor:
    parameters = document.get("parameters", {})
    missing = [name for name in PARAMETER_NAMES if name not in parameters]
    if missing:
        raise ModelFileError(f"{path}: parameters {missing} are missing; re-export the model")
    try:
        return Compressor(**{name: float(parameters[name]) for name in PARAMETER_NAMES})
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: invalid parameters ({error})") from None
