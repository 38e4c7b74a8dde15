"""Audio in and out, dry/wet alignment, the capture stimulus, dataset readers and generators."""

from .alignment import Alignment, align_pair, apply_alignment, estimate_alignment, fractional_delay
from .audio import AudioPair, check_signal, clipped_fraction, load_pair, read_audio, resample_audio, write_audio
from .captureset import CaptureSetDataset
from .datasets import PairDataset, PairInfo, open_dataset
from .generate import generate_capture_set, generate_signaltrain_like
from .signaltrain import SignalTrainDataset
from .stimulus import Segment, capture_stimulus, programme_like, stimulus_segments

__all__ = [
    "Alignment",
    "AudioPair",
    "CaptureSetDataset",
    "PairDataset",
    "PairInfo",
    "Segment",
    "SignalTrainDataset",
    "align_pair",
    "apply_alignment",
    "capture_stimulus",
    "check_signal",
    "clipped_fraction",
    "estimate_alignment",
    "fractional_delay",
    "generate_capture_set",
    "generate_signaltrain_like",
    "load_pair",
    "open_dataset",
    "programme_like",
    "read_audio",
    "resample_audio",
    "stimulus_segments",
    "write_audio",
]
