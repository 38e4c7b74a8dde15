"""Held-out accuracy of the grey-box family: real LA-2A recordings and the built-in virtual opto device.

    python benchmarks/bench_accuracy.py                          # every default model, all material
    python benchmarks/bench_accuracy.py --models ff5,opto-hp --material real

Protocol (the same for every model): each real clip in ``../shared/la2a/`` is aligned, fitted on its first
part (half of a SignalTrain excerpt or MP3 clip; the first 2.5 s of a second-unit clip) and scored on the rest.
The fitted model renders the *whole* clip (so its state is warm where scoring starts) and the
pre-filtered ESR is taken over the held-back part only.  The virtual device is the built-in opto
levelling amplifier (peak reduction 70, both modes), pedalboard's Compressor and LSP's Compressor
(RMS side-chain, via lv2apply), driven by the 60 s capture stimulus followed by
30 s of programme-like audio; models fit the first 66 % and are scored on the rest.

Prints one table (held-out ESR per clip and model, then the geometric mean of each model's ratio to
FF-5's held-out ESR per group) and writes it as CSV with ``--csv``.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dynamatch.data.alignment import align_pair
from dynamatch.data.audio import load_pair
from dynamatch.data.generate import opto_device
from dynamatch.data.stimulus import capture_stimulus, programme_like
from dynamatch.fitting import fit_arrays
from dynamatch.metrics import esr

SHARED = Path(__file__).resolve().parents[2] / "shared" / "la2a"
DEFAULT_MODELS = ("ff5", "ff5-knee", "ff5-rms", "feedback", "ff5-slow", "opto", "level", "rms-level-knee", "ff5-hp",
                  "feedback-hp", "ff5-slow-hp", "opto-hp")
VIRTUAL_RATE = 44100
VIRTUAL_FIT_SHARE = 0.66


def real_clips(root: Path = SHARED):
    """(name, dry, wet, sample rate, first held-out sample) of every real clip found under ``root``."""
    groups = (("signaltrain_excerpts", "sample{}", range(1, 6), None),
              ("pr80_mp3", "{}", ("clip0", "clip2", "clip3", "ed1", "ed2", "ed3"), None),
              ("second_unit_48k", "{}", ("la5", "la14"), 2.5))
    for folder, pattern, names, fit_seconds in groups:
        for name in names:
            stem = pattern.format(name)
            files = sorted((root / folder).glob(f"{stem}_input.*"))
            if not files:
                continue
            suffix = files[0].suffix
            pair, _ = align_pair(load_pair(root / folder / f"{stem}_input{suffix}",
                                           root / folder / f"{stem}_target{suffix}"))
            split = int(fit_seconds * pair.sample_rate) if fit_seconds else len(pair.dry) // 2
            yield f"{folder}/{stem}", pair.dry, pair.wet, pair.sample_rate, split


def virtual_clips():
    x = 0.5 * np.concatenate([capture_stimulus(VIRTUAL_RATE, duration_seconds=60.0),
                              programme_like(VIRTUAL_RATE, 30.0, seed=3)])
    split = int(VIRTUAL_FIT_SHARE * len(x))
    for mode in ("compress", "limit"):
        yield f"virtual/{mode}", x, opto_device(x, VIRTUAL_RATE, mode, 70.0), VIRTUAL_RATE, split


def plugin_clips():
    """pedalboard's (JUCE's) Compressor, which smooths the level before a hard knee (the ``level``
    topology), on the same stimulus + programme protocol as the virtual device."""
    import pedalboard

    x = 0.5 * np.concatenate([capture_stimulus(VIRTUAL_RATE, duration_seconds=60.0),
                              programme_like(VIRTUAL_RATE, 30.0, seed=3)])
    plugin = pedalboard.Compressor(threshold_db=-24.0, ratio=4.0, attack_ms=5.0, release_ms=120.0)
    y = plugin.process(x.astype(np.float32)[None, :], VIRTUAL_RATE)[0].astype(np.float64)
    yield "plugin/pedalboard-compressor", x, y, VIRTUAL_RATE, int(VIRTUAL_FIT_SHARE * len(x))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_topologies import render_lsp_rms_compressor  # the same rendering as the test

    with tempfile.TemporaryDirectory() as folder:
        y = render_lsp_rms_compressor(x, Path(folder))
    yield "plugin/lsp-compressor-rms", x, y, VIRTUAL_RATE, int(VIRTUAL_FIT_SHARE * len(x))


def held_out_esr(model: str, dry, wet, sample_rate: float, split: int) -> tuple[float, float, float]:
    """(held-out ESR, in-sample ESR, fit seconds) of ``model`` fitted on ``[:split]``."""
    started = time.perf_counter()
    result = fit_arrays(dry[:split], wet[:split], sample_rate, model=model)
    seconds = time.perf_counter() - started
    prediction = result.params.process(dry, sample_rate)
    return esr(prediction[split:], wet[split:]), result.loss, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated family members")
    parser.add_argument("--material", choices=("all", "real", "virtual", "plugin"), default="all")
    parser.add_argument("--csv", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    if "ff5" not in models:
        models.insert(0, "ff5")
    clips = []
    if args.material in ("all", "real"):
        if not SHARED.is_dir():
            print(f"no real recordings at {SHARED}: skipping them", file=sys.stderr)
        clips += list(real_clips())
    if args.material in ("all", "virtual"):
        clips += list(virtual_clips())
    if args.material in ("all", "plugin"):
        clips += list(plugin_clips())

    rows = []
    print(f"{'clip':<34}" + "".join(f"{m:>14}" for m in models), flush=True)
    for name, dry, wet, rate, split in clips:
        scores = {m: held_out_esr(m, dry, wet, rate, split) for m in models}
        rows.append({"clip": name} | {m: scores[m][0] for m in models}
                    | {f"{m} fit s": scores[m][2] for m in models})
        print(f"{name:<34}" + "".join(f"{scores[m][0]:>14.5f}" for m in models), flush=True)

    print("\ngeometric mean of held-out ESR / FF-5's (below 1 is better):")
    for group in ("real", "virtual", "plugin"):
        members = [r for r in rows if (r["clip"].split("/")[0] if r["clip"].split("/")[0] in ("virtual", "plugin")
                                       else "real") == group]
        if not members:
            continue
        ratios = {m: math.exp(np.mean([math.log(r[m] / r["ff5"]) for r in members])) for m in models}
        print(f"  {group:<8} ({len(members)} clips)" + "".join(f"  {m} {ratios[m]:.3f}" for m in models))
    if args.csv:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
