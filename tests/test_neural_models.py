"""Neural models: sizes against the papers, causality, receptive fields, streaming = offline,
S4 FFT = recurrence, GRU weights against a numpy re-implementation, model files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from skips import require_module

torch = require_module("torch")

from dynamatch.errors import ModelFileError, ParameterError  # noqa: E402
from dynamatch.neural import (  # noqa: E402
    MODEL_PRESETS,
    StreamingProcessor,
    build_model,
    count_parameters,
    gru_weights_dict,
    load_model,
    save_model,
)

SAMPLE_RATE = 44100
TINY = {  # small but structurally complete versions of every preset
    "tcn-100-c": {"channels": 4, "kernel_size": 3},
    "tcn-300-c": {"channels": 4, "kernel_size": 3, "blocks": 3},
    "tcn-1000-c": {"channels": 3, "kernel_size": 2, "blocks": 3},
    "tcn-100-n": {"channels": 4, "kernel_size": 3, "blocks": 3},
    "tcn-300-n": {"channels": 4, "kernel_size": 3, "blocks": 3},
    "tcn-1000-n": {"channels": 3, "kernel_size": 3, "blocks": 3},
    "tcn-324-n": {"channels": 4, "kernel_size": 3, "blocks": 4},
    "lstm-32": {"hidden_size": 6},
    "s4-c32-f4": {"channels": 6, "blocks": 2},
    "gru-8": {},
}
CAUSAL = [name for name, preset in MODEL_PRESETS.items() if preset.get("causal", True)]


def tiny_model(name: str, seed: int = 0) -> torch.nn.Module:
    """A tiny eval-mode model with non-trivial BatchNorm statistics and PReLU slopes."""
    torch.manual_seed(seed)
    model = build_model(name, **TINY[name])
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 2.0)
            if isinstance(module, torch.nn.PReLU):
                module.weight.uniform_(0.05, 0.5)
    return model.eval()


def run(model, x: torch.Tensor, cond=(1.0, 0.6)) -> torch.Tensor:
    with torch.no_grad():
        return model(x, torch.tensor([list(cond)] * x.shape[0], dtype=x.dtype))


def test_import_dynamatch_does_not_import_torch():
    code = "import sys, dynamatch; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- sizes -----------------------------------------------------------------------------------
def micro_tcn_parameters(kernel_size: int, blocks: int, channels: int = 32) -> int:
    """Count by hand: conv (no bias) + FiLM Linear(32→2C) + PReLU(C) + depthwise residual per block,
    output Conv1d(C→1) and the conditioning MLP 2→16→32→32."""
    mlp = (2 * 16 + 16) + (16 * 32 + 32) + (32 * 32 + 32)
    per_block = [(1 if n == 0 else channels) * channels * kernel_size + (32 * 2 * channels + 2 * channels) + 2 * channels for n in range(blocks)]
    return mlp + sum(per_block) + channels + 1


@pytest.mark.parametrize(
    "name, paper_parameters, paper_ms",
    [("tcn-100-c", 26e3, 101), ("tcn-300-c", 51e3, 302), ("tcn-1000-c", 33e3, 1008), ("tcn-300-n", 51e3, 302), ("tcn-324-n", 162e3, 324)],
)
def test_tcn_sizes_match_micro_tcn_table_1(name, paper_parameters, paper_ms):
    model = build_model(name)
    preset = MODEL_PRESETS[name]
    assert count_parameters(model) == micro_tcn_parameters(preset["kernel_size"], preset["blocks"])
    assert abs(count_parameters(model) - paper_parameters) / paper_parameters < 0.02
    assert abs(model.receptive_field_samples / SAMPLE_RATE * 1e3 - paper_ms) < 1.5
    assert model.causal == name.endswith("-c")


def test_recurrent_sizes():
    assert count_parameters(build_model("lstm-32")) == 4 * (3 * 32 + 32 * 32 + 2 * 32) + 33
    assert count_parameters(build_model("gru-8", conditioned=False)) == 273  # 4A-2A-G paper
    assert count_parameters(build_model("gru-8")) == 273 + 3 * 8 * 2  # + [limit, pr] inputs
    s4 = count_parameters(build_model("s4-c32-f4"))
    assert abs(s4 - 17e3) / 17e3 < 0.05  # S4 DRC paper: ~17 k


def test_build_model_rejects_unknown_names_and_settings():
    with pytest.raises(ParameterError, match="unknown model"):
        build_model("tcn-42")
    with pytest.raises(ParameterError, match="no setting"):
        build_model("lstm-32", channels=3)


@pytest.mark.parametrize("name", list(MODEL_PRESETS))
def test_shapes_and_config(name):
    model = tiny_model(name)
    x = torch.randn(3, 1, 257) * 0.3
    y = run(model, x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert isinstance(model.receptive_field_samples, int) and isinstance(model.causal, bool)
    json.dumps(model.config)
    with torch.no_grad():  # the controls matter
        other = model(x, torch.tensor([[0.0, 0.2]] * 3))
    assert not torch.allclose(y, other)


# -- causality, alignment, receptive field ---------------------------------------------------
@pytest.mark.parametrize("name", CAUSAL)
def test_causal_models_ignore_the_future_but_see_the_present(name):
    model = tiny_model(name).double()  # float64: the S4 FFT's round-off (~1e-16) cannot hide a leak
    x = torch.randn(1, 1, 400, dtype=torch.float64) * 0.3
    t = 250
    later = x.clone()
    later[..., t + 1 :] += torch.randn(1, 1, 400 - t - 1, dtype=torch.float64)
    now = x.clone()
    now[..., t] += 0.5
    y, y_later, y_now = run(model, x), run(model, later), run(model, now)
    torch.testing.assert_close(y_later[..., : t + 1], y[..., : t + 1], atol=1e-12, rtol=0)
    assert not torch.allclose(y_later[..., t + 1 :], y[..., t + 1 :])
    torch.testing.assert_close(y_now[..., :t], y[..., :t], atol=1e-12, rtol=0)
    assert abs(float(y_now[..., t] - y[..., t])) > 1e-6  # no one-sample delay


def test_causal_tcn_residual_is_aligned_to_the_current_sample():
    """With the convolutions and FiLM zeroed the TCN is tanh(w·x[t]·Π residual + b): compare to numpy."""
    model = tiny_model("tcn-300-c")
    with torch.no_grad():
        for block in model.blocks:
            block.conv.weight.zero_()
            block.film.adaptor.weight.zero_()
            block.film.adaptor.bias.zero_()
    x = torch.randn(1, 1, 64)
    gain = np.ones(model.config["channels"])
    for block in model.blocks:  # residual chain: depthwise weights multiply per channel
        w = block.residual.weight.detach().numpy()[:, 0, 0]
        gain = w * (gain if gain.size == w.size else gain[0])
    w_out = model.output.weight.detach().numpy()[0]
    expected = np.tanh(float(w_out @ gain) * x.numpy()[0, 0] + float(model.output.bias.detach()))
    np.testing.assert_allclose(run(model, x).numpy()[0, 0], expected, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in MODEL_PRESETS if n.startswith("tcn")])
def test_tcn_receptive_field_is_exact(name):
    model = tiny_model(name).double()  # the oldest tap acts through a product of small weights
    rf, ahead = model.receptive_field_samples, model.lookahead_samples
    assert rf == 1 + sum((TINY[name]["kernel_size"] - 1) * MODEL_PRESETS[name]["dilation_growth"] ** n for n in range(TINY[name]["blocks"] if "blocks" in TINY[name] else MODEL_PRESETS[name]["blocks"]))
    samples = rf + 2 * ahead + 50
    t = rf + 20
    x = torch.randn(1, 1, samples, dtype=torch.float64) * 0.3
    y = run(model, x)[0, 0, t]
    for offset, matters in [(-(rf - 1 - ahead) - 1, False), (-(rf - 1 - ahead), True), (ahead, True), (ahead + 1, False)]:
        bumped = x.clone()
        bumped[..., t + offset] += 1.0
        changed = bool(abs(run(model, bumped)[0, 0, t] - y) > 1e-13)
        assert changed == matters, f"x[t{offset:+d}] {'should' if matters else 'should not'} affect y[t]"
    assert (ahead == 0) == model.causal


# -- streaming -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODEL_PRESETS))
def test_streaming_equals_offline(name):
    model = tiny_model(name)
    rng = np.random.default_rng(1)
    x = (0.3 * rng.standard_normal(1500)).astype(np.float32)
    expected = run(model, torch.from_numpy(x).view(1, 1, -1)).numpy()[0, 0]
    processor = StreamingProcessor(model, (1.0, 0.6))
    latency = processor.latency_samples
    padded = np.concatenate([x, np.zeros(latency, np.float32)])
    for _ in range(2):  # the second pass checks reset()
        outputs, start = [], 0
        while start < padded.size:
            size = int(rng.integers(1, 500))
            outputs.append(processor.process(padded[start : start + size]))
            start += size
        streamed = np.concatenate(outputs)
        assert streamed.dtype == np.float32
        np.testing.assert_allclose(streamed[latency:], expected, atol=1e-5)
        processor.reset()
    assert (latency == 0) == model.causal


def test_streaming_rejects_unscaled_controls():
    with pytest.raises(ParameterError, match="divide"):
        StreamingProcessor(tiny_model("gru-8"), (0, 65))
    with pytest.raises(ParameterError, match="limit"):
        StreamingProcessor(tiny_model("gru-8"), (0.5, 0.65))


def test_streaming_in_float64_is_exact():
    model = tiny_model("s4-c32-f4").double()
    x = np.random.default_rng(2).standard_normal(2000) * 0.3
    expected = run(model, torch.from_numpy(x).view(1, 1, -1)).numpy()[0, 0]
    processor = StreamingProcessor(model, (1.0, 0.6))
    streamed = np.concatenate([processor.process(x[i : i + 333]) for i in range(0, x.size, 333)])
    assert streamed.dtype == np.float64
    np.testing.assert_allclose(streamed, expected, atol=1e-11)


# -- S4 --------------------------------------------------------------------------------------
def test_s4_kernel_matches_complex_numpy_formula():
    ssm = tiny_model("s4-c32-f4").blocks[0].ssm
    p = {k: v.detach().double().numpy() for k, v in ssm.named_parameters()}
    dt = np.exp(p["log_dt"])[:, None]
    a = -np.exp(p["log_a_real"]) + 1j * np.pi * np.arange(p["log_a_real"].shape[1])
    a_bar = np.exp(dt * a)
    w = (p["c"][..., 0] + 1j * p["c"][..., 1]) * (a_bar - 1) / a * (p["b"][..., 0] + 1j * p["b"][..., 1])
    k = np.arange(500)
    expected = 2 * np.real(np.sum(w[..., None] * a_bar[..., None] ** k, axis=1))
    np.testing.assert_allclose(ssm.kernel(500).detach().numpy(), expected, rtol=1e-9, atol=1e-12)


def test_s4_fft_path_equals_recurrence_and_block_steps():
    ssm = tiny_model("s4-c32-f4").double().blocks[1].ssm
    u = torch.randn(2, 6, 700, dtype=torch.float64)
    with torch.no_grad():
        offline = ssm(u)
    zero = ssm.initial_state(2, torch.float64)
    looped, final = ssm.recurrence(u, zero)
    torch.testing.assert_close(looped, offline, atol=1e-10, rtol=0)
    state, pieces = zero, []
    for lo, hi in [(0, 1), (1, 300), (300, 701)]:
        piece, state = ssm.step(u[..., lo:hi], state, ssm.block_tables(min(hi, 700) - lo, torch.float64))
        pieces.append(piece)
    torch.testing.assert_close(torch.cat(pieces, -1), offline, atol=1e-10, rtol=0)
    torch.testing.assert_close(state, final, atol=1e-10, rtol=0)


# -- GRU stage -------------------------------------------------------------------------------
def test_gru_weights_dict_reproduces_the_model_in_numpy():
    model = tiny_model("gru-8")
    weights = gru_weights_dict(model)
    json.dumps(weights)
    w_ih, w_hh = np.array(weights["weight_ih"]), np.array(weights["weight_hh"])
    b_ih, b_hh = np.array(weights["bias_ih"]), np.array(weights["bias_hh"])
    hidden = weights["hidden_size"][0]
    assert weights["inputs"] == ["x", "limit", "peak_reduction/100"] and w_ih.shape == (3 * hidden, 3)
    x = np.random.default_rng(3).standard_normal(200) * 0.5
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h, out = np.zeros(hidden), []
    for sample in x:
        gi, gh = w_ih @ np.array([sample, 1.0, 0.6]) + b_ih, w_hh @ h + b_hh
        r = sigmoid(gi[:hidden] + gh[:hidden])
        z = sigmoid(gi[hidden : 2 * hidden] + gh[hidden : 2 * hidden])
        n = np.tanh(gi[2 * hidden :] + r * gh[2 * hidden :])
        h = (1 - z) * n + z * h
        out.append(sample + np.dot(weights["linear_weight"], h) + weights["linear_bias"][0])
    y = run(model, torch.tensor(x, dtype=torch.float32).view(1, 1, -1)).numpy()[0, 0]
    np.testing.assert_allclose(y, out, atol=1e-5)


# -- model files -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tcn-300-n", "s4-c32-f4", "lstm-32", "gru-8"])
def test_save_load_round_trip(name, tmp_path):
    model = tiny_model(name)
    path = save_model(model, tmp_path / "model.json")
    assert (tmp_path / "model.safetensors").is_file()
    loaded = load_model(path)
    assert loaded.config == model.config and not loaded.training
    x = torch.randn(2, 1, 300) * 0.3
    torch.testing.assert_close(run(loaded, x), run(model, x), atol=0, rtol=0)


def test_load_model_reports_bad_files(tmp_path):
    path = save_model(tiny_model("gru-8"), tmp_path / "g.json")
    document = json.loads(path.read_text())
    weights = tmp_path / "g.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(path)
    path.write_text(json.dumps({**document, "format_version": 99}))
    with pytest.raises(ModelFileError, match="format_version"):
        load_model(path)
    with pytest.raises(ModelFileError, match="no such"):
        load_model(tmp_path / "missing.json")


def test_neural_model_file_uses_the_shared_document_scheme(tmp_path):
    """One id scheme (dynamatch.neural, like dynamatch.compressor); files of the old spelling still load;
    written atomically with an ordinary file mode."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = save_model(tiny_model("gru-8"), tmp_path / "g.json")
    finally:
        os.umask(old)
    document = json.loads(path.read_text())
    assert document["format"] == "dynamatch.neural"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "g.safetensors"]
    path.write_text(json.dumps({**document, "format": "dynamatch-neural"}))  # files written before the rename
    assert load_model(path).config == tiny_model("gru-8").config
    path.write_text(json.dumps({**document, "format_version": 99}))
    with pytest.raises(ModelFileError, match="newer dynamatch"):
        load_model(path)
