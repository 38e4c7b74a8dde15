"""Real-time factor of every neural preset and the grey-box compressor, streamed block by block.

    .venv/bin/python benchmarks/bench_rtf.py                      # frame 2048, 2 threads
    .venv/bin/python benchmarks/bench_rtf.py --frames all --out rtf  # 32 … 65536, CSV + PNG

Goals from the papers (CPU, frame 2048): TCN-300-C ≥ 2.2× (micro-TCN Table 1), S4 ≥ 2.6× (S4 DRC),
LSTM-32 ≥ 1× (micro-TCN measured 0.9×).  Wall-clock numbers depend on the machine and its load:
``--repeats`` keeps the fastest of several passes; never gate CI on them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dynamatch.neural.registry import MODEL_PRESETS
from dynamatch.neural.rtf import COMPRESSOR_NAME, FRAME_SIZES, rtf_table

GOALS = {"tcn-300-c": 2.2, "s4-c32-f4": 2.6, "lstm-32": 1.0}  # CPU, frame 2048
GOAL_FRAME_SAMPLES = 2048


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="2048", help="comma-separated frame sizes, or 'all' (32 … 65536)")
    parser.add_argument("--models", default=",".join(MODEL_PRESETS), help="comma-separated presets")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration-seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="folder for rtf.csv and rtf.png")
    args = parser.parse_args()

    frames = FRAME_SIZES if args.frames == "all" else tuple(int(f) for f in args.frames.split(","))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    rows = rtf_table(
        [m for m in args.models.split(",") if m],
        frame_sizes=frames,
        duration_seconds=args.duration_seconds,
        threads=args.threads,
        repeats=args.repeats,
        csv_path=None if args.out is None else args.out / "rtf.csv",
        plot_path=None if args.out is None else args.out / "rtf.png",
    )
    reference = {r.frame_samples: r.rtf for r in rows if r.name == COMPRESSOR_NAME}
    print(f"real-time factor, {args.threads} thread(s), best of {args.repeats} × {args.duration_seconds:g} s")
    print(f"{'model':<12} {'frame':>6} {'RTF':>9} {'goal':>6} {'met':>4} {'÷ 4a2a':>8}")
    for r in rows:
        goal = GOALS.get(r.name) if r.frame_samples == GOAL_FRAME_SAMPLES else None
        met = "" if goal is None else ("yes" if r.rtf >= goal else "NO")
        goal_text = "" if goal is None else f"{goal:.1f}"
        print(f"{r.name:<12} {r.frame_samples:>6} {r.rtf:>9.2f} {goal_text:>6} {met:>4} {r.rtf / reference[r.frame_samples]:>8.4f}")
    if args.out is not None:
        print(f"wrote {args.out / 'rtf.csv'} and {args.out / 'rtf.png'}")


if __name__ == "__main__":
    main()
