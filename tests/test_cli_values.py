"""Malformed option values (--chain, --frames, --modes, …) are one line and exit status 2, never a traceback;
library misuse raises dynamatch errors that derive from the builtin they refine."""

import pytest
from skips import require_module
from click.testing import CliRunner

from dynamatch.cli import main
from dynamatch.errors import DynamatchError, ParameterError
from dynamatch.parsing import parse_chain, parse_frames, parse_modes


def one_line_error(result, *words):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "error" in lines[0].lower(), result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from dynamatch.data.generate import generate_signaltrain_like

    return generate_signaltrain_like(tmp_path_factory.mktemp("ds"), duration_seconds=10.0, peak_reductions=[50.0],
                                     modes=("compress",))


def test_parse_chain():
    assert parse_chain("100:90:5") == [100.0, 95.0, 90.0]
    assert parse_chain("40:50:5") == [40.0, 45.0, 50.0]
    assert parse_chain("100, 90,80") == [100.0, 90.0, 80.0]
    for bad in ("abc", "1:2", "1:2:3:4", "100:40:0", "", "5,x"):
        with pytest.raises(ParameterError, match="chain"):
            parse_chain(bad)


def test_parse_frames_and_modes():
    assert parse_frames("all", (32, 64)) == (32, 64)
    assert parse_frames("32, 64", (1,)) == (32, 64)
    for bad in ("x", "0", "-32", "", "3.5"):
        with pytest.raises(ParameterError, match="frame"):
            parse_frames(bad, (32,))
    assert parse_modes("compress, limit") == ["compress", "limit"]
    for bad in ("squash", ""):
        with pytest.raises(ParameterError, match="mode"):
            parse_modes(bad)


@pytest.mark.parametrize("chain", ["abc", "1:2", "100:40:0"])
def test_bad_chain_is_one_line(dataset, tmp_path, chain):
    one_line_error(CliRunner().invoke(main, ["fit-map", str(dataset), "-o", str(tmp_path / "m.json"), "--chain", chain]),
                   "--chain")
    one_line_error(CliRunner().invoke(main, ["generate-dataset", str(tmp_path / "g"), "--chain", chain]), "--chain")


def test_bad_frames_is_one_line(tmp_path):
    one_line_error(CliRunner().invoke(main, ["bench", "rtf", "--frames", "x", "-o", str(tmp_path)]), "--frames")


def test_bad_modes_is_one_line(dataset, tmp_path):
    one_line_error(CliRunner().invoke(main, ["evaluate", str(dataset), "--modes", "squash", "-o", str(tmp_path)]),
                   "--modes")


def test_train_hybrid_with_a_loss_is_a_dynamatch_error(tmp_path):
    require_module("torch")
    from dynamatch.maps import ParameterMap
    from dynamatch.neural.hybrid import train_hybrid

    with pytest.raises(DynamatchError, match="loss") as caught:
        train_hybrid(ParameterMap.preset("la2a"), tmp_path, tmp_path / "out", loss="mae+stft")
    assert isinstance(caught.value, TypeError)
