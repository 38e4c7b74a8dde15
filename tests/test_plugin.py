"""The DPF plugin built from a parameter map, hosted by third-party hosts, against the Python render.

References: ``ParameterMap.compressor(pr, mode).process`` (dynamatch's own render), PyTorch's GRU for
the residual stage, ``lv2_validate`` for the LV2 metadata and lilv (the LV2 reference host library,
driven through ctypes) for the LV2 binary.  The plugins are built once per module into a temporary
folder; every test is skipped with the reason when DPF, a compiler or pedalboard is missing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from skips import require_module

from dynamatch.errors import ExportError, ParameterError
from dynamatch.export import build_plugin
from dynamatch.export.plugin import DPF_PATH, generate_header
from dynamatch.maps import ParameterMap
from dynamatch.models.compressor import Compressor

SAMPLE_RATE = 44100
TOLERANCE = 1e-5
DB_PER_STEP = 20.0 * np.log10(4.0)  # a +12 dB output-gain step


def _require_toolchain() -> None:
    if not (DPF_PATH / "Makefile.plugins.mk").is_file():
        pytest.skip(f"tool: DPF not found at {DPF_PATH} (apt install dpf-source)")
    if shutil.which("make") is None or shutil.which("g++") is None:
        pytest.skip("tool: make and g++ are needed to build the plugin")


@pytest.fixture(scope="module")
def pedalboard():
    return require_module("pedalboard", install="pedalboard hosts the VST3 in these tests")


@pytest.fixture(scope="module")
def la2a_map() -> ParameterMap:
    return ParameterMap.preset("la2a", interpolation="spline")


@pytest.fixture(scope="module")
def build(tmp_path_factory, la2a_map):
    _require_toolchain()
    return build_plugin(la2a_map, tmp_path_factory.mktemp("plugin"), jobs=2)


@pytest.fixture()
def mono(build, pedalboard):
    return pedalboard.load_plugin(str(build.bundle("vst3", channels=1)))


@pytest.fixture()
def stereo(build, pedalboard):
    return pedalboard.load_plugin(str(build.bundle("vst3", channels=2)))


def stimulus(seconds: float = 0.6, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Tone bursts with steps of level (above and below threshold) plus noise, float32 (channels, samples)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    levels_db = rng.uniform(-40.0, -2.0, size=12)
    envelope = 10.0 ** (np.repeat(levels_db, -(-n // 12))[:n] / 20.0)
    out = []
    for c in range(channels):
        tone = np.sin(2 * np.pi * (110.0 * (c + 1)) * t + c) + 0.3 * rng.standard_normal(n)
        out.append(envelope * tone / 1.3)
    return np.asarray(out, dtype=np.float32)


def reference(parameter_map, x, peak_reduction=50.0, mode="compress", output_gain_db=0.0):
    """dynamatch's render of float32 audio x (channels, samples), linked over channels."""
    y = parameter_map.compressor(peak_reduction, mode).process(x.astype(np.float64), SAMPLE_RATE)
    return y * 10.0 ** (output_gain_db / 20.0)


def set_params(plugin, peak_reduction=50.0, mode="compress", output_gain_db=0.0, bypass=False):
    plugin.peak_reduction = peak_reduction
    plugin.mode = mode.title()
    plugin.output_gain_db = output_gain_db
    plugin.bypass = bypass


# -- building -------------------------------------------------------------------------------------
def test_build_is_idempotent_and_produces_every_bundle(build, la2a_map):
    for (fmt, channels), path in build.bundles.items():
        assert path.exists(), (fmt, channels)
        assert path.parent.name == fmt
    again = build_plugin(la2a_map, build.output_dir)
    assert not again.rebuilt and again.digest == build.digest
    assert again.bundles == build.bundles


def test_header_follows_the_map(la2a_map):
    linear = generate_header(la2a_map.with_interpolation("linear"))
    spline = generate_header(la2a_map)
    assert linear != spline
    knots = la2a_map.knots("limit")
    assert f"kLimitBreakpoints[] = {{{', '.join(repr(float(k)) for k in knots)}}}" in spline
    one_knot = ParameterMap({"compress": {"peak_reduction": [50.0], "threshold_db": [3.0], "ratio": [2.0],
                                          "attack_ms": [5.0], "release_ms": [100.0], "makeup_db": [1.0]}})
    header = generate_header(one_knot)
    assert "static const float kDefault[] = {0.0f, 2.0f, 5.0f, 100.0f, 1.0f};" in header  # clamped into the host range
    assert "kLimitBreakpoints[] = {50.0, 50.0}" in header  # compress serves both positions
    with pytest.raises(ParameterError):
        generate_header(la2a_map, name='bad "name"')
    with pytest.raises(ParameterError):
        build_plugin(la2a_map, "unused", formats=("vst2",))


