"""The data stages on both engines at a chosen scale: wall time and the whole machine's peak memory per stage.

Generates the synthetic data once in a scratch copy of the project (``pipeline_benchmark.scratch_project``),
or reads raw files generated earlier (``--raw-dir``), then runs ``python -m src.stages.<stage>`` for clean,
eda, split, popular and played_next with ``engine.name: local`` and again with ``spark`` (``--als`` adds the
als stage, with ``als.engine``). Memory is the peak RSS of the stage's process tree, each address space
counted once (the Python driver, Spark's JVM and its Python workers), sampled every 0.1 s. Each Spark
stage's files are checked to be the local ones byte for byte (ALS's are not expected to be). Stages run in
order, each on both engines before the next (Spark's split reads the events the last clean wrote: the same
bytes either way). Not a test: run it by hand, e.g.

    python benchmarks/spark_engines.py --scale 0.02            # the default data
    python benchmarks/spark_engines.py --scale 1.0 --raw-dir /data/gen-1.0/data/synthetic --out /tmp/spark-1.0.json
    python benchmarks/spark_engines.py --scale 3.0 --raw-dir ... --workdir /data/bench-3.0 --out /data/spark-3.0.json \\
        --stages clean split                                    # a long run in parts, into the same JSON
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers.server_process import process_tree  # noqa: E402
from benchmarks.pipeline_benchmark import scratch_project  # noqa: E402

STAGES = ["clean", "eda", "split", "popular", "played_next"]
OUTPUTS = {  # what each stage writes (compared across engines)
    "clean": ["data/processed", "metrics/data_quality.json"], "eda": ["metrics/eda.json", "metrics/eda"],
    "split": ["data/split", "metrics/split.json"], "popular": ["data/recommendations/top_popular.parquet"],
    "played_next": ["data/recommendations/played_next.parquet"],
    "als": ["models/als.npz", "data/recommendations/personal_als.parquet"],
}


def run_stage(workdir: Path, stage: str, env: dict) -> dict:
    """Wall seconds and peak process-tree RSS (GiB) of one stage; raises with its log when it fails."""
    began = time.perf_counter()
    # the log goes to a file, not a pipe read after the exit: a stage writing more than a pipe holds would block
    with tempfile.TemporaryFile(mode="w+") as log_file:
        child = subprocess.Popen([sys.executable, "-m", f"src.stages.{stage}"], cwd=workdir, env=env,
                                 stdout=subprocess.DEVNULL, stderr=log_file, text=True)
        peak = 0
        while child.poll() is None:
            peak = max(peak, tree_rss(child.pid))
            time.sleep(0.1)
        log_file.seek(0)
        log = log_file.read()
    if child.returncode:
        raise RuntimeError(f"{stage} failed:\n{log[-3000:]}")
    return {"seconds": round(time.perf_counter() - began, 2), "peak_tree_gib": round(peak / 2**30, 2)}


def tree_rss(pid: int) -> int:
    """Bytes resident in the process tree, each address space counted once. The JVM starts each Python worker
    through a child that shares the JVM's memory until it execs (posix_spawn): summing its RSS too counted
    the JVM twice for that instant (clean at scale 1.0 read 7.69 GiB where JVM and driver held 4.8)."""
    total, seen = 0, set()
    for member in process_tree(pid):
        try:
            status = dict(line.split(":", 1) for line in Path(f"/proc/{member}/status").read_text().splitlines()
                          if ":" in line)
            space = (os.readlink(f"/proc/{member}/exe"), status["VmSize"].strip(), status["VmRSS"].strip())
        except (OSError, KeyError):
            continue
        if space not in seen:  # a spawning child of the same program and the very same mappings
            seen.add(space)
            total += int(space[2].split()[0]) * 1024
    return total


def digests(workdir: Path, stage: str) -> dict[str, str]:
    found = {}
    for name in OUTPUTS[stage]:
        path = workdir / name
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file() and not file.name.endswith(".png"):
                found[file.relative_to(workdir).as_posix()] = hashlib.md5(file.read_bytes()).hexdigest()
    return found


def set_params(workdir: Path, update) -> None:
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    update(params)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, required=True, help="generate.scale (0.02 = the default data)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--executor-memory", default="4g")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--als", action="store_true", help="also the als stage (MLlib against implicit)")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--raw-dir", type=Path, help="raw files generated earlier at this scale (skips generate)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here (merged into what it holds)")
    parser.add_argument("--stages", nargs="+", choices=STAGES + ["als"], help="these stages only (default: all)")
    parser.add_argument("--engines", nargs="+", choices=["local", "spark"], default=["local", "spark"])
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=f"spark-bench-{args.scale}-"))
    scratch_project(workdir, args.scale, 50_000, args.raw_dir)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if args.raw_dir is None:
        set_params(workdir, lambda p: p["data"].update(raw_dir="data/synthetic"))
    if args.raw_dir is None and not (workdir / "data/synthetic/interactions.parquet").exists():
        print("generate:", run_stage(workdir, "generate", env), flush=True)
    stages = args.stages or STAGES + (["als"] if args.als else [])
    # a long run goes stage by stage, in parts if need be: --out keeps what earlier parts measured
    results = json.loads(args.out.read_text()) if args.out and args.out.exists() else {"stages": {}}
    results.update(scale=args.scale, master=args.master, cpus=os.cpu_count())
    for stage in stages:
        for engine in args.engines:
            set_params(workdir, lambda params, engine=engine: choose(params, engine, args))
            result = run_stage(workdir, stage, env)
            result["md5"] = digests(workdir, stage)
            measured = results["stages"].setdefault(stage, {})
            measured[engine] = result
            if stage != "als" and all("md5" in measured.get(name, {}) for name in ("local", "spark")):
                measured["spark"]["same_files_as_local"] = measured["spark"]["md5"] == measured["local"]["md5"]
            print(f"{engine:5} {stage:11} {({k: v for k, v in result.items() if k != 'md5'})}", flush=True)
            if args.out:
                args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({stage: {engine: {k: v for k, v in result.items() if k != "md5"}
                              for engine, result in measured.items()}
                      for stage, measured in results["stages"].items()}, indent=2))


def choose(params: dict, engine: str, args: argparse.Namespace) -> None:
    """``engine`` for the data stages and ALS, with the command line's Spark settings."""
    params["engine"]["name"] = params["als"]["engine"] = engine
    params["engine"]["spark"].update(master=args.master, driver_memory=args.driver_memory,
                                     executor_memory=args.executor_memory, shuffle_partitions=args.shuffle_partitions)


if __name__ == "__main__":
    main()
