"""evaluate: --session, --metrics and --split reach every protocol (they were accepted and ignored)."""

import csv
import shutil

import pytest
from click.testing import CliRunner

from dynamatch.cli import main
from dynamatch.data.datasets import open_dataset
from dynamatch.data.generate import generate_signaltrain_like
from dynamatch.maps import ParameterMap
from dynamatch.maps.evaluate import held_out_protocol, paper_protocol, score_map


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory):
    """One compress setting (PR 50) recorded in session 3c, and a copy of its target named as session 2c."""
    root = tmp_path_factory.mktemp("sessions")
    path = generate_signaltrain_like(root, duration_seconds=10.0, peak_reductions=[50.0], modes=("compress",))
    for folder in ("Train", "Val", "Test"):
        for target in (path / folder).glob("target_*_3c_*.wav"):
            pair_id = target.name.split("_")[1]
            other = str(int(pair_id) + 500)
            shutil.copy(target, target.with_name(target.name.replace("_3c_", "_2c_").replace(pair_id, other, 1)))
            shutil.copy(path / folder / f"input_{pair_id}_.wav", path / folder / f"input_{other}_.wav")
    return path


def rows_of(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_score_map_filters_by_session(two_sessions):
    ds = open_dataset(two_sessions)
    every = score_map(ParameterMap.preset("la2a"), ds, split="train")
    only = score_map(ParameterMap.preset("la2a"), ds, split="train", session="3c")
    assert len(every) == 2 and len(only) == 1 and "3c" in only[0]["pair"]


def test_score_protocol_applies_session_and_metrics(two_sessions, tmp_path):
    result = run("evaluate", two_sessions, "--session", "3c", "--split", "train", "--metrics", "esr,mae",
                 "-o", tmp_path)
    assert result.exit_code == 0, result.output
    rows = rows_of(tmp_path / "scores.csv")
    assert [r["pair"] for r in rows] == [r["pair"] for r in rows if "3c" in r["pair"]] and len(rows) == 1
    assert "mae" in rows[0] and "delta_ldr_db" not in rows[0]


def test_held_out_protocol_scores_only_the_session_it_fitted(two_sessions, tmp_path):
    written = held_out_protocol(open_dataset(two_sessions), tmp_path, fit_seconds=5.0, session="3c",
                                modes=("compress",), metrics=("esr",))
    rows = rows_of(written["scores"])
    assert len(rows) == 2 and all("3c" in r["pair"] for r in rows), rows  # in-sample and held-out, 3c only


def test_paper_protocol_uses_the_metrics_asked_for(two_sessions, tmp_path):
    written = paper_protocol(open_dataset(two_sessions), tmp_path, modes=("compress",), session="3c",
                             metrics=("esr", "mae"))
    rows = rows_of(written["scores"])
    assert rows and all(r["mae"] for r in rows) and "delta_ldr_db" not in rows[0]


def test_paper_protocol_says_when_no_held_out_setting_was_fitted(two_sessions, tmp_path, caplog):
    """With no 45…95 settings the linear and spline columns were empty without a word."""
    with caplog.at_level("WARNING", logger="dynamatch"):
        written = paper_protocol(open_dataset(two_sessions), tmp_path, modes=("compress",), session="3c",
                                 metrics=("esr",))
    warnings = [r.getMessage() for r in caplog.records if "no held-out setting" in r.getMessage()]
    assert len(warnings) == 1 and "compress" in warnings[0] and "45, 55, …, 95" in warnings[0], caplog.text
    assert {r["method"] for r in rows_of(written["scores"])} == {"fit"}


def test_score_rows_name_their_split_and_the_plot_draws_one_curve_per_split(two_sessions, tmp_path, monkeypatch):
    """The score protocol mixed Train/Val/Test pairs into one curve with jumps and had no split column."""
    from dynamatch.data.datasets import open_dataset as reopen
    from dynamatch.report import plots

    ds = reopen(two_sessions)
    result = run("evaluate", two_sessions, "--metrics", "esr", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    rows = rows_of(tmp_path / "scores.csv")
    expected = {p.name: p.split for p in ds.pairs()}
    assert {r["pair"]: r["split"] for r in rows} == expected and len(set(expected.values())) == 3
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    plots.plot_scores(tmp_path / "p.png", score_map(ParameterMap.preset("la2a"), ds, label="la2a"), metrics=("esr",))
    labels = sorted(line.get_label() for line in figures[0].axes[0].lines)
    assert labels == ["la2a compress (test)", "la2a compress (train)", "la2a compress (val)"]
