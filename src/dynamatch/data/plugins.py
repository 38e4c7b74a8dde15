"""Hosting third-party plugins headless, for captures and baselines: one interface over plugin formats.

:func:`open_plugin` takes a VST3 path (``/usr/lib/vst3/ZamComp.vst3``, hosted by pedalboard) or an
LV2 URI (``http://lsp-plug.in/plugins/lv2/compressor_mono``, instantiated through liblilv by ctypes:
Debian's ``lv2apply`` cannot host DPF-built plugins, and there is no lilv binding for this Python).  A
:class:`HostedPlugin` lists its parameters (:meth:`HostedPlugin.parameters`) and renders mono audio
at a setting (:meth:`HostedPlugin.render`); a setting names parameters by pedalboard's snake-case
name (``threshold_db``) or by the plugin's own display name (``"Peak Reduction"``), case-insensitively.
Values are in the parameter's own units; out-of-range values raise :class:`ParameterError`.
Every call into plugin code leaves the floating-point environment as it found it
(:mod:`.floating_point`: fast-math plugins turn on flush-to-zero when loaded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import AudioFileError, ParameterError
from .floating_point import keeps_floating_point_environment


@dataclass(frozen=True)
class PluginParameter:
    """One automatable parameter: its key (used in settings), display name, unit, range and current value."""

    key: str
    name: str
    unit: str
    min_value: float
    max_value: float
    value: float


class HostedPlugin:
    """A VST3 plugin loaded by pedalboard."""

    @keeps_floating_point_environment
    def __init__(self, path: str | Path) -> None:
        try:
            import pedalboard
        except ImportError as error:  # pragma: no cover - pedalboard is a core dependency of capture
            raise ImportError(f"hosting VST3 plugins needs pedalboard ({error})") from None
        self.path = str(path)
        if not Path(self.path).exists():
            raise AudioFileError(f"{self.path}: plugin not found; give the path of a .vst3 bundle")
        try:
            self._plugin = pedalboard.load_plugin(self.path)
        except Exception as error:  # pedalboard raises ImportError/RuntimeError with the loader's message
            raise AudioFileError(f"{self.path}: cannot load the plugin ({str(error).splitlines()[0]})") from None
        self.name = getattr(self._plugin, "name", Path(self.path).stem)

    def __repr__(self) -> str:
        return f"HostedPlugin({self.path!r})"

    @keeps_floating_point_environment
    def parameters(self) -> list[PluginParameter]:
        """The plugin's parameters (read-only meters and host bookkeeping left out)."""
        out = []
        for key, parameter in self._plugin.parameters.items():
            if key in ("buffer_size_frames", "sample_rate_frames", "current_program", "bypass"):
                continue
            try:
                low, high = float(parameter.min_value), float(parameter.max_value)
                value = float(getattr(self._plugin, key))
            except (TypeError, ValueError, AttributeError):
                continue  # choice/boolean parameters with text values
            out.append(PluginParameter(key, parameter.name, (parameter.label or "").strip(), low, high, value))
        return out

    def resolve(self, name: str) -> PluginParameter:
        """The parameter called ``name`` (key or display name, case-insensitive)."""
        wanted = name.strip().lower()
        parameters = self.parameters()
        for parameter in parameters:
            if wanted in (parameter.key.lower(), parameter.name.lower()):
                return parameter
        known = ", ".join(p.key for p in parameters)
        raise ParameterError(f"{self.path}: no parameter {name!r}; it has: {known} (see `dynamatch capture PLUGIN --list`)")

    @keeps_floating_point_environment
    def apply(self, settings: Mapping[str, float]) -> dict[str, float]:
        """Set parameters; returns the values the plugin actually holds (plugins snap to their steps)."""
        applied = {}
        for name, value in settings.items():
            parameter = self.resolve(name)
            if not (parameter.min_value - 1e-9 <= float(value) <= parameter.max_value + 1e-9):
                raise ParameterError(f"{self.path}: {parameter.key} = {value} is outside "
                                     f"{parameter.min_value:g} … {parameter.max_value:g} {parameter.unit}".rstrip())
            setattr(self._plugin, parameter.key, float(value))
            applied[parameter.key] = float(getattr(self._plugin, parameter.key))
        return applied

    @keeps_floating_point_environment
    def render(self, audio: np.ndarray, sample_rate: float, settings: Mapping[str, float] | None = None) -> np.ndarray:
        """Process mono ``audio`` from a reset state at ``settings``; mono float64 of the same length.

        A stereo-only plugin gets the signal on both channels and its first output channel is returned.
        """
        if settings:
            self.apply(settings)
        x = np.asarray(audio, dtype=np.float32)[None]
        self._plugin.reset()
        try:
            y = self._plugin.process(x, float(sample_rate), reset=True)
        except (ValueError, RuntimeError):
            self._plugin.reset()
            y = self._plugin.process(np.repeat(x, 2, axis=0), float(sample_rate), reset=True)
        return np.asarray(y[0], dtype=np.float64)




