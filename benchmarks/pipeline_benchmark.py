"""Per-stage wall time and peak RSS of the whole pipeline at a chosen scale.

Runs `dvc repro` in a scratch copy of the project with `generate.scale` set, and
reads the line every stage logs when it ends ("stage X finished in Ns, peak RSS
M GiB"). Not a test: run it by hand, e.g.

    python benchmarks/pipeline_benchmark.py --scale 0.1
    python benchmarks/pipeline_benchmark.py --scale 1.0 --workdir /tmp/bench-1.0 --keep

The "real path" is `dvc repro` without `generate`, which only stands in for the real files: the
generator runs first, alone (or not at all with ``--raw-dir``, files generated earlier at the same
scale), then `dvc repro --downstream clean` is timed as a whole, DVC's own hashing included.
``--profile`` samples every stage with py-spy (``--subprocesses``, non-blocking, so the stages do not
wait for it) into one collapsed-stack file; ``benchmarks/profile_summary.py`` splits it by stage.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FINISHED = re.compile(r"stage (\w+) finished in ([\d.]+)s, peak RSS ([\d.]+) GiB")
COPIED = ("src", "dvc.yaml", "params.yaml", ".dvc/config", ".dvcignore", ".gitignore")


def scratch_project(workdir: Path, scale: float, chunk_users: int, raw_dir: Path | None = None) -> None:
    """A fresh git + DVC project holding this project's code and params, at the given scale."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = ROOT / name
        target = workdir / name
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["generate"].update(scale=scale, chunk_users=chunk_users)
    if raw_dir is not None:
        params["data"]["raw_dir"] = str(raw_dir.resolve())
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if not (workdir / ".git").exists():
        subprocess.run(["git", "init", "-q"], cwd=workdir, check=True)


def run_logged(command: list[str], workdir: Path, env: dict[str, str], log_path: Path, stages: list[dict]) -> int:
    """Run ``command``, copy its output to ``log_path`` and collect each stage's finishing line."""
    with open(log_path, "a") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            log.write(line)
            log.flush()
            match = FINISHED.search(line)
            if match:
                stages.append({"stage": match[1], "seconds": float(match[2]), "peak_rss_gib": float(match[3])})
                print(f"{match[1]:<12} {float(match[2]):>9.1f} s {float(match[3]):>7.2f} GiB", flush=True)
        return process.wait()


def children_cpu_seconds() -> float:
    """User + system CPU of every finished child process and its descendants (all their threads)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, required=True, help="generate.scale (1.0 = real data size)")
    parser.add_argument("--chunk-users", type=int, default=50_000)
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--raw-dir", type=Path, help="raw files generated earlier at this scale (skips generate)")
    parser.add_argument("--profile", type=Path, help="write py-spy's collapsed stacks of every stage here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"bench-{args.scale}-"))
    scratch_project(workdir, args.scale, args.chunk_users, args.raw_dir)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    log_path = workdir / "benchmark.log"
    stages: list[dict] = []
    code = 0
    if args.raw_dir is None:
        code = run_logged([sys.executable, "-m", "dvc", "repro", "generate"], workdir, env, log_path, stages)
    repro = [sys.executable, "-m", "dvc", "repro", "--downstream", "clean"]
    if args.profile:
        repro = [str(bin_dir / "py-spy"), "record", "--subprocesses", "--nonblocking", "--rate", "20",
                 "--format", "raw", "--output", str(args.profile.resolve()), "--", *repro]
    began, cpu_before = time.perf_counter(), children_cpu_seconds()
    if code == 0:
        code = run_logged(repro, workdir, env, log_path, stages)
    total, cpu = time.perf_counter() - began, children_cpu_seconds() - cpu_before
    print(f"{'dvc repro':<12} {total:>9.1f} s without generate (scale {args.scale}, exit {code}, log {log_path})")
    print(f"{'CPU':<12} {cpu:>9.1f} s user + system over every process (DVC, the stages, their threads): "
          f"{cpu / total:.2f} cores busy on average")
    if args.out:
        args.out.write_text(json.dumps({"scale": args.scale, "real_path_seconds": total, "cpu_seconds": cpu,
                                        "stages": stages}, indent=2) + "\n")
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir)
    sys.exit(code)


if __name__ == "__main__":
    main()
