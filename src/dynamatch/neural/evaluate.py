"""Score trained neural models (and 4A-2A-G hybrids) on a dataset with the shared metrics.

Black-box models see the dry input; a hybrid's GRU sees the output of the compressor map stored in
its training record (make-up 0 dB).  Models run block by block through :class:`StreamingProcessor`
(the way a plugin would), and a non-causal model's look-ahead is removed before scoring.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..data.datasets import PairDataset
from ..documents import NEURAL, read_document
from ..maps import ParameterMap
from ..metrics import score
from .data import conditioning
from .registry import load_model
from .streaming import StreamingProcessor

BLOCK_SAMPLES = 65536


def hybrid_map(model_path: str | os.PathLike) -> ParameterMap | None:
    """The compressor map a hybrid GRU stage was trained after (None for black-box models)."""
    document = read_document(model_path, NEURAL, what="neural model file")
    hybrid = (document.get("training") or {}).get("hybrid")
    return None if not hybrid else ParameterMap.from_document(hybrid["parameter_map"], str(model_path))


def predict(processor: StreamingProcessor, x: np.ndarray, block_samples: int = BLOCK_SAMPLES) -> np.ndarray:
    """Run ``x`` through ``processor`` in blocks and undo its look-ahead (output aligned with ``x``)."""
    processor.reset()
    latency = processor.latency_samples
    padded = np.concatenate([x, np.zeros(latency)]) if latency else x
    out = np.concatenate([processor.process(padded[i:i + block_samples]) for i in range(0, padded.size, block_samples)])
    return out[latency:latency + x.size]


def render(model, compressor_map: ParameterMap | None, mode: str, peak_reduction: float, x: np.ndarray,
           sample_rate: int) -> np.ndarray:
    """The model's output for dry ``x`` at a setting; a hybrid's GRU runs after its map's compressor (make-up 0 dB)."""
    model_input = x
    if compressor_map is not None:
        compressor = compressor_map.compressor(peak_reduction, mode).with_params(makeup_db=0.0)
        model_input = compressor.process(x, sample_rate)
    cond = tuple(float(v) for v in conditioning(mode, peak_reduction))
    return predict(StreamingProcessor(model, cond), model_input)


def score_neural(
    model_path: str | os.PathLike,
    dataset: PairDataset,
    *,
    split: str | None = None,
    session: str | None = None,
    modes: Iterable[str] | None = None,
    duration_seconds: float | None = None,
    metrics: Sequence[str] = ("esr", "delta_ldr_db", "mae"),
) -> list[dict[str, Any]]:
    """One row per pair: model, mode, peak_reduction, pair, metrics (the same rows as the grey-box scorer)."""
    model = load_model(model_path)
    compressor_map = hybrid_map(model_path)
    label = Path(model_path).parent.name or Path(model_path).stem
    rows = []
    for pair in dataset.pairs(split=split, session=session, mode=list(modes) if modes else None):
        x, y = dataset.read(pair, duration_seconds=duration_seconds)
        prediction = render(model, compressor_map, pair.mode, pair.peak_reduction, x, dataset.sample_rate)
        row = {"model": label, "mode": pair.mode, "peak_reduction": pair.peak_reduction, "split": pair.split,
               "pair": pair.name}
        row.update(score(prediction, y, dataset.sample_rate, metrics=tuple(metrics)))
        rows.append(row)
    return rows