# -- LV2 through liblilv (ctypes; there is no lilv Python binding for this Python) ------------------

LV2_BLOCK_SAMPLES = 1024
ATOM_BUFFER_BYTES = 65536
_URI = {
    "audio": b"http://lv2plug.in/ns/lv2core#AudioPort",
    "control": b"http://lv2plug.in/ns/lv2core#ControlPort",
    "input": b"http://lv2plug.in/ns/lv2core#InputPort",
    "output": b"http://lv2plug.in/ns/lv2core#OutputPort",
    "atom": b"http://lv2plug.in/ns/ext/atom#AtomPort",
    "sequence": b"http://lv2plug.in/ns/ext/atom#Sequence",
    "chunk": b"http://lv2plug.in/ns/ext/atom#Chunk",
    "map": b"http://lv2plug.in/ns/ext/urid#map",
}


def _lilv():
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("lilv-0") or "liblilv-0.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        raise ImportError("hosting LV2 plugins needs liblilv (apt install liblilv-0-0)") from None
    p, c = ctypes.c_void_p, ctypes.c_char_p
    for fname, restype, argtypes in [
        ("lilv_world_new", p, []), ("lilv_world_load_all", None, [p]), ("lilv_new_uri", p, [p, c]),
        ("lilv_world_get_all_plugins", p, [p]), ("lilv_plugins_get_by_uri", p, [p, p]),
        ("lilv_plugin_get_num_ports", ctypes.c_uint32, [p]),
        ("lilv_plugin_get_port_by_index", p, [p, ctypes.c_uint32]), ("lilv_port_get_symbol", p, [p, p]),
        ("lilv_port_get_name", p, [p, p]), ("lilv_node_as_string", c, [p]), ("lilv_node_free", None, [p]),
        ("lilv_port_is_a", ctypes.c_bool, [p, p, p]),
        ("lilv_plugin_get_port_ranges_float", None, [p, p, p, p]),
        ("lilv_plugin_instantiate", p, [p, ctypes.c_double, p]), ("lilv_plugin_get_name", p, [p]),
    ]:
        function = getattr(lib, fname)
        function.restype, function.argtypes = restype, argtypes
    return lib