def test_failed_compile_raises_export_error_with_compiler_output(tmp_path, la2a_map, monkeypatch):
    _require_toolchain()
    import dynamatch.export.plugin as plugin_module

    broken = {"weight_ih": [[0.0]] * 24, "weight_hh": [[0.0] * 8] * 24, "bias_ih": [0.0] * 24,
              "bias_hh": [0.0] * 24, "linear_weight": [0.0] * 8, "linear_bias": [0.0]}
    real_lines = plugin_module._gru_lines
    def without_bias(w):  # drop one declaration the C++ needs
        return [line for line in real_lines(w) if "kLinearBias" not in line]

    monkeypatch.setattr(plugin_module, "_gru_lines", without_bias)
    with pytest.raises(ExportError, match="kLinearBias"):
        build_plugin(la2a_map, tmp_path, formats=("clap",), gru_weights=broken)


# -- VST3 through pedalboard against the Python render ------------------------------------------
def test_defaults_compress_audibly(build, pedalboard):
    plugin = pedalboard.load_plugin(str(build.bundle("vst3", channels=1)))  # untouched defaults
    assert (plugin.peak_reduction, plugin.mode, plugin.output_gain_db, plugin.bypass) == (50.0, "Compress", 0.0, False)
    x, _ = _steady_tone(seconds=0.5, amplitude=0.5)  # −6 dBFS
    y = plugin.process(x, SAMPLE_RATE, buffer_size=512, reset=True)
    reduction_db = 20 * np.log10(np.max(np.abs(x[0, -4410:])) / np.max(np.abs(y[0, -4410:])))
    assert reduction_db > 3.0

@pytest.mark.parametrize("buffer_size", [1, 32, 511, 4096])
def test_vst3_matches_python_render_at_any_buffer_size(mono, la2a_map, buffer_size):
    x = stimulus()
    set_params(mono, 50.0)
    y = mono.process(x, SAMPLE_RATE, buffer_size=buffer_size, reset=True)
    ref = reference(la2a_map, x[0])
    assert np.max(np.abs(ref - x[0])) > 0.05  # the default setting does compress
    assert np.max(np.abs(y[0] - ref)) <= TOLERANCE


@pytest.mark.parametrize(
    ("mode", "peak_reduction", "output_gain_db"),
    [("compress", 85.0, 0.0), ("limit", 45.0, 0.0), ("limit", 72.5, 6.0), ("compress", 20.0, -3.0)],
)
def test_vst3_matches_python_render_in_both_modes(mono, la2a_map, mode, peak_reduction, output_gain_db):
    x = stimulus(seed=1)
    set_params(mono, peak_reduction, mode, output_gain_db)
    y = mono.process(x, SAMPLE_RATE, buffer_size=256, reset=True)
    ref = reference(la2a_map, x[0], peak_reduction, mode, output_gain_db)
    assert np.max(np.abs(y[0] - ref)) <= TOLERANCE


def test_vst3_matches_python_render_on_real_programme_material(mono, la2a_map, la2a_dir):
    import soundfile

    x, sample_rate = soundfile.read(la2a_dir / "signaltrain_excerpts" / "sample2_input.wav", dtype="float32",
                                    frames=3 * 44100)
    set_params(mono, 80.0, "compress")
    y = mono.process(x[None], sample_rate, buffer_size=128, reset=True)[0]
    ref = la2a_map.compressor(80.0, "compress").process(x.astype(np.float64), sample_rate)
    assert np.max(np.abs(ref - x)) > 0.05
    assert np.max(np.abs(y - ref)) <= TOLERANCE


@pytest.mark.parametrize("sample_rate", [48000, 96000, 22050])
def test_vst3_follows_the_host_sample_rate(mono, la2a_map, sample_rate):
    x = stimulus(seed=9)
    set_params(mono, 60.0, "limit")
    y = mono.process(x, sample_rate, buffer_size=1024, reset=True)[0]
    ref = la2a_map.compressor(60.0, "limit").process(x[0].astype(np.float64), sample_rate)
    assert np.max(np.abs(y - ref)) <= TOLERANCE


