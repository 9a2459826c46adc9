"""The top of a py-spy profile (`bench/run.py --profile FILE`, raw collapsed stacks).

    python bench/profile_top.py FILE [--top 15] [--rate 50]

Prints two Markdown tables, per function: where the samples were taken (own time) and the
pipeline's functions with everything they called (inclusive), as shares of all samples.
A third table follows the thread that runs the window's Dagster runs: the seconds it spent
in each step's own code, and in Dagster around the steps. From a wall-clock profile
(`--profile-wall`) these are wall seconds; from a CPU profile, CPU seconds.
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


SAMPLES_PER_SECOND = 50  # the rate `bench/run.py --profile` records at
RUNS_THREAD = "materialize_window"  # a frame only the thread running the runs has
COMPUTE = "invoke_compute_fn"  # Dagster calling a step's own function
STEP = "core_dagster_event_sequence_for_step"


def _name(frame: str) -> str:
    return frame.split(" (")[0]


def runs_thread(path: Path) -> Counter:
    """Samples of the runs' thread: per step function (its own code and what it called), or
    per part of Dagster outside the steps' code."""
    where: Counter = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any(RUNS_THREAD in frame for frame in frames):
            continue
        names = [_name(frame) for frame in frames]
        if COMPUTE in names and names.index(COMPUTE) + 1 < len(names):
            key = names[names.index(COMPUTE) + 1].replace(".<locals>", "")
        elif STEP in names and names.index(STEP) + 1 < len(names):
            key = f"Dagster, in a step: {names[names.index(STEP) + 1]}"
        else:
            key = "Dagster, between steps and runs"
        where[key] += int(count)
    return where


def _seconds_table(where: Counter, rate: int) -> str:
    lines = ["| the runs' thread, in | seconds |", "|---|---|"]
    lines += [f"| `{key}` | {n / rate:.2f} |" for key, n in where.most_common()]
    lines.append(f"| all | {sum(where.values()) / rate:.2f} |")
    return "\n".join(lines)


def _table(title: str, rows: list[tuple[str, int]], total: int) -> str:
    lines = [f"| {title} | share of samples |", "|---|---|"]
    lines += [f"| `{frame}` | {100 * n / total:.1f} % |" for frame, n in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--rate", type=int, default=SAMPLES_PER_SECOND, help="py-spy's samples a second"
    )
    args = parser.parse_args(argv)
    total, own, inclusive = shares(args.profile)
    ours = [
        (frame, n)
        for frame, n in inclusive.most_common()
        if "metrics_pipeline/" in frame and "/cli/" not in frame and "runner.py" not in frame
    ]
    print(f"{total} samples\n")
    print(_table("where the samples were (own)", own.most_common(args.top), total) + "\n")
    print(_table("pipeline function, with what it called", ours[: args.top], total) + "\n")
    print(_seconds_table(runs_thread(args.profile), args.rate))


if __name__ == "__main__":
    main()
