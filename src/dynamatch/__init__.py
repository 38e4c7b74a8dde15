"""dynamatch: capture dynamic range compressors as fast, interpretable real-time models.

``import dynamatch`` never imports torch (the neural models live in :mod:`dynamatch.neural`), nor numba
until a model is used.
"""

from __future__ import annotations

from .errors import DynamatchError

__version__ = "0.2.0"

__all__ = ["PARAMETER_NAMES", "Compressor", "DynamatchError", "__version__"]


def __getattr__(name: str):
    if name in ("PARAMETER_NAMES", "Compressor"):
        from .models import compressor

        return getattr(compressor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
