"""Training chunks for the neural models: ``(x[1, T], y[1, T], cond[2])`` read from disk chunk by chunk.

Every chunk is a pure function of ``(seed, index)``: the random generator of item ``index`` is
``numpy.random.default_rng([seed, index])``.  A run therefore sees the same data whatever the number of
loader workers, and a resumed run sees exactly the chunks the interrupted one would have seen
(:class:`ChunkSampler` derives the indices from the optimiser step).

Random chunks (training) are drawn in three steps, so every setting weighs the same whatever its
amount of audio (balanced sampling):

1. a setting ``(mode, peak_reduction)`` uniformly;
2. a pair of that setting, with probability proportional to its usable length;
3. a start sample uniformly in ``[0, usable − T]``, where ``usable = floor(data_fraction · length)``
   (only the first fraction of every file is used, like the 1 % / 10 % runs of the micro-TCN paper).

Then, with probability ``polarity_flip_probability``, input and target are both negated.

Sequential chunks (validation, evaluation) tile the usable part of every pair without overlap, in
pair order, and are never flipped.

The conditioning vector is ``cond = [limit ∈ {0, 1}, peak_reduction / 100]``.

For the 4A-2A-G hybrid, ``compressor_for(pair)`` returns the grey-box compressor of the pair's setting:
the input chunk is replaced by that compressor's output.  The compressor runs over ``warmup_samples``
of audio before the chunk (as much as the file has) so that its gain state is settled at the chunk's
first sample — the recordings are continuous, so starting at unity gain would be wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..data.datasets import PairDataset, PairInfo
from ..errors import DatasetError, ParameterError
from ..models.compressor import Compressor
from ..models.parameters import MODES

DEFAULT_CHUNK_SAMPLES = 65_536


def conditioning(mode: str, peak_reduction: float) -> np.ndarray:
    """The model's conditioning vector ``[limit ∈ {0, 1}, peak_reduction / 100]`` (float32)."""
    if mode not in MODES:
        raise ParameterError(f"mode must be one of {MODES}, got {mode!r}")
    return np.array([1.0 if mode == "limit" else 0.0, float(peak_reduction) / 100.0], dtype=np.float32)


@dataclass(frozen=True)
class Chunk:
    """Where one chunk comes from: a pair, its first sample, and whether its polarity is flipped."""

    pair: PairInfo
    start_samples: int
    flipped: bool


