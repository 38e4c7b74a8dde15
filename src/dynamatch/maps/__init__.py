"""Knob → parameter maps: fitting them over a dataset, evaluating and shipping them."""

from .parameter_map import MODES, ParameterMap

__all__ = ["MODES", "ParameterMap"]
