r"""4A-2A-G: the fitted grey-box compressor followed by a tiny residual GRU.

The compressor of each setting comes from a knob → parameter map
(:meth:`dynamatch.maps.ParameterMap.compressor`) with its make-up forced to 0 dB; the GRU stage
(``"gru-8"``: :math:`\hat y = u + W h + b`, ``h = GRU(u, …)``) learns the target from the compressor's
output ``u``.  Training follows the reference: pre-filtered ESR, Adam at 5e-3, truncated
back-propagation through time over 12 288-sample segments (:func:`dynamatch.neural.train.train` with
``tbptt_samples``).  Training chunks are compressed with a warm-up pre-roll so that the compressor's
gain is settled at their first sample (:mod:`dynamatch.neural.data`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.datasets import PairDataset, PairInfo, open_dataset
from ..errors import ArgumentError, DatasetError
from ..maps import ParameterMap
from ..metrics import esr
from ..models.compressor import Compressor
from .data import conditioning
from .train import TrainResult, train

TBPTT_SAMPLES = 12_288
EVALUATION_BLOCK_SAMPLES = 1 << 18
HYBRID_CHUNK_SAMPLES = 8 * TBPTT_SAMPLES  # the GRU stage trains on shorter chunks than the black-box models


class MapCompressors:
    """``pair -> Compressor``: the map's compressor at the pair's setting, make-up 0 dB (picklable,
    so it can travel to data-loader workers)."""

    def __init__(self, parameter_map: ParameterMap) -> None:
        self.parameter_map = parameter_map
        self._cache: dict[tuple[str, float], Compressor] = {}

    def __call__(self, pair: PairInfo) -> Compressor:
        key = (pair.mode, float(pair.peak_reduction))
        if key not in self._cache:
            self._cache[key] = self.parameter_map.compressor(key[1], key[0]).with_params(makeup_db=0.0)
        return self._cache[key]


def _as_map(map_path_or_map: str | os.PathLike | ParameterMap) -> ParameterMap:
    return map_path_or_map if isinstance(map_path_or_map, ParameterMap) else ParameterMap.load(map_path_or_map)


def train_hybrid(
    map_path_or_map: str | os.PathLike | ParameterMap,
    dataset_path: str | os.PathLike | PairDataset,
    output_dir: str | os.PathLike,
    *,
    model: str | nn.Module = "gru-8",
    learning_rate: float = 5e-3,
    batch_size: int = 16,
    chunk_samples: int = HYBRID_CHUNK_SAMPLES,
    tbptt_samples: int = TBPTT_SAMPLES,
    warmup_samples: int = 44_100,
    **train_options: Any,
) -> TrainResult:
    """Train the GRU stage of 4A-2A-G on compressor outputs (make-up 0 dB) → targets.

    ``map_path_or_map``: a :class:`~dynamatch.maps.ParameterMap` or its JSON file.  The other options
    are :func:`~dynamatch.neural.train.train`'s (``max_steps``, ``seed``, ``data_fraction``, …); the
    loss is always the pre-filtered ESR.  The map is recorded in the model file's training metadata.
    """
    parameter_map = _as_map(map_path_or_map)
    if "loss" in train_options:
        raise ArgumentError("train_hybrid always trains with loss='esr'; do not pass loss")
    return train(
        model,
        dataset_path,
        output_dir,
        loss="esr",
        learning_rate=learning_rate,
        batch_size=batch_size,
        chunk_samples=chunk_samples,
        tbptt_samples=tbptt_samples,
        compressor_for=MapCompressors(parameter_map),
        warmup_samples=warmup_samples,
        metadata={"hybrid": {"parameter_map": parameter_map.to_document(), "makeup_db": 0.0}},
        **train_options,
    )


@dataclass(frozen=True)
class HybridPairScore:
    """Pre-filtered ESR of one held-out pair: the compressor alone (with the map's make-up, i.e. the
    4A-2A model) and compressor (make-up 0 dB) + GRU (4A-2A-G)."""

    name: str
    mode: str
    peak_reduction: float
    esr_compressor: float
    esr_hybrid: float


@dataclass(frozen=True)
class HybridEvaluation:
    """Per-pair scores and their means."""

    pairs: tuple[HybridPairScore, ...]
    mean_esr_compressor: float
    mean_esr_hybrid: float


def evaluate_hybrid(
    model: nn.Module | str | os.PathLike,
    map_path_or_map: str | os.PathLike | ParameterMap,
    dataset_path: str | os.PathLike | PairDataset,
    *,
    split: str = "test",
    max_seconds: float | None = None,
) -> HybridEvaluation:
    """Score the compressor alone vs compressor + GRU on the pairs of ``split``.

    Each pair is processed from its first sample (both models start from rest, as the recording did),
    over at most ``max_seconds`` of audio.  ``model``: the GRU stage or its ``model.json``.
    """
    if not isinstance(model, nn.Module):
        from .registry import load_model

        model = load_model(model)
    parameter_map = _as_map(map_path_or_map)
    dataset = dataset_path if isinstance(dataset_path, PairDataset) else open_dataset(dataset_path)
    pairs = dataset.pairs(split=split)
    if not pairs:
        raise DatasetError(f"{dataset.root}: no pairs in the {split!r} split to evaluate on; choose another split")
    zero_makeup = MapCompressors(parameter_map)
    parameter = next(model.parameters())
    model = model.eval()
    scores = []
    for pair in pairs:
        duration = None if max_seconds is None else min(float(max_seconds), pair.duration_seconds)
        x, y = dataset.read(pair, duration_seconds=duration)
        full = parameter_map.compressor(pair.peak_reduction, pair.mode).process(x, dataset.sample_rate)
        u = zero_makeup(pair).process(x, dataset.sample_rate)
        cond = torch.from_numpy(conditioning(pair.mode, pair.peak_reduction)[None]).to(parameter)
        hybrid = _run_in_blocks(model, u, cond)
        scores.append(HybridPairScore(pair.name, pair.mode, float(pair.peak_reduction), esr(full, y), esr(hybrid, y)))
    return HybridEvaluation(
        pairs=tuple(scores),
        mean_esr_compressor=float(np.mean([s.esr_compressor for s in scores])),
        mean_esr_hybrid=float(np.mean([s.esr_hybrid for s in scores])),
    )


@torch.no_grad()
def _run_in_blocks(model: nn.Module, u: np.ndarray, cond: torch.Tensor) -> np.ndarray:
    """``model(u, cond)`` over a long signal, block by block with the recurrent state carried
    (same output, bounded memory)."""
    parameter = next(model.parameters())
    state = model.initial_state(cond)
    out = np.empty_like(u)
    for start in range(0, u.size, EVALUATION_BLOCK_SAMPLES):
        block = torch.from_numpy(u[None, None, start : start + EVALUATION_BLOCK_SAMPLES]).to(parameter)
        y, state = model.step(block, cond, state)
        out[start : start + block.shape[-1]] = y[0, 0].double().cpu().numpy()
    return out