class ChunkDataset(Dataset):
    """A map-style torch dataset of audio chunks from a :class:`~dynamatch.data.datasets.PairDataset`.

    ``sequential=False``: item ``i`` is a random chunk drawn from ``rng([seed, i])`` (any ``i ≥ 0``;
    ``len()`` is ``chunks_per_epoch``; drawing reads the target when ``min_target_rms_db`` is set).
    ``sequential=True``: item ``i`` is the ``i``-th tile of the usable audio (``len()`` tiles in all,
    at most ``max_chunks_per_pair`` per pair).
    """

    MAX_REDRAWS = 16

    def __init__(
        self,
        dataset: PairDataset,
        pairs: Sequence[PairInfo],
        *,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
        data_fraction: float = 1.0,
        polarity_flip_probability: float = 0.5,
        seed: int = 0,
        sequential: bool = False,
        chunks_per_epoch: int = 1024,
        max_chunks_per_pair: int | None = None,
        compressor_for: Callable[[PairInfo], Compressor] | None = None,
        warmup_samples: int = 44_100,
        min_target_rms_db: float | None = -60.0,
    ) -> None:
        if chunk_samples < 1:
            raise ParameterError(f"chunk_samples must be >= 1, got {chunk_samples}")
        if not 0.0 < data_fraction <= 1.0:
            raise ParameterError(f"data_fraction must be in (0, 1], got {data_fraction}")
        if not 0.0 <= polarity_flip_probability <= 1.0:
            raise ParameterError(f"polarity_flip_probability must be in [0, 1], got {polarity_flip_probability}")
        if warmup_samples < 0:
            raise ParameterError(f"warmup_samples must be >= 0, got {warmup_samples}")
        if not pairs:
            raise DatasetError(f"{dataset.root}: no pairs to take chunks from; check the split and filters")
        self.dataset = dataset
        self.sample_rate = dataset.sample_rate
        self.chunk_samples = int(chunk_samples)
        self.data_fraction = float(data_fraction)
        self.polarity_flip_probability = 0.0 if sequential else float(polarity_flip_probability)
        self.seed = int(seed)
        self.sequential = bool(sequential)
        self.chunks_per_epoch = int(chunks_per_epoch)
        self.compressor_for = compressor_for
        self.warmup_samples = int(warmup_samples)
        self.min_target_rms_db = None if sequential or min_target_rms_db is None else float(min_target_rms_db)

        usable = {p.name: usable_samples(p, self.data_fraction) for p in pairs}
        short = [p for p in pairs if usable[p.name] < self.chunk_samples]
        if short:
            p = short[0]
            raise DatasetError(
                f"{p.input_path}: only {usable[p.name]} usable samples (data_fraction={self.data_fraction}) "
                f"for chunks of {self.chunk_samples}; use a smaller chunk_samples or a larger data_fraction"
            )
        self.pairs = tuple(pairs)
        self.usable_samples = usable
        settings = sorted({(p.mode, float(p.peak_reduction)) for p in self.pairs})
        self._by_setting = [[p for p in self.pairs if (p.mode, float(p.peak_reduction)) == s] for s in settings]
        self._tiles: list[tuple[PairInfo, int]] = []
        if self.sequential:
            for p in self.pairs:
                count = usable[p.name] // self.chunk_samples
                if max_chunks_per_pair is not None:
                    count = min(count, int(max_chunks_per_pair))
                self._tiles += [(p, k * self.chunk_samples) for k in range(count)]

    @property
    def settings(self) -> list[tuple[str, float]]:
        """Distinct ``(mode, peak_reduction)`` settings, in sampling order."""
        return [(group[0].mode, float(group[0].peak_reduction)) for group in self._by_setting]

    def total_usable_samples(self) -> int:
        """Samples of audio this dataset draws from (all pairs, after ``data_fraction``)."""
        return int(sum(self.usable_samples.values()))

    def __len__(self) -> int:
        return len(self._tiles) if self.sequential else self.chunks_per_epoch

    def chunk(self, index: int) -> Chunk:
        """Where item ``index`` comes from (no audio is read)."""
        if index < 0:
            raise IndexError(f"chunk index must be >= 0, got {index}")
        if self.sequential:
            pair, start = self._tiles[index]
            return Chunk(pair, start, False)
        rng = np.random.default_rng([self.seed, int(index)])
        group = self._by_setting[int(rng.integers(len(self._by_setting)))]
        lengths = np.array([self.usable_samples[p.name] for p in group], dtype=float)
        pair = group[int(rng.choice(len(group), p=lengths / lengths.sum()))]
        last_start = self.usable_samples[pair.name] - self.chunk_samples
        start = int(rng.integers(0, last_start + 1))
        for _ in range(self.MAX_REDRAWS):
            if self.min_target_rms_db is None or self._target_rms_db(pair, start) >= self.min_target_rms_db:
                break
            start = int(rng.integers(0, last_start + 1))
        flipped = bool(rng.random() < self.polarity_flip_probability)
        return Chunk(pair, start, flipped)

    def _target_rms_db(self, pair: PairInfo, start_samples: int) -> float:
        _, y = self.dataset.read(
            pair, start_seconds=start_samples / self.sample_rate, duration_seconds=self.chunk_samples / self.sample_rate
        )
        return 10.0 * float(np.log10(np.mean(y * y) + 1e-30))

    def read_chunk(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        """``(input, target)`` float64 arrays of ``chunk_samples`` for ``chunk`` (input through the
        grey-box compressor when ``compressor_for`` is set; polarity applied)."""
        warmup = min(self.warmup_samples, chunk.start_samples) if self.compressor_for is not None else 0
        first = chunk.start_samples - warmup
        x, y = self.dataset.read(
            chunk.pair,
            start_seconds=first / self.sample_rate,
            duration_seconds=(warmup + self.chunk_samples) / self.sample_rate,
        )
        if x.shape[0] != warmup + self.chunk_samples:
            raise DatasetError(
                f"{chunk.pair.input_path}: read {x.shape[0]} samples at sample {first}, expected "
                f"{warmup + self.chunk_samples}; the file changed since it was listed"
            )
        if self.compressor_for is not None:
            x = self.compressor_for(chunk.pair).process(x, self.sample_rate)
        x, y = x[warmup:], y[warmup:]
        if chunk.flipped:
            x, y = -x, -y
        return x, y

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        chunk = self.chunk(int(index))
        x, y = self.read_chunk(chunk)
        cond = conditioning(chunk.pair.mode, chunk.pair.peak_reduction)
        return (
            torch.from_numpy(x.astype(np.float32)[None, :]),
            torch.from_numpy(y.astype(np.float32)[None, :]),
            torch.from_numpy(cond),
        )


def usable_samples(pair: PairInfo, data_fraction: float) -> int:
    """Samples of ``pair`` that training may use: the first ``floor(data_fraction · length)``."""
    return int(np.floor(float(data_fraction) * pair.length_samples))


class ChunkSampler(Sampler[int]):
    """Chunk indices that depend only on the optimiser step: batch ``b`` of rank ``r`` (of ``w``) is
    ``(b·w + r)·B, …, (b·w + r)·B + B − 1`` for batch size ``B``.

    Each pass yields ``batches_per_epoch`` batches starting from ``first_batch()`` (the trainer's step
    count when the pass begins), so a run resumed from a checkpoint takes exactly the chunks the
    uninterrupted run took at the same steps.
    """

    def __init__(
        self,
        batch_size: int,
        batches_per_epoch: int,
        first_batch: Callable[[], int],
        *,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1 or batches_per_epoch < 1:
            raise ParameterError(
                f"batch_size and batches_per_epoch must be >= 1, got {batch_size} and {batches_per_epoch}"
            )
        if not 0 <= rank < world_size:
            raise ParameterError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
        self.batch_size = int(batch_size)
        self.batches_per_epoch = int(batches_per_epoch)
        self.first_batch = first_batch
        self.rank = int(rank)
        self.world_size = int(world_size)

    def __iter__(self) -> Iterator[int]:
        first = int(self.first_batch())
        for batch in range(first, first + self.batches_per_epoch):
            start = (batch * self.world_size + self.rank) * self.batch_size
            yield from range(start, start + self.batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch * self.batch_size
