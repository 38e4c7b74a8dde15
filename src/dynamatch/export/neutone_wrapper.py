"""The neutone-sdk ``WaveformToWaveformBase`` around a core of :mod:`dynamatch.export.neutone_cores`.

Imports neutone_sdk at the top: import this module only from :func:`dynamatch.export.neutone.export_neutone`.
Neutone hands every parameter to the model as a value in [0, 1] (the buffer's mean); the wrapper maps
each to its range and into the core's control list, and passes the audio ``[channels, samples]`` through.
"""

from typing import Dict, List, Union

import torch
from neutone_sdk import ContinuousNeutoneParameter, NeutoneParameter, WaveformToWaveformBase
from torch import Tensor, nn


def wrapper_class(info: dict) -> type:
    """A ``WaveformToWaveformBase`` subclass describing ``info`` (texts, parameters, sample rates, delay)."""
    parameters = [dict(p) for p in info["parameters"]]

    class DynamatchNeutoneModel(WaveformToWaveformBase):
        """A dynamatch model as a Neutone FX model (mono, or stereo-linked for the grey-box compressors)."""

        # TorchScript reads only this class's annotations: repeat the SDK's
        neutone_parameters_metadata: Dict[str, Dict[str, Union[int, float, str, bool, List[str], List[int]]]]
        remapped_params: Dict[str, Tensor]
        neutone_parameter_names: List[str]
        native_sample_rates: List[int]
        authors: List[str]
        tags: List[str]
        parameter_low: List[float]
        parameter_high: List[float]
        parameter_slots: List[int]
        base_controls: List[float]

        def __init__(self, core: nn.Module) -> None:
            # the SDK's constructor already asks for the metadata: plain attributes first
            self.model_name_text = str(info["name"])
            self.short_description_text = str(info["short_description"])
            self.long_description_text = str(info["long_description"])
            self.technical_description_text = str(info["technical_description"])
            self.version_text = str(info["version"])
            self.citation_text = str(info["citation"])
            self.authors = [str(a) for a in info["authors"]]
            self.tags = [str(t) for t in info["tags"]]
            self.native_sample_rates = [int(r) for r in info["native_sample_rates"]]
            self.parameter_low = [float(p["min_value"]) for p in parameters]
            self.parameter_high = [float(p["max_value"]) for p in parameters]
            self.parameter_slots = [int(p["slot"]) for p in parameters]
            self.base_controls = [float(v) for v in info["base_controls"]]
            self.delay_samples = int(info.get("delay_samples", 0))
            self.mono = not bool(info.get("stereo", False))
            super().__init__(core)

        def get_model_name(self) -> str:
            return self.model_name_text

        def get_model_authors(self) -> List[str]:
            return self.authors

        def get_model_short_description(self) -> str:
            return self.short_description_text

        def get_model_long_description(self) -> str:
            return self.long_description_text

        def get_technical_description(self) -> str:
            return self.technical_description_text

        def get_technical_links(self) -> Dict[str, str]:
            return {}  # the SDK checks every link over the network; an export must work offline

        def get_tags(self) -> List[str]:
            return self.tags

        def get_model_version(self) -> str:
            return self.version_text

        def is_experimental(self) -> bool:
            return False

        def get_citation(self) -> str:
            return self.citation_text

        def get_neutone_parameters(self) -> List[NeutoneParameter]:
            return [ContinuousNeutoneParameter(p["name"], p["description"], float(p["default"]),
                                               float(p["min_value"]), float(p["max_value"])) for p in parameters]

        @torch.jit.export
        def is_input_mono(self) -> bool:
            return self.mono

        @torch.jit.export
        def is_output_mono(self) -> bool:
            return self.mono

        @torch.jit.export
        def get_native_sample_rates(self) -> List[int]:
            return self.native_sample_rates

        @torch.jit.export
        def get_native_buffer_sizes(self) -> List[int]:
            return []  # any block size: the cores carry their state across blocks

        @torch.jit.export
        def calc_model_delay_samples(self) -> int:
            return self.delay_samples

        def set_model_sample_rate_and_buffer_size(self, sample_rate: int, n_samples: int) -> bool:
            self.model.set_sample_rate(float(sample_rate))
            return True

        def reset_model(self) -> bool:
            self.model.reset()
            return True

        def do_forward_pass(self, x: Tensor, params: Dict[str, Tensor]) -> Tensor:
            controls = [v for v in self.base_controls]
            for i in range(len(self.parameter_slots)):
                value = float(params[self.neutone_parameter_names[i]].item())
                low = self.parameter_low[i]
                controls[self.parameter_slots[i]] = low + value * (self.parameter_high[i] - low)
            return self.model(x, controls)

    return DynamatchNeutoneModel