def test_modes_and_knob_change_the_sound(mono):
    x = stimulus(seed=2)
    outputs = []
    for mode, pr in [("compress", 40.0), ("compress", 100.0), ("limit", 100.0)]:
        set_params(mono, pr, mode)
        outputs.append(mono.process(x, SAMPLE_RATE, buffer_size=512, reset=True)[0])
    assert np.sqrt(np.mean(outputs[1] ** 2)) < 0.8 * np.sqrt(np.mean(outputs[0] ** 2))
    assert np.max(np.abs(outputs[2] - outputs[1])) > 1e-3


def test_vst3_state_survives_varying_block_sizes(mono, la2a_map):
    x = stimulus(seed=3)
    set_params(mono, 65.0, "limit")
    lengths = [1000, 7, 300, 64, 4096, 5, 1, 2000, 333]
    outputs, start = [], 0
    for i, length in enumerate(lengths):
        outputs.append(mono.process(x[:, start:start + length], SAMPLE_RATE, buffer_size=8192, reset=i == 0)[0])
        start += length
    ref = reference(la2a_map, x[0, :start], 65.0, "limit")
    assert np.max(np.abs(np.concatenate(outputs) - ref)) <= TOLERANCE


def test_reset_starts_a_new_signal(mono, la2a_map):
    x = stimulus(seed=4)
    set_params(mono, 90.0)
    mono.process(x, SAMPLE_RATE, buffer_size=128, reset=True)
    y = mono.process(x, SAMPLE_RATE, buffer_size=128, reset=True)
    assert np.max(np.abs(y[0] - reference(la2a_map, x[0], 90.0))) <= TOLERANCE


def test_stereo_plugin_links_the_channels(stereo, la2a_map):
    x = stimulus(channels=2, seed=5)
    x[1] *= 0.2  # a quiet right channel is compressed by the left's peaks
    set_params(stereo, 70.0, "compress")
    y = stereo.process(x, SAMPLE_RATE, buffer_size=300, reset=True)
    ref = reference(la2a_map, x, 70.0)
    assert np.max(np.abs(y - ref)) <= TOLERANCE
    unlinked = reference(la2a_map, x[1:], 70.0)[0]
    assert np.max(np.abs(ref[1] - unlinked)) > 1e-3


# -- automation, bypass, hostile input ------------------------------------------------------------
def _max_step(y: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(y))))


def _automate(plugin, x, split, before, after):
    set_params(plugin, **before)
    first = plugin.process(x[:, :split], SAMPLE_RATE, buffer_size=256, reset=True)
    set_params(plugin, **after)
    second = plugin.process(x[:, split:], SAMPLE_RATE, buffer_size=256, reset=False)
    return np.concatenate([first[0], second[0]])


def _steady_tone(seconds=0.5, amplitude=0.5, frequency_hz=100.0):
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t + 0.7))[None].astype(np.float32), frequency_hz


def test_output_gain_automation_is_smoothed_without_clicks(mono, la2a_map):
    x, frequency_hz = _steady_tone()
    split = x.shape[1] // 2 + 37  # not at a zero crossing
    y = _automate(mono, x, split, dict(output_gain_db=0.0), dict(output_gain_db=DB_PER_STEP))
    window = slice(split - 1, split + int(0.03 * SAMPLE_RATE))
    # a sine's largest step is amplitude·2πf/fs; allow the amplitude reached anywhere near the change
    bound = 1.2 * np.max(np.abs(y[window])) * 2 * np.pi * frequency_hz / SAMPLE_RATE
    assert _max_step(y[window]) <= bound
    # the same change applied instantly (two Python renders spliced) would fail this bound
    spliced = np.concatenate([reference(la2a_map, x[0])[:split],
                              reference(la2a_map, x[0], output_gain_db=DB_PER_STEP)[split:]])
    assert _max_step(spliced[window]) > 3 * bound
    # and the gain does arrive: 0.5 s later the output is 12 dB louder than before the change
    late = np.max(np.abs(y[-2000:])) / np.max(np.abs(y[split - 2000:split]))
    assert late == pytest.approx(4.0, rel=1e-3)


