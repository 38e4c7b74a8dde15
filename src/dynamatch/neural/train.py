r"""One trainer for every neural model (TCN, LSTM, S4, the 4A-2A-G GRU stage), on PyTorch Lightning.

:func:`train` draws random chunks from a paired dataset (:mod:`dynamatch.neural.data`), optimises with
Adam (AdamW for S4 models), lowers the learning rate on plateaus of the validation loss
(``ReduceLROnPlateau``), stops early after ``patience`` validations without improvement, keeps
``checkpoints/last.ckpt`` and ``checkpoints/best.ckpt`` in ``output_dir`` and writes the best weights as
``output_dir/model.json`` (+ safetensors) with the training metadata.

Losses (``loss=``):

* ``"mae+stft"`` (micro-TCN, LSTM, S4): :math:`\frac1N\sum|y-\hat y|` + auraloss's multi-resolution
  STFT loss (FFT sizes 1024/2048/512);
* ``"esr"`` (4A-2A, 4A-2A-G): pre-filtered error-to-signal ratio
  :math:`\sum(\tilde y-\tilde{\hat y})^2/\sum\tilde y^2` over the batch, with
  :math:`H(z) = (1 - z^{-1})/(1 - 0.995 z^{-1})` applied to both (:func:`prefilter`).

Every ``val_every`` steps the model is validated on fixed chunks of the validation split and the
checkpoints are written.  Because every training chunk is a pure function of ``(seed, chunk index)``
and the chunk indices depend only on the step (:class:`~dynamatch.neural.data.ChunkSampler`), a run
resumed from ``last.ckpt`` after an interruption ends with the same weights as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..data.datasets import PairDataset, PairInfo, open_dataset
from ..errors import DatasetError, ParameterError, TrainingError
from ..kernels.prefilter import PREFILTER_POLE
from .data import DEFAULT_CHUNK_SAMPLES, ChunkDataset, ChunkSampler

LOSSES = ("mae+stft", "esr")
OPTIMIZERS = ("adam", "adamw")
CHECKPOINT_FOLDER = "checkpoints"
MODEL_FILE = "model.json"


# -- losses ------------------------------------------------------------------------------------------
def prefilter(x: Tensor) -> Tensor:
    r"""Differentiable pre-filter :math:`H(z) = (1 - z^{-1})/(1 - p z^{-1})`, :math:`p = 0.995`, along the
    last axis, from rest (as ``scipy.signal.lfilter([1, -1], [1, -p], x)``): the torch objective's scan
    (:func:`dynamatch.kernels.torch_scan.prefilter_scan`), the one torch implementation of the filter."""
    from ..kernels.torch_scan import prefilter_scan

    return prefilter_scan(x, 1.0, PREFILTER_POLE)


def esr_loss(prediction: Tensor, target: Tensor, *, prefiltered: bool = True) -> Tensor:
    r"""Error-to-signal ratio :math:`\sum(y - \hat y)^2 / \sum y^2` over all elements, after the
    pre-filter (:func:`prefilter`) when ``prefiltered``."""
    if prefiltered:
        prediction, target = prefilter(prediction), prefilter(target)
    return torch.sum((target - prediction) ** 2) / (torch.sum(target**2) + 1e-12)


class MaeStftLoss(nn.Module):
    """``L1 + MultiResolutionSTFTLoss`` on ``[batch, 1, samples]``: auraloss's defaults, as micro-TCN and
    S4 DRC used them (FFT 1024/2048/512, hops 120/240/50, windows 600/1200/240; spectral convergence +
    log-magnitude L1)."""

    FFT_SIZES = (1024, 2048, 512)
    MIN_SAMPLES = max(FFT_SIZES) // 2 + 1  # the STFT's reflect padding needs more than n_fft / 2 samples

    def __init__(self) -> None:
        super().__init__()
        from auraloss.freq import MultiResolutionSTFTLoss

        self.stft = MultiResolutionSTFTLoss(
            fft_sizes=list(self.FFT_SIZES), hop_sizes=[120, 240, 50], win_lengths=[600, 1200, 240]
        )

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        return torch.mean(torch.abs(target - prediction)) + self.stft(prediction, target)


def make_loss(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The training objective called ``name`` (one of :data:`LOSSES`)."""
    if name == "mae+stft":
        return MaeStftLoss()
    if name == "esr":
        return esr_loss
    raise ParameterError(f"loss must be one of {LOSSES}, got {name!r}")


