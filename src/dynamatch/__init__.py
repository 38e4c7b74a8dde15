"""dynamatch: capture dynamic range compressors as fast, interpretable real-time models.

``import dynamatch`` never imports torch; the neural models live in :mod:`dynamatch.neural`.
"""

from .errors import DynamatchError
from .models.compressor import PARAMETER_NAMES, Compressor

__version__ = "0.1.0"

__all__ = ["PARAMETER_NAMES", "Compressor", "DynamatchError", "__version__"]
