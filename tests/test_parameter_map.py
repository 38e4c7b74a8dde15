import csv
import json

import numpy as np
import pytest

from dynamatch.errors import ModelFileError, ParameterError
from dynamatch.maps import ParameterMap
from dynamatch.models.compressor import PARAMETER_NAMES, Compressor
from dynamatch.models.model_file import load_compressor, save_compressor
from dynamatch.model_loading import load_processor


def small_map(interpolation="linear"):
    pr = [40.0, 60.0, 80.0, 100.0, 50.0]
    return ParameterMap(
        {"compress": {
            "peak_reduction": pr,
            "threshold_db": [-10.0, -20.0, -30.0, -40.0, -14.0],
            "ratio": [2.0, 3.0, 4.0, 4.5, 2.8],
            "attack_ms": [30.0, 10.0, 3.0, 1.0, 15.0],
            "release_ms": [400.0, 300.0, 250.0, 240.0, 350.0],
            "makeup_db": [0.5, 0.4, 0.3, 0.2, 0.45],
        }},
        interpolation,
    )


def test_preset_matches_published_tables(anchors_dir):
    preset = ParameterMap.preset("la2a")
    for mode, name in (("compress", "comp.csv"), ("limit", "limit.csv")):
        rows = list(csv.reader(open(anchors_dir / name)))[2:]
        for row in rows:
            expected = [float(v) for v in row[4:9]]
            np.testing.assert_allclose(preset.parameters(float(row[0]), mode), expected, rtol=1e-12)


def test_linear_interpolation_is_piecewise_linear_and_clamped():
    m = small_map()
    # knots are sorted on construction: 40, 50, 60, 80, 100
    assert np.allclose(m.knots(), [40, 50, 60, 80, 100])
    # halfway between 60 and 80: the mean of the two knots, parameter by parameter
    expected = [(-20 - 30) / 2, 3.5, 6.5, 275.0, 0.35]
    np.testing.assert_allclose(m.parameters(70.0), expected)
    np.testing.assert_allclose(m.parameters(0.0), m.parameters(40.0))
    np.testing.assert_allclose(m.parameters(130.0), m.parameters(100.0))
    assert isinstance(m.compressor(70.0), Compressor)


def test_spline_passes_through_knots_and_segments_reproduce_it():
    m = small_map("spline")
    for i, pr in enumerate(m.knots()):
        np.testing.assert_allclose(m.parameters(pr), [m.modes["compress"][n][i] for n in PARAMETER_NAMES], atol=1e-12)
    segments = m.spline_segments("compress")
    x = segments["breakpoints"]
    for value in np.linspace(40, 100, 37):
        k = min(np.searchsorted(x, value, side="right") - 1, len(x) - 2)
        d = value - x[k]
        by_hand = [np.polyval(segments[n][:, k], d) for n in PARAMETER_NAMES]
        np.testing.assert_allclose(by_hand, m.parameters(value), rtol=1e-12, atol=1e-12)
    # the spline is not the linear interpolant between knots
    assert not np.allclose(m.parameters(70.0), small_map().parameters(70.0))


def test_linear_segments_reproduce_linear_map():
    m = small_map()
    segments = m.spline_segments("compress")
    x = segments["breakpoints"]
    for value in (41.0, 55.5, 99.0):
        k = np.searchsorted(x, value, side="right") - 1
        d = value - x[k]
        np.testing.assert_allclose([np.polyval(segments[n][:, k], d) for n in PARAMETER_NAMES], m.parameters(value))


def test_map_round_trip_and_errors(tmp_path):
    m = small_map("spline")
    path = m.save(tmp_path / "map.json")
    loaded = ParameterMap.load(path)
    assert loaded.interpolation == "spline"
    np.testing.assert_allclose(loaded.parameters(63.0), m.parameters(63.0))
    document = json.loads(path.read_text())
    document["format_version"] = 99
    (tmp_path / "future.json").write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match="format_version 99"):
        ParameterMap.load(tmp_path / "future.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="broken.json"):
        ParameterMap.load(tmp_path / "broken.json")
    with pytest.raises(ParameterError, match="mode 'limit'"):
        m.compressor(50, "limit")
    with pytest.raises(ParameterError, match="unknown preset"):
        ParameterMap.preset("fairchild")


def test_compressor_file_round_trip_and_loader(tmp_path):
    comp = Compressor(-22.5, 3.3, 4.4, 123.0, 1.5)
    path = save_compressor(tmp_path / "m.json", comp, sample_rate=48000, fit={"esr": 0.01})
    assert load_compressor(path) == comp
    assert load_processor(path) == comp
    map_path = small_map().save(tmp_path / "map.json")
    assert load_processor(map_path, peak_reduction=70.0) == small_map().compressor(70.0)
    assert load_processor("preset:la2a", peak_reduction=65, mode="limit") == ParameterMap.preset("la2a").compressor(65, "limit")
    with pytest.raises(ModelFileError, match="no such model file"):
        load_compressor(tmp_path / "missing.json")


def test_installed_preset_replaces_the_shipped_one(tmp_path, monkeypatch):
    from dynamatch.maps.parameter_map import available_presets, install_preset

    monkeypatch.setenv("DYNAMATCH_PRESETS_DIR", str(tmp_path))
    shipped = ParameterMap.preset("la2a")
    install_preset(small_map(), "la2a")
    np.testing.assert_allclose(ParameterMap.preset("la2a").parameters(70.0), small_map().parameters(70.0))
    install_preset(small_map("spline"), "my-comp")
    assert {"la2a", "my-comp"} <= set(available_presets())
    (tmp_path / "la2a.json").unlink()
    np.testing.assert_allclose(ParameterMap.preset("la2a").parameters(70.0), shipped.parameters(70.0))


def test_a_three_knot_spline_is_scipys_not_a_knot_spline_not_the_linear_interpolant():
    """With three knots the spline map gave ESR identical to linear (it fell back to linear below four)."""
    from scipy.interpolate import CubicSpline

    table = {"peak_reduction": [40.0, 70.0, 100.0], "threshold_db": [-10.0, -30.0, -35.0], "ratio": [2.0, 4.0, 4.5],
             "attack_ms": [30.0, 5.0, 1.0], "release_ms": [400.0, 250.0, 240.0], "makeup_db": [0.5, 0.1, 0.3]}
    spline, linear = (ParameterMap({"compress": table}, kind) for kind in ("spline", "linear"))
    points = np.array([45.0, 55.0, 85.0, 95.0])
    expected = np.stack([CubicSpline(table["peak_reduction"], table[n], bc_type="not-a-knot")(points)
                         for n in PARAMETER_NAMES], axis=-1)
    np.testing.assert_allclose(spline.parameters(points), expected, rtol=1e-12)
    assert np.abs(spline.parameters(points) - linear.parameters(points)).max() > 1.0
