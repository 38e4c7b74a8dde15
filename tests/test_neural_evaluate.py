"""`dynamatch evaluate` on neural models: block-wise scoring equals a whole-signal forward pass."""

import json

import numpy as np
import pytest
from skips import require_module

torch = require_module("torch")

from click.testing import CliRunner  # noqa: E402

from dynamatch.cli import main  # noqa: E402
from dynamatch.data.datasets import open_dataset  # noqa: E402
from dynamatch.data.generate import generate_signaltrain_like  # noqa: E402
from dynamatch.maps import ParameterMap  # noqa: E402
from dynamatch.metrics import esr  # noqa: E402
from dynamatch.neural.evaluate import score_neural  # noqa: E402
from dynamatch.neural.registry import build_model, save_model  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = generate_signaltrain_like(tmp_path_factory.mktemp("ds"), duration_seconds=10.0, peak_reductions=[60, 80],
                                     modes=("compress",))
    return open_dataset(root)


def direct(model, x, mode, peak_reduction):
    cond = torch.tensor([[1.0 if mode == "limit" else 0.0, peak_reduction / 100.0]], dtype=torch.float32)
    with torch.no_grad():
        return model(torch.from_numpy(x.astype(np.float32)).view(1, 1, -1), cond)[0, 0].double().numpy()


@pytest.mark.parametrize("name", ["lstm-32", "tcn-100-n"])
def test_black_box_scores_match_whole_signal_forward(dataset, tmp_path, name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    path = save_model(model, tmp_path / "model.json")
    result = CliRunner().invoke(main, ["evaluate", str(dataset.root), "--model", str(path), "-o", str(tmp_path / "eval"),
                                       "--split", "train", "--metrics", "esr,mae"])
    assert result.exit_code == 0, result.output
    rows = score_neural(path, dataset, split="train", metrics=("esr",))
    for row in rows:
        pair = dataset.pairs(split="train", peak_reduction=row["peak_reduction"])[0]
        x, y = dataset.read(pair)
        assert row["esr"] == pytest.approx(esr(direct(model, x, pair.mode, pair.peak_reduction), y), rel=1e-4)
    assert (tmp_path / "eval" / "scores.csv").read_text().count("\n") == len(rows) + 1


def test_hybrid_runs_the_stored_map_first(dataset, tmp_path):
    torch.manual_seed(1)
    model = build_model("gru-8").eval()
    path = save_model(model, tmp_path / "model.json")
    parameter_map = ParameterMap.preset("la2a")
    document = json.loads(path.read_text())
    document["training"] = {"hybrid": {"parameter_map": parameter_map.to_document(), "makeup_db": 0.0}}
    path.write_text(json.dumps(document))
    row = score_neural(path, dataset, split="train", metrics=("esr",))[0]
    pair = dataset.pairs(split="train", peak_reduction=row["peak_reduction"])[0]
    x, y = dataset.read(pair)
    compressed = parameter_map.compressor(pair.peak_reduction, pair.mode).with_params(makeup_db=0.0).process(x, dataset.sample_rate)
    assert row["esr"] == pytest.approx(esr(direct(model, compressed, pair.mode, pair.peak_reduction), y), rel=1e-4)
