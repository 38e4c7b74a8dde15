"""Generators write layouts the readers read back, render what the device renders, and skip finished files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dynamatch.data.captureset import CaptureSetDataset
from dynamatch.data.datasets import open_dataset
from dynamatch.data.generate import generate_capture_set, generate_signaltrain_like
from dynamatch.data.signaltrain import SignalTrainDataset
from dynamatch.data.stimulus import capture_stimulus, programme_like
from dynamatch.errors import DatasetError, LengthMismatchError, NonFiniteAudioError, ParameterError
from dynamatch.models.opto import OptoLevellingAmplifier

DURATION_SECONDS = 10.0  # the shortest capture stimulus
SAMPLE_RATE = 44100


def modification_times(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("gen__root")
    calls = []
    dataset = generate_signaltrain_like(
        root,
        duration_seconds=DURATION_SECONDS,
        peak_reductions=[40, 70, 100],
        modes=("limit",),
        seed=5,
        progress=lambda done, total, name: calls.append((done, total, name)),
    )
    return dataset, calls


def test_signaltrain_like_writes_the_exact_layout(generated):
    dataset, calls = generated
    assert dataset.name == "SignalTrain_LA2A_Dataset_1.1"
    files = sorted(str(p.relative_to(dataset)) for p in dataset.rglob("*") if p.is_file())
    assert files == [
        ".dynamatch-generated",
        "Test/input_142_.wav",
        "Test/target_142_LA2A_3c__1__70.wav",
        "Train/input_138_.wav",
        "Train/input_139_.wav",
        "Train/input_140_.wav",
        "Train/target_138_LA2A_3c__1__40.wav",
        "Train/target_139_LA2A_3c__1__70.wav",
        "Train/target_140_LA2A_3c__1__100.wav",
        "Val/input_141_.wav",
        "Val/target_141_LA2A_3c__1__70.wav",
    ]
    for path in dataset.rglob("*.wav"):
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 1, 441000, "FLOAT")
    assert calls == [(k, 5, name) for k, name in enumerate(
        ["target_138_LA2A_3c__1__40.wav", "target_139_LA2A_3c__1__70.wav", "target_140_LA2A_3c__1__100.wav",
         "target_141_LA2A_3c__1__70.wav", "target_142_LA2A_3c__1__70.wav"], start=1)]


def test_reader_reads_what_the_generator_rendered(generated):
    dataset_path, _ = generated
    dataset = open_dataset(dataset_path.parent)
    assert isinstance(dataset, SignalTrainDataset) and dataset.skipped == []
    assert dataset.settings() == [("limit", 40.0), ("limit", 70.0), ("limit", 100.0)]
    assert [p.name for p in dataset.pairs(split="train")] == ["138_3c_limit_40", "139_3c_limit_70", "140_3c_limit_100"]
    for pair, stimulus in ((dataset.pairs(peak_reduction=40)[0], "capture"), (dataset.pairs(split="val")[0], "programme")):
        x, y = dataset.read(pair)
        pair_id = int(pair.name.split("_")[0])
        expected_x = (
            capture_stimulus(SAMPLE_RATE, duration_seconds=DURATION_SECONDS, seed=5)
            if stimulus == "capture"
            else programme_like(SAMPLE_RATE, DURATION_SECONDS, 5 + pair_id)
        )
        np.testing.assert_array_equal(x, expected_x.astype(np.float32))
        expected_y = OptoLevellingAmplifier(peak_reduction=pair.peak_reduction, mode="limit").process(x, SAMPLE_RATE)
        np.testing.assert_allclose(y, expected_y, rtol=0, atol=1e-7)
        assert np.max(np.abs(y)) < np.max(np.abs(x))  # the device actually reduced the gain
    # independent of the device code it called: more peak reduction, more gain reduction (level ratio, dB)
    reductions = []
    for pr in (40, 70, 100):
        x, y = dataset.read(dataset.pairs(split="train", peak_reduction=pr)[0])
        reductions.append(10 * np.log10(np.sum(x.astype(float) ** 2) / np.sum(y.astype(float) ** 2)))
    assert reductions[0] < reductions[1] < reductions[2], reductions


def test_rerun_skips_complete_files_and_redoes_broken_ones(generated):
    dataset, _ = generated
    before = modification_times(dataset)
    calls = []
    generate_signaltrain_like(
        dataset.parent, duration_seconds=DURATION_SECONDS, peak_reductions=[40, 70, 100], modes=("limit",), seed=5,
        progress=lambda *args: calls.append(args),
    )
    assert modification_times(dataset) == before and len(calls) == 5
    broken = dataset / "Train" / "target_139_LA2A_3c__1__70.wav"
    good = sf.read(str(broken))[0]
    sf.write(str(broken), good[:1000], SAMPLE_RATE, subtype="FLOAT")  # a truncated file
    generate_signaltrain_like(
        dataset.parent, duration_seconds=DURATION_SECONDS, peak_reductions=[40, 70, 100], modes=("limit",), seed=5
    )
    after = modification_times(dataset)
    changed = sorted(name for name in after if after[name] != before[name])
    assert changed == ["Train/target_139_LA2A_3c__1__70.wav"]
    np.testing.assert_array_equal(sf.read(str(broken))[0], good)


def test_signaltrain_like_rejects_settings_the_layout_cannot_hold(tmp_path: Path):
    with pytest.raises(ParameterError, match="44100"):
        generate_signaltrain_like(tmp_path, sample_rate=48000)
    with pytest.raises(ParameterError, match="whole peak reductions"):
        generate_signaltrain_like(tmp_path, peak_reductions=[42.5])
    with pytest.raises(ParameterError, match="unknown mode"):
        generate_signaltrain_like(tmp_path, modes=("gate",))
    with pytest.raises(ParameterError, match="unknown split"):
        generate_signaltrain_like(tmp_path, splits={"holdout": [("compress", 50)]})
    assert list(tmp_path.iterdir()) == []


def toy_device(x, sample_rate, mode, peak_reduction):
    """A memoryless stand-in device whose output identifies the setting."""
    return x * (1.0 - peak_reduction / 200.0) * (0.5 if mode == "limit" else 1.0)


def test_capture_set_round_trip_and_idempotence(tmp_path: Path):
    rng = np.random.default_rng(0)
    stimulus = 0.5 * rng.standard_normal(SAMPLE_RATE // 2)
    settings = [("compress", 20.0), ("compress", 62.5), ("limit", 80.0)]
    root = generate_capture_set(tmp_path / "set", toy_device, settings, stimulus=stimulus, sample_rate=SAMPLE_RATE)
    dataset = open_dataset(root)
    assert isinstance(dataset, CaptureSetDataset)
    assert dataset.settings() == settings
    for pair in dataset.pairs():
        x, y = dataset.read(pair)
        np.testing.assert_array_equal(x, stimulus.astype(np.float32))
        np.testing.assert_allclose(y, toy_device(x, SAMPLE_RATE, pair.mode, pair.peak_reduction), rtol=1e-6)
    before = modification_times(root)
    generate_capture_set(root, toy_device, settings, stimulus=stimulus, sample_rate=SAMPLE_RATE)
    after = modification_times(root)
    assert {k: v for k, v in after.items() if k != "manifest.csv"} == {k: v for k, v in before.items() if k != "manifest.csv"}
    assert (root / "manifest.csv").read_text().splitlines()[0] == "input,target,mode,peak_reduction"


def test_capture_set_from_the_capture_stimulus(tmp_path: Path):
    root = generate_capture_set(tmp_path, toy_device, [("compress", 50)], duration_seconds=DURATION_SECONDS, seed=3)
    x, _ = CaptureSetDataset(root).read(CaptureSetDataset(root).pairs()[0])
    np.testing.assert_array_equal(x, capture_stimulus(SAMPLE_RATE, duration_seconds=DURATION_SECONDS, seed=3).astype(np.float32))


def test_capture_set_checks_the_device(tmp_path: Path):
    stimulus = np.linspace(-0.5, 0.5, 4410)
    with pytest.raises(LengthMismatchError, match="compress_50.wav"):
        generate_capture_set(tmp_path / "a", lambda x, *_: x[:-1], [("compress", 50)], stimulus=stimulus)
    with pytest.raises(NonFiniteAudioError):
        generate_capture_set(tmp_path / "b", lambda x, *_: np.full_like(x, np.nan), [("compress", 50)], stimulus=stimulus)
    with pytest.raises(ParameterError, match="twice"):
        generate_capture_set(tmp_path / "c", toy_device, [("compress", 50), ("compress", 50.0)], stimulus=stimulus)
    with pytest.raises(ParameterError, match="unknown mode"):
        generate_capture_set(tmp_path / "d", toy_device, [("gate", 50)], stimulus=stimulus)


def test_data_modules_do_not_import_torch():
    code = (
        "import sys, dynamatch.data.generate, dynamatch.data.signaltrain, dynamatch.data.captureset; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rerun_with_other_settings_leaves_no_stale_pairs(tmp_path: Path):
    generate_signaltrain_like(tmp_path, duration_seconds=DURATION_SECONDS, peak_reductions=[40, 60], modes=("compress",))
    dataset = generate_signaltrain_like(
        tmp_path, duration_seconds=DURATION_SECONDS, modes=("compress",),
        splits={"train": [("compress", 45)], "test": [("limit", 45)]},
    )
    files = sorted(str(p.relative_to(dataset)) for p in dataset.rglob("*.wav"))
    assert files == [
        "Test/input_139_.wav",
        "Test/target_139_LA2A_3c__1__45.wav",
        "Train/input_138_.wav",
        "Train/target_138_LA2A_3c__0__45.wav",
    ]
    assert SignalTrainDataset(dataset).settings() == [("compress", 45.0), ("limit", 45.0)]


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path: Path):
    real = tmp_path / "SignalTrain_LA2A_Dataset_1.1" / "Train"
    real.mkdir(parents=True)
    (real / "input_138_.wav").write_bytes(b"not ours")
    with pytest.raises(DatasetError, match="not written by dynamatch"):
        generate_signaltrain_like(tmp_path, duration_seconds=DURATION_SECONDS, peak_reductions=[40])
    assert (real / "input_138_.wav").read_bytes() == b"not ours"
