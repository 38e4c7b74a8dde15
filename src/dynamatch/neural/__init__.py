"""Neural compressor models (optional extra; imports torch).

Every model is a ``torch.nn.Module`` with ``forward(x [batch, 1, samples], cond [batch, 2])``
where ``cond = [limit ∈ {0, 1}, peak_reduction / 100]``, and attributes ``causal``,
``receptive_field_samples`` (0 for recurrent models, whose memory is unbounded) and ``config``
(JSON-able; :func:`model_from_config` rebuilds it).  TCNs also have ``lookahead_samples`` (future
samples each output sees; 0 when causal).  Streaming: :class:`StreamingProcessor`; export:
:func:`export_torchscript`, :func:`export_onnx`; speed: :func:`rtf_table`.
"""

from .conditioning import ConditioningMLP, FiLM
from .export import export_onnx, export_torchscript
from .gru import GRUStage, gru_weights_dict
from .lstm import LSTMModel
from .registry import MODEL_PRESETS, build_model, count_parameters, load_model, model_from_config, save_model
from .rtf import RTFMeasurement, measure_rtf, rtf_table
from .s4 import DiagonalSSM, S4Model
from .streaming import StreamingProcessor
from .tcn import TCN

__all__ = [
    "MODEL_PRESETS",
    "TCN",
    "ConditioningMLP",
    "DiagonalSSM",
    "FiLM",
    "GRUStage",
    "LSTMModel",
    "RTFMeasurement",
    "S4Model",
    "StreamingProcessor",
    "build_model",
    "count_parameters",
    "export_onnx",
    "export_torchscript",
    "gru_weights_dict",
    "load_model",
    "measure_rtf",
    "model_from_config",
    "rtf_table",
    "save_model",
]