class LV2Plugin(HostedPlugin):
    """An LV2 plugin (by URI) instantiated through liblilv; control ports are its parameters (by symbol)."""

    @keeps_floating_point_environment
    def __init__(self, uri: str, sample_rate: float = 44100.0) -> None:  # noqa: D107 - no pedalboard here
        import ctypes

        self.path = uri
        self._ctypes = ctypes
        lib = self._lib = _lilv()
        world = self._world = lib.lilv_world_new()
        lib.lilv_world_load_all(world)
        self._nodes = {k: lib.lilv_new_uri(world, v) for k, v in _URI.items()}
        uri_node = lib.lilv_new_uri(world, uri.encode())
        plugin = lib.lilv_plugins_get_by_uri(lib.lilv_world_get_all_plugins(world), uri_node) if uri_node else None
        if not plugin:
            raise AudioFileError(f"{uri}: no such LV2 plugin installed (list them with lv2ls)")
        self._plugin = plugin
        name_node = lib.lilv_plugin_get_name(plugin)
        self.name = lib.lilv_node_as_string(name_node).decode() if name_node else uri
        count = lib.lilv_plugin_get_num_ports(plugin)
        lows, highs, defaults = ((ctypes.c_float * count)() for _ in range(3))
        lib.lilv_plugin_get_port_ranges_float(plugin, lows, highs, defaults)
        self._ports: list[dict] = []
        for index in range(count):
            port = lib.lilv_plugin_get_port_by_index(plugin, index)
            kind = next((k for k in ("audio", "control", "atom") if lib.lilv_port_is_a(plugin, port, self._nodes[k])),
                        "other")
            direction = "input" if lib.lilv_port_is_a(plugin, port, self._nodes["input"]) else "output"
            name_node = lib.lilv_port_get_name(plugin, port)
            display = lib.lilv_node_as_string(name_node).decode() if name_node else ""
            if name_node:
                lib.lilv_node_free(name_node)
            self._ports.append({"index": index, "kind": kind, "direction": direction, "name": display,
                                "symbol": lib.lilv_node_as_string(lib.lilv_port_get_symbol(plugin, port)).decode(),
                                "min": float(lows[index]), "max": float(highs[index]), "default": float(defaults[index])})
        self._values = {p["symbol"]: (p["default"] if math.isfinite(p["default"]) else 0.0)
                        for p in self._ports if p["kind"] == "control"}
        self._instance = None
        self._sample_rate = None
        self._instantiate(sample_rate)

    def _instantiate(self, sample_rate: float) -> None:
        ctypes = self._ctypes
        uris: dict[bytes, int] = {}

        @ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_char_p)
        def map_uri(_handle, uri):
            return uris.setdefault(bytes(uri), len(uris) + 1)

        class URIDMap(ctypes.Structure):
            _fields_ = [("handle", ctypes.c_void_p), ("map", type(map_uri))]

        class Feature(ctypes.Structure):
            _fields_ = [("URI", ctypes.c_char_p), ("data", ctypes.c_void_p)]

        urid_map = URIDMap(None, map_uri)
        feature = Feature(_URI["map"], ctypes.cast(ctypes.pointer(urid_map), ctypes.c_void_p))
        features = (ctypes.POINTER(Feature) * 2)(ctypes.pointer(feature), None)
        instance = self._lib.lilv_plugin_instantiate(self._plugin, float(sample_rate), ctypes.cast(features, ctypes.c_void_p))
        if not instance:
            raise AudioFileError(f"{self.path}: the plugin refused to instantiate at {sample_rate:g} Hz")

        handle_t = ctypes.c_void_p
        connect_t = ctypes.CFUNCTYPE(None, handle_t, ctypes.c_uint32, ctypes.c_void_p)
        call_t = ctypes.CFUNCTYPE(None, handle_t)
        run_t = ctypes.CFUNCTYPE(None, handle_t, ctypes.c_uint32)

        class Descriptor(ctypes.Structure):
            _fields_ = [("URI", ctypes.c_char_p), ("instantiate", ctypes.c_void_p), ("connect_port", connect_t),
                        ("activate", call_t), ("run", run_t), ("deactivate", call_t), ("cleanup", call_t),
                        ("extension_data", ctypes.c_void_p)]

        class Instance(ctypes.Structure):
            _fields_ = [("descriptor", ctypes.POINTER(Descriptor)), ("handle", ctypes.c_void_p), ("pimpl", ctypes.c_void_p)]

        inst = ctypes.cast(instance, ctypes.POINTER(Instance)).contents
        self._keep = (map_uri, urid_map, feature, features, uris)
        self._descriptor, self._handle = inst.descriptor.contents, inst.handle
        self._controls = {p["symbol"]: ctypes.c_float(self._values.get(p["symbol"], 0.0))
                          for p in self._ports if p["kind"] == "control"}
        self._audio = {p["index"]: (ctypes.c_float * LV2_BLOCK_SAMPLES)() for p in self._ports if p["kind"] == "audio"}
        self._atoms = {}
        sequence, chunk = map_uri(None, _URI["sequence"]), map_uri(None, _URI["chunk"])
        for p in self._ports:
            if p["kind"] == "control":
                self._descriptor.connect_port(self._handle, p["index"], ctypes.addressof(self._controls[p["symbol"]]))
            elif p["kind"] == "audio":
                self._descriptor.connect_port(self._handle, p["index"], ctypes.addressof(self._audio[p["index"]]))
            elif p["kind"] == "atom":
                buffer = (ctypes.c_uint32 * (ATOM_BUFFER_BYTES // 4))()
                self._atoms[p["index"]] = (buffer, p["direction"], sequence, chunk)
                self._descriptor.connect_port(self._handle, p["index"], ctypes.addressof(buffer))
            else:
                self._descriptor.connect_port(self._handle, p["index"], None)
        self._instance, self._sample_rate = instance, float(sample_rate)

    def parameters(self) -> list[PluginParameter]:
        return [PluginParameter(p["symbol"], p["name"], "", p["min"], p["max"], self._values[p["symbol"]])
                for p in self._ports if p["kind"] == "control" and p["direction"] == "input"]

    def apply(self, settings: Mapping[str, float]) -> dict[str, float]:
        applied = {}
        for name, value in settings.items():
            parameter = self.resolve(name)
            if math.isfinite(parameter.min_value) and not (
                    parameter.min_value - 1e-9 <= float(value) <= parameter.max_value + 1e-9):
                raise ParameterError(f"{self.path}: {parameter.key} = {value} is outside "
                                     f"{parameter.min_value:g} … {parameter.max_value:g}")
            self._values[parameter.key] = float(value)
            applied[parameter.key] = float(np.float32(value))
        return applied

    @keeps_floating_point_environment
    def render(self, audio: np.ndarray, sample_rate: float, settings: Mapping[str, float] | None = None) -> np.ndarray:
        """Process mono ``audio`` from a fresh instance (so from a reset state), in blocks of 1024 samples."""
        if settings:
            self.apply(settings)
        self._cleanup()
        self._instantiate(sample_rate)
        for symbol, value in self._values.items():
            self._controls[symbol].value = value
        inputs = [p["index"] for p in self._ports if p["kind"] == "audio" and p["direction"] == "input"]
        outputs = [p["index"] for p in self._ports if p["kind"] == "audio" and p["direction"] == "output"]
        if not inputs or not outputs:
            raise ParameterError(f"{self.path}: not an audio effect (no audio input or output port)")
        x = np.asarray(audio, dtype=np.float32)
        y = np.empty(x.size, dtype=np.float32)
        self._descriptor.activate(self._handle)
        for start in range(0, x.size, LV2_BLOCK_SAMPLES):
            block = x[start : start + LV2_BLOCK_SAMPLES]
            for index in inputs:
                view = np.frombuffer(self._audio[index], dtype=np.float32)
                view[: block.size] = block
            for buffer, direction, sequence, chunk in self._atoms.values():
                buffer[0], buffer[1] = (8, sequence) if direction == "input" else (ATOM_BUFFER_BYTES - 8, chunk)
                buffer[2] = buffer[3] = 0
            self._descriptor.run(self._handle, block.size)
            y[start : start + block.size] = np.frombuffer(self._audio[outputs[0]], dtype=np.float32)[: block.size]
        self._descriptor.deactivate(self._handle)
        return y.astype(np.float64)

    @keeps_floating_point_environment
    def _cleanup(self) -> None:
        if self._instance is not None:
            self._descriptor.cleanup(self._handle)
            self._instance = None

    def __del__(self) -> None:
        try:
            self._cleanup()
        except Exception:
            pass


def open_plugin(spec: str | Path) -> HostedPlugin:
    """Load ``spec``: a VST3 bundle path (pedalboard) or an LV2 plugin URI (liblilv)."""
    text = str(spec)
    if "://" in text or text.startswith("urn:"):
        return LV2Plugin(text.replace(":/", "://", 1) if "://" not in text else text)
    if Path(text).suffix.lower() != ".vst3":
        raise ParameterError(f"{spec}: give a .vst3 bundle path or an LV2 plugin URI (e.g. "
                             "http://lsp-plug.in/plugins/lv2/compressor_mono)")
    return HostedPlugin(text)
