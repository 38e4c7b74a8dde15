"""Export to Neutone FX (``neutone-sdk``, ``pip install 'dynamatch[neutone]'``): maps, compressors, neural models.

:func:`export_neutone` writes ``DIR/model.nm`` (TorchScript with the SDK's metadata, loadable by the
Neutone FX plugin and by ``neutone_sdk.utils.load_neutone_model``), ``DIR/metadata.json`` and
``DIR/dynamatch.json`` (what was exported, its parameters and source).  What ``MODEL`` may be:

* a parameter map (file or ``preset:la2a``): the knob (``Peak Reduction`` 0–100 for the LA-2A, or the
  captured control's name over its knot range) and, when the map has both, ``Mode`` (< 0.5 compress,
  ≥ 0.5 limit) are Neutone parameters; the map is evaluated inside the model (as in ``export plugin``);
* a fitted compressor file: ``threshold_db``, ``ratio``, ``attack_ms`` and ``release_ms`` are the
  parameters (Neutone allows four), defaulting to the fitted values; the rest stays as fitted;
* a trained neural model (``model.json``): LSTM-32, micro-TCN or S4, with ``Peak Reduction`` and ``Mode``;
* a 4A-2A-G GRU stage from ``train-hybrid``: the map it was trained after (make-up 0 dB) followed by the
  GRU, knobs as for the map — or, with ``gru_only``, the GRU stage alone (its input is the compressor's
  output, as the 4A-2A paper shipped it).

The grey-box members run their generated render loop (:mod:`dynamatch.export.torchscript`) in float64 at
any sample rate (time constants follow it), stereo-linked (the detector sees the louder channel, as the
numba kernels and the DPF plugin); neural models are mono and run at the rate they were trained at.  Every
model carries its state across buffers of any size and reports zero latency (a non-causal TCN reports its
look-ahead).  Knob changes take effect at the next buffer (no smoothing).

``import dynamatch.export.neutone`` needs neither torch nor the SDK; :func:`export_neutone` imports them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ExportError, ModelFileError, ParameterError, SampleRateMismatchError
from ..models.parameters import MODES

EXPORT_FORMAT = "dynamatch.neutone"
MAX_SAMPLE_RATE = 96000  # the SDK's schema limit for real-time models
COMPRESSOR_KNOBS = ("threshold_db", "ratio", "attack_ms", "release_ms")
INSTALL_HINT = ("pip install torch==2.13.0 'dynamatch[neutone]' (neutone-sdk 1.5.2; if torchaudio's library "
                "fails to load, remove torchaudio/lib/*.so, see the README)")


@dataclass(frozen=True)
class NeutonePlan:
    """What will be exported: the scriptable core, the Neutone parameters and the texts (no SDK needed)."""

    kind: str  # "map", "compressor", "neural", "hybrid", "gru"
    core: Any  # torch.nn.Module with forward(x [1, n], controls) -> [1, n]
    info: dict[str, Any]


@dataclass(frozen=True)
class NeutoneExport:
    """Files written by :func:`export_neutone` and what they hold."""

    model_path: Path
    metadata_path: Path
    description_path: Path
    kind: str
    parameters: tuple[dict[str, Any], ...]
    native_sample_rates: tuple[int, ...]


def neutone_missing_reason() -> str | None:
    """Why the SDK cannot be used here (None when ``import neutone_sdk`` works)."""
    try:
        import neutone_sdk  # noqa: F401
    except Exception as error:  # ImportError, or OSError from torchaudio's compiled library
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"neutone-sdk cannot be imported ({first}); {INSTALL_HINT}"
    return None


def _parameter(name: str, description: str, low: float, high: float, default: float, slot: int) -> dict[str, Any]:
    if not high > low:
        high = low + 1.0
    return {"name": name, "description": description, "min_value": float(low), "max_value": float(high),
            "default": float(min(max(default, low), high)), "slot": int(slot)}


def _map_parameters(parameter_map) -> tuple[list[dict[str, Any]], list[float]]:
    """Neutone parameters (knob, mode) of a map and the core's base controls ``[knob, limit]``."""
    knots = sorted({float(k) for mode in parameter_map.modes for k in parameter_map.knots(mode)})
    if parameter_map.knob == "peak_reduction":
        knob = _parameter("Peak Reduction", "the LA-2A's peak reduction knob (0-100)", 0.0, 100.0,
                          min(max(50.0, knots[0]), knots[-1]), 0)
    else:
        knob = _parameter(parameter_map.knob, f"the captured control {parameter_map.knob}", knots[0], knots[-1],
                          knots[len(knots) // 2], 0)
    parameters = [knob]
    limit_only = set(parameter_map.modes) == {"limit"}
    if set(parameter_map.modes) >= set(MODES):
        parameters.append(_parameter("Mode", "compress (< 0.5) or limit (>= 0.5)", 0.0, 1.0, 0.0, 1))
    return parameters, [knob["default"], 1.0 if limit_only else 0.0]


def _load_source(source: str | os.PathLike, interpolation: str | None):
    """(kind, object, JSON document or None) for ``source``, resolved by
    :func:`dynamatch.model_loading.resolve_model_source` (a preset, a map, a compressor or a neural model file,
    a run folder): kind ``"map"`` with the map, ``"compressor"`` with the compressor, ``"neural"`` with the path."""
    from ..documents import NEURAL, read_document
    from ..model_loading import resolve_model_source

    resolved = resolve_model_source(source)
    if resolved.is_map:
        return "map", resolved.parameter_map(interpolation), None
    if resolved.kind == "neural":
        return "neural", resolved.path, read_document(resolved.path, NEURAL)
    return "compressor", resolved.compressor(), None


def plan_neutone(
    source: str | os.PathLike,
    *,
    sample_rate: int | None = None,
    name: str | None = None,
    gru_only: bool = False,
    interpolation: str | None = None,
) -> NeutonePlan:
    """Build the core and the Neutone description of ``source`` (see the module docstring); needs torch only."""
    import copy

    import torch

    from ..maps.parameter_map import ParameterMap
    from . import neutone_cores as cores

    if sample_rate is not None and not (0 < int(sample_rate) <= MAX_SAMPLE_RATE):
        raise ParameterError(f"--sample-rate {sample_rate}: Neutone accepts 1 … {MAX_SAMPLE_RATE} Hz")
    kind, loaded, document = _load_source(source, interpolation)
    native = [int(sample_rate)] if sample_rate else []
    delay = 0
    label = Path(str(source)).stem if not str(source).startswith("preset:") else str(source).split(":", 1)[1]
    if kind == "map":
        parameters, base = _map_parameters(loaded)
        core = cores.compressor_core(loaded, sample_rate=float(sample_rate or 44100))
        summary = f"{loaded.model} compressor map over {loaded.knob} ({', '.join(loaded.modes)})"
    elif kind == "compressor":
        compressor = loaded
        names = compressor.parameter_names
        one_knot = ParameterMap({"compress": {"peak_reduction": [0.0], **{k: [v] for k, v in compressor.to_dict().items()}}},
                                model=compressor.model)
        exposed = [n for n in COMPRESSOR_KNOBS if n in names]
        ranges = {"threshold_db": (-60.0, 0.0), "ratio": (1.0, 20.0), "attack_ms": (0.1, 100.0), "release_ms": (1.0, 2000.0)}
        parameters = []
        for slot, n in enumerate(exposed, start=2):
            value = float(compressor.to_dict()[n])
            low, high = ranges[n]
            parameters.append(_parameter(n, f"{n} (fitted: {value:.4g})", min(low, value), max(high, value), value, slot))
        base = [0.0, 0.0, *(p["default"] for p in parameters)]
        core = cores.compressor_core(one_knot, overrides=[names.index(n) for n in exposed],
                                     sample_rate=float(sample_rate or 44100))
        summary = f"fitted {compressor.model} compressor"
    else:
        from ..neural.evaluate import hybrid_map
        from ..neural.gru import GRUStage
        from ..neural.lstm import LSTMModel
        from ..neural.registry import load_model
        from ..neural.s4 import S4Model
        from ..neural.tcn import TCN

        model = copy.deepcopy(load_model(loaded)).float().eval()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        trained_rate = int((document.get("training") or {}).get("sample_rate") or 44100)
        if sample_rate is not None and int(sample_rate) != trained_rate:
            raise SampleRateMismatchError(f"{loaded}: the model was trained at {trained_rate} Hz, not {sample_rate} Hz; "
                                          f"export it at --sample-rate {trained_rate} (Neutone resamples)")
        native = [trained_rate]
        label = Path(loaded).parent.name or Path(loaded).stem
        parameters = [_parameter("Peak Reduction", "peak reduction the model was conditioned on (0-100)", 0, 100, 50, 0),
                      _parameter("Mode", "compress (< 0.5) or limit (>= 0.5)", 0.0, 1.0, 0.0, 1)]
        base = [50.0, 0.0]
        if isinstance(model, GRUStage):
            compressor_map = None if gru_only else hybrid_map(loaded)
            if compressor_map is None and not gru_only:
                raise ModelFileError(f"{loaded}: a GRU stage without the map it was trained after (not from "
                                     "train-hybrid); export it with --gru-only")
            if compressor_map is not None:
                parameters, base = _map_parameters(compressor_map)
                core = cores.GRUCore(model, cores.compressor_core(compressor_map, zero_makeup=True,
                                                                  sample_rate=float(trained_rate)))
                kind, summary = "hybrid", f"4A-2A-G: {compressor_map.model} map (make-up 0 dB) + GRU-{model.gru.hidden_size}"
            else:
                core = cores.GRUCore(model)
                kind, summary = "gru", f"4A-2A-G GRU-{model.gru.hidden_size} stage alone (input: the compressor's output)"
                if not model.conditioned:
                    parameters[0]["description"] = "unused (the GRU stage is unconditioned)"
        elif isinstance(model, LSTMModel):
            core, summary = cores.LSTMCore(model), f"LSTM-{model.lstm.hidden_size}"
        elif isinstance(model, S4Model):
            core, summary = cores.S4Core(model), f"S4 DRC ({len(model.blocks)} blocks)"
        elif isinstance(model, TCN):
            core, summary = cores.TCNCore(model), f"micro-TCN ({'causal' if model.causal else 'non-causal'})"
            delay = int(model.lookahead_samples)
        else:
            raise ExportError(f"{loaded}: {type(model).__name__} models cannot be exported to Neutone; "
                              "use export neural (ONNX)")
    try:
        scripted = torch.jit.script(core)
    except Exception as error:  # TorchScript raises RuntimeError/TypeError/NotSupportedError
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"{source}: TorchScript compilation failed ({first})") from None
    from .. import __version__

    info = {
        "name": (name or f"dynamatch {label}")[:30],
        "authors": ["dynamatch"],
        "short_description": summary[:150],
        "long_description": (f"{summary}, exported by dynamatch {__version__} from {Path(str(source)).name}. "
                             f"{'Stereo-linked' if kind in ('map', 'compressor') else 'Mono'}; state carried across "
                             "buffers; knob changes apply from the next buffer.")[:500],
        "technical_description": ("Grey-box members run dynamatch's generated per-sample render loop in float64; "
                                  "the knob-to-parameter map is evaluated inside the model.")[:500],
        "version": __version__,
        "citation": "Yu & Fazekas, 4A-2A (2025); Steinmetz & Reiss, micro-TCN (2022)",
        "tags": ["compressor", "dynamics", "LA-2A", "dynamatch"],
        "parameters": parameters,
        "base_controls": base,
        "native_sample_rates": native,
        "delay_samples": delay,
        "stereo": kind in ("map", "compressor"),
    }
    return NeutonePlan(kind, scripted, info)


def export_neutone(
    source: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    sample_rate: int | None = None,
    name: str | None = None,
    gru_only: bool = False,
    interpolation: str | None = None,
) -> NeutoneExport:
    """Write ``output_dir/model.nm`` (+ ``metadata.json``, ``dynamatch.json``) for ``source``; needs neutone-sdk."""
    plan = plan_neutone(source, sample_rate=sample_rate, name=name, gru_only=gru_only, interpolation=interpolation)
    reason = neutone_missing_reason()  # after the input checks: bad input gets its own message first
    if reason:
        raise ImportError(reason)
    import logging

    from neutone_sdk.utils import save_neutone_model

    from .neutone_wrapper import wrapper_class

    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        from ..errors import OutputPathError

        raise OutputPathError(f"{output_dir}: cannot create the output folder ({error.strerror})") from None
    wrapper = wrapper_class(plan.info)(plan.core)
    quiet = [logging.getLogger(n) for n in ("neutone_sdk.utils", "neutone_sdk.metadata", "neutone_sdk.core",
                                             "neutone_sdk.wavform_to_wavform", "neutone_sdk.sqw")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    try:
        save_neutone_model(wrapper, output_dir, dump_samples=False, submission=False, speed_benchmark=False,
                           test_offline_mode=False)
    except Exception as error:  # the SDK asserts, validates with jsonschema and scripts: many error types
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"{output_dir}: the Neutone export failed ({first})") from None
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
    description = {
        "format": EXPORT_FORMAT, "format_version": 1, "kind": plan.kind, "source": str(source),
        "model": "model.nm", "parameters": plan.info["parameters"], "base_controls": plan.info["base_controls"],
        "native_sample_rates": plan.info["native_sample_rates"], "delay_samples": plan.info["delay_samples"],
        "stereo": plan.info["stereo"],
    }
    description_path = output_dir / "dynamatch.json"
    description_path.write_text(json.dumps(description, indent=2) + "\n")
    return NeutoneExport(output_dir / "model.nm", output_dir / "metadata.json", description_path, plan.kind,
                         tuple(plan.info["parameters"]), tuple(plan.info["native_sample_rates"]))
