"""Start-up time of one-shot ``rag search`` calls (BM25 and dense), this tree vs another checkout.

Each call is a fresh ``python -m rag.cli search`` process, as a user types it: interpreter start,
imports, opening the index, loading the query encoder (dense), one query, printing. The
figure is the median (and range) over ``--repeat`` calls of wall time and of CPU time (user + system of the
child): on a shared machine CPU time is what the call costs, wall time adds the wait for a core.
With ``--before DIR`` the same calls run with ``PYTHONPATH=DIR`` (e.g. the main checkout before
this change), interleaved call by call so both see the same load. Writes the ``startup`` section
of docs/benchmarks.md.

Usage:
    python -m eval.benchmarks.startup --index build/scifact --before ../main --repeat 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from eval.benchmarks.report import machine, write_section

ROOT = Path(__file__).resolve().parents[2]
QUERY = "vitamin D deficiency and bone fractures"


def one_call(tree: Path, index: Path, mode: str) -> tuple[float, float]:
    """(wall s, CPU s) of one ``rag search`` process."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rag.cli", "search", "--index", str(index), "--mode", mode, "-k", "10", QUERY],
                   env=env, check=True, stdout=subprocess.DEVNULL, cwd=tree)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True, help="a BM25 + dense index (SciFact)")
    ap.add_argument("--before", type=Path, help="another checkout to compare with")
    ap.add_argument("--modes", nargs="+", default=["bm25", "dense"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    trees = {"this tree": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    index = args.index.resolve()
    times: dict[tuple[str, str], list[tuple[float, float]]] = {(t, m): [] for t in trees for m in args.modes}
    for _ in range(args.repeat):
        for mode in args.modes:
            for name, tree in trees.items():
                times[(name, mode)].append(one_call(tree, index, mode))
    lines = ["## Start-up: one-shot `rag search` (SciFact)", "",
             f"Machine: {machine()}; a 2-core VM **shared with other engineers' jobs** (load average 10-15 during the run: "
             f"wall time includes waiting for a core, CPU time does not). Date: {dt.date.today().isoformat()}. "
             f"Command: `python -m eval.benchmarks.startup --index {args.index}"
             + (f" --before {args.before}" if args.before else "") + f" --repeat {args.repeat}`. Median of {args.repeat} "
             f"fresh processes each (`python -m rag.cli search --index … --mode MODE -k 10 \"{QUERY}\"`).", "",
             "| mode | checkout | wall (s), median [min-max] | CPU user+sys (s), median [min-max] |", "|---|---|---|---|"]
    for (name, mode), v in times.items():
        a = np.array(v)  # (repeat, 2): wall, CPU
        w, c = (f"{np.median(a[:, j]):.2f} [{a[:, j].min():.2f}-{a[:, j].max():.2f}]" for j in range(2))
        lines.append(f"| {mode} | {name} | {w} | {c} |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("startup", text)


if __name__ == "__main__":
    main()
