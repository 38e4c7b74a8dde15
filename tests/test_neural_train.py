"""The neural trainer, its chunk dataset and the 4A-2A-G hybrid, on tiny generated datasets.

References: scipy's ``lfilter`` and dynamatch's numba ESR for the torch loss, torch's ``gradcheck``,
direct ``soundfile`` reads of the WAV files for the chunks, the identity (output = input) and the
grey-box compressor alone as baselines, and an uninterrupted run for the resumed one.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import numpy as np
import pytest
from skips import require_module

torch = require_module("torch")
require_module("lightning")
require_module("auraloss")
require_module("safetensors")
import soundfile as sf  # noqa: E402
from scipy.signal import lfilter  # noqa: E402

from dynamatch.data.datasets import open_dataset  # noqa: E402
from dynamatch.data.generate import generate_signaltrain_like  # noqa: E402
from dynamatch.errors import DatasetError, ParameterError, TrainingError  # noqa: E402
from dynamatch.maps import ParameterMap  # noqa: E402
from dynamatch.metrics import esr, mae  # noqa: E402
from dynamatch.neural.data import ChunkDataset, ChunkSampler, conditioning, usable_samples  # noqa: E402
from dynamatch.neural import hybrid  # noqa: E402
from dynamatch.neural.hybrid import evaluate_hybrid, train_hybrid  # noqa: E402
from dynamatch.neural.registry import build_model, load_model  # noqa: E402
from dynamatch.neural.train import RecurrentState, esr_loss, prefilter, train  # noqa: E402

SAMPLE_RATE = 44_100


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Two shared cores: torch's own threads only fight each other (30x slower measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Four training settings, validation compress 80, test limit 80; 10 s each, opto-device targets."""
    root = generate_signaltrain_like(
        tmp_path_factory.mktemp("signaltrain"), duration_seconds=10.0, peak_reductions=[40, 80], seed=0
    )
    return open_dataset(root)


def tiny_tcn():
    torch.manual_seed(0)
    return build_model("tcn-100-c", channels=8, kernel_size=5, blocks=3, dilation_growth=6)


# -- losses --------------------------------------------------------------------------------------
def test_prefilter_and_esr_match_numpy_references():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3000))
    expected = lfilter([1.0, -1.0], [1.0, -0.995], x, axis=-1)
    np.testing.assert_allclose(prefilter(torch.from_numpy(x)).numpy(), expected, atol=1e-10)

    target = rng.standard_normal(3000)
    prediction = target + 0.3 * rng.standard_normal(3000)
    loss = esr_loss(torch.from_numpy(prediction), torch.from_numpy(target))
    assert float(loss) == pytest.approx(esr(prediction, target), rel=1e-9)
    assert float(esr_loss(torch.from_numpy(prediction), torch.from_numpy(target), prefiltered=False)) == pytest.approx(
        esr(prediction, target, prefilter=False), rel=1e-12
    )

    p = torch.from_numpy(rng.standard_normal((1, 1, 64))).requires_grad_()
    t = torch.from_numpy(rng.standard_normal((1, 1, 64)))
    assert torch.autograd.gradcheck(lambda q: esr_loss(q, t), (p,))


# -- chunks --------------------------------------------------------------------------------------
def test_polarity_flip_negates_input_and_target_together(dataset):
    pairs = dataset.pairs(split="train")
    chunks = ChunkDataset(dataset, pairs, chunk_samples=2048, polarity_flip_probability=0.5, seed=3)
    flips = []
    for index in range(40):
        where = chunks.chunk(index)
        frames = dict(start=where.start_samples, frames=2048, dtype="float64")
        raw_x, _ = sf.read(str(where.pair.input_path), **frames)
        raw_y, _ = sf.read(str(where.pair.target_path), **frames)
        x, y, cond = chunks[index]
        sign = -1.0 if where.flipped else 1.0
        np.testing.assert_allclose(x[0].numpy(), sign * raw_x, atol=1e-7)
        np.testing.assert_allclose(y[0].numpy(), sign * raw_y, atol=1e-7)
        assert cond.tolist() == pytest.approx([float(where.pair.mode == "limit"), where.pair.peak_reduction / 100])
        flips.append(where.flipped)
    assert 8 <= sum(flips) <= 32  # p = 0.5 over 40 draws
    never = ChunkDataset(dataset, pairs, chunk_samples=2048, polarity_flip_probability=0.0, seed=3)
    assert not any(never.chunk(i).flipped for i in range(40))
    # silent targets are redrawn (they make the STFT loss explode)
    assert all(10 * np.log10(np.mean(chunks[i][1].double().numpy() ** 2)) >= -60 for i in range(40))
    # same seed and index -> same chunk (what exact resume relies on)
    again = ChunkDataset(dataset, pairs, chunk_samples=2048, polarity_flip_probability=0.5, seed=3)
    assert all(again.chunk(i) == chunks.chunk(i) for i in range(40))
    torch.testing.assert_close(again[7][0], chunks[7][0])


