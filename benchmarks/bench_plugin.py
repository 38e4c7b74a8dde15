"""Real-time factor of the built plugin (VST3 hosted by pedalboard) against the Python/numba
``CompressorStream``, both fed 32-sample blocks on one core.

    python benchmarks/bench_plugin.py --seconds 20 --block 32

Real-time factor = audio duration / wall time (best of ``--repeats``).  The process is pinned to one
core; on a shared machine timings are noisy, read the ratio.  The plugin is built (or reused: the build
is idempotent) into ``--build-dir``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from dynamatch.export import build_plugin
from dynamatch.maps import ParameterMap

SAMPLE_RATE = 44100


def programme(seconds: float, seed: int = 0) -> np.ndarray:
    """Mono test signal: 0.5 s sections of a tone plus noise at random levels (−40…0 dBFS), float32."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    levels_db = np.repeat(rng.uniform(-40.0, 0.0, size=n // (SAMPLE_RATE // 2) + 1), SAMPLE_RATE // 2)[:n]
    x = (np.sin(2 * np.pi * 220.0 * t) + 0.3 * rng.standard_normal(n)) / 1.3 * 10.0 ** (levels_db / 20.0)
    return x.astype(np.float32)


def best_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="audio length per measurement")
    parser.add_argument("--block", type=int, default=32, help="host block size in samples")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-reduction", type=float, default=50.0)
    parser.add_argument("--build-dir", type=Path, default=Path("build/bench-plugin"))
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import pedalboard  # imported after pinning so its threads start on the chosen core

    parameter_map = ParameterMap.preset("la2a")
    build = build_plugin(parameter_map, args.build_dir, formats=("vst3",))
    plugin = pedalboard.load_plugin(str(build.bundle("vst3", channels=1)))
    plugin.peak_reduction = args.peak_reduction
    x = programme(args.seconds)
    duration = x.size / SAMPLE_RATE

    plugin.process(x[None, : SAMPLE_RATE], SAMPLE_RATE, buffer_size=args.block, reset=True)  # warm-up
    vst3_seconds = best_seconds(
        lambda: plugin.process(x[None], SAMPLE_RATE, buffer_size=args.block, reset=True), args.repeats
    )

    stream = parameter_map.compressor(args.peak_reduction, "compress").stream(SAMPLE_RATE, channels=1)
    x64 = x.astype(np.float64)
    blocks = [x64[i : i + args.block] for i in range(0, x64.size, args.block)]
    stream.process(blocks[0])  # numba compile (cached after the first run)

    def run_stream() -> None:
        stream.reset()
        for block in blocks:
            stream.process(block)

    stream_seconds = best_seconds(run_stream, args.repeats)

    print(f"{duration:.1f} s of mono audio at {SAMPLE_RATE} Hz, {args.block}-sample blocks, one core "
          f"(best of {args.repeats}; shared machine: noisy)")
    for label, seconds in [("VST3 plugin via pedalboard", vst3_seconds), ("Python CompressorStream", stream_seconds)]:
        print(f"  {label:27s}: {seconds * 1e3:8.1f} ms  real-time factor {duration / seconds:8.0f}x"
              f"  ({seconds / x.size * 1e9:.1f} ns/sample)")
    print(f"  plugin / Python speed ratio: {stream_seconds / vst3_seconds:.1f}")
    neural_beside(args.block, duration / vst3_seconds)


def neural_beside(block: int, plugin_rtf: float) -> None:
    """The neural models' RTF at the same block size on one thread, when torch is installed."""
    try:
        from dynamatch.neural.registry import build_model
        from dynamatch.neural.rtf import measure_rtf
        from dynamatch.neural.streaming import StreamingProcessor
    except ImportError:
        print("  (neural models not installed: pip install 'dynamatch[nn]' to time them beside the plugin)")
        return
    print(f"  neural models in the same run ({block}-sample blocks, 1 thread):")
    for name in ("tcn-300-c", "lstm-32", "s4-c32-f4", "gru-8"):
        model = build_model(name).eval()
        row = measure_rtf(lambda: StreamingProcessor(model, (0.0, 0.5)), name=name, frame_sizes=(block,),
                          duration_seconds=2.0, threads=1, repeats=2)[0]
        print(f"    {name:12s} real-time factor {row.rtf:8.2f}x   plugin is {plugin_rtf / row.rtf:,.0f}x faster")


if __name__ == "__main__":
    main()
