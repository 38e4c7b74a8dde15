"""Reader of the SignalTrain LA2A dataset v1.1 (Hawley, Colburn et al.; Zenodo 3824876).

Layout: ``SignalTrain_LA2A_Dataset_1.1/{Train,Val,Test}/input_<ID>_.wav`` paired with
``target_<ID>_LA2A_<2c|3c>__<switch>__<PR>.wav`` (switch 0 = compress, 1 = limit; PR = peak reduction
0–100).  Settings are parsed from the file *name* only, so a root path containing ``__`` is harmless.
Mono, 44.1 kHz.  v1.1 quirk: the inputs of IDs 147–150 and 152 were trimmed (their targets were 8583
samples late), so input and target lengths may differ; reading returns the common length.

Files that cannot be used (malformed names, unpaired inputs or targets, not mono, not 44.1 kHz) are
skipped with one warning each, also kept in :attr:`SignalTrainDataset.skipped`.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from ..errors import DatasetError
from .datasets import AudioHeader, PairDataset, PairInfo, audio_header

DATASET_FOLDER = "SignalTrain_LA2A_Dataset_1.1"
SAMPLE_RATE = 44100
SPLIT_FOLDERS: dict[str, str] = {"train": "Train", "val": "Val", "test": "Test"}  # split → its folder
FOLDER_SPLITS: dict[str, str] = {folder: split for split, folder in SPLIT_FOLDERS.items()}
SWITCH_MODES: dict[str, str] = {"0": "compress", "1": "limit"}

INPUT_PATTERN = re.compile(r"^input_(?P<id>\d+)_\.wav$")
TARGET_PATTERN = re.compile(
    r"^target_(?P<id>\d+)_LA2A_(?P<session>2c|3c)__(?P<switch>[01])__(?P<pr>\d{1,3})\.wav$"
)


def input_file_name(pair_id: int) -> str:
    """``input_<ID>_.wav``."""
    return f"input_{pair_id:03d}_.wav"


def target_file_name(pair_id: int, session: str, mode: str, peak_reduction: int) -> str:
    """``target_<ID>_LA2A_<session>__<switch>__<PR>.wav`` (switch 0 = compress, 1 = limit)."""
    switch = {m: s for s, m in SWITCH_MODES.items()}[mode]
    return f"target_{pair_id:03d}_LA2A_{session}__{switch}__{peak_reduction}.wav"


def find_signaltrain_root(path: Path) -> Path | None:
    """The folder holding Train/Val/Test: ``path`` itself, or its ``SignalTrain_LA2A_Dataset_1.1`` child."""
    path = Path(path)
    if any((path / folder).is_dir() for folder in FOLDER_SPLITS):
        return path
    child = path / DATASET_FOLDER
    if any((child / folder).is_dir() for folder in FOLDER_SPLITS):
        return child
    return None


class SignalTrainDataset(PairDataset):
    """SignalTrain LA2A v1.1 pairs; ``root`` is the dataset folder or a parent holding exactly that folder."""

    def __init__(self, root) -> None:
        found = find_signaltrain_root(Path(root))
        if found is None:
            raise DatasetError(
                f"{root}: no Train/Val/Test folders here nor in a single {DATASET_FOLDER} folder; "
                "pass the extracted SignalTrain dataset folder"
            )
        self.skipped: list[str] = []
        pairs = [pair for folder in FOLDER_SPLITS if (found / folder).is_dir() for pair in self._list(found / folder)]
        if not pairs:
            raise DatasetError(f"{found}: no usable input/target pairs found; check the download is complete")
        super().__init__(found, SAMPLE_RATE, pairs)

    def _skip(self, message: str) -> None:
        self.skipped.append(message)
        warnings.warn(message, stacklevel=3)

    def _usable(self, path: Path) -> AudioHeader | None:
        """The file's header when it is mono at 44.1 kHz, else None (after a warning)."""
        try:
            header = audio_header(path)
        except DatasetError as error:
            self._skip(f"{error}; pair skipped")
            return None
        if header.channels != 1 or header.sample_rate != SAMPLE_RATE:
            self._skip(
                f"{path}: expected mono at {SAMPLE_RATE} Hz, found {header.channels} channels at "
                f"{header.sample_rate} Hz; pair skipped"
            )
            return None
        return header

    def _list(self, folder: Path) -> list[PairInfo]:
        split = FOLDER_SPLITS[folder.name]
        inputs: dict[str, Path] = {}
        targets: dict[str, tuple[Path, re.Match]] = {}
        for path in sorted(folder.iterdir()):
            if not path.is_file() or not path.name.startswith(("input_", "target_")):
                continue
            if (match := INPUT_PATTERN.match(path.name)) is not None:
                inputs[match["id"]] = path
            elif (match := TARGET_PATTERN.match(path.name)) is not None:
                if match["id"] in targets:
                    self._skip(f"{path}: a second target for ID {match['id']}; file skipped, remove one of them")
                    continue
                targets[match["id"]] = (path, match)
            else:
                self._skip(
                    f"{path}: name matches neither input_<ID>_.wav nor "
                    "target_<ID>_LA2A_<2c|3c>__<0|1>__<PR>.wav; file skipped"
                )
        for pair_id in sorted(set(inputs) - set(targets)):
            self._skip(f"{inputs[pair_id]}: no target_{pair_id}_LA2A_*.wav beside it; input skipped")
        for pair_id in sorted(set(targets) - set(inputs)):
            self._skip(f"{targets[pair_id][0]}: no input_{pair_id}_.wav beside it; target skipped")
        pairs = []
        for pair_id in sorted(set(inputs) & set(targets)):
            target_path, match = targets[pair_id]
            peak_reduction = int(match["pr"])
            if peak_reduction > 100:
                self._skip(f"{target_path}: peak reduction {peak_reduction} is outside 0–100; pair skipped")
                continue
            input_header = self._usable(inputs[pair_id])
            target_header = self._usable(target_path) if input_header is not None else None
            if input_header is None or target_header is None:
                continue
            length_samples = min(input_header.length_samples, target_header.length_samples)
            mode = SWITCH_MODES[match["switch"]]
            pairs.append(
                PairInfo(
                    input_path=inputs[pair_id],
                    target_path=target_path,
                    mode=mode,
                    peak_reduction=float(peak_reduction),
                    split=split,
                    session=match["session"],
                    name=f"{pair_id}_{match['session']}_{mode}_{peak_reduction}",
                    duration_seconds=length_samples / SAMPLE_RATE,
                    length_samples=length_samples,
                )
            )
        return pairs
