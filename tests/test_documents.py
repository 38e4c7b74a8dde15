"""Versioned JSON documents: one id scheme, version checks, atomic writes with ordinary file modes."""

import json
import os
import stat

import numpy as np
import pytest

from dynamatch import Compressor
from dynamatch.documents import (
    COMPRESSOR,
    FIT_MAP_PROGRESS,
    NEURAL,
    PARAMETER_MAP,
    document_format,
    read_document,
    write_document,
)
from dynamatch.errors import DatasetError, ModelFileError
from dynamatch.maps import ParameterMap
from dynamatch.maps.fit_map import progress_path, read_progress
from dynamatch.models.model_file import load_compressor, save_compressor


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_one_id_scheme_for_every_artefact():
    for kind in (COMPRESSOR, PARAMETER_MAP, FIT_MAP_PROGRESS, NEURAL):
        assert kind.format.startswith("dynamatch.") and "-" not in kind.format, kind.format
        assert isinstance(kind.version, int) and kind.version >= 1


def test_write_then_read_round_trip_with_format_and_version(tmp_path):
    path = write_document(tmp_path / "sub" / "x.json", FIT_MAP_PROGRESS, {"settings": {}, "fits": []})
    document = json.loads(path.read_text())
    assert document["format"] == FIT_MAP_PROGRESS.format
    assert document["format_version"] == FIT_MAP_PROGRESS.version
    assert read_document(path, FIT_MAP_PROGRESS)["fits"] == []
    assert document_format(path) == FIT_MAP_PROGRESS.format
    assert document_format(tmp_path / "missing.json") is None


def test_model_and_map_files_are_0644_like_every_other_output(tmp_path):
    old = os.umask(0o022)
    try:
        model = save_compressor(tmp_path / "m.json", Compressor())
        map_path = ParameterMap.preset("la2a").save(tmp_path / "map.json")
    finally:
        os.umask(old)
    assert mode_of(model) == 0o644
    assert mode_of(map_path) == 0o644


def test_write_is_atomic_and_leaves_no_temporary_on_failure(tmp_path):
    path = tmp_path / "m.json"
    save_compressor(path, Compressor(threshold_db=-30))
    with pytest.raises(ValueError):
        write_document(path, COMPRESSOR, {"parameters": float("nan")})  # not valid JSON: nothing replaced
    assert load_compressor(path).threshold_db == -30
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_newer_version_is_a_clear_one_line_error(tmp_path):
    path = write_document(tmp_path / "m.json", COMPRESSOR, {"model": "ff5", "parameters": Compressor().to_dict()})
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "format_version": COMPRESSOR.version + 1}))
    with pytest.raises(ModelFileError, match="newer dynamatch") as caught:
        load_compressor(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text", ["[]", "3", '"x"', "{", ""])
def test_not_a_document_is_a_clear_error(tmp_path, text):
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(ModelFileError, match="m.json"):
        read_document(path, COMPRESSOR)


def test_other_format_is_named(tmp_path):
    path = ParameterMap.preset("la2a").save(tmp_path / "map.json")
    with pytest.raises(ModelFileError, match="dynamatch.parameter_map"):
        load_compressor(path)


@pytest.mark.parametrize("document", [
    [],
    {"fits": [{"mode": "compress", "peak_reduction": 50, "parameters": {"threshold_db": -20}, "esr": 1,
               "iterations": 1, "success": True, "elapsed_seconds": 1, "files": []}]},
])
def test_malformed_fit_map_progress_is_a_dataset_error(tmp_path, document):
    """A progress file that is not a document (AttributeError before) or holds a fit lacking parameters
    (silently filled with defaults before) is refused with the fix."""
    key = {"model": "ff5"}
    if isinstance(document, dict):
        document = {"format": FIT_MAP_PROGRESS.format, "format_version": 1, "settings": key, **document}
    progress_path(tmp_path / "map.json").write_text(json.dumps(document))
    with pytest.raises(DatasetError, match="delete it"):
        read_progress(tmp_path / "map.json", key)


def test_progress_is_written_as_a_versioned_document(tmp_path):
    from dynamatch.maps.fit_map import write_progress

    path = write_progress(tmp_path / "map.json", {"model": "ff5"}, [])
    assert json.loads(path.read_text())["format_version"] == FIT_MAP_PROGRESS.version
    assert read_progress(tmp_path / "map.json", {"model": "ff5"}) == {}


def test_fit_map_over_fewer_modes_keeps_the_other_modes_progress(tmp_path, caplog):
    """`fit-map --modes compress` over a finished two-mode map threw the progress away and refitted."""
    from dynamatch.data.datasets import open_dataset
    from dynamatch.data.generate import generate_signaltrain_like
    from dynamatch.maps.fit_map import fit_map

    root = generate_signaltrain_like(tmp_path / "ds", duration_seconds=10.0, peak_reductions=[50.0])
    ds = open_dataset(root)
    output = tmp_path / "map.json"
    options = {"chain": [50.0], "max_seconds": 4.0, "max_iterations": 3}
    both = fit_map(ds, output, modes=["compress", "limit"], **options)
    refitted = []
    with caplog.at_level("WARNING", logger="dynamatch"):
        one = fit_map(ds, output, modes=["compress"], on_start=lambda *a: refitted.append(a), **options)
    assert refitted == [] and list(one.modes) == ["compress"]
    assert any("limit" in r.getMessage() and "progress" in r.getMessage() for r in caplog.records), caplog.text
    again = fit_map(ds, output, modes=["compress", "limit"], on_start=lambda *a: refitted.append(a), **options)
    assert refitted == []
    np.testing.assert_array_equal(again.modes["limit"]["threshold_db"], both.modes["limit"]["threshold_db"])
