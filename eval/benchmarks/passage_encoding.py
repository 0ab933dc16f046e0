"""Passage encoding throughput at index time: sentence-transformers vs our backends, one run.

A fixed random sample of SciFact passages is cut into the encoder's windows (as ``rag index``
does) and encoded by each contender in turn in one process, so the figures compare as ratios:

* ``st-default``: ``SentenceTransformer.encode(windows)`` with default settings (batch 32);
* ``onnx`` / ``onnx-int8``: what ``rag index`` runs: ONNX Runtime in one process, the fused
  transformer graph (:mod:`rag.onnx_fuse`), groups (int8: single texts) run side by side, one per
  core; ``…, one call at a time``: the loop before (one group after another on all cores), on the
  unfused graph (the export before fusion) or the fused one;
* ``onnx-int8 ×W``: ``W`` worker processes with one thread each (:mod:`rag.onnx_pool`).

Fidelity is each backend's vectors against ``st-default``'s: max |Δ| (fp32 must be <= 1e-5) and
the minimum cosine. Then the int8 query pass, unfused vs fused: SciFact queries one per call on
one thread (as the service encodes them), median ms over interleaved rounds. Writes the
``passage-encoding`` section of docs/benchmarks.md.

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
from rag.onnx_backend import OnnxEncoderModel


def sample_passages(data: Path, n: int, seed: int) -> list[str]:
    rows = [json.loads(line) for line in (data / "corpus.jsonl").open(encoding="utf-8") if line.strip()]
    pick = np.random.default_rng(seed).choice(len(rows), size=min(n, len(rows)), replace=False)
    return [passage_text(rows[i].get("title", ""), rows[i]["text"]) for i in sorted(pick)]


def timed(fn) -> tuple[np.ndarray, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def one_call_at_a_time(model: OnnxEncoderModel, texts: list[str], batch_size: int) -> np.ndarray:
    """(B, d): the loop before groups ran side by side: length-sorted groups (int8: single texts), one
    call after another, each on all the session's intra-op threads."""
    size = 1 if model.quantized else batch_size
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    for start in range(0, len(texts), size):
        idx = order[start : start + size]
        vectors = model.encode([texts[i] for i in idx], batch_size=size)  # (b, d); one group: runs on model.session
        out = np.zeros((len(texts), vectors.shape[1]), np.float32) if out is None else out
        out[idx] = vectors
    return out


def query_latency_ms(models: dict[str, OnnxEncoderModel], queries: list[str], rounds: int) -> dict[str, float]:
    """Median ms per query, each query alone, models interleaved query by query in every round."""
    per: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for q in queries:
            for name, model in models.items():
                t = time.perf_counter()
                model.encode([q])
                per[name].append(1e3 * (time.perf_counter() - t))
    return {name: float(np.median(v)) for name, v in per.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--sample", type=int, default=256, help="passages sampled (each gives >= 1 window)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queries", type=int, default=300, help="SciFact queries for the int8 query-pass latency")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()
    torch_enc = Encoder(EncoderConfig(device="cpu", backend="torch"))
    windows: list[str] = []
    for p in sample_passages(args.data, args.sample, args.seed):
        windows += torch_enc.passage_windows(p, overlap=64)
    contenders = {
        "st-default": lambda: torch_enc.model.encode(windows),
    }
    size = torch_enc.config.batch_size
    for name, fuse in (("onnx unfused", False), ("onnx-int8 unfused", False), ("onnx-int8 fused", True)):
        model = OnnxEncoderModel(torch_enc.model, quantize="int8" in name, threads=cores, fuse=fuse)
        contenders[f"{name}, one call at a time"] = lambda model=model: one_call_at_a_time(model, windows, size)
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
        f"Machine: {machine()}; a 2-core VM **shared with other engineers' jobs** (load average {load[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end), "
        f"so absolute rates are low and only the ratios, measured in one process one after another, compare. "
        f"Date: {dt.date.today().isoformat()}. Command: `nice -n 10 python -m eval.benchmarks.passage_encoding "
        f"--data {args.data} --sample {args.sample} --workers {args.workers}`. `onnx`/`onnx-int8` are what `rag index` runs: the "
        f"fused transformer graph (rag/onnx_fuse.py), groups (int8: single texts) side by side, one per core; "
        f"`…, one call at a time` is the loop before (one group after another on all cores), `unfused` the export before fusion.",
        "",
        "| encoder | windows/s | × st-default | max abs Δ vs st-default | min cosine |",
        "|---|---|---|---|---|",
    ]
    for name, (v, s) in results.items():
        cos = (v * ref).sum(1)
        lines.append(f"| {name} | {len(windows) / s:.1f} | {ref_s / s:.2f} | {np.abs(v - ref).max():.1e} | {cos.min():.5f} |")
    queries = [json.loads(line)["text"] for line in (args.data / "queries.jsonl").open(encoding="utf-8") if line.strip()]
    queries = queries[: args.queries]
    pass_models = {"onnx-int8 unfused": OnnxEncoderModel(torch_enc.model, quantize=True, fuse=False),
                   "onnx-int8 (fused)": OnnxEncoderModel(torch_enc.model, quantize=True)}
    lat = query_latency_ms(pass_models, queries, args.rounds)
    before = lat["onnx-int8 unfused"]
    lines += ["", f"The int8 query pass (what the service runs per query): {len(queries)} SciFact queries, each alone, one "
              f"thread, median of {args.rounds} rounds interleaved query by query.", "",
              "| query encoder | ms / query (median) | × unfused |", "|---|---|---|"]
    lines += [f"| {name} | {ms:.2f} | {before / ms:.2f} |" for name, ms in lat.items()]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("passage-encoding", text)


if __name__ == "__main__":
    main()
