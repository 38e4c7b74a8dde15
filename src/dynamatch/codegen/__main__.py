"""``python -m dynamatch.codegen [--check] [MODEL ...]``: (re)generate the family's kernels.

Writes ``dynamatch/kernels/generated/<model>.py``, ``dynamatch/export/generated/<model>.hpp`` and
``dynamatch/export/torchscript/<model>.py`` (the Neutone export's render loop) for every
member of :data:`dynamatch.models.family.MODELS` (or the ones named), and removes the files of members
the family no longer has.  With ``--check`` nothing is written;
the exit status is 1 when a generated file differs from what its description gives.
"""

from __future__ import annotations

import argparse
import sys

from .files import generated_files, orphaned_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dynamatch.codegen", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="members to generate (default: all)")
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generated_files(args.models or None):
        current = path.read_text() if path.is_file() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            if text is None:
                path.unlink()
                print(f"removed {path} (not generated for this member)")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if not args.models:
        for path in orphaned_files():
            stale.append(path)
            if not args.check:
                path.unlink()
                print(f"removed {path} (no such member)")
    if args.check and stale:
        for path in stale:
            print(f"out of date: {path} (run python -m dynamatch.codegen)")  # or of no member: it removes it
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
