"""Compressor models in real units: the grey-box family (:mod:`.family`, :class:`Compressor`) and the
virtual opto levelling amplifier (:class:`OptoLevellingAmplifier`).  Imported lazily: naming a model
does not load numba."""

from __future__ import annotations

import importlib

_LAZY = {
    "PARAMETER_NAMES": ".compressor", "Compressor": ".compressor", "CompressorStream": ".compressor",
    "OptoLevellingAmplifier": ".opto", "OptoStream": ".opto",
}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
