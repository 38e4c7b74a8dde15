"""Regenerate docs/report.png: real runs (fit, fit-map, two evaluations), one report, headless Chromium.

    PYTHONPATH=src python scripts/report_screenshot.py [WORK_DIR]

The picture stacks two crops of one full-page screenshot: the comparison at the top of the page, and the
fitted map's evaluation (its scores, then gain-reduction traces and A/B players on an excerpt of a scored pair).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from click.testing import CliRunner
from PIL import Image

from dynamatch import Compressor
from dynamatch.cli import main
from dynamatch.data.generate import generate_signaltrain_like

WIDTH = 960
HEIGHT = 9000
ROOT = Path(__file__).resolve().parents[1]


def run(*args) -> None:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exit_code != 0:
        raise SystemExit(f"dynamatch {' '.join(map(str, args))}: {result.output}")


def make_runs(root: Path) -> list[str]:
    rng = np.random.default_rng(0)
    n = 8 * 44100
    x = (rng.standard_normal(n) * np.repeat(rng.uniform(0.01, 0.9, 40), -(-n // 40))[:n] * 0.3).clip(-0.95, 0.95)
    sf.write(root / "dry.wav", x, 44100, subtype="FLOAT")
    sf.write(root / "wet.wav", Compressor(-24, 5, 3, 150, 2).process(x, 44100), 44100, subtype="FLOAT")
    run("fit", root / "dry.wav", root / "wet.wav", "-o", root / "fit" / "model.json", "--max-iterations", 30)
    generate_signaltrain_like(root / "data", duration_seconds=10.0, peak_reductions=(50.0, 65.0, 80.0))
    run("fit-map", root / "data", "-o", root / "map.json", "--no-plot")
    for name, model in (("eval", root / "map.json"), ("eval-preset", "preset:la2a")):
        run("evaluate", root / "data", "--model", model, "-o", root / name)
    report = root / "report.html"
    run("report", root / "eval", root / "eval-preset", root / "map.json", root / "fit" / "model.json",
        "--label", "fitted map", "--label", "4A-2A preset", "-o", report,
        "--title", "dynamatch report: virtual LA-2A, fitted map vs the published preset")
    return [str(report)]


def screenshot(report: Path, work: Path) -> Image.Image:
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        raise SystemExit("headless Chromium is needed (apt install chromium)")
    shot = work / "full.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
                    f"--user-data-dir={work / 'profile'}", "--host-resolver-rules=MAP * ~NOTFOUND",
                    f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", report.as_uri()],
                   check=True, capture_output=True, timeout=300)
    return Image.open(shot).convert("RGB")


def rows_of(image: Image.Image, marker_rgb: tuple[int, int, int]) -> list[int]:
    """Rows where the accent-coloured h2 underline (2 px, --accent) runs across the page."""
    pixels = np.asarray(image).astype(int)
    hits = np.all(np.abs(pixels - np.array(marker_rgb)) < 12, axis=2).sum(axis=1)
    return [int(y) for y in np.flatnonzero(hits > 0.8 * (WIDTH - 64))]


def main_(work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    report = Path(make_runs(work)[0])
    text = report.read_text()
    assert re.search(r"fit history of model\.json", text) and "gain reduction on the excerpts" in text
    image = screenshot(report, work)
    lines = rows_of(image, (0x1F, 0x5F, 0xA8))
    starts = [y for i, y in enumerate(lines) if i == 0 or y - lines[i - 1] > 3]  # one per h2
    # h2 order (one fitted model: no parameter comparison): comparison, run: fitted map, run: 4A-2A preset, …
    top = image.crop((0, 0, WIDTH, starts[0] + 520))
    eval_section = image.crop((0, starts[1] - 40, WIDTH, min(starts[2] - 40, starts[1] + 1560)))
    pieces = [top, eval_section]
    canvas = Image.new("RGB", (WIDTH, sum(p.height for p in pieces) + 12 * (len(pieces) - 1)), (200, 205, 212))
    y = 0
    for piece in pieces:
        canvas.paste(piece, (0, y))
        y += piece.height + 12
    output = ROOT / "docs" / "report.png"
    canvas.convert("P", palette=Image.ADAPTIVE, colors=128).save(output, optimize=True)
    return output


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="dynamatch-report-"))
    print(main_(target))
