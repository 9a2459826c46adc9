"""The top of a py-spy profile (`bench/run.py --profile FILE`, raw collapsed stacks).

    python bench/profile_top.py FILE [--top 15]

Prints two Markdown tables, per function: where the samples were taken (own time) and the
pipeline's functions with everything they called (inclusive), as shares of all samples.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path


def shares(path: Path) -> tuple[int, Counter, Counter]:
    """Samples in all, per frame where the sample was taken, per frame on the stack."""
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        # Per function, not per line: `f (file.py:12)` and `f (file.py:30)` are one.
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):  # a recursive frame counts once per sample
            inclusive[frame] += int(count)
    return total, own, inclusive


def _table(title: str, rows: list[tuple[str, int]], total: int) -> str:
    lines = [f"| {title} | share of samples |", "|---|---|"]
    lines += [f"| `{frame}` | {100 * n / total:.1f} % |" for frame, n in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    total, own, inclusive = shares(args.profile)
    ours = [
        (frame, n)
        for frame, n in inclusive.most_common()
        if "metrics_pipeline/" in frame and "/cli/" not in frame and "runner.py" not in frame
    ]
    print(f"{total} samples\n")
    print(_table("where the samples were (own)", own.most_common(args.top), total) + "\n")
    print(_table("pipeline function, with what it called", ours[: args.top], total))


if __name__ == "__main__":
    main()
