"""Compressor models in real units."""

from .compressor import PARAMETER_NAMES, Compressor, CompressorStream

__all__ = ["PARAMETER_NAMES", "Compressor", "CompressorStream"]
