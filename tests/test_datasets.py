"""Dataset readers on tiny WAV files in the exact SignalTrain v1.1 layout, capture-set manifests, real clips."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dynamatch.data.captureset import CaptureSetDataset
from dynamatch.data.datasets import PairDataset, open_dataset
from dynamatch.data.signaltrain import SignalTrainDataset
from dynamatch.errors import DatasetError, ParameterError

SAMPLE_RATE = 44100
LENGTH = SAMPLE_RATE // 2  # 0.5 s

# ID -> (split folder, target name or None, gain of the target relative to the input)
GOOD = {
    "138": ("Train", "target_138_LA2A_3c__0__65.wav", 0.5),
    "147": ("Train", "target_147_LA2A_3c__1__100.wav", 0.25),  # length quirk: input trimmed
    "222": ("Train", "target_222_LA2A_2c__1__80.wav", 0.75),
    "170": ("Val", "target_170_LA2A_3c__0__50.wav", 0.6),
    "235": ("Test", "target_235_LA2A_2c__0__65.wav", 0.4),
}
QUIRK_TRIM = 8583 // 10  # samples the quirk input is shorter (scaled down for a 0.5 s file)


def noise(seed: int, length: int, channels: int = 1) -> np.ndarray:
    x = 0.3 * np.random.default_rng(seed).standard_normal((length, channels))
    return x[:, 0] if channels == 1 else x


def write(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sample_rate, subtype="FLOAT")


@pytest.fixture
def signaltrain(tmp_path: Path) -> Path:
    """A tiny SignalTrain v1.1 tree under a root whose path contains '__'."""
    root = tmp_path / "audio__data__1" / "SignalTrain_LA2A_Dataset_1.1"
    for pair_id, (split, target_name, gain) in GOOD.items():
        x = noise(int(pair_id), LENGTH)
        input_x = x[: LENGTH - QUIRK_TRIM] if pair_id == "147" else x
        write(root / split / f"input_{pair_id}_.wav", input_x)
        write(root / split / target_name, gain * x)
    train = root / "Train"
    write(train / "input_150_.wav", noise(150, LENGTH))  # unpaired input
    write(train / "target_151_LA2A_3c__0__70.wav", noise(151, LENGTH))  # unpaired target
    write(train / "input_160_.wav", noise(160, LENGTH))
    write(train / "target_160_LA2A_3c__2__50.wav", noise(160, LENGTH))  # malformed: switch 2
    write(train / "input_161_.wav", noise(161, LENGTH))
    write(train / "target_161_LA2A_3c__0__150.wav", noise(161, LENGTH))  # peak reduction out of range
    write(train / "input_175_.wav", noise(175, LENGTH, channels=2))  # stereo
    write(train / "target_175_LA2A_3c__0__55.wav", noise(175, LENGTH))
    write(train / "input_176_.wav", noise(176, LENGTH), sample_rate=48000)  # wrong rate
    write(train / "target_176_LA2A_3c__0__60.wav", noise(176, LENGTH))
    (train / "notes.txt").write_text("ignored: neither input_ nor target_")
    return root


def open_signaltrain(root) -> SignalTrainDataset:
    with pytest.warns(UserWarning) as caught:
        dataset = SignalTrainDataset(root)
    assert [str(w.message) for w in caught] == dataset.skipped
    return dataset


def test_signaltrain_parses_names_not_paths(signaltrain: Path):
    dataset = open_signaltrain(signaltrain)
    assert dataset.sample_rate == SAMPLE_RATE and dataset.root == signaltrain
    got = {p.name: (p.split, p.session, p.mode, p.peak_reduction) for p in dataset.pairs()}
    assert got == {
        "138_3c_compress_65": ("train", "3c", "compress", 65.0),
        "147_3c_limit_100": ("train", "3c", "limit", 100.0),
        "222_2c_limit_80": ("train", "2c", "limit", 80.0),
        "170_3c_compress_50": ("val", "3c", "compress", 50.0),
        "235_2c_compress_65": ("test", "2c", "compress", 65.0),
    }
    pair = dataset.pairs(session="2c", split="test")[0]
    assert pair.input_path == signaltrain / "Test" / "input_235_.wav"
    assert pair.target_path == signaltrain / "Test" / "target_235_LA2A_2c__0__65.wav"
    assert pair.duration_seconds == 0.5 and pair.length_samples == LENGTH
    quirk = dataset.pairs(peak_reduction=100)[0]
    assert quirk.length_samples == LENGTH - QUIRK_TRIM


def test_signaltrain_skips_bad_files_with_one_line_warnings(signaltrain: Path):
    dataset = open_signaltrain(signaltrain)
    for bad in (
        "input_150_.wav",
        "target_151_LA2A_3c__0__70.wav",
        "target_160_LA2A_3c__2__50.wav",
        "input_160_.wav",
        "target_161_LA2A_3c__0__150.wav",
        "input_175_.wav",
        "input_176_.wav",
    ):
        assert sum(bad in message for message in dataset.skipped) == 1, bad
    assert not any("notes.txt" in message for message in dataset.skipped)
    assert all("\n" not in message for message in dataset.skipped)
    assert any("2 channels" in m for m in dataset.skipped) and any("48000 Hz" in m for m in dataset.skipped)


def test_signaltrain_accepts_parent_folder_and_open_dataset(signaltrain: Path):
    from_parent = open_signaltrain(signaltrain.parent)
    assert from_parent.root == signaltrain
    with pytest.warns(UserWarning):
        detected = open_dataset(signaltrain.parent)
    assert isinstance(detected, SignalTrainDataset)
    assert [p.name for p in detected.pairs()] == [p.name for p in from_parent.pairs()]


def test_filters_select_by_value_or_iterable(signaltrain: Path):
    dataset = open_signaltrain(signaltrain)

    def names(**filters):
        return sorted(p.name.split("_")[0] for p in dataset.pairs(**filters))

    assert names() == ["138", "147", "170", "222", "235"]
    assert names(split="train") == names(split="Train") == ["138", "147", "222"]
    assert names(mode="limit") == ["147", "222"]
    assert names(peak_reduction=[65, 80.0]) == ["138", "222", "235"]
    assert names(peak_reduction=65, split=("train", "test")) == ["138", "235"]
    assert names(session="2c", mode="compress") == ["235"]
    assert names(split=["val"], session=("2c", "3c")) == ["170"]
    assert len(dataset.pairs(split="train")) == 3
    assert dataset.pairs(split="val", mode="limit") == []
    assert dataset.settings() == [("compress", 50.0), ("compress", 65.0), ("limit", 80.0), ("limit", 100.0)]
    assert dataset.settings(mode="limit") == [("limit", 80.0), ("limit", 100.0)]


def test_read_pairs_the_right_files_and_windows(signaltrain: Path):
    dataset = open_signaltrain(signaltrain)
    for pair in dataset.pairs():
        pair_id = pair.name.split("_")[0]
        x, y = dataset.read(pair)
        expected = noise(int(pair_id), LENGTH).astype(np.float32).astype(np.float64)[: pair.length_samples]
        assert x.dtype == np.float64 and y.dtype == np.float64
        np.testing.assert_array_equal(x, expected)
        gain = GOOD[pair_id][2]
        np.testing.assert_allclose(y, np.float32(gain * expected.astype(np.float32)), rtol=1e-6)
    pair = dataset.pairs(split="train", peak_reduction=65)[0]
    x_full, y_full = dataset.read(pair)
    x, y = dataset.read(pair, start_seconds=0.1, duration_seconds=0.2)
    start = round(0.1 * SAMPLE_RATE)
    np.testing.assert_array_equal(x, x_full[start : start + round(0.2 * SAMPLE_RATE)])
    np.testing.assert_array_equal(y, y_full[start : start + round(0.2 * SAMPLE_RATE)])
    x, y = dataset.read(pair, start_seconds=0.4, duration_seconds=10.0)  # clipped at the end
    assert len(x) == len(y) == LENGTH - round(0.4 * SAMPLE_RATE)
    with pytest.raises(ParameterError, match="start_seconds"):
        dataset.read(pair, start_seconds=0.5)


def test_read_trims_length_quirk_and_logs_once(signaltrain: Path, caplog):
    dataset = open_signaltrain(signaltrain)
    quirk = dataset.pairs(peak_reduction=100)[0]
    with caplog.at_level(logging.INFO, logger="dynamatch.data.datasets"):
        x, y = dataset.read(quirk)
        dataset.read(quirk, start_seconds=0.1)
    assert len(x) == len(y) == LENGTH - QUIRK_TRIM
    trims = [r.getMessage() for r in caplog.records if quirk.name in r.getMessage()]
    assert len(trims) == 1 and str(LENGTH - QUIRK_TRIM) in trims[0]
    # aligned from the start: the target is exactly gain * input sample by sample
    np.testing.assert_allclose(y, np.float32(0.25 * x.astype(np.float32)), rtol=1e-6)


def test_read_fails_clearly_when_a_file_disappears(signaltrain: Path):
    dataset = open_signaltrain(signaltrain)
    pair = dataset.pairs(split="val")[0]
    pair.target_path.unlink()
    with pytest.raises(DatasetError, match=pair.target_path.name):
        dataset.read(pair)


def test_signaltrain_errors(tmp_path: Path):
    with pytest.raises(DatasetError, match="Train/Val/Test"):
        SignalTrainDataset(tmp_path)
    (tmp_path / "Train").mkdir()
    with pytest.raises(DatasetError, match="no usable"):
        SignalTrainDataset(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="manifest.csv") as error:
        open_dataset(empty)
    assert "SignalTrain" in str(error.value) and isinstance(error.value, ValueError)


# -- capture sets --------------------------------------------------------------------------------


@pytest.fixture
def capture_set(tmp_path: Path) -> Path:
    root = tmp_path / "capture"
    write(root / "dry" / "a.wav", noise(1, LENGTH))
    write(root / "wet" / "a_50.wav", 0.5 * noise(1, LENGTH))
    write(root / "wet" / "a_lim_80.wav", 0.2 * noise(1, LENGTH))
    write(root / "wet" / "a_72.wav", 0.3 * noise(1, LENGTH - 100))  # one sample-count short
    (root / "manifest.csv").write_text(
        "input,target,mode,peak_reduction,split,notes\n"
        "dry/a.wav,wet/a_50.wav,compress,50,train,first\n"
        "dry/a.wav,wet/a_lim_80.wav,Limit,80,val,\n"
        "dry/a.wav,wet/a_72.wav,,72.5,,default mode\n"
    )
    return root


def test_capture_set_lists_and_reads(capture_set: Path):
    dataset = CaptureSetDataset(capture_set)
    assert isinstance(dataset, PairDataset) and dataset.sample_rate == SAMPLE_RATE
    got = {p.name: (p.mode, p.peak_reduction, p.split, p.session, p.length_samples) for p in dataset.pairs()}
    assert got == {
        "wet/a_50": ("compress", 50.0, "train", "", LENGTH),
        "wet/a_lim_80": ("limit", 80.0, "val", "", LENGTH),
        "wet/a_72": ("compress", 72.5, "", "", LENGTH - 100),
    }
    assert dataset.settings() == [("compress", 50.0), ("compress", 72.5), ("limit", 80.0)]
    assert [p.name for p in dataset.pairs(split="")] == ["wet/a_72"]
    pair = dataset.pairs(peak_reduction=72.5)[0]
    x, y = dataset.read(pair)
    assert len(x) == len(y) == LENGTH - 100
    np.testing.assert_allclose(y, np.float32(0.3 * x.astype(np.float32)), rtol=1e-6)
    assert isinstance(open_dataset(capture_set), CaptureSetDataset)
    assert isinstance(open_dataset(capture_set / "manifest.csv"), CaptureSetDataset)


@pytest.mark.parametrize(
    "header, row, message",
    [
        ("input,target,mode", "dry/a.wav,wet/a_50.wav,compress", "missing column.*peak_reduction"),
        ("input,target,peak_reduction", "dry/missing.wav,wet/a_50.wav,50", "row 3.*missing.wav"),
        ("input,target,peak_reduction", "dry/a.wav,,50", "row 3.*empty target"),
        ("input,target,mode,peak_reduction", "dry/a.wav,wet/a_50.wav,gate,50", "row 3.*mode 'gate'"),
        ("input,target,peak_reduction", "dry/a.wav,wet/a_50.wav,lots", "row 3.*peak_reduction 'lots'"),
        ("input,target,peak_reduction", "dry/a.wav,wet/a_50.wav,nan", "row 3.*finite"),
        ("input,target,peak_reduction,split", "dry/a.wav,wet/a_50.wav,50,holdout", "row 3.*split 'holdout'"),
        ("input,target,peak_reduction", "dry/a.wav,wet/stereo.wav,50", "row 3.*stereo.wav has 2 channels"),
        ("input,target,peak_reduction", "dry/a.wav,wet/fast.wav,50", "row 3.*fast.wav is at 48000 Hz"),
        ("input,target,peak_reduction", "dry/a.wav,wet/ok.wav,60", "row 3.*already listed in row 2"),
    ],
)
def test_capture_set_bad_rows(tmp_path: Path, header: str, row: str, message: str):
    write(tmp_path / "dry" / "a.wav", noise(1, LENGTH))
    write(tmp_path / "wet" / "ok.wav", noise(2, LENGTH))
    write(tmp_path / "wet" / "a_50.wav", noise(3, LENGTH))
    write(tmp_path / "wet" / "stereo.wav", noise(4, LENGTH, channels=2))
    write(tmp_path / "wet" / "fast.wav", noise(5, LENGTH), sample_rate=48000)
    columns = header.split(",")
    good = {"input": "dry/a.wav", "target": "wet/ok.wav", "mode": "compress", "peak_reduction": "40", "split": "train"}
    (tmp_path / "manifest.csv").write_text(f"{header}\n{','.join(good[c] for c in columns)}\n{row}\n")
    with pytest.raises(DatasetError, match=message) as error:
        CaptureSetDataset(tmp_path)
    assert "\n" not in str(error.value)


def test_capture_set_on_real_la2a_excerpts(tmp_path: Path, la2a_dir: Path):
    """Manifest paths are relative to the manifest, even when they leave its folder; int16 files read as float64."""
    excerpts = la2a_dir / "signaltrain_excerpts"
    rows = [
        f"{os.path.relpath(excerpts / f'sample{k}_input.wav', tmp_path)},"
        f"{os.path.relpath(excerpts / f'sample{k}_target.wav', tmp_path)},{k * 10}"
        for k in (1, 2)
    ]
    (tmp_path / "manifest.csv").write_text("input,target,peak_reduction\n" + "\n".join(rows) + "\n")
    dataset = open_dataset(tmp_path)
    assert dataset.sample_rate == 44100 and len(dataset) == 2
    pair = dataset.pairs(peak_reduction=20)[0]
    assert pair.duration_seconds == pytest.approx(16.0, abs=0.1)
    x, y = dataset.read(pair, start_seconds=2.0, duration_seconds=1.0)
    direct_x, rate = sf.read(str(excerpts / "sample2_input.wav"), start=88200, frames=44100, dtype="float64")
    direct_y, _ = sf.read(str(excerpts / "sample2_target.wav"), start=88200, frames=44100, dtype="float64")
    assert rate == 44100
    np.testing.assert_array_equal(x, direct_x)
    np.testing.assert_array_equal(y, direct_y)
    # input and target are the same recording: strongly correlated (the LA-2A is mostly a gain)
    assert np.corrcoef(x, y)[0, 1] > 0.8


def test_read_decodes_only_the_window(signaltrain: Path, monkeypatch):
    dataset = open_signaltrain(signaltrain)
    pair = dataset.pairs(split="train", peak_reduction=65)[0]
    requested = []
    original = sf.SoundFile.read

    def spy(self, frames=-1, *args, **kwargs):
        requested.append((self.tell(), frames))
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    dataset.read(pair, start_seconds=0.25, duration_seconds=0.01)
    assert requested == [(round(0.25 * SAMPLE_RATE), 441)] * 2