def test_peak_reduction_automation_changes_gain_without_clicks(mono):
    x, frequency_hz = _steady_tone(amplitude=0.9)
    split = x.shape[1] // 2 + 11
    y = _automate(mono, x, split, dict(peak_reduction=40.0), dict(peak_reduction=100.0))
    window = slice(split - 1, split + int(0.03 * SAMPLE_RATE))
    bound = 1.2 * np.max(np.abs(y[window])) * 2 * np.pi * frequency_hz / SAMPLE_RATE
    assert _max_step(y[window]) <= bound
    assert np.max(np.abs(y[-2000:])) < 0.6 * np.max(np.abs(y[split - 2000:split]))


def test_bypass_crossfades_to_the_dry_signal(mono):
    x, frequency_hz = _steady_tone(seconds=1.0, amplitude=0.9)
    split = x.shape[1] // 3 + 5
    y = _automate(mono, x, split, dict(peak_reduction=100.0), dict(peak_reduction=100.0, bypass=True))
    window = slice(split - 1, split + int(0.05 * SAMPLE_RATE))
    bound = 1.2 * np.max(np.abs(y[window])) * 2 * np.pi * frequency_hz / SAMPLE_RATE
    assert _max_step(y[window]) <= bound
    assert np.max(np.abs(y[-4000:] - x[0, -4000:])) <= 1e-6  # settled: the input, untouched


def test_hostile_input_gives_finite_output_and_recovers(mono, la2a_map):
    x = stimulus(seed=6)
    n = x.shape[1]
    hostile = x.copy()
    hostile[0, 1000:1010] = np.nan
    hostile[0, 2000] = np.inf
    hostile[0, 2001] = -np.inf
    hostile[0, 5000:9000] = 0.0
    hostile[0, 12000:12500] = 100.0 * np.sign(np.sin(np.arange(500) / 7.0))  # +40 dBFS
    set_params(mono, 80.0)
    y = mono.process(hostile, SAMPLE_RATE, buffer_size=64, reset=True)[0]
    assert np.all(np.isfinite(y))
    cleaned = np.where(np.isfinite(hostile), hostile, 0.0)
    ref = reference(la2a_map, cleaned[0], 80.0)  # non-finite samples count as silence
    assert np.max(np.abs(y - ref)) <= TOLERANCE * 100.0  # 100 = the +40 dBFS peak
    assert np.max(np.abs(y[13000:n] - ref[13000:n])) <= TOLERANCE
    silence = mono.process(np.zeros((1, 4096), np.float32), SAMPLE_RATE, buffer_size=512, reset=True)
    assert np.all(silence == 0.0)


# -- LV2 and CLAP ---------------------------------------------------------------------------------
def test_lv2_bundles_validate(build):
    if shutil.which("lv2_validate") is None:
        pytest.skip("tool: lv2_validate not installed (apt install lv2-dev sordi)")
    for channels in (1, 2):
        ttl = sorted(str(p) for p in build.bundle("lv2", channels).glob("*.ttl"))
        result = subprocess.run(["lv2_validate", *ttl], capture_output=True, text=True, timeout=120)
        assert "Found 0 errors" in result.stdout + result.stderr, result.stdout + result.stderr