# -- result ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did.

    ``history`` holds one entry per validation: ``{"step", "train_loss", "val_loss", "learning_rate"}``
    (``train_loss``: mean over the steps since the previous validation).  ``stopped_early`` is True
    when ``patience`` ran out before ``max_steps``; ``resumed_from`` is the checkpoint the run
    continued from, if any; ``metadata`` is what the model file's ``"training"`` entry holds.
    """

    model: nn.Module
    model_path: Path
    best_checkpoint_path: Path
    last_checkpoint_path: Path
    steps: int
    best_val_loss: float
    history: tuple[dict[str, float], ...]
    stopped_early: bool
    resumed_from: Path | None
    elapsed_seconds: float
    metadata: dict[str, Any] = field(default_factory=dict)


# -- the Lightning module ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSettings:
    """Everything that defines a run; stored in checkpoints and in the model file's metadata."""

    dataset_path: str
    loss: str
    optimizer: str
    learning_rate: float
    lr_factor: float
    lr_patience: int
    batch_size: int
    chunk_samples: int
    data_fraction: float
    polarity_flip_probability: float
    seed: int
    val_every: int
    max_steps: int
    patience: int
    loss_skip_samples: int
    tbptt_samples: int | None
    compressor_warmup_samples: int | None
    train_split: str
    val_split: str

    # Settings that may change when a run is resumed (extending or shortening it).
    RESUMABLE_CHANGES = ("max_steps", "patience")


