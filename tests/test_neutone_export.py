"""export neutone: the exported model, loaded by the real neutone-sdk, renders what dynamatch renders.

References are independent of the export path: the numba render kernels (``Compressor.process``), and for
neural models :class:`dynamatch.neural.streaming.StreamingProcessor` (the models' own ``step``).
The SDK runs the model the way the Neutone FX plugin does: ``set_daw_sample_rate_and_buffer_size``,
``reset`` and ``forward`` per DAW buffer through its sample-queue wrapper, parameters in [0, 1].
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from dynamatch.cli import main
from dynamatch.maps import ParameterMap
from dynamatch.models.compressor import Compressor
from dynamatch.models.family import MODELS, model_spec
from dynamatch.models.model_file import save_compressor

torch = pytest.importorskip("torch", reason="the Neutone export needs torch (pip install torch==2.13.0)")

from dynamatch.export.neutone import neutone_missing_reason, plan_neutone  # noqa: E402

SAMPLE_RATE = 44100
MISSING = neutone_missing_reason()
needs_sdk = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))
EXTRA_VALUES = {"knee_db": 5.0, "detector_ms": 8.0, "emphasis_db": 4.0, "emphasis_hz": 1500.0, "feedback": 0.4,
                "release_slow_ms": 2000.0, "slow_share": 0.4, "memory_ms": 800.0, "output_highpass_hz": 6.0,
                "panel_ms": 12.0, "slow_attack_ms": 250.0}
POINT = dict(threshold_db=-19.37, ratio=3.0, attack_ms=2.0, release_ms=80.0, makeup_db=2.5)


def programme(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    envelope = np.repeat(rng.uniform(0.02, 0.9, n // 2205 + 1), 2205)[:n]
    return (envelope * rng.standard_normal(n) * 0.5).astype(np.float32).astype(np.float64)


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def blocks(n: int, sizes=(512, 300, 1024, 77)):
    """Varying block boundaries, as a host may use."""
    start, k = 0, 0
    while start < n:
        size = sizes[k % len(sizes)]
        yield start, min(start + size, n)
        start, k = start + size, k + 1


# -- the cores (torch only) --------------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_generated_torchscript_loop_matches_numba_for_every_member(model, tmp_path):
    values = {n: EXTRA_VALUES[n] for n in model_spec(model).parameter_names if n in EXTRA_VALUES}
    compressor = Compressor(model=model, **(POINT | values))
    plan = plan_neutone(save_compressor(tmp_path / "model.json", compressor, sample_rate=SAMPLE_RATE))
    x = programme(1.0, seed=1)
    reference = compressor.process(x, SAMPLE_RATE)
    torch.jit.save(plan.core, str(tmp_path / "core.pt"))  # the SDK saves and reloads the scripted code
    core = torch.jit.load(str(tmp_path / "core.pt"))
    core.reset()
    controls = [0.0, 0.0, *(compressor.to_dict()[n] for n in ("threshold_db", "ratio", "attack_ms", "release_ms")
                            if n in compressor.parameter_names)]
    with torch.no_grad():
        y = np.concatenate([core(torch.from_numpy(x[a:b])[None], controls)[0].numpy() for a, b in blocks(x.size)])
    assert np.max(np.abs(y - reference)) < 1e-6 * max(1.0, np.max(np.abs(reference)))
    assert np.max(np.abs(y - x)) > 1e-3  # it did compress
    stereo = np.stack([x, 0.5 * programme(1.0, seed=11)])
    core.reset()
    with torch.no_grad():
        y = np.concatenate([core(torch.from_numpy(stereo[:, a:b]), controls).numpy() for a, b in blocks(x.size)], axis=-1)
    reference = compressor.process(stereo, SAMPLE_RATE)
    assert np.max(np.abs(y - reference)) < 1e-6 * max(1.0, np.max(np.abs(reference)))


@pytest.mark.parametrize("interpolation", ["linear", "spline"])
def test_map_core_interpolates_inside_the_model_like_the_map(interpolation):
    parameter_map = ParameterMap.preset("la2a").with_interpolation(interpolation)
    plan = plan_neutone("preset:la2a", interpolation=interpolation)
    x = programme(1.0, seed=2)
    for knob, mode in ((47.0, "compress"), (83.0, "limit"), (20.0, "limit"), (100.0, "compress")):
        plan.core.reset()
        with torch.no_grad():
            y = np.concatenate([plan.core(torch.from_numpy(x[a:b])[None], [knob, 1.0 if mode == "limit" else 0.0])[0]
                                .numpy() for a, b in blocks(x.size)])
        reference = parameter_map.compressor(knob, mode).process(x, SAMPLE_RATE)
        assert np.max(np.abs(y - reference)) < 1e-6, (knob, mode)


# -- through the SDK -------------------------------------------------------------------------------------
def sdk_render(model_dir, x: np.ndarray, params_0to1: list[list[float]], buffer_size: int = 512,
               sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Load ``model.nm`` with the SDK and stream ``x`` through it per DAW buffer; ``params_0to1[k]`` holds the
    parameter values of buffer k (the last is repeated)."""
    from neutone_sdk.utils import load_neutone_model

    model, metadata = load_neutone_model(str(model_dir / "model.nm"))
    model.set_daw_sample_rate_and_buffer_size(sample_rate, buffer_size)
    model.reset()
    channels = np.atleast_2d(x)
    length = channels.shape[-1]
    padded = np.pad(channels, ((0, 0), (0, -length % buffer_size))).astype(np.float32)
    out = []
    with torch.no_grad():
        for k in range(padded.shape[-1] // buffer_size):
            values = params_0to1[min(k, len(params_0to1) - 1)]
            params = torch.zeros(4, buffer_size)
            params[: len(values)] = torch.tensor(values)[:, None]
            block = torch.from_numpy(np.ascontiguousarray(padded[:, k * buffer_size:(k + 1) * buffer_size]))
            out.append(model.forward(block, params).numpy().copy())  # the SDK returns its own buffer
    y = np.concatenate(out, axis=-1)[:, :length]
    return y[0] if np.ndim(x) == 1 else y


@needs_sdk
def test_exported_la2a_map_loads_in_the_sdk_and_follows_its_knobs(tmp_path):
    result = run_cli("export", "neutone", "preset:la2a", "-o", tmp_path / "la2a")
    assert result.exit_code == 0, result.output
    metadata = json.loads((tmp_path / "la2a" / "metadata.json").read_text())
    assert [p["name"] for p in metadata["neutone_parameters"].values()] == ["Peak Reduction", "Mode"]
    la2a = ParameterMap.preset("la2a")
    x = programme(3.0, seed=3)
    y = sdk_render(tmp_path / "la2a", x, [[0.65, 1.0]])
    reference = la2a.compressor(65, "limit").process(x, SAMPLE_RATE)
    error = np.max(np.abs(y - reference))
    print(f"la2a PR 65 limit through the SDK: max |Δ| {error:.2e}")
    assert error < 2e-6  # float32 output

    # automation: PR 40 compress for 40 buffers, then PR 90 limit; the state carries over the change
    y = sdk_render(tmp_path / "la2a", x, [[0.40, 0.0]] * 40 + [[0.90, 1.0]])
    split = 40 * 512
    stream = la2a.compressor(40, "compress").stream(SAMPLE_RATE)
    first = stream.process(x[:split])
    second_stream = la2a.compressor(90, "limit").stream(SAMPLE_RATE)
    second_stream.state = stream.state.copy()
    expected = np.concatenate([first, second_stream.process(x[split:])])
    assert np.max(np.abs(y - expected)) < 2e-6
    assert np.max(np.abs(y - reference)) > 1e-2  # a different setting really sounds different


@needs_sdk
def test_exported_compressor_is_stereo_linked(tmp_path):
    """Stereo in the DAW: one gain from the louder channel on both, as Compressor.process on (2, samples)."""
    result = run_cli("export", "neutone", "preset:la2a", "-o", tmp_path / "la2a")
    assert result.exit_code == 0, result.output
    metadata = json.loads((tmp_path / "la2a" / "metadata.json").read_text())
    assert metadata["model_type"] == "stereo-stereo"
    left, right = programme(2.0, seed=8), 0.3 * programme(2.0, seed=9)
    stereo = np.stack([left, right])
    y = sdk_render(tmp_path / "la2a", stereo, [[0.8, 0.0]])
    compressor = ParameterMap.preset("la2a").compressor(80, "compress")
    linked = compressor.process(stereo, SAMPLE_RATE)
    assert np.max(np.abs(y - linked)) < 2e-6
    separate = np.stack([compressor.process(left, SAMPLE_RATE), compressor.process(right, SAMPLE_RATE)])
    assert np.max(np.abs(y[1] - separate[1])) > 1e-3  # the quiet channel follows the loud one's gain


@needs_sdk
def test_exported_fitted_compressor_exposes_its_parameters(tmp_path):
    fitted = Compressor(model="ff5-knee", knee_db=6.0, **POINT)
    save_compressor(tmp_path / "fit.json", fitted, sample_rate=SAMPLE_RATE)
    result = run_cli("export", "neutone", tmp_path / "fit.json", "-o", tmp_path / "nm", "--sample-rate", 48000)
    assert result.exit_code == 0, result.output
    description = json.loads((tmp_path / "nm" / "dynamatch.json").read_text())
    names = [p["name"] for p in description["parameters"]]
    assert names == ["threshold_db", "ratio", "attack_ms", "release_ms"]
    x = programme(2.0, seed=4)
    # the defaults are the fitted values; move the threshold to -30 dB and the ratio to 8
    low = [p["min_value"] for p in description["parameters"]]
    high = [p["max_value"] for p in description["parameters"]]
    wanted = [-30.0, 8.0, POINT["attack_ms"], POINT["release_ms"]]
    params = [(w - lo) / (hi - lo) for w, lo, hi in zip(wanted, low, high)]
    y = sdk_render(tmp_path / "nm", x, [params], buffer_size=256, sample_rate=48000)
    reference = fitted.with_params(threshold_db=-30.0, ratio=8.0).process(x, 48000)
    assert np.max(np.abs(y - reference)) < 1e-5  # the parameters pass through float32 in [0, 1]


def _save_neural(tmp_path, name: str, **overrides):
    from dynamatch.neural.registry import build_model, save_model

    torch.manual_seed(0)
    model = build_model(name, **overrides).eval()
    (tmp_path / name).mkdir(exist_ok=True)
    path = save_model(model, tmp_path / name / "model.json")
    document = json.loads(path.read_text())
    document["training"] = {"sample_rate": SAMPLE_RATE}
    path.write_text(json.dumps(document))
    return model, path


@needs_sdk
@pytest.mark.parametrize("name, overrides", [("lstm-32", {}), ("tcn-100-c", {"channels": 8}), ("tcn-100-n", {"channels": 8}),
                                             ("s4-c32-f4", {"channels": 8})])
def test_exported_neural_model_matches_the_streaming_processor(tmp_path, name, overrides):
    from dynamatch.neural.streaming import StreamingProcessor

    model, path = _save_neural(tmp_path, name, **overrides)
    result = run_cli("export", "neutone", path, "-o", tmp_path / "nm")
    assert result.exit_code == 0, result.output
    x = programme(1.0, seed=5)
    y = sdk_render(tmp_path / "nm", x, [[0.7, 1.0]])
    processor = StreamingProcessor(model, (1.0, 0.7))
    reference = np.concatenate([processor.process(x[a:b].astype(np.float32)) for a, b in blocks(x.size)])
    delay = json.loads((tmp_path / "nm" / "dynamatch.json").read_text())["delay_samples"]
    assert delay == processor.latency_samples  # a non-causal TCN reports its look-ahead to the host
    error = np.max(np.abs(y - reference))
    print(f"{name}: max |Δ| {error:.2e} (output peak {np.max(np.abs(reference)):.3f})")
    assert error < 1e-5 and np.max(np.abs(reference)) > 1e-3


@needs_sdk
def test_exported_hybrid_is_the_map_then_the_gru(tmp_path):
    from dynamatch.neural.streaming import StreamingProcessor

    model, path = _save_neural(tmp_path, "gru-8")
    document = json.loads(path.read_text())
    la2a = ParameterMap.preset("la2a")
    document["training"]["hybrid"] = {"parameter_map": la2a.to_document(), "makeup_db": 0.0}
    path.write_text(json.dumps(document))
    result = run_cli("export", "neutone", path, "-o", tmp_path / "hybrid")
    assert result.exit_code == 0, result.output
    x = programme(1.0, seed=6)
    u = la2a.compressor(55, "compress").with_params(makeup_db=0.0).process(x, SAMPLE_RATE)
    processor = StreamingProcessor(model, (0.0, 0.55))
    reference = np.concatenate([processor.process(u[a:b].astype(np.float32)) for a, b in blocks(u.size)])
    y = sdk_render(tmp_path / "hybrid", x, [[0.55, 0.0]])
    assert np.max(np.abs(y - reference)) < 1e-5
    assert np.max(np.abs(reference - u)) > 1e-3  # the GRU changes the compressor's output

    # the GRU stage alone (the paper's Neutone model): its input is the compressor's output
    result = run_cli("export", "neutone", path, "-o", tmp_path / "gru", "--gru-only")
    assert result.exit_code == 0, result.output
    y = sdk_render(tmp_path / "gru", u, [[0.55, 0.0]])
    assert np.max(np.abs(y - reference)) < 1e-5


@pytest.mark.parametrize("make_args, message", [
    (lambda p: ["/nonexistent/model.json"], "no such model file"),
    (lambda p: [p["lstm"], "--sample-rate", 48000], "trained at 44100 Hz"),
    (lambda p: ["preset:la2a", "--sample-rate", 500000], "Neutone accepts"),
    (lambda p: [p["foreign"]], "foreign"),
    (lambda p: [p["gru"]], "--gru-only"),
    (lambda p: [p["bad"]], "not a readable JSON model file"),
])
def test_bad_export_input_is_one_line_and_exit_2(tmp_path, make_args, message):
    paths = {"lstm": _save_neural(tmp_path, "lstm-32")[1], "gru": _save_neural(tmp_path, "gru-8")[1],
             "bad": tmp_path / "bad.json", "foreign": tmp_path / "foreign.json"}
    paths["bad"].write_text("{not json")
    paths["foreign"].write_text('{"format": "foreign", "format_version": 1}')
    result = run_cli("export", "neutone", *make_args(paths), "-o", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


@needs_sdk
def test_exported_capture_map_exposes_the_captured_knob_by_name(tmp_path):
    """A map over a captured control (threshold_db, one mode) becomes one Neutone parameter over its knots."""
    knots = [-30.0, -20.0, -10.0]
    table = {"peak_reduction": knots, "threshold_db": [k + 1.0 for k in knots], "ratio": [4.0, 4.2, 4.4],
             "attack_ms": [5.0, 5.5, 6.0], "release_ms": [100.0, 110.0, 90.0], "makeup_db": [0.0, 0.5, 1.0]}
    captured = ParameterMap({"compress": table}, "linear", model="ff5", knob="threshold_db")
    path = captured.save(tmp_path / "zam.json")
    result = run_cli("export", "neutone", path, "-o", tmp_path / "nm")
    assert result.exit_code == 0, result.output
    metadata = json.loads((tmp_path / "nm" / "metadata.json").read_text())
    (parameter,) = metadata["neutone_parameters"].values()
    assert (parameter["name"], parameter["min_value"], parameter["max_value"]) == ("threshold_db", -30.0, -10.0)
    x = programme(1.0, seed=7)
    y = sdk_render(tmp_path / "nm", x, [[0.25]])  # -30 + 0.25 * 20 = -25 dB
    reference = captured.compressor(-25.0, "compress").process(x, SAMPLE_RATE)
    assert np.max(np.abs(y - reference)) < 2e-6