class LilvHost:
    """Hosts one LV2 plugin through liblilv (ctypes), providing the urid:map and options features."""

    class _Feature(ctypes.Structure):
        _fields_ = [("URI", ctypes.c_char_p), ("data", ctypes.c_void_p)]

    _MapFunction = ctypes.CFUNCTYPE(ctypes.c_uint32, ctypes.c_void_p, ctypes.c_char_p)

    class _UridMap(ctypes.Structure):
        pass

    class _Option(ctypes.Structure):
        _fields_ = [("context", ctypes.c_int), ("subject", ctypes.c_uint32), ("key", ctypes.c_uint32),
                    ("size", ctypes.c_uint32), ("type", ctypes.c_uint32), ("value", ctypes.c_void_p)]

    class _Descriptor(ctypes.Structure):
        _fields_ = [("URI", ctypes.c_char_p), ("instantiate", ctypes.c_void_p),
                    ("connect_port", ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)),
                    ("activate", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
                    ("run", ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32)),
                    ("deactivate", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
                    ("cleanup", ctypes.c_void_p), ("extension_data", ctypes.c_void_p)]

    class _Instance(ctypes.Structure):
        pass

    _UridMap._fields_ = [("handle", ctypes.c_void_p), ("map", _MapFunction)]
    _Instance._fields_ = [("descriptor", ctypes.POINTER(_Descriptor)), ("handle", ctypes.c_void_p),
                          ("pimpl", ctypes.c_void_p)]

    def __init__(self, bundle: Path, uri: str, sample_rate: float, max_block: int, controls: dict[str, float]):
        name = ctypes.util.find_library("lilv-0")
        if name is None:
            pytest.skip("tool: liblilv-0 not installed (apt install liblilv-0-0)")
        lilv = self.lilv = ctypes.CDLL(name)
        vp, cp = ctypes.c_void_p, ctypes.c_char_p
        for fn, res, args in [
            ("lilv_world_new", vp, []), ("lilv_new_file_uri", vp, [vp, cp, cp]), ("lilv_new_uri", vp, [vp, cp]),
            ("lilv_new_string", vp, [vp, cp]), ("lilv_world_load_bundle", None, [vp, vp]),
            ("lilv_world_get_all_plugins", vp, [vp]), ("lilv_plugins_get_by_uri", vp, [vp, vp]),
            ("lilv_plugin_get_num_ports", ctypes.c_uint32, [vp]),
            ("lilv_plugin_get_port_by_symbol", vp, [vp, vp]), ("lilv_port_get_index", ctypes.c_uint32, [vp, vp]),
            ("lilv_plugin_get_port_ranges_float", None, [vp, vp, vp, vp]),
            ("lilv_plugin_instantiate", ctypes.POINTER(self._Instance), [vp, ctypes.c_double, vp]),
            ("lilv_instance_free", None, [ctypes.POINTER(self._Instance)]), ("lilv_world_free", None, [vp]),
        ]:
            getattr(lilv, fn).restype, getattr(lilv, fn).argtypes = res, args
        self.world = lilv.lilv_world_new()
        lilv.lilv_world_load_bundle(self.world, lilv.lilv_new_file_uri(self.world, None, (str(bundle) + "/").encode()))
        plugins = lilv.lilv_world_get_all_plugins(self.world)
        self.plugin = lilv.lilv_plugins_get_by_uri(plugins, lilv.lilv_new_uri(self.world, uri.encode()))
        assert self.plugin, f"lilv did not find {uri} in {bundle}"

        self._urids: dict[bytes, int] = {}
        self._ports: dict[str, int] = {}
        self._map_function = self._MapFunction(lambda _handle, u: self._urids.setdefault(u, len(self._urids) + 1))
        self._map = self._UridMap(None, self._map_function)
        self._block = ctypes.c_int32(max_block)
        int_type = self._map_function(None, b"http://lv2plug.in/ns/ext/atom#Int")
        options = (self._Option * 3)()
        for i, key in enumerate([b"http://lv2plug.in/ns/ext/buf-size#maxBlockLength",
                                 b"http://lv2plug.in/ns/ext/buf-size#nominalBlockLength"]):
            options[i] = self._Option(0, 0, self._map_function(None, key), 4, int_type,
                                      ctypes.cast(ctypes.byref(self._block), ctypes.c_void_p))
        self._options = options
        features = [self._Feature(b"http://lv2plug.in/ns/ext/urid#map", ctypes.cast(ctypes.byref(self._map), vp)),
                    self._Feature(b"http://lv2plug.in/ns/ext/options#options", ctypes.cast(options, vp))]
        self._features = features
        pointers = (ctypes.POINTER(self._Feature) * 3)(*(ctypes.pointer(f) for f in features), None)
        self._feature_pointers = pointers
        self.instance = lilv.lilv_plugin_instantiate(self.plugin, sample_rate, ctypes.cast(pointers, vp))
        assert self.instance, "lilv could not instantiate the plugin"

        ports = lilv.lilv_plugin_get_num_ports(self.plugin)
        defaults = np.full(ports, np.nan, dtype=np.float32)
        lilv.lilv_plugin_get_port_ranges_float(self.plugin, None, None, defaults.ctypes.data)
        self.controls = np.where(np.isnan(defaults), 0.0, defaults).astype(np.float32)
        for symbol, value in controls.items():
            self.controls[self.port(symbol)] = value
        descriptor = self.instance.contents.descriptor.contents
        self._descriptor, self._handle = descriptor, self.instance.contents.handle
        for index in range(ports):
            descriptor.connect_port(self._handle, index, self.controls[index:].ctypes.data)
        descriptor.activate(self._handle)

    def port(self, symbol: str) -> int:
        if symbol not in self._ports:
            node = self.lilv.lilv_new_string(self.world, symbol.encode())
            port = self.lilv.lilv_plugin_get_port_by_symbol(self.plugin, node)
            assert port, f"no port {symbol!r}"
            self._ports[symbol] = self.lilv.lilv_port_get_index(self.plugin, port)
        return self._ports[symbol]

    def process(self, x: np.ndarray, block_sizes) -> np.ndarray:
        channels, n = x.shape
        out = np.zeros_like(x, dtype=np.float32)
        start, i = 0, 0
        while start < n:
            length = min(block_sizes[i % len(block_sizes)], n - start)
            block_in = [np.ascontiguousarray(x[c, start:start + length], dtype=np.float32) for c in range(channels)]
            block_out = [np.zeros(length, np.float32) for _ in range(channels)]
            for c in range(channels):
                connect = self._descriptor.connect_port
                connect(self._handle, self.port(f"lv2_audio_in_{c + 1}"), block_in[c].ctypes.data)
                connect(self._handle, self.port(f"lv2_audio_out_{c + 1}"), block_out[c].ctypes.data)
            self._descriptor.run(self._handle, length)
            for c in range(channels):
                out[c, start:start + length] = block_out[c]
            start, i = start + length, i + 1
        return out

    def close(self) -> None:
        self._descriptor.deactivate(self._handle)
        self.lilv.lilv_instance_free(self.instance)
        self.lilv.lilv_world_free(self.world)


