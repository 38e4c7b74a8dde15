"""Named model presets, construction from a config, and the model file (JSON + safetensors).

Presets follow the papers: micro-TCN Table 1 (Steinmetz & Reiss 2022) —

=========== ====== ====== ======== ===== ========== =============
preset      K      blocks growth   C     params     receptive field
=========== ====== ====== ======== ===== ========== =============
tcn-100-*   5      4      10       32    ≈ 26 k     4 445 (101 ms)
tcn-300-*   13     4      10       32    ≈ 51 k     13 333 (302 ms)
tcn-1000-*  5      5      10       32    ≈ 33 k     44 445 (1008 ms)
tcn-324-n   15     10     2        32    ≈ 162 k    14 323 (325 ms)
=========== ====== ====== ======== ===== ========== =============

plus LSTM-32, S4 DRC ``s4-c32-f4`` (32 channels, 4 blocks, 4 modes; Yin et al. 2024) and the
4A-2A-G residual GRU ``gru-8`` (conditioned).

Model file: ``NAME.json`` = ``{"format": "dynamatch.neural", "format_version": 1, "config": {...},
"weights": "NAME.safetensors", "weights_sha256": ...}`` with the tensors beside it (never pickle).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from torch import nn

from ..documents import FILE_MODE, NEURAL, read_document, write_document
from ..errors import ModelFileError, ParameterError
from .gru import GRUStage
from .lstm import LSTMModel
from .s4 import S4Model
from .tcn import TCN

FORMAT = NEURAL.format
FORMAT_VERSION = NEURAL.version

ARCHITECTURES: dict[str, type[nn.Module]] = {"tcn": TCN, "lstm": LSTMModel, "s4": S4Model, "gru": GRUStage}


def _tcn(kernel_size: int, blocks: int, dilation_growth: int, causal: bool) -> dict:
    return {
        "architecture": "tcn",
        "kernel_size": kernel_size,
        "blocks": blocks,
        "dilation_growth": dilation_growth,
        "channels": 32,
        "causal": causal,
    }


MODEL_PRESETS: dict[str, dict] = {
    "tcn-100-c": _tcn(5, 4, 10, True),
    "tcn-300-c": _tcn(13, 4, 10, True),
    "tcn-1000-c": _tcn(5, 5, 10, True),
    "tcn-100-n": _tcn(5, 4, 10, False),
    "tcn-300-n": _tcn(13, 4, 10, False),
    "tcn-1000-n": _tcn(5, 5, 10, False),
    "tcn-324-n": _tcn(15, 10, 2, False),
    "lstm-32": {"architecture": "lstm", "hidden_size": 32},
    "s4-c32-f4": {"architecture": "s4", "channels": 32, "blocks": 4, "modes": 4},
    "gru-8": {"architecture": "gru", "hidden_size": 8, "conditioned": True},
}


def model_from_config(config: dict) -> nn.Module:
    """Build a fresh (untrained) model from a ``model.config`` dict."""
    settings = dict(config)
    architecture = settings.pop("architecture", None)
    if architecture not in ARCHITECTURES:
        raise ParameterError(f"unknown architecture {architecture!r}; expected one of {sorted(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[architecture](**settings)
    except TypeError as error:
        raise ParameterError(f"invalid settings for a {architecture} model: {error}") from None


def build_model(name: str, **overrides) -> nn.Module:
    """A preset by name, with any of its settings overridden (e.g. ``channels=8`` for tests)."""
    if name not in MODEL_PRESETS:
        raise ParameterError(f"unknown model {name!r}; choose one of {', '.join(MODEL_PRESETS)}")
    preset = MODEL_PRESETS[name]
    unknown = sorted(set(overrides) - set(preset) | ({"architecture"} & set(overrides)))
    if unknown:
        settable = sorted(set(preset) - {"architecture"})
        raise ParameterError(f"{name} has no setting {', '.join(unknown)}; settable: {', '.join(settable)}")
    return model_from_config({**preset, **overrides})


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_model(model: nn.Module, path: str | Path, *, extra: dict | None = None) -> Path:
    """Write ``path`` (.json: format, version, config, plus ``extra`` entries such as ``training``) and the
    weights beside it (.safetensors); both atomically (:mod:`dynamatch.documents`)."""
    import os
    import tempfile

    from safetensors.torch import save_file

    path = Path(path).with_suffix(".json")
    weights_path = path.with_suffix(".safetensors")
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{weights_path.name}.", suffix=".tmp", dir=weights_path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp)
        digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, weights_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    document = {"config": model.config, "weights": weights_path.name, "weights_sha256": digest, **(extra or {})}
    return write_document(path, NEURAL, document)


def load_model(path: str | Path) -> nn.Module:
    """Rebuild a model written by :func:`save_model` (in eval mode)."""
    from safetensors.torch import load_file

    path = Path(path)
    document = read_document(path, NEURAL, what="neural model file")
    weights_path = path.parent / str(document.get("weights", ""))
    if not weights_path.is_file():
        raise ModelFileError(f"{path}: weights file {weights_path} is missing; keep it beside the .json")
    if hashlib.sha256(weights_path.read_bytes()).hexdigest() != document.get("weights_sha256"):
        raise ModelFileError(f"{weights_path}: checksum does not match {path.name}; the weights were changed or truncated")
    model = model_from_config(document.get("config") or {})
    try:
        model.load_state_dict(load_file(str(weights_path)))
    except RuntimeError as error:
        first_line = str(error).splitlines()[0] if str(error) else "mismatch"
        raise ModelFileError(f"{weights_path}: weights do not fit the config ({first_line})") from None
    return model.eval()
