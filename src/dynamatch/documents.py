"""Versioned JSON documents: every JSON artefact dynamatch writes and reads back.

Each kind of document has one id (``format``, always ``dynamatch.<noun>``) and a ``format_version``
independent of the package version, bumped only when the meaning of a field changes.  Readers accept
versions 1..current (older ones are migrated by their loader) and refuse newer ones with one line that
says to upgrade dynamatch.  Writes are atomic (a temporary file in the same folder, then
:func:`os.replace`) and leave an ordinary 0644 file, like every other output.

=================================  =======  ==========================================================
``format``                         version  written by
=================================  =======  ==========================================================
``dynamatch.compressor``           2        :func:`dynamatch.models.model_file.save_compressor`
``dynamatch.parameter_map``        2        :meth:`dynamatch.maps.ParameterMap.save`
``dynamatch.fit_map_progress``     1        :func:`dynamatch.maps.fit_map.fit_map` (resume state)
``dynamatch.neural``               1        :func:`dynamatch.neural.registry.save_model`
``dynamatch.capture``              1        :func:`dynamatch.data.capture.capture_plugin` (capture.json)
``dynamatch.capture_check``        1        ``dynamatch check --json`` (:meth:`CaptureReport.to_dict`)
``dynamatch.evaluation``           1        :func:`dynamatch.evaluation.evaluate_dataset` (evaluation.json)
=================================  =======  ==========================================================
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelFileError

FILE_MODE = 0o644


@dataclass(frozen=True)
class DocumentKind:
    """One kind of JSON document: its ``format`` id, current ``format_version`` and older ids it replaced."""

    format: str
    version: int
    noun: str
    legacy_formats: tuple[str, ...] = ()
    unversioned: int | None = None  # the version of files written before they carried format_version

    def accepts(self, format_id: Any) -> bool:
        return format_id == self.format or format_id in self.legacy_formats


COMPRESSOR = DocumentKind("dynamatch.compressor", 2, "compressor model file")
PARAMETER_MAP = DocumentKind("dynamatch.parameter_map", 2, "parameter map file")
FIT_MAP_PROGRESS = DocumentKind("dynamatch.fit_map_progress", 1, "fit-map progress file", unversioned=1)
NEURAL = DocumentKind("dynamatch.neural", 1, "neural model file", legacy_formats=("dynamatch-neural",))
CAPTURE_SET = DocumentKind("dynamatch.capture", 1, "capture set description")
CAPTURE_CHECK = DocumentKind("dynamatch.capture_check", 1, "capture check report",
                             legacy_formats=("dynamatch-capture-check",))
EVALUATION = DocumentKind("dynamatch.evaluation", 1, "evaluation record")
KINDS: tuple[DocumentKind, ...] = (COMPRESSOR, PARAMETER_MAP, FIT_MAP_PROGRESS, NEURAL, CAPTURE_SET, CAPTURE_CHECK,
                                   EVALUATION)


def kind_of(format_id: Any) -> DocumentKind | None:
    """The kind whose id (or former id) is ``format_id``, else None."""
    return next((kind for kind in KINDS if kind.accepts(format_id)), None)


def write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON (strict: NaN/inf refused) atomically, mode 0644; the folder is created."""
    path = Path(path)
    text = json.dumps(data, indent=indent, allow_nan=False) + "\n"  # fails before anything is touched
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_document(path: str | os.PathLike, kind: DocumentKind, body: dict[str, Any]) -> Path:
    """Write ``{"format", "format_version", **body}`` for ``kind`` atomically (see :func:`write_json`)."""
    body = {k: v for k, v in body.items() if k not in ("format", "format_version")}
    return write_json(path, {"format": kind.format, "format_version": kind.version, **body})


def read_document(path: str | os.PathLike, kind: DocumentKind | None, *, error: type[Exception] = ModelFileError,
                  what: str | None = None) -> dict[str, Any]:
    """Read a document of ``kind`` (None: any dynamatch document), checking ``format`` and ``format_version``.

    Every failure is one line naming the file, as ``error`` (default :class:`ModelFileError`)."""
    path = Path(path)
    what = what or (kind.noun if kind is not None else "dynamatch file")
    if not path.is_file():
        raise error(f"{path}: no such {what}; check the path")
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise error(f"{path}: not a readable JSON {what} ({problem}); re-create it") from None
    if not isinstance(document, dict) or "format" not in document:
        raise error(f"{path}: missing 'format' field; this is not a dynamatch {what}")
    format_id = document["format"]
    if kind is None:
        kind = kind_of(format_id)
        if kind is None:
            raise error(f"{path}: holds a '{format_id}', which this dynamatch does not know")
    elif not kind.accepts(format_id):
        raise error(f"{path}: holds a '{format_id}', expected a '{kind.format}' ({kind.noun})")
    version = document.get("format_version", kind.unversioned)
    if isinstance(version, int) and not isinstance(version, bool) and version > kind.version:
        raise error(f"{path}: format_version {version} is from a newer dynamatch (this one reads "
                    f"{kind.format} 1..{kind.version}); upgrade dynamatch")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise error(f"{path}: format_version {version!r} is not supported (this dynamatch reads "
                    f"{kind.format} 1..{kind.version}); re-create the file")
    return document


def document_format(path: str | os.PathLike) -> str | None:
    """The ``format`` id of the JSON document at ``path``, or None (no such file, not JSON, no id)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    format_id = document.get("format") if isinstance(document, dict) else None
    return format_id if isinstance(format_id, str) else None
