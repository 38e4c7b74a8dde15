"""Export a trained model for hosts outside Python: TorchScript (controls fixed) and ONNX.

* :func:`export_torchscript` scripts the model with its controls baked in:
  ``module(x [batch, 1, samples]) -> [batch, 1, samples]``.
* :func:`export_onnx` writes an ONNX graph (opset ≥ 17) with inputs ``audio [batch, 1, samples]``
  and ``cond [batch, 2]`` and output ``output [batch, 1, samples]``; batch is dynamic, and so is
  samples except for S4 models: their FFT convolution has no TorchScript→ONNX mapping, so they go
  through the dynamo exporter (FFT → ONNX ``DFT``) with ``samples = example_samples`` fixed.  Keep that
  a power of two: onnxruntime computes other DFT sizes naively (slow, ~1e-4 error at 10 k samples).

Both run the whole-signal ``forward`` in eval mode (for streaming, run the graph on history + block).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import ExportError
from .conditioning import check_condition
from .s4 import S4Model

MIN_OPSET = 17
DEFAULT_OPSET = 18  # the dynamo exporter (S4) writes 18 and cannot down-convert Pad to 17


class FixedCondition(nn.Module):
    """A model with its controls ``(limit, peak_reduction/100)`` frozen into a buffer."""

    def __init__(self, model: nn.Module, cond: tuple[float, float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("cond", torch.tensor([check_condition(cond)], dtype=next(model.parameters()).dtype))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x, self.cond.expand(x.shape[0], 2))


def _frozen_copy(model: nn.Module) -> nn.Module:
    clone = copy.deepcopy(model).eval()
    for parameter in clone.parameters():
        parameter.requires_grad_(False)
    return clone


def export_torchscript(model: nn.Module, path: str | Path, cond: tuple[float, float]) -> Path:
    """Script ``model`` (eval mode) with ``cond`` fixed and save it; load with ``torch.jit.load``."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 steers to torch.export
            scripted = torch.jit.script(FixedCondition(_frozen_copy(model), cond))
        scripted.save(str(path))
    except (RuntimeError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"{path}: TorchScript export failed ({first_line})") from None
    return path


def export_onnx(
    model: nn.Module, path: str | Path, *, example_samples: int = 4096, opset: int = DEFAULT_OPSET
) -> Path:
    """Write an ONNX graph with inputs ``audio``, ``cond`` and output ``output`` (dynamic lengths)."""
    if opset < MIN_OPSET:
        raise ExportError(f"{path}: opset {opset} is too old; use opset >= {MIN_OPSET}")
    path = Path(path)
    frozen = _frozen_copy(model)
    dtype = next(frozen.parameters()).dtype
    audio = torch.randn(2, 1, example_samples, dtype=dtype) * 0.1  # batch 2: torch.export specialises 1
    cond = torch.tensor([[0.0, 0.5], [1.0, 0.8]], dtype=dtype)
    names = {"input_names": ["audio", "cond"], "output_names": ["output"], "opset_version": opset}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(frozen, S4Model):
                batch = torch.export.Dim("batch")
                shapes = {"x": {0: batch}, "cond": {0: batch}}
                names["opset_version"] = max(opset, DEFAULT_OPSET)
                torch.onnx.export(frozen, (audio, cond), str(path), dynamic_shapes=shapes, dynamo=True, **names)
            else:
                axes = {"audio": {0: "batch", 2: "samples"}, "cond": {0: "batch"}, "output": {0: "batch", 2: "samples"}}
                torch.onnx.export(frozen, (audio, cond), str(path), dynamic_axes=axes, dynamo=False, **names)
    except Exception as error:  # the exporters raise many unrelated types
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"{path}: ONNX export failed ({first_line})") from None
    return path


#: Export formats by file extension.
EXTENSIONS = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".ts": "torchscript"}


def export_format_for(path: str | Path, requested: str | None = None) -> str:
    """The export format of ``path``: ``requested``, else the one its extension names (.onnx, .pt); a
    contradiction (``model.pt`` as ONNX) or an unknown extension without ``requested`` is an ExportError."""
    suffix = Path(path).suffix.lower()
    implied = EXTENSIONS.get(suffix)
    if requested is None:
        if implied is None:
            raise ExportError(f"{path}: cannot tell the format from {suffix or 'no extension'!r}; "
                              "name it .onnx or .pt, or give --format onnx|torchscript")
        return implied
    if implied is not None and implied != requested:
        raise ExportError(f"{path}: a {suffix} file holds {implied}, not {requested}; "
                          f"name it {'.onnx' if requested == 'onnx' else '.pt'} or drop --format")
    return requested
