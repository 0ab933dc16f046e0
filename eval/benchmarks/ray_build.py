"""``rag index --ray`` against the single-process build of the same corpus: equal vectors, wall time.

Builds the same SciFact corpus (or its first ``--docs`` documents, to fit the time budget of a
shared 2-core VM) twice, each as a fresh ``rag index`` process so that start-up is counted:
single-process, then ``--ray`` on a local runtime with ``--workers`` encoder actors. Reports the
wall time of each, their ratio, and the largest difference between the two builds' vectors
(rows must be the same windows of the same passages).

Usage:
    python -m eval.benchmarks.ray_build --data ../shared/data/scifact --docs 500 --backend onnx --out build/ray-bench
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from indexes.dense_store import read_passage_map, read_vectors
from indexes.manifest import Manifest


def build(corpus: Path, out: Path, backend: str, extra: list[str]) -> tuple[float, float]:
    """Wall seconds of one ``rag index`` process, and the CPU seconds of it and the children it waited for
    (Ray's actors run under the raylet and may escape this count: it is a lower bound for --ray)."""
    cmd = [sys.executable, "-m", "rag.cli", "index", str(corpus), "--out", str(out), "--encoder-backend", backend, *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def vectors(index: Path) -> tuple[np.ndarray, np.ndarray]:
    seg = index / Manifest.read(index).segments[0].name
    return np.asarray(read_vectors(seg / "vectors.npy")), read_passage_map(seg / "vector_passages.npy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--docs", type=int, default=0, help="first N documents of corpus.jsonl (0: all)")
    ap.add_argument("--backend", default="onnx", help="passage encoder backend of both builds")
    ap.add_argument("--workers", type=int, default=2, help="Ray encoder actors")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--attempts", type=int, default=1, help="tries of the --ray build (a starved machine can miss Ray's 30 s start-up)")
    ap.add_argument("--reuse-single", action="store_true", help="keep OUT/single and its timing (OUT/single.json) from an earlier run")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = args.data / "corpus.jsonl"
    if args.docs:
        lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)[: args.docs]
        corpus = args.out / f"corpus-{args.docs}.jsonl"
        corpus.write_text("".join(lines), encoding="utf-8")
    timing = args.out / "single.json"
    if args.reuse_single and timing.is_file():
        single, single_cpu = json.loads(timing.read_text(encoding="utf-8"))
    else:
        single, single_cpu = build(corpus, args.out / "single", args.backend, [])
        timing.write_text(json.dumps([single, single_cpu]), encoding="utf-8")
    for attempt in range(1, args.attempts + 1):
        try:
            ray, ray_cpu = build(corpus, args.out / "ray", args.backend, ["--ray", "local", "--ray-workers", str(args.workers)])
            break
        except subprocess.CalledProcessError:
            if attempt == args.attempts:
                raise
    (v1, o1), (v2, o2) = vectors(args.out / "single"), vectors(args.out / "ray")
    result = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "docs": args.docs or "all",
        "passages": int(o1.max()) + 1, "windows": int(v1.shape[0]), "backend": args.backend, "ray_workers": args.workers,
        "ray_attempts": attempt, "single_s": round(single, 1), "ray_s": round(ray, 1), "ratio_ray_over_single": round(ray / single, 2),
        "single_cpu_s": None if single_cpu is None else round(single_cpu, 1), "ray_cpu_s_lower_bound": round(ray_cpu, 1),
        "same_rows": bool(np.array_equal(o1, o2)), "max_abs_diff": float(np.abs(v1 - v2).max()) if v1.shape == v2.shape else None,
        "load_avg": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
