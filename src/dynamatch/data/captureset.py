"""Reader of a generic capture set: a folder with ``manifest.csv`` listing input/target pairs.

Columns: ``input`` and ``target`` (paths relative to the manifest), ``peak_reduction`` (a float),
optional ``mode`` (``compress`` or ``limit``; default ``compress``), optional ``split``
(``train``/``val``/``test``, or empty) and optional ``knob``: the name of the control whose value
``peak_reduction`` holds (``dynamatch capture`` writes e.g. ``threshold_db``; one name for the whole
set; default ``peak_reduction``).  Other columns are ignored.  Every file must be mono and all
files must share one sample rate.  Problems raise :class:`DatasetError` naming the row and the file.

Example ``manifest.csv``::

    input,target,mode,peak_reduction,split
    dry/take1.wav,wet/take1_pr50.wav,compress,50,train
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ..errors import DatasetError
from .datasets import MANIFEST_NAME, MODES, PairDataset, PairInfo, audio_header

REQUIRED_COLUMNS: tuple[str, ...] = ("input", "target", "peak_reduction")
SPLIT_VALUES: tuple[str, ...] = ("train", "val", "test", "")


class CaptureSetDataset(PairDataset):
    """Pairs listed in ``root/manifest.csv``; the sample rate is the files' common rate."""

    def __init__(self, root) -> None:
        root = Path(root)
        manifest = root / MANIFEST_NAME
        if not manifest.is_file():
            raise DatasetError(f"{manifest}: manifest not found; a capture set is a folder with {MANIFEST_NAME}")
        try:
            with manifest.open(newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                columns = [c.strip() for c in (reader.fieldnames or [])]
                rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise DatasetError(f"{manifest}: cannot read the manifest ({error}); save it as UTF-8 CSV") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise DatasetError(
                f"{manifest}: missing column(s) {', '.join(missing)}; the header needs "
                f"{', '.join(REQUIRED_COLUMNS)} (optional: mode, split)"
            )
        if not rows:
            raise DatasetError(f"{manifest}: no rows; add one line per input/target pair")
        sample_rate: int | None = None
        pairs: list[PairInfo] = []
        seen: dict[str, int] = {}
        for row_number, row in enumerate(rows, start=2):  # line 1 is the header
            where = f"{manifest} row {row_number}"
            mode = (row.get("mode") or "compress").lower()
            if mode not in MODES:
                raise DatasetError(f"{where}: mode {row['mode']!r} is not one of {', '.join(MODES)}")
            try:
                peak_reduction = float(row["peak_reduction"])
            except ValueError:
                peak_reduction = math.nan
            if not math.isfinite(peak_reduction):
                raise DatasetError(f"{where}: peak_reduction {row['peak_reduction']!r} is not a finite number")
            split = (row.get("split") or "").lower()
            if split not in SPLIT_VALUES:
                raise DatasetError(f"{where}: split {row['split']!r} is not one of train, val, test or empty")
            lengths = []
            paths = []
            for column in ("input", "target"):
                if not row[column]:
                    raise DatasetError(f"{where}: empty {column} path")
                path = root / row[column]
                if not path.is_file():
                    raise DatasetError(f"{where}: {column} file {path} not found; fix the path relative to the manifest")
                header = audio_header(path)
                if header.channels != 1:
                    raise DatasetError(f"{where}: {path} has {header.channels} channels; capture sets are mono")
                if sample_rate is None:
                    sample_rate = header.sample_rate
                elif header.sample_rate != sample_rate:
                    raise DatasetError(
                        f"{where}: {path} is at {header.sample_rate} Hz but the set is at {sample_rate} Hz; resample it"
                    )
                lengths.append(header.length_samples)
                paths.append(path)
            name = Path(row["target"]).with_suffix("").as_posix()
            if name in seen:
                raise DatasetError(f"{where}: target {paths[1]} is already listed in row {seen[name]}; list it once")
            seen[name] = row_number
            length_samples = min(lengths)
            if length_samples == 0:
                raise DatasetError(f"{where}: {paths[lengths.index(0)]} is empty; re-record it")
            pairs.append(
                PairInfo(
                    input_path=paths[0],
                    target_path=paths[1],
                    mode=mode,
                    peak_reduction=peak_reduction,
                    split=split,
                    session="",
                    name=name,
                    duration_seconds=length_samples / sample_rate,
                    length_samples=length_samples,
                )
            )
        knobs = {row.get("knob") or "peak_reduction" for row in rows}
        if len(knobs) > 1:
            raise DatasetError(f"{manifest}: the knob column names several controls ({', '.join(sorted(knobs))}); "
                               "a capture set has one knob")
        self.knob: str = knobs.pop()
        super().__init__(root, sample_rate, pairs)
