"""Where each stage's time goes, from the py-spy profile ``pipeline_benchmark.py --profile`` writes.

py-spy's raw format is one line per distinct stack, ``process A;process B;frame;frame;... count``; a
stage is the process whose command is ``python -m src.stages.<name>``. For each stage this prints the
project functions (``src/...``) holding the most samples, callees included, and the frames where the
samples themselves land (any library), as shares of the stage's samples:

    python benchmarks/profile_summary.py /tmp/bench-1.0.profile [--top 8]
"""
from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

STAGE = re.compile(r'process \d+:"[^"]*-m src\.stages\.(\w+)[^"]*"')
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frames_of(stack: str) -> list[tuple[str, str]]:
    """(function, file) of each frame after the process markers, outermost first."""
    frames = []
    for part in stack.split(";"):
        match = FRAME.match(part)
        if match and not part.startswith("process "):
            frames.append((match["function"], match["file"]))
    return frames


def summarise(path: Path) -> dict[str, dict]:
    stages: dict[str, dict] = collections.defaultdict(
        lambda: {"samples": 0, "inclusive": collections.Counter(), "self": collections.Counter()})
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        found = STAGE.findall(stack)
        if not found or not count.isdigit():
            continue
        samples, summary = int(count), stages[found[-1]]
        summary["samples"] += samples
        frames = frames_of(stack[stack.rfind('"') + 2:])
        if frames:
            function, file = frames[-1]
            summary["self"][f"{function} ({Path(file).name})"] += samples
        for key in {f"{function} ({file[file.find('src/'):]})" for function, file in frames if "src/" in file}:
            summary["inclusive"][key] += samples
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    for stage, summary in sorted(summarise(args.profile).items(), key=lambda item: -item[1]["samples"]):
        total = summary["samples"]
        print(f"\n## {stage}: {total} samples")
        print("project functions (callees included):")
        for key, samples in summary["inclusive"].most_common(args.top):
            print(f"  {100 * samples / total:5.1f}%  {key}")
        print("where the samples land:")
        for key, samples in summary["self"].most_common(5):
            print(f"  {100 * samples / total:5.1f}%  {key}")


if __name__ == "__main__":
    main()
