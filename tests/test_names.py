"""A name means one thing: shared constants are defined once and every module uses that definition."""

import importlib

import pytest
from skips import require_module


def test_modes_are_defined_once():
    from dynamatch.models.opto import MODES

    for module in ("dynamatch.data.datasets", "dynamatch.maps.parameter_map", "dynamatch.parsing"):
        assert importlib.import_module(module).MODES is MODES, module


def test_modes_of_the_neural_data_are_the_same():
    require_module("torch")
    from dynamatch.models.opto import MODES
    from dynamatch.neural import data

    assert data.MODES is MODES


def test_split_folders_map_one_way_in_one_place():
    from dynamatch.data import generate, signaltrain

    assert generate.SPLIT_FOLDERS is signaltrain.SPLIT_FOLDERS
    assert signaltrain.SPLIT_FOLDERS == {"train": "Train", "val": "Val", "test": "Test"}
    assert signaltrain.FOLDER_SPLITS == {"Train": "train", "Val": "val", "Test": "test"}


def test_default_chunk_samples_means_one_value():
    require_module("torch")
    from dynamatch.neural import data, hybrid

    assert getattr(hybrid, "DEFAULT_CHUNK_SAMPLES", data.DEFAULT_CHUNK_SAMPLES) == data.DEFAULT_CHUNK_SAMPLES
    assert hybrid.HYBRID_CHUNK_SAMPLES == 8 * hybrid.TBPTT_SAMPLES
