"""Build a real-time VST3/LV2/CLAP plugin from a parameter map, with DPF.

The plugin's DSP (``plugin_template/DynamatchPlugin.cpp``) runs the map's family member through its
generated C++ step (``generated/<model>.hpp``, written with the numba kernels from the model's one
description), sample for sample the Python render, plus the knob → parameter map evaluated inside
the DSP (piecewise cubics from :meth:`ParameterMap.spline_segments`, so automation and headless hosts
work), 20 ms parameter smoothing that starts at its target after activation, a bypass crossfade and an
optional residual GRU (4A-2A-G).  Two plugins come out of one source: mono (1 in/1 out, bundle suffix
``-mono``) and stereo-linked (2 in/2 out), because hosts such as pedalboard only accept a plugin whose
bus matches the audio's channel count.  Bundles go to ``output_dir/{vst3,lv2,clap}/`` (so ``LV2_PATH`` can
point at ``output_dir/lv2``); sources and objects to ``output_dir/source/``.

>>> build = build_plugin(ParameterMap.preset("la2a"), "build/")      # doctest: +SKIP
>>> build.bundle("vst3", channels=2)                                  # doctest: +SKIP
PosixPath('build/vst3/dynamatch-la-2a.vst3')

Host parameters: Peak Reduction 0–100, Mode (Compress/Limit), Output Gain dB, Bypass; with
``expert_mode`` also Raw Parameters (on: the model's parameters below override the map) and one host
parameter per model parameter (Threshold dB, Ratio, Attack ms, …, Makeup dB).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .. import __version__
from ..documents import write_json
from ..errors import ExportError, ParameterError
from ..maps.parameter_map import ParameterMap
from ..models.family import model_spec
from ..models.parameters import MODES

DPF_PATH = Path(os.environ.get("DYNAMATCH_DPF_PATH", "/usr/share/dpf"))
FORMATS = ("vst3", "lv2", "clap")
CHANNEL_LAYOUTS = (1, 2)
DEFAULT_PEAK_REDUCTION = 50.0  # compresses audibly with the LA-2A map (about 4:1 above -15 dBFS)
RAW_RANGES = {  # host ranges of expert-mode parameters that have no fitting bounds (or wider ones)
    "threshold_db": (-80.0, 0.0),
    "ratio": (1.0, 40.0),
    "attack_ms": (0.01, 500.0),
    "release_ms": (1.0, 5000.0),
    "makeup_db": (-24.0, 24.0),
}
GENERATED_HEADERS = Path(__file__).with_name("generated")
GRU_HIDDEN = 8
GRU_KEYS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "linear_weight", "linear_bias")

_MAKE_TARGETS = {"vst3": "vst3", "lv2": "lv2_bundle", "clap": "clap"}
_SUFFIXES = {"vst3": ".vst3", "lv2": ".lv2", "clap": ".clap"}
_STAMP = "dynamatch-build.json"


@dataclass(frozen=True)
class PluginBuild:
    """Where a build put its bundles: ``bundles[(format, channels)]`` (channels 1 = mono, 2 = stereo)."""

    output_dir: Path
    name: str
    bundles: Mapping[tuple[str, int], Path]
    uris: Mapping[int, str]
    digest: str
    rebuilt: bool

    def bundle(self, format: str, channels: int = 2) -> Path:
        """Path of one bundle, e.g. ``bundle("vst3", 1)`` for the mono VST3."""
        try:
            return self.bundles[(format, channels)]
        except KeyError:
            raise ExportError(
                f"{self.output_dir}: no {format} bundle for {channels} channel(s) was built; "
                f"built: {sorted(self.bundles)}"
            ) from None

    def uri(self, channels: int = 2) -> str:
        """LV2 URI of the mono (1) or stereo (2) plugin."""
        return self.uris[channels]


def build_plugin(
    parameter_map: ParameterMap | str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    name: str = "dynamatch LA-2A",
    formats: Sequence[str] = ("vst3", "lv2", "clap"),
    expert_mode: bool = False,
    gru_weights: Mapping[str, object] | None = None,
    jobs: int = 2,
) -> PluginBuild:
    """Generate, compile and bundle the plugin for ``parameter_map`` into ``output_dir``.

    ``parameter_map`` is a :class:`ParameterMap` or the path of a map file.  ``gru_weights`` adds the
    residual GRU stage: a dict of nested lists ``weight_ih`` (24×inputs, inputs 1 = [c] or
    3 = [c, limit, peak_reduction/100]), ``weight_hh`` (24×8), ``bias_ih``/``bias_hh`` (24),
    ``linear_weight`` (8 or 1×8), ``linear_bias`` (1); PyTorch's GRU layout, gates r, z, n.
    Rebuilds only when the generated source, the template or DPF changed (content hash).
    """
    if not isinstance(parameter_map, ParameterMap):
        parameter_map = ParameterMap.load(parameter_map)
    formats = tuple(dict.fromkeys((formats,) if isinstance(formats, str) else formats))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ParameterError(f"formats must be a non-empty subset of {FORMATS}, got {list(formats)}")
    if jobs < 1:
        raise ParameterError(f"jobs must be >= 1, got {jobs}")
    slug = _slug(name)
    makefile = DPF_PATH / "Makefile.plugins.mk"
    if not makefile.is_file():
        raise ExportError(
            f"{makefile}: DPF not found; install it (apt install dpf-source) or set DYNAMATCH_DPF_PATH"
        )
    if shutil.which("make") is None or shutil.which("g++") is None:
        raise ExportError("make and g++ are needed to build the plugin; install them (apt install make g++)")

    header = generate_header(parameter_map, name=name, expert_mode=expert_mode, gru_weights=gru_weights)
    template = _template_files()
    template["dynamatch_model.hpp"] = _model_header(parameter_map.model)
    digest = _digest(header, template, formats, makefile)

    output_dir = Path(output_dir).resolve()
    bundles = {
        (f, channels): output_dir / f / (_variant_name(slug, channels) + _SUFFIXES[f])
        for f in formats
        for channels in CHANNEL_LAYOUTS
    }
    uris = {channels: _uri(slug) + ("-mono" if channels == 1 else "") for channels in CHANNEL_LAYOUTS}
    stamp = output_dir / _STAMP
    if _stamp_digest(stamp) == digest and all(path.exists() for path in bundles.values()):
        return PluginBuild(output_dir, name, bundles, uris, digest, rebuilt=False)

    source = output_dir / "source"
    source.mkdir(parents=True, exist_ok=True)
    for file_name, content in template.items():
        _write_if_changed(source / file_name, content)
    _write_if_changed(source / "dynamatch_generated.h", header.encode())
    stamp.unlink(missing_ok=True)
    for path in bundles.values():  # bundles are folders (VST3, LV2) or single files (CLAP)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    for channels in CHANNEL_LAYOUTS:
        variant = _variant_name(slug, channels)
        for f in formats:  # one target folder per format; the objects are shared between them
            command = [
                "make",
                f"-j{jobs}",
                f"NAME={variant}",
                f"CHANNELS={channels}",
                f"FORMATS={_MAKE_TARGETS[f]}",
                f"DPF_PATH={DPF_PATH}",
                f"DPF_TARGET_DIR={output_dir / f}",
                f"DPF_BUILD_DIR={source / 'build' / variant}",
            ]
            _run_make(command, source)
    missing = [str(path) for path in bundles.values() if not path.exists()]
    if missing:
        raise ExportError(f"{output_dir}: make succeeded but these bundles are missing: {missing}")
    write_json(stamp, {"digest": digest, "name": name, "formats": list(formats)}, indent=None)
    return PluginBuild(output_dir, name, bundles, uris, digest, rebuilt=True)


def generate_header(
    parameter_map: ParameterMap,
    *,
    name: str = "dynamatch LA-2A",
    expert_mode: bool = False,
    gru_weights: Mapping[str, object] | None = None,
) -> str:
    """The C++ header (``dynamatch_generated.h``) with names, ids, defaults, the map and GRU weights.

    A map with only one of the modes "compress"/"limit" serves that mode for both Mode positions.
    """
    if not name or '"' in name or "\\" in name or not name.isprintable():
        raise ParameterError(f"plugin name must be printable text without quotes or backslashes, got {name!r}")
    slug = _slug(name)
    modes = [m for m in MODES if m in parameter_map.modes]
    if not modes:
        raise ParameterError(
            f"the map has no 'compress' or 'limit' mode (it has {list(parameter_map.modes)}); rename its modes"
        )
    defaults = parameter_map.compressor(DEFAULT_PEAK_REDUCTION, modes[0])
    spec = model_spec(parameter_map.model)
    major, minor, micro = (int(p) for p in (re.findall(r"\d+", __version__) + ["0", "0", "0"])[:3])
    lines = [
        "/* Generated by dynamatch.export.plugin from a parameter map; do not edit. */",
        "#ifndef DYNAMATCH_GENERATED_H_INCLUDED",
        "#define DYNAMATCH_GENERATED_H_INCLUDED",
        "",
        '#include "dynamatch_model.hpp"',
        "",
        f'#define DYNAMATCH_NAME "{name}"',
        f'#define DYNAMATCH_LABEL "{slug.replace("-", "_")}"',
        f'#define DYNAMATCH_DESCRIPTION "{_description(parameter_map)}"',
        f'#define DYNAMATCH_URI "{_uri(slug)}"',
        f'#define DYNAMATCH_CLAP_ID "org.dynamatch.{slug}"',
        f"#define DYNAMATCH_UNIQUE_ID_MONO {_unique_id(slug, 1)}",
        f"#define DYNAMATCH_UNIQUE_ID_STEREO {_unique_id(slug, 2)}",
        f"#define DYNAMATCH_VERSION_MAJOR {major}",
        f"#define DYNAMATCH_VERSION_MINOR {minor}",
        f"#define DYNAMATCH_VERSION_MICRO {micro}",
        f"#define DYNAMATCH_EXPERT {int(bool(expert_mode))}",
        f"#define DYNAMATCH_DEFAULT_PEAK_REDUCTION {DEFAULT_PEAK_REDUCTION!r}f",
        "",
    ]
    lines += _raw_parameter_lines(spec, defaults)
    lines += ["", "namespace dynamatch_map {", "", "struct Mode {", "    int segments;",
              "    const double* breakpoints;",
              "    const double* coefficients; // [parameter][power 3..0][segment], the model's parameter order",
              "};", ""]
    for mode in MODES:
        segments = parameter_map.spline_segments(mode if mode in modes else modes[0])
        breakpoints = np.asarray(segments["breakpoints"], dtype=float)
        coefficients = np.stack([np.asarray(segments[p], dtype=float) for p in spec.parameter_names])
        if coefficients.shape[1] != 4 or coefficients.shape[2] != max(breakpoints.size - 1, 1):
            raise ExportError(
                f"spline segments of mode {mode!r} have shape {coefficients.shape}, expected (P, 4, knots-1); "
                "check ParameterMap.spline_segments"
            )
        if breakpoints.size == 1:
            breakpoints = np.repeat(breakpoints, 2)  # one knot: a constant segment of zero width
        lines.append(f"static const double k{mode.title()}Breakpoints[] = {{{_floats(breakpoints)}}};")
        lines.append(f"static const double k{mode.title()}Coefficients[] = {{{_floats(coefficients)}}};")
    lines += [
        "static const Mode kModes[2] = {",
        "    {int(sizeof(kCompressBreakpoints) / sizeof(double)) - 1, kCompressBreakpoints, kCompressCoefficients},",
        "    {int(sizeof(kLimitBreakpoints) / sizeof(double)) - 1, kLimitBreakpoints, kLimitCoefficients},",
        "};",
        "",
        "} // namespace dynamatch_map",
        "",
    ]
    lines += _gru_lines(gru_weights)
    lines += ["", "#endif", ""]
    return "\n".join(lines)


# -- helpers -------------------------------------------------------------------------------------
def _raw_parameter_lines(spec, defaults) -> list[str]:
    """``namespace dynamatch_raw``: host name, symbol, unit, range, default and log hint of every model
    parameter (the expert mode's raw parameters)."""
    names, symbols, units, lows, highs, values, logarithmic = [], [], [], [], [], [], []
    for p in spec.parameters:
        low, high = RAW_RANGES.get(p.name, p.bounds or (-80.0, 80.0))
        if p.name in RAW_RANGES and p.bounds is not None:
            low, high = min(low, p.bounds[0]), max(high, p.bounds[1])
        unit = "" if p.kind in ("ratio", "share") else p.unit
        label = p.name.removesuffix("_" + unit.lower()) if unit else p.name
        names.append(label.replace("_", " ").title())
        symbols.append(p.name)
        units.append(unit)
        lows.append(low)
        highs.append(high)
        values.append(float(np.clip(defaults.to_dict()[p.name], low, high)))
        logarithmic.append(p.kind in ("time", "hz") and low > 0.0)
    strings = lambda items: ", ".join(f'"{v}"' for v in items)  # noqa: E731
    floats = lambda items: ", ".join(f"{float(v)!r}f" for v in items)  # noqa: E731
    return [
        "namespace dynamatch_raw {",
        f"static const char* const kNames[] = {{{strings(names)}}};",
        f"static const char* const kSymbols[] = {{{strings(symbols)}}};",
        f"static const char* const kUnits[] = {{{strings(units)}}};",
        f"static const float kMin[] = {{{floats(lows)}}};",
        f"static const float kMax[] = {{{floats(highs)}}};",
        f"static const float kDefault[] = {{{floats(values)}}};",
        f"static const bool kLogarithmic[] = {{{', '.join('true' if v else 'false' for v in logarithmic)}}};",
        "} // namespace dynamatch_raw",
    ]


def _model_header(model: str) -> bytes:
    """The generated C++ step of family member ``model``."""
    path = GENERATED_HEADERS / f"{model_spec(model).module_name}.hpp"
    if not path.is_file():
        raise ExportError(f"{path}: the C++ step of model {model!r} is missing; reinstall dynamatch")
    return path.read_bytes()


def _gru_lines(gru_weights: Mapping[str, object] | None) -> list[str]:
    if gru_weights is None:
        return ["#define DYNAMATCH_GRU_INPUTS 0"]
    missing = [k for k in GRU_KEYS if k not in gru_weights]
    if missing:
        raise ParameterError(f"gru_weights lacks {missing}; expected keys {GRU_KEYS}")
    arrays = {k: np.asarray(gru_weights[k], dtype=float) for k in GRU_KEYS}
    weight_ih = arrays["weight_ih"]
    if weight_ih.ndim != 2 or weight_ih.shape[0] != 3 * GRU_HIDDEN or weight_ih.shape[1] not in (1, 3):
        raise ParameterError(f"gru weight_ih must be 24×1 or 24×3, got {weight_ih.shape}")
    expected = {"weight_hh": (24, 8), "bias_ih": (24,), "bias_hh": (24,), "linear_weight": (8,), "linear_bias": (1,)}
    for key, shape in expected.items():
        arrays[key] = arrays[key].reshape(-1) if len(shape) == 1 else arrays[key]
        if arrays[key].shape != shape:
            raise ParameterError(f"gru {key} must have shape {shape}, got {np.shape(gru_weights[key])}")
    if not all(np.all(np.isfinite(a)) for a in arrays.values()):
        raise ParameterError("gru_weights contain non-finite values")
    inputs = weight_ih.shape[1]
    return [
        f"#define DYNAMATCH_GRU_INPUTS {inputs}",
        "namespace dynamatch_gru {",
        f"static const double kWeightIh[24][{inputs}] = {{{_floats(weight_ih)}}};",
        f"static const double kWeightHh[24][8] = {{{_floats(arrays['weight_hh'])}}};",
        f"static const double kBiasIh[24] = {{{_floats(arrays['bias_ih'])}}};",
        f"static const double kBiasHh[24] = {{{_floats(arrays['bias_hh'])}}};",
        f"static const double kLinearWeight[8] = {{{_floats(arrays['linear_weight'])}}};",
        f"static const double kLinearBias = {float(arrays['linear_bias'][0])!r};",
        "} // namespace dynamatch_gru",
    ]


def _floats(values: np.ndarray) -> str:
    return ", ".join(repr(float(v)) for v in np.asarray(values, dtype=float).ravel())


def default_plugin_name(map_name: str) -> str:
    """The plugin's name (and so its bundle names and URI) for a map called ``map_name`` (a preset or the map
    file's stem): the shipped LA-2A keeps "dynamatch LA-2A", any other map is named after itself, so that two
    exported plugins never collide in a host."""
    return "dynamatch LA-2A" if map_name == "la2a" else f"dynamatch {map_name}"


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise ParameterError(f"plugin name {name!r} needs at least one letter or digit")
    return slug


def _variant_name(slug: str, channels: int) -> str:
    return slug if channels == 2 else f"{slug}-mono"


def _uri(slug: str) -> str:
    return f"urn:dynamatch:{slug}"


def _unique_id(slug: str, channels: int) -> int:
    """A stable 31-bit id per plugin name and layout (VST3 class id, legacy host ids)."""
    return int.from_bytes(hashlib.sha256(f"{slug}/{channels}".encode()).digest()[:4], "big") & 0x7FFFFFFF


def _description(parameter_map: ParameterMap) -> str:
    text = f"{parameter_map.model} compressor with a {parameter_map.interpolation} peak-reduction map, by dynamatch"
    return text.replace('"', "'")


def _template_files() -> dict[str, bytes]:
    folder = resources.files("dynamatch.export") / "plugin_template"
    entries = sorted((e for e in folder.iterdir() if e.is_file()), key=lambda e: e.name)
    return {entry.name: entry.read_bytes() for entry in entries}


def _digest(header: str, template: Mapping[str, bytes], formats: Sequence[str], makefile: Path) -> str:
    h = hashlib.sha256()
    for file_name, content in template.items():
        h.update(file_name.encode() + b"\0" + content + b"\0")
    h.update(header.encode() + b"\0" + " ".join(formats).encode() + b"\0")
    h.update(str(DPF_PATH).encode() + b"\0" + makefile.read_bytes())
    return h.hexdigest()


def _stamp_digest(stamp: Path) -> str | None:
    try:
        return json.loads(stamp.read_text()).get("digest")
    except (OSError, ValueError, AttributeError):
        return None


def _write_if_changed(path: Path, content: bytes) -> None:
    if not path.exists() or path.read_bytes() != content:
        path.write_bytes(content)


def _run_make(command: list[str], cwd: Path) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ExportError(f"{cwd}: could not run make ({error}); check that make and g++ work") from None
    if result.returncode != 0:
        lines = (result.stdout + "\n" + result.stderr).strip().splitlines()
        first_error = [line.strip() for line in lines if "error" in line.lower()][:1]
        tail = " | ".join(first_error + [line.strip() for line in lines[-4:] if line.strip() not in first_error])
        raise ExportError(f"{cwd}: plugin build failed ({' '.join(command[:4])}); fix the input or toolchain: {tail}")
