"""Exports (TorchScript, ONNX) reproduce PyTorch; the real-time-factor harness is consistent."""

from __future__ import annotations

import csv
import importlib.util

import numpy as np
import pytest
from skips import require_module

torch = require_module("torch")

from dynamatch import Compressor  # noqa: E402
from dynamatch.errors import ExportError  # noqa: E402
from dynamatch.neural import build_model, export_onnx, export_torchscript, measure_rtf, rtf_table  # noqa: E402

TINY = {
    "tcn-300-c": {"channels": 4, "kernel_size": 3, "blocks": 3},
    "tcn-100-n": {"channels": 4, "kernel_size": 3, "blocks": 3},
    "lstm-32": {"hidden_size": 6},
    "s4-c32-f4": {"channels": 6, "blocks": 2},
    "gru-8": {},
}
COND = (1.0, 0.45)
HAS_ONNXRUNTIME = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def tiny_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name, **TINY[name])
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def reference(model, x: torch.Tensor, cond) -> np.ndarray:
    with torch.no_grad():
        return model(x, torch.tensor([list(c) for c in cond])).numpy()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", list(TINY))
def test_torchscript_matches_pytorch(name, tmp_path):
    model = tiny_model(name)
    path = export_torchscript(model, tmp_path / f"{name}.pt", COND)
    loaded = torch.jit.load(str(path))
    for samples in (1000, 777):  # lengths other than any example
        x = torch.randn(2, 1, samples) * 0.3
        with torch.jit.optimized_execution(False):  # the JIT's fusion passes take seconds per shape
            y = loaded(x).numpy()
        np.testing.assert_allclose(y, reference(model, x, [COND, COND]), atol=1e-5)
    assert model.training is False and all(p.requires_grad for p in model.parameters())  # caller's model untouched


@pytest.mark.skipif(not HAS_ONNXRUNTIME, reason="optional package: onnx/onnxruntime not installed (pip install 'dynamatch[nn]')")
@pytest.mark.parametrize("name", list(TINY))
def test_onnx_matches_pytorch(name, tmp_path):
    import onnx
    import onnxruntime

    model = tiny_model(name)
    fixed_length = name.startswith("s4")  # S4 graphs have a fixed length (see export_onnx)
    path = export_onnx(model, tmp_path / f"{name}.onnx", example_samples=1024)
    assert onnx.load(str(path)).opset_import[0].version >= 17
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    cond = [(1.0, 0.45), (0.0, 0.9)]
    for samples in (1024,) if fixed_length else (1024, 901):
        x = torch.randn(2, 1, samples) * 0.3
        (y,) = session.run(None, {"audio": x.numpy(), "cond": np.array(cond, dtype=np.float32)})
        np.testing.assert_allclose(y, reference(model, x, cond), atol=1e-5)


def test_onnx_refuses_old_opsets(tmp_path):
    with pytest.raises(ExportError, match="opset"):
        export_onnx(tiny_model("gru-8"), tmp_path / "g.onnx", opset=13)


class CountingProcessor:
    """Records every block it is given (checks the harness feeds consecutive frames)."""

    def __init__(self, log: list) -> None:
        self.log = log

    def process(self, block: np.ndarray) -> np.ndarray:
        self.log.append(block.copy())
        return block


def test_measure_rtf_feeds_consecutive_frames_and_reports_consistently():
    logs: list[list] = []

    def factory():
        logs.append([])
        return CountingProcessor(logs[-1])

    rows = measure_rtf(factory, name="identity", frame_sizes=(64, 1000), duration_seconds=0.05, sample_rate=8000, threads=1)
    assert [r.frame_samples for r in rows] == [64, 1000]
    for row, log in zip(rows, logs):
        assert row.frames == max(1, 400 // row.frame_samples) and len(log) == row.frames + 1  # + warm-up
        assert all(block.shape == (row.frame_samples,) for block in log)
        assert row.audio_seconds == pytest.approx(row.frames * row.frame_samples / 8000)
        assert row.rtf == pytest.approx(row.audio_seconds / row.wall_seconds)
    assert not np.array_equal(logs[0][1], logs[0][2])  # consecutive, not repeated


def test_rtf_table_writes_csv_and_plot(tmp_path):
    rows = rtf_table(
        ["gru-8"],
        compressor=Compressor(threshold_db=-20, ratio=4),
        frame_sizes=(256, 512),
        duration_seconds=0.02,
        threads=1,
        csv_path=tmp_path / "rtf.csv",
        plot_path=tmp_path / "rtf.png",
    )
    assert [(r.name, r.frame_samples) for r in rows] == [("4a2a", 256), ("4a2a", 512), ("gru-8", 256), ("gru-8", 512)]
    with open(tmp_path / "rtf.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [float(r["rtf"]) for r in table] == pytest.approx([r.rtf for r in rows])
    assert (tmp_path / "rtf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_exports_a_saved_model_to_onnx_and_torchscript(tmp_path):
    import onnxruntime
    from click.testing import CliRunner

    from dynamatch.cli import main
    from dynamatch.neural.registry import build_model, save_model

    torch.manual_seed(0)
    model = build_model("tcn-100-c").eval()
    path = save_model(model, tmp_path / "model.json")
    x = torch.randn(1, 1, 4096) * 0.3
    cond = torch.tensor([[1.0, 0.65]])
    with torch.no_grad():
        expected = model(x, cond).numpy()
    runner = CliRunner()
    result = runner.invoke(main, ["export", "neural", str(path), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    (onnx_out,) = session.run(None, {"audio": x.numpy(), "cond": cond.numpy()})
    np.testing.assert_allclose(onnx_out, expected, atol=1e-5)
    result = runner.invoke(main, ["export", "neural", str(path), "-o", str(tmp_path / "m.pt"), "--format", "torchscript",
                                  "--mode", "limit", "--peak-reduction", "65"])
    assert result.exit_code == 0, result.output
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    with torch.no_grad():
        np.testing.assert_allclose(scripted(x).numpy(), expected, atol=1e-5)


def test_cli_export_format_follows_the_extension(tmp_path):
    """`-o tcn.pt` wrote ONNX into the .pt file; the format follows the extension unless --format says
    otherwise, and a contradiction is one line; a run folder works as the model."""
    from click.testing import CliRunner

    from dynamatch.cli import main
    from dynamatch.neural.registry import build_model, save_model

    torch.manual_seed(0)
    save_model(build_model("gru-8", hidden_size=2).eval(), tmp_path / "run" / "model.json")
    runner = CliRunner()
    result = runner.invoke(main, ["export", "neural", str(tmp_path / "run"), "-o", str(tmp_path / "g.pt")])
    assert result.exit_code == 0, result.output
    torch.jit.load(str(tmp_path / "g.pt"))  # TorchScript, not ONNX
    result = runner.invoke(main, ["export", "neural", str(tmp_path / "run"), "-o", str(tmp_path / "g.pt"),
                                  "--format", "onnx"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and ".pt" in lines[0] and "onnx" in lines[0], result.output