def test_data_fraction_limits_chunks_to_the_start_of_each_file(dataset):
    pairs = dataset.pairs(split="train")
    fraction = 0.2
    chunks = ChunkDataset(dataset, pairs, chunk_samples=1024, data_fraction=fraction, seed=0)
    ends = [chunks.chunk(i).start_samples + 1024 for i in range(400)]
    limit = int(fraction * pairs[0].length_samples)
    assert usable_samples(pairs[0], fraction) == limit
    assert max(ends) <= limit
    assert max(ends) > 0.9 * limit  # the whole allowed part is used
    tiles = ChunkDataset(dataset, pairs, chunk_samples=1024, data_fraction=fraction, sequential=True)
    assert len(tiles) == len(pairs) * (limit // 1024)
    assert all(tiles.chunk(i).start_samples + 1024 <= limit for i in range(len(tiles)))
    with pytest.raises(DatasetError, match="data_fraction"):
        ChunkDataset(dataset, pairs, chunk_samples=1024, data_fraction=1e-4)


def test_sampling_is_balanced_per_setting(dataset):
    pairs = dataset.pairs(split="train")
    # the first setting gets a second (3x longer) pair: 4/7 of the audio, but still 1/4 of the chunks
    extra = dataclasses.replace(pairs[0], name="extra", length_samples=3 * pairs[0].length_samples)
    chunks = ChunkDataset(dataset, [*pairs, extra], chunk_samples=1024, seed=0, min_target_rms_db=None)
    drawn = [chunks.chunk(i).pair for i in range(2000)]
    per_setting = Counter((p.mode, p.peak_reduction) for p in drawn)
    assert len(per_setting) == 4
    assert all(abs(count / 2000 - 0.25) < 0.04 for count in per_setting.values())
    first = [p.name for p in drawn if p.name in (pairs[0].name, "extra")]
    assert abs(first.count("extra") / len(first) - 0.75) < 0.06  # by length within a setting


def test_chunk_sampler_follows_the_step_and_shards_ranks():
    step = {"value": 3}
    ranks = [ChunkSampler(2, 2, lambda: step["value"], rank=r, world_size=2) for r in (0, 1)]
    assert list(ranks[0]) == [12, 13, 16, 17] and list(ranks[1]) == [14, 15, 18, 19]
    step["value"] = 5
    assert list(ranks[0])[0] == 20 and len(ranks[0]) == 4


@pytest.mark.parametrize("name, options", [("gru-8", {}), ("lstm-32", {"hidden_size": 4})])
def test_recurrent_state_carries_across_segments_and_truncates_gradients(name, options):
    torch.manual_seed(0)
    model = build_model(name, **options)
    x = torch.randn(2, 1, 900, requires_grad=True)
    cond = torch.tensor([[0.0, 0.4], [1.0, 0.8]])
    whole = model(x, cond)
    with RecurrentState(model) as state:
        first = model(x[..., :300], cond)
        second = model(x[..., 300:], cond)
        torch.testing.assert_close(torch.cat([first, second], dim=-1), whole, rtol=0, atol=1e-6)
        state.detach()
        third = model(x[..., :300], cond)  # continues from the state after sample 900
        (gradient,) = torch.autograd.grad(third.sum(), x)
    assert not torch.allclose(third, first)
    assert gradient[..., 300:].abs().max() == 0 and gradient[..., :300].abs().max() > 0
    torch.testing.assert_close(model(x[..., :300], cond), first)  # hooks removed: fresh state again


# -- training ------------------------------------------------------------------------------------
def _untrained_val_loss(model, dataset, chunk_samples: int) -> float:
    """The validation loss of ``model`` before any step, on the chunks the trainer validates on (the
    first 8 sequential chunks of each validation pair), with the trainer's loss and skipped lead-in."""
    from dynamatch.neural.train import _default_skip, make_loss

    chunks = ChunkDataset(dataset, dataset.pairs(split="val"), chunk_samples=chunk_samples, sequential=True,
                          max_chunks_per_pair=8, seed=0)
    loss_fn, skip = make_loss("mae+stft"), _default_skip(model, chunk_samples)
    total = 0.0
    model.eval()
    with torch.no_grad():
        for index in range(len(chunks)):
            x, y, cond = chunks[index]
            total += float(loss_fn(model(x[None], cond[None])[..., skip:], y[None][..., skip:]))
    return total / len(chunks)


def test_training_reduces_loss_and_beats_identity_on_held_out_audio(dataset, tmp_path):
    # The first validation comes after `val_every` steps, when most of the gain is already made (at this
    # learning rate later validations may be no lower), so "training helps" is judged against the
    # untrained model's validation loss, not against history[0].
    before = _untrained_val_loss(tiny_tcn(), dataset, 8192)
    result = train(
        tiny_tcn(), dataset, tmp_path, loss="mae+stft", max_steps=40, batch_size=4, chunk_samples=8192,
        val_every=10, learning_rate=3e-3, progress=False,
    )
    assert result.steps == 40 and len(result.history) == 4
    assert result.history[-1]["train_loss"] < 0.6 * result.history[0]["train_loss"]
    assert result.best_val_loss == min(h["val_loss"] for h in result.history)
    assert result.best_val_loss < 0.5 * before

    (pair,) = dataset.pairs(split="test")
    x, y = dataset.read(pair)
    cond = torch.from_numpy(conditioning(pair.mode, pair.peak_reduction)[None])
    with torch.no_grad():
        prediction = result.model(torch.from_numpy(x[None, None]).float(), cond)[0, 0].double().numpy()
    assert mae(prediction, y) < 0.8 * mae(x, y)
    assert esr(prediction, y) < 0.5 * esr(x, y)

    document = json.loads(result.model_path.read_text())
    assert document["training"]["steps"] == 40
    assert document["training"]["history"][-1]["val_loss"] == pytest.approx(result.history[-1]["val_loss"])
    with torch.no_grad():
        reloaded = load_model(result.model_path)(torch.from_numpy(x[None, None, :4096]).float(), cond)
    np.testing.assert_allclose(reloaded[0, 0].double().numpy(), prediction[:4096], atol=1e-6)


class _Interrupt(Exception):
    pass


def test_resume_after_interruption_reproduces_the_uninterrupted_run(dataset, tmp_path):
    import lightning.pytorch as pl

    class StopAt(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 5:
                raise _Interrupt

    options = dict(loss="mae+stft", max_steps=8, batch_size=2, chunk_samples=2048, val_every=2, progress=False, seed=4)
    straight = train(tiny_tcn(), dataset, tmp_path / "straight", **options)
    with pytest.raises(_Interrupt):
        train(tiny_tcn(), dataset, tmp_path / "cut", callbacks=(StopAt(),), **options)
    resumed = train(tiny_tcn(), dataset, tmp_path / "cut", **options)

    assert resumed.resumed_from is not None and resumed.steps == straight.steps == 8
    expected, got = straight.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-6, msg=name)
    assert resumed.history == straight.history  # validation losses and learning rates, step by step
    # a different run in the same folder is refused rather than silently mixed
    with pytest.raises(ParameterError, match=r"learning rate 0.001 → 0.01\); .*--restart"):
        train(tiny_tcn(), dataset, tmp_path / "cut", **{**options, "max_steps": 10}, learning_rate=1e-2)


def test_a_diverging_loss_stops_training_with_one_clear_error(dataset, tmp_path):
    class Diverging(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = torch.nn.Parameter(torch.ones(()))

        def forward(self, x, cond):
            return x * self.gain / 0.0

    with pytest.raises(TrainingError, match=r"lower learning rate \(dynamatch train --restart --learning-rate"):
        train(Diverging(), dataset, tmp_path, loss="esr", max_steps=2, batch_size=1, chunk_samples=2048, progress=False)
    with pytest.raises(ParameterError, match="truncated BPTT"):
        train(Diverging(), dataset, tmp_path, loss="esr", max_steps=2, chunk_samples=2048, tbptt_samples=1024)


# -- hybrid --------------------------------------------------------------------------------------
def _map() -> ParameterMap:
    table = {
        "peak_reduction": [40.0, 80.0],
        "threshold_db": [-14.0, -26.0],
        "ratio": [4.0, 6.0],
        "attack_ms": [10.0, 5.0],
        "release_ms": [300.0, 200.0],
        "makeup_db": [0.0, 0.0],
    }
    return ParameterMap({"compress": table, "limit": {**table, "ratio": [10.0, 20.0]}})


def test_hybrid_gru_improves_on_the_compressor_alone(tmp_path, monkeypatch):
    parameter_map = _map()

    def device(x, sample_rate, mode, peak_reduction):
        """The map's compressor followed by a soft saturation the compressor cannot produce."""
        u = parameter_map.compressor(peak_reduction, mode).process(x, sample_rate)
        return np.tanh(6.0 * u) / 6.0

    root = generate_signaltrain_like(
        tmp_path / "device", duration_seconds=10.0, device=device, seed=1,
        splits={"train": [("compress", 40), ("compress", 80), ("limit", 40), ("limit", 80)],
                "val": [("compress", 60)], "test": [("limit", 60)]},
    )
    result = train_hybrid(
        parameter_map, root, tmp_path / "hybrid", max_steps=24, batch_size=16, chunk_samples=1024,
        tbptt_samples=512, val_every=12, learning_rate=2e-2, warmup_samples=4410, progress=False,
    )
    assert result.metadata["settings"]["loss"] == "esr" and result.metadata["settings"]["tbptt_samples"] == 512
    scores = evaluate_hybrid(result.model_path, parameter_map, root, split="test", max_seconds=3.0)
    (score,) = scores.pairs
    assert score.esr_compressor > 0.01  # the device is out of the compressor's reach
    assert score.esr_hybrid < 0.7 * score.esr_compressor  # measured 0.51x after 24 steps

    # evaluation runs long files block by block; the result must not depend on the block size
    monkeypatch.setattr(hybrid, "EVALUATION_BLOCK_SAMPLES", 10_000)
    blocked = evaluate_hybrid(result.model_path, parameter_map, root, split="test", max_seconds=3.0)
    assert blocked.pairs[0].esr_hybrid == pytest.approx(score.esr_hybrid, rel=1e-5)
