"""Exports of fitted models: the real-time plugin (VST3/LV2/CLAP via DPF)."""

from .plugin import PluginBuild, build_plugin

__all__ = ["PluginBuild", "build_plugin"]