class TrainingModule(pl.LightningModule):
    """The model with its loss, optimiser, plateau schedule and data loaders.

    With ``settings.tbptt_samples`` the step is truncated back-propagation through time: each chunk is
    cut into segments of that many samples, the recurrent layers' state is carried (detached) from one
    segment to the next (:class:`RecurrentState`), and the optimiser steps once per segment.
    """

    def __init__(
        self,
        model: nn.Module,
        settings: RunSettings,
        train_data: ChunkDataset,
        val_data: ChunkDataset,
        num_workers: int,
    ) -> None:
        super().__init__()
        self.model = model
        self.settings = settings
        self.train_data = train_data
        self.val_data = val_data
        self.num_workers = int(num_workers)
        self.loss_fn = make_loss(settings.loss)
        self.history: list[dict[str, float]] = []
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._plateau_state: dict[str, Any] | None = None
        self._train_sum = self._val_sum = 0.0
        self._train_count = self._val_count = 0
        self.automatic_optimization = settings.tbptt_samples is None
        tbptt = settings.tbptt_samples
        self.segments_per_chunk = 1 if tbptt is None else math.ceil(settings.chunk_samples / tbptt)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        return self.model(x, cond)

    def _loss(self, prediction: Tensor, target: Tensor, skip_samples: int) -> Tensor:
        # FFT/STFT losses in float32 at least, also under 16-bit mixed precision
        dtype = torch.promote_types(prediction.dtype, torch.float32)
        return self.loss_fn(prediction[..., skip_samples:].to(dtype), target[..., skip_samples:].to(dtype))

    # training ------------------------------------------------------------------------------------
    def training_step(self, batch, batch_index: int) -> Tensor | None:
        x, y, cond = batch
        if self.settings.tbptt_samples is None:
            loss = self._loss(self.model(x, cond), y, self.settings.loss_skip_samples)
            self._record(loss)
            return loss
        optimizer = self.optimizers()
        with RecurrentState(self.model) as state:
            for start in range(0, x.shape[-1], self.settings.tbptt_samples):
                stop = start + self.settings.tbptt_samples
                prediction = self.model(x[..., start:stop], cond)
                skip = max(self.settings.loss_skip_samples - start, 0)
                loss = self._loss(prediction, y[..., start:stop], skip)
                optimizer.zero_grad()
                self.manual_backward(loss)
                optimizer.step()
                state.detach()
                self._record(loss)
        return None

    def _record(self, loss: Tensor) -> None:
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingError(
                f"training loss became {value} at step {self.global_step}; start over with a lower learning rate "
                "(dynamatch train --restart --learning-rate …)"
            )
        self._train_sum += value
        self._train_count += 1
        # the mean since the last validation: the figure the history and ``final_train_loss`` record
        self.log("train_loss", self._train_sum / self._train_count, prog_bar=True, on_step=True, on_epoch=False,
                 batch_size=1)

    def on_train_epoch_start(self) -> None:
        self._train_sum, self._train_count = 0.0, 0

    def on_train_start(self) -> None:
        if self._plateau_state is not None:
            self.plateau.load_state_dict(self._plateau_state)
            self._plateau_state = None

    # validation ----------------------------------------------------------------------------------
    def validation_step(self, batch, batch_index: int) -> None:
        x, y, cond = batch
        loss = self._loss(self.model(x, cond), y, self.settings.loss_skip_samples)
        self._val_sum += float(loss) * len(x)
        self._val_count += len(x)

    def on_validation_epoch_start(self) -> None:
        self._val_sum, self._val_count = 0.0, 0

    def on_validation_epoch_end(self) -> None:
        totals = torch.tensor([self._val_sum, float(self._val_count)], dtype=torch.float64, device=self.device)
        if self.trainer.world_size > 1:
            totals = self.trainer.strategy.reduce(totals, reduce_op="sum")
        val_loss = float(totals[0] / totals[1].clamp(min=1.0))
        self.log("val_loss", val_loss, prog_bar=True)
        if self.trainer.sanity_checking:
            return
        # Stepped here, before this validation's checkpoint is written, so that a resumed run finds the
        # schedule exactly where the interrupted one left it.
        self.plateau.step(val_loss)
        self.history.append(
            {
                "step": int(self.global_step) // self.segments_per_chunk,
                "train_loss": self._train_sum / max(self._train_count, 1),
                "val_loss": val_loss,
                "learning_rate": float(self.plateau.optimizer.param_groups[0]["lr"]),
            }
        )

    # optimiser, checkpoints, data ----------------------------------------------------------------
    def configure_optimizers(self):
        cls = torch.optim.AdamW if self.settings.optimizer == "adamw" else torch.optim.Adam
        optimizer = cls(self.model.parameters(), lr=self.settings.learning_rate)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.settings.lr_factor, patience=self.settings.lr_patience
        )
        return optimizer

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["dynamatch"] = {
            "plateau": self.plateau.state_dict(),
            "history": list(self.history),
            "settings": asdict(self.settings),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("dynamatch", {})
        self.history = list(saved.get("history", []))
        self._plateau_state = saved.get("plateau")

    def train_dataloader(self) -> DataLoader:
        sampler = ChunkSampler(
            self.settings.batch_size,
            self.settings.val_every,
            lambda: self.trainer.global_step // self.segments_per_chunk,
            rank=self.trainer.global_rank,
            world_size=self.trainer.world_size,
        )
        return DataLoader(
            self.train_data,
            batch_size=self.settings.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_data, batch_size=self.settings.batch_size, num_workers=self.num_workers)


class _EarlyStopping(pl.callbacks.EarlyStopping):
    """Lightning's early stopping, except that a resumed run keeps the ``patience`` it was given
    (Lightning restores the checkpoint's)."""

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        patience = self.patience
        super().load_state_dict(state_dict)
        self.patience = patience


class RecurrentState:
    """Carries the hidden state of a model's recurrent layers (``nn.GRU``/``nn.LSTM``, each called once
    per forward) from one ``model(x, cond)`` call to the next, for truncated BPTT.

    Forward hooks record every layer's final state; pre-hooks feed it back as the next call's initial
    state.  :meth:`detach` cuts the graph between segments.  Used as a context manager, which starts
    from zero state and removes the hooks on exit.
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
        self.states: dict[nn.Module, Any] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> "RecurrentState":
        self.states.clear()
        for layer in self.layers:
            self._handles.append(layer.register_forward_pre_hook(self._feed, with_kwargs=True))
            self._handles.append(layer.register_forward_hook(self._keep))
        return self

    def __exit__(self, *exc_info) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.states.clear()

    def _feed(self, layer: nn.Module, args: tuple, kwargs: dict):
        if layer not in self.states or len(args) > 1 or kwargs.get("hx") is not None:
            return None
        return (args[0], self.states[layer]), kwargs

    def _keep(self, layer: nn.Module, args: tuple, output) -> None:
        self.states[layer] = output[1]

    def detach(self) -> None:
        """Keep the states' values, drop their history (the truncation of truncated BPTT)."""
        self.states = {layer: _detached(state) for layer, state in self.states.items()}


def _detached(state):
    if isinstance(state, Tensor):
        return state.detach()
    return type(state)(_detached(s) for s in state)


# -- the public entry point --------------------------------------------------------------------------
def _check_accelerator(accelerator: str, precision: str) -> None:
    """One clear line instead of Lightning's traceback when a GPU is asked for and torch sees none."""
    import torch

    if str(accelerator).lower() in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ParameterError(
            f"--accelerator {accelerator}: torch sees no CUDA GPU here (torch {torch.__version__}); "
            "use --accelerator cpu (or auto), and --precision 32-true or bf16-mixed on the CPU"
        )
    if "16" in str(precision) and str(accelerator).lower() == "cpu" and not str(precision).startswith("bf16"):
        raise ParameterError(f"--precision {precision} needs a GPU; on the CPU use 32-true or bf16-mixed")


def train(
    model_name_or_module: str | nn.Module,
    dataset_path: str | Path | PairDataset,
    output_dir: str | Path,
    *,
    loss: str = "mae+stft",
    max_steps: int | None = None,
    max_epochs: float | None = None,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    optimizer: str | None = None,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    data_fraction: float = 1.0,
    seed: int = 0,
    val_every: int | None = None,
    patience: int = 10,
    lr_patience: int = 3,
    lr_factor: float = 0.5,
    resume: bool = True,
    progress: bool = True,
    accelerator: str = "auto",
    devices: int | str = "auto",
    precision: str = "32-true",
    num_workers: int = 0,
    polarity_flip_probability: float = 0.5,
    val_chunks_per_pair: int | None = 8,
    train_split: str = "train",
    val_split: str = "val",
    loss_skip_samples: int | None = None,
    tbptt_samples: int | None = None,
    compressor_for: Callable[[PairInfo], Any] | None = None,
    warmup_samples: int = 44_100,
    callbacks: tuple = (),
    metadata: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a neural model on a paired dataset and save it as ``output_dir/model.json`` (+ safetensors).

    - ``model_name_or_module``: a preset of :func:`dynamatch.neural.registry.build_model` (built after
      seeding with ``seed``) or a module with ``forward(x[b, 1, T], cond[b, 2]) -> y[b, 1, T]``.
    - ``dataset_path``: a folder :func:`~dynamatch.data.datasets.open_dataset` reads, or an open dataset;
      ``train_split``/``val_split`` name the pairs used for each.
    - ``max_steps`` or ``max_epochs`` (not both; default 60 epochs): an epoch is the number of steps that
      shows the training audio once, ``usable samples / (chunk_samples · batch_size)``.
    - ``val_every``: steps between validations and checkpoints (default one epoch, or the resumed run's); ``patience``:
      validations without improvement before stopping early; ``lr_patience``/``lr_factor``:
      ``ReduceLROnPlateau``.
    - ``optimizer``: ``"adam"`` or ``"adamw"`` (default AdamW for S4 models, Adam otherwise).
    - ``loss_skip_samples``: leading samples of every chunk left out of the loss (default: the samples a
      TCN computes from its zero padding, ``receptive_field − 1 − lookahead``, like micro-TCN's
      valid-output crop; 0 for recurrent and S4 models).
    - ``resume``: continue from ``output_dir/checkpoints/last.ckpt`` when it exists; the settings must
      match, except ``max_steps`` and ``patience``.  ``resume=False`` starts over.
    - ``accelerator``, ``devices``, ``precision``: Lightning's (``"auto"`` takes a GPU when there is one,
      DDP over several; ``precision="bf16-mixed"`` for mixed precision).
    - ``num_workers``: data-loader processes (chunks are the same for any number).
    - ``compressor_for`` (hybrid): ``pair -> Compressor`` whose output replaces each pair's input, run
      over ``warmup_samples`` before each chunk (:mod:`dynamatch.neural.data`).
    - ``tbptt_samples``: truncated-BPTT segment length, for models with GRU/LSTM layers (their state
      is carried between segments by :class:`RecurrentState`).
    - ``callbacks``: extra Lightning callbacks; ``metadata``: extra entries for the model file's
      ``"training"`` record.
    """
    started = time.perf_counter()
    if loss not in LOSSES:
        raise ParameterError(f"loss must be one of {LOSSES}, got {loss!r}")
    if batch_size < 1:
        raise ParameterError(f"batch_size must be >= 1, got {batch_size}")
    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ParameterError(f"learning_rate must be a positive number, got {learning_rate}")
    if max_steps is not None and max_epochs is not None:
        raise ParameterError("give max_steps or max_epochs, not both")
    if tbptt_samples is not None and tbptt_samples < 1:
        raise ParameterError(f"tbptt_samples must be >= 1, got {tbptt_samples}")
    _check_accelerator(accelerator, precision)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    dataset = dataset_path if isinstance(dataset_path, PairDataset) else open_dataset(dataset_path)

    pl.seed_everything(seed, workers=True, verbose=False)
    model, model_name = _resolve_model(model_name_or_module)
    if tbptt_samples is not None and not _is_recurrent(model):
        raise ParameterError(f"{model_name} has no GRU/LSTM layer; truncated BPTT is for recurrent models")
    chunk_kwargs = dict(
        chunk_samples=chunk_samples,
        data_fraction=data_fraction,
        seed=seed,
        compressor_for=compressor_for,
        warmup_samples=warmup_samples,
    )
    train_pairs = dataset.pairs(split=train_split)
    val_pairs = dataset.pairs(split=val_split)
    if not train_pairs or not val_pairs:
        raise DatasetError(
            f"{dataset.root}: needs pairs in the {train_split!r} and {val_split!r} splits, found "
            f"{len(train_pairs)} and {len(val_pairs)}; check the dataset layout or choose other splits"
        )
    train_data = ChunkDataset(dataset, train_pairs, polarity_flip_probability=polarity_flip_probability, **chunk_kwargs)
    val_data = ChunkDataset(
        dataset, val_pairs, sequential=True, max_chunks_per_pair=val_chunks_per_pair, **chunk_kwargs
    )

    steps_per_epoch = max(1, math.ceil(train_data.total_usable_samples() / (chunk_samples * batch_size)))
    if max_steps is None:
        max_steps = max(1, math.ceil((60.0 if max_epochs is None else float(max_epochs)) * steps_per_epoch))
    if max_steps < 1:
        raise ParameterError(f"max_steps must be >= 1, got {max_steps}")
    checkpoint_dir = output_dir / CHECKPOINT_FOLDER
    last_path, best_path = checkpoint_dir / "last.ckpt", checkpoint_dir / "best.ckpt"
    if val_every is None:
        # a resumed run keeps its validation interval: extending a run (a larger max_steps) changes nothing else
        saved = _saved_settings(last_path) if resume and last_path.is_file() else {}
        val_every = int(saved.get("val_every") or min(steps_per_epoch, max_steps))
    else:
        val_every = int(val_every)
    if val_every < 1:
        raise ParameterError(f"val_every must be >= 1, got {val_every}")
    skip = _default_skip(model, chunk_samples) if loss_skip_samples is None else int(loss_skip_samples)
    if not 0 <= skip < chunk_samples:
        raise ParameterError(f"loss_skip_samples must be in [0, chunk_samples), got {skip}")
    scored_samples = min(chunk_samples, tbptt_samples or chunk_samples) - skip
    if loss == "mae+stft" and scored_samples < MaeStftLoss.MIN_SAMPLES:
        raise ParameterError(
            f"loss='mae+stft' needs at least {MaeStftLoss.MIN_SAMPLES} scored samples per chunk, got "
            f"{scored_samples} (chunk or TBPTT segment minus loss_skip_samples); use longer chunks"
        )
    settings = RunSettings(
        dataset_path=str(dataset.root),
        loss=loss,
        optimizer=optimizer or _default_optimizer(model, model_name),
        learning_rate=float(learning_rate),
        lr_factor=float(lr_factor),
        lr_patience=int(lr_patience),
        batch_size=int(batch_size),
        chunk_samples=int(chunk_samples),
        data_fraction=float(data_fraction),
        polarity_flip_probability=float(polarity_flip_probability),
        seed=int(seed),
        val_every=val_every,
        max_steps=int(max_steps),
        patience=int(patience),
        loss_skip_samples=skip,
        tbptt_samples=tbptt_samples,
        compressor_warmup_samples=None if compressor_for is None else int(warmup_samples),
        train_split=train_split,
        val_split=val_split,
    )
    if settings.optimizer not in OPTIMIZERS:
        raise ParameterError(f"optimizer must be one of {OPTIMIZERS}, got {settings.optimizer!r}")

    resumed_from = None
    if resume and last_path.is_file():
        _check_resumable(last_path, settings)
        resumed_from = last_path
    else:
        for stale in (last_path, best_path):
            stale.unlink(missing_ok=True)

    module = TrainingModule(model, settings, train_data, val_data, num_workers)
    segments = module.segments_per_chunk
    checkpoint = pl.callbacks.ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best",
        monitor="val_loss",
        mode="min",
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
        save_on_train_epoch_end=False,  # only after validations (else a resumed run saves without val_loss)
    )
    early_stopping = _EarlyStopping(monitor="val_loss", mode="min", patience=patience, check_on_train_epoch_end=False)
    _quiet_lightning()
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        precision=precision,
        max_steps=settings.max_steps * segments,
        max_epochs=-1,
        check_val_every_n_epoch=1,
        num_sanity_val_steps=0,
        callbacks=[_ValidateAtTheLastStep(), checkpoint, early_stopping,
                   *([_StepsProgressBar(settings)] if progress else []), *callbacks],
        enable_progress_bar=progress,
        enable_model_summary=False,
        logger=False,
        use_distributed_sampler=False,
        default_root_dir=output_dir,
        deterministic="warn",  # CUDA ops without a deterministic kernel warn instead of failing
    )
    with warnings.catch_warnings():
        # resuming writes into the checkpoint folder it reads from, on purpose
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        # Lightning's own use of a torch API torch deprecated: nothing the user can act on
        warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated")
        trainer.fit(module, ckpt_path=resumed_from)

    best = best_path if best_path.is_file() else last_path
    state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    model.cpu().eval()
    steps = int(trainer.global_step) // segments
    best_val = min((h["val_loss"] for h in module.history), default=float("nan"))
    metadata = {
        "model": model_name,
        "settings": asdict(settings),
        "steps": steps,
        "best_val_loss": best_val,
        "final_train_loss": module.history[-1]["train_loss"] if module.history else float("nan"),
        "history": module.history,
        "train_pairs": [p.name for p in train_pairs],
        "val_pairs": [p.name for p in val_pairs],
        "sample_rate": dataset.sample_rate,
        **(metadata or {}),
    }
    model_path = _save(model, output_dir / MODEL_FILE, metadata)
    return TrainResult(
        model=model,
        model_path=model_path,
        best_checkpoint_path=best,
        last_checkpoint_path=last_path,
        steps=steps,
        best_val_loss=best_val,
        history=tuple(module.history),
        stopped_early=steps < settings.max_steps,
        resumed_from=resumed_from,
        elapsed_seconds=time.perf_counter() - started,
        metadata=metadata,
    )


# -- helpers -----------------------------------------------------------------------------------------
def _resolve_model(model_name_or_module: str | nn.Module) -> tuple[nn.Module, str]:
    if isinstance(model_name_or_module, nn.Module):
        config = getattr(model_name_or_module, "config", None)
        name = config.get("architecture", type(model_name_or_module).__name__) if isinstance(config, dict) else None
        return model_name_or_module, name or type(model_name_or_module).__name__
    from .registry import build_model

    return build_model(str(model_name_or_module)), str(model_name_or_module)


def _is_recurrent(model: nn.Module) -> bool:
    """Models with a GRU/LSTM layer (whose state :class:`RecurrentState` can carry)."""
    return any(isinstance(m, nn.RNNBase) for m in model.modules())


def _default_optimizer(model: nn.Module, model_name: str) -> str:
    """AdamW for S4 models (as the S4 DRC paper), Adam for the rest."""
    config = getattr(model, "config", None)
    architecture = config.get("architecture", "") if isinstance(config, dict) else ""
    return "adamw" if architecture == "s4" or model_name.lower().startswith("s4") else "adam"


def _default_skip(model: nn.Module, chunk_samples: int) -> int:
    """Leading output samples computed from zero padding: ``receptive_field − 1 − lookahead``
    (0 for recurrent models, whose ``receptive_field_samples`` is 0)."""
    receptive_field = int(getattr(model, "receptive_field_samples", 0) or 0)
    skip = max(receptive_field - 1 - int(getattr(model, "lookahead_samples", 0) or 0), 0)
    if skip >= chunk_samples:
        raise ParameterError(
            f"the model's receptive field ({receptive_field} samples) does not fit in chunks of "
            f"{chunk_samples}; use a larger chunk_samples"
        )
    return skip


def _saved_settings(checkpoint_path: Path) -> dict[str, Any]:
    """The run settings stored in a checkpoint (empty for a checkpoint without them)."""
    saved = torch.load(checkpoint_path, map_location="cpu", weights_only=False).get("dynamatch", {})
    return dict(saved.get("settings", {}))


def _check_resumable(checkpoint_path: Path, settings: RunSettings) -> None:
    """:class:`ParameterError` when ``checkpoint_path`` was written by a run with other settings (named as the
    options that set them: ``batch size 2 → 4``)."""
    saved = _saved_settings(checkpoint_path)
    current = asdict(settings)
    changed = [
        f"{k.replace('_', ' ')} {saved.get(k)!r} → {v!r}"
        for k, v in current.items()
        if k not in RunSettings.RESUMABLE_CHANGES and saved.get(k) != v
    ]
    if changed:
        raise ParameterError(
            f"{checkpoint_path}: the run there used other settings ({', '.join(changed)}); give the same settings to "
            "continue it (only the number of steps or epochs may change), start over (dynamatch train --restart) or "
            "use another output folder"
        )


class _ValidateAtTheLastStep(pl.Callback):
    """Stop at ``max_steps`` through ``should_stop``, so that Lightning validates and checkpoints there even in the
    middle of a validation interval (an extended run's last steps were otherwise trained and thrown away)."""

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps:
            trainer.should_stop = True


class _DropLightningTip(logging.Filter):
    """Lightning's advertisement for its cloud logger is not a message about this run, and its "stopped:
    max_steps=N reached" counts optimiser steps (N = steps × truncated-BPTT segments): the caller reports steps."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "litlogger" not in message and not message.startswith("`Trainer.fit` stopped: `max_steps=")


def _quiet_lightning() -> None:
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropLightningTip) for f in log.filters):
        log.addFilter(_DropLightningTip())


class _StepsProgressBar(pl.callbacks.RichProgressBar):
    """Lightning's bar, labelled in steps: a Lightning "epoch" here is one validation interval, and the run is
    endless in epochs (``max_epochs=-1`` printed as "Epoch 0/-2")."""

    def __init__(self, settings: RunSettings) -> None:
        super().__init__()
        self.val_every, self.max_steps = settings.val_every, settings.max_steps

    def _get_train_description(self, current_epoch: int) -> str:
        first = current_epoch * self.val_every
        return f"steps {first + 1}–{min(first + self.val_every, self.max_steps)} of {self.max_steps}"


def _save(model: nn.Module, path: Path, metadata: dict[str, Any]) -> Path:
    """``save_model`` with a ``"training"`` entry (run settings, steps, losses) in the JSON document, in one
    atomic write."""
    from .registry import save_model

    return save_model(model, path, extra={"training": metadata})