@pytest.mark.parametrize(("channels", "mode", "peak_reduction"), [(1, "limit", 55.0), (2, "compress", 95.0)])
def test_lv2_renders_like_python_in_lilv(build, la2a_map, channels, mode, peak_reduction):
    x = stimulus(channels=channels, seed=7)
    controls = {"peak_reduction": peak_reduction, "mode": float(mode == "limit")}
    host = LilvHost(build.bundle("lv2", channels), build.uri(channels), SAMPLE_RATE, 4096, controls)
    try:
        y = host.process(x, block_sizes=[1, 64, 4096, 17, 500])
    finally:
        host.close()
    ref = reference(la2a_map, x if channels == 2 else x[0], peak_reduction, mode)
    assert np.max(np.abs(y.reshape(ref.shape) - ref)) <= TOLERANCE


def test_clap_bundles_export_the_clap_entry(build):
    for channels in (1, 2):
        library = ctypes.CDLL(str(build.bundle("clap", channels)))
        assert ctypes.c_void_p.in_dll(library, "clap_entry").value is not None


# -- expert mode and the residual GRU -------------------------------------------------------------
def test_expert_build_with_gru_matches_torch(tmp_path_factory, la2a_map, pedalboard):
    _require_toolchain()
    torch = require_module("torch", install="torch is the GRU reference")
    torch.manual_seed(0)
    gru = torch.nn.GRU(3, 8, batch_first=True).double()
    linear = torch.nn.Linear(8, 1).double()
    weights = {"weight_ih": gru.weight_ih_l0.tolist(), "weight_hh": gru.weight_hh_l0.tolist(),
               "bias_ih": gru.bias_ih_l0.tolist(), "bias_hh": gru.bias_hh_l0.tolist(),
               "linear_weight": linear.weight.tolist(), "linear_bias": linear.bias.tolist()}
    built = build_plugin(la2a_map, tmp_path_factory.mktemp("expert"), name="dynamatch expert",
                         formats=("vst3",), expert_mode=True, gru_weights=weights)
    plugin = pedalboard.load_plugin(str(built.bundle("vst3", 1)))
    raw = Compressor(threshold_db=-24.0, ratio=6.0, attack_ms=3.0, release_ms=150.0, makeup_db=0.0)
    plugin.raw_parameters = True
    plugin.threshold_db, plugin.ratio, plugin.attack_ms, plugin.release_ms = -24.0, 6.0, 3.0, 150.0
    plugin.makeup_db = 9.0  # the GRU build ignores make-up: the GRU sets the level
    plugin.peak_reduction, plugin.mode, plugin.output_gain_db = 70.0, "Limit", 0.0
    as_set = {k: float(getattr(plugin, k)) for k in ("threshold_db", "ratio", "attack_ms", "release_ms")}
    raw = raw.with_params(**as_set)  # the values the host could set (its parameter steps)
    x = stimulus(seconds=0.3, seed=8)
    y = plugin.process(x, SAMPLE_RATE, buffer_size=100, reset=True)[0]

    compressed = raw.process(x[0].astype(np.float64), SAMPLE_RATE)
    conditioning = np.stack([compressed, np.ones_like(compressed), np.full_like(compressed, 0.70)], axis=-1)
    with torch.no_grad():
        hidden, _ = gru(torch.from_numpy(conditioning)[None])
        expected = compressed + linear(hidden)[0, :, 0].numpy()
    assert np.max(np.abs(expected - compressed)) > 1e-3  # the GRU does something
    assert np.max(np.abs(y - expected)) <= TOLERANCE


