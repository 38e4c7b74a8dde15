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


def test_every_default_list_of_modes_is_modes():
    """MODES was defined four times and hard-coded as ("compress", "limit") in further signatures."""
    import inspect

    from dynamatch.data.generate import generate_signaltrain_like
    from dynamatch.maps.evaluate import held_out_protocol, paper_protocol
    from dynamatch.maps.fit_map import fit_map
    from dynamatch.models.parameters import MODES

    for function in (generate_signaltrain_like, fit_map, paper_protocol, held_out_protocol):
        assert inspect.signature(function).parameters["modes"].default is MODES, function.__name__
