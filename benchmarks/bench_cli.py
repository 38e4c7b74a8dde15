"""Wall time and peak RSS of the whole ``dynamatch fit`` command, beside the fit time it reports.

    python benchmarks/bench_cli.py                    # 30 s and 20 min captures, numba cache warmed first
    python benchmarks/bench_cli.py --minutes 5 --keep /tmp/bench-cli

Audio: the built-in capture stimulus (60 s, repeated to length) through the built-in virtual opto
levelling amplifier (peak reduction 65, compress), written as 32-bit float WAV, the target delayed by
2.37 samples so the alignment has real work.  Each command runs in a fresh process under
``/usr/bin/time -v`` (peak RSS) with ``--verbose`` (stage times); ``dynamatch warmup`` runs first so the
figures are warm-cache.  Goals (issue 10): 20-min command ≤ 1.5× its own fit time and ≤ 12 s wall,
peak RSS ≤ 700 MB; 30-s capture ≤ 2.5 s wall.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 44_100
GOALS = {"ratio_20min": 1.5, "wall_20min_s": 12.0, "rss_20min_mb": 700.0, "wall_30s_s": 2.5}


def make_pair(folder: Path, seconds: float) -> tuple[Path, Path]:
    from dynamatch.data.alignment import fractional_delay
    from dynamatch.data.stimulus import capture_stimulus
    from dynamatch.models.opto import OptoLevellingAmplifier

    base = capture_stimulus(SAMPLE_RATE, duration_seconds=60.0, seed=0).astype(np.float32)
    samples = int(round(seconds * SAMPLE_RATE))
    x = np.resize(base, samples)
    y = OptoLevellingAmplifier(peak_reduction=65.0, mode="compress").process(x.astype(np.float64), SAMPLE_RATE)
    y = fractional_delay(y, 2.37)
    dry, wet = folder / f"dry_{seconds:g}s.wav", folder / f"wet_{seconds:g}s.wav"
    sf.write(dry, x, SAMPLE_RATE, subtype="FLOAT")
    sf.write(wet, y.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    return dry, wet


def run_fit(dry: Path, wet: Path, output: Path) -> dict:
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "dynamatch.cli", "fit", str(dry), str(wet),
               "-o", str(output), "--verbose"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dynamatch fit failed ({done.returncode}):\n{done.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    stages = dict(re.findall(r"^(\w+)\s+([\d.]+) s$", done.stderr, flags=re.M))
    fit = json.loads(output.read_text())["fit"]
    return {"wall_s": wall, "fit_s": fit.get("fit_seconds", fit["elapsed_seconds"]), "rss_mb": rss_kb / 1024.0,
            "iterations": fit["iterations"], "esr": fit["esr"], "stages": {k: float(v) for k, v in stages.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="length of the long capture")
    parser.add_argument("--short-seconds", type=float, default=30.0)
    parser.add_argument("--keep", type=Path, default=None, help="keep the audio and models in this folder")
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        raise SystemExit("needs /usr/bin/time (Debian: apt-get install time)")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-cli-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "dynamatch.cli", "warmup"], check=True, capture_output=True)
        rows = {}
        for label, seconds in (("30 s", args.short_seconds), (f"{args.minutes:g} min", 60.0 * args.minutes)):
            started = time.perf_counter()
            dry, wet = make_pair(folder, seconds)
            print(f"{label}: audio generated in {time.perf_counter() - started:.1f} s", flush=True)
            rows[label] = run_fit(dry, wet, folder / f"model_{seconds:g}s.json")
        print(f"\n{'capture':>10} {'wall s':>8} {'fit s':>7} {'wall/fit':>9} {'peak RSS MB':>12} {'iters':>6} {'ESR':>9}")
        for label, r in rows.items():
            print(f"{label:>10} {r['wall_s']:8.2f} {r['fit_s']:7.2f} {r['wall_s'] / r['fit_s']:9.2f} "
                  f"{r['rss_mb']:12.0f} {r['iterations']:6d} {r['esr']:9.4g}")
        for label, r in rows.items():
            print(f"stages {label}: " + ", ".join(f"{k} {v:.2f}" for k, v in r["stages"].items()))
        short, long = rows["30 s"], rows[f"{args.minutes:g} min"]
        print(f"\ngoals: 20-min wall/fit {long['wall_s'] / long['fit_s']:.2f} (≤ {GOALS['ratio_20min']}), "
              f"wall {long['wall_s']:.1f} s (≤ {GOALS['wall_20min_s']:g}), peak RSS {long['rss_mb']:.0f} MB "
              f"(≤ {GOALS['rss_20min_mb']:g}); 30-s wall {short['wall_s']:.2f} s (≤ {GOALS['wall_30s_s']})")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