# -- any family member ---------------------------------------------------------------------------------
def opto_map() -> ParameterMap:
    """A two-knot opto-hp map (both modes): the feedback cell (four states, a log-domain peak hold) and a
    per-channel output stage."""
    def table(threshold_db, ratio):
        return {"peak_reduction": [40.0, 90.0], "threshold_db": [threshold_db, threshold_db - 12.0],
                "ratio": [ratio, ratio + 2.0], "attack_ms": [8.0, 5.0], "release_ms": [70.0, 90.0],
                "panel_ms": [10.0, 20.0], "slow_attack_ms": [300.0, 500.0], "release_slow_ms": [1500.0, 3000.0],
                "slow_share": [0.5, 0.8], "output_highpass_hz": [6.0, 8.0], "makeup_db": [1.0, 4.0]}
    return ParameterMap({"compress": table(-20.0, 3.0), "limit": table(-24.0, 10.0)}, "linear", model="opto-hp")


@pytest.fixture(scope="module")
def opto_build(tmp_path_factory):
    _require_toolchain()
    return build_plugin(opto_map(), tmp_path_factory.mktemp("opto-plugin"), name="dynamatch opto test",
                        formats=("vst3",), expert_mode=True, jobs=2)


@pytest.mark.parametrize("buffer_size", [1, 77, 4096])
def test_an_opto_hp_map_plugin_matches_the_python_render(opto_build, pedalboard, buffer_size):
    parameter_map = opto_map()
    plugin = pedalboard.load_plugin(str(opto_build.bundle("vst3", channels=2)))
    plugin.raw_parameters = False
    x = stimulus(seconds=1.0, channels=2, seed=7)
    for mode, knob in (("compress", 65.0), ("limit", 40.0)):
        set_params(plugin, knob, mode)
        y = plugin.process(x, SAMPLE_RATE, buffer_size=buffer_size, reset=True)
        ref = reference(parameter_map, x, knob, mode)
        assert np.max(np.abs(ref - x)) > 0.05
        assert np.max(np.abs(y - ref)) <= TOLERANCE


def test_the_expert_mode_exposes_every_model_parameter(opto_build, pedalboard):
    plugin = pedalboard.load_plugin(str(opto_build.bundle("vst3", channels=1)))
    names = set(plugin.parameters)
    assert {"panel_ms", "slow_attack_ms", "release_slow_ms", "slow_share", "output_highpass_hz", "makeup_db"} <= names
    raw = Compressor(model="opto-hp", threshold_db=-30.0, ratio=6.0, attack_ms=4.0, release_ms=60.0, panel_ms=15.0,
                     slow_attack_ms=400.0, release_slow_ms=2500.0, slow_share=0.6, output_highpass_hz=10.0, makeup_db=2.0)
    plugin.raw_parameters = True
    for name, value in raw.to_dict().items():
        setattr(plugin, name, value)
    as_set = {name: float(getattr(plugin, name)) for name in raw.to_dict()}  # the host's parameter steps
    x = stimulus(seed=8)
    y = plugin.process(x, SAMPLE_RATE, buffer_size=512, reset=True)
    ref = raw.with_params(**as_set).process(x[0].astype(np.float64), SAMPLE_RATE)
    assert np.max(np.abs(y[0] - ref)) <= TOLERANCE
