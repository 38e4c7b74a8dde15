"""Compressor models in real units: the 4A-2A feed-forward compressor and the virtual opto levelling amplifier."""

from .compressor import PARAMETER_NAMES, Compressor, CompressorStream
from .opto import OptoLevellingAmplifier, OptoStream

__all__ = ["PARAMETER_NAMES", "Compressor", "CompressorStream", "OptoLevellingAmplifier", "OptoStream"]
