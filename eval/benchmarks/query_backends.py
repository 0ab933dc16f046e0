"""Query encoder backends on BEIR SciFact: retrieval quality and per-query latency, side by side.

The passage vectors are the index's (encoded once with PyTorch, fp32); only the query side
changes: ``torch`` (sentence-transformers), ``onnx`` (ONNX Runtime, same weights) and
``onnx-int8`` (dynamic int8 quantisation), and with ``--query-encoder DIR`` the same backends
running a query encoder distilled from the index's encoder (``rag train query-encoder``). Quality is nDCG@10 / Recall@100 on the test split
(dense and hybrid); latency is one query per call on one thread, the way the service's encoder
threads run them, measured in interleaved rounds in one process so the figures compare as ratios.
Writes the ``query-backends`` section of docs/benchmarks.md.

Usage:
    python -m eval.benchmarks.query_backends --data ../shared/data/scifact --index build/scifact \
        --query-encoder build/qenc/scifact-L3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from eval.benchmarks.report import machine, write_section


def latency_ms(encoders: dict, queries: list[str], rounds: int) -> dict[str, float]:
    """Median over rounds of mean ms per single-query call, backends interleaved within each round."""
    per: dict[str, list[float]] = {b: [] for b in encoders}
    for _ in range(rounds):
        for b, enc in encoders.items():
            t = time.perf_counter()
            for q in queries:
                enc.encode_queries([q])
            per[b].append(1e3 * (time.perf_counter() - t) / len(queries))
    return {b: float(np.median(v)) for b, v in per.items()}


def fidelity(encoders: dict, queries: list[str]) -> dict[str, dict[str, float]]:
    """Cosine of each backend's query vectors to the torch backend's."""
    ref = encoders["torch"].encode_queries(queries)  # (Q, d)
    out = {}
    for b, enc in encoders.items():
        cos = (enc.encode_queries(queries) * ref).sum(1)  # (Q,)
        out[b] = {"cos_min": float(cos.min()), "cos_mean": float(cos.mean())}
    return out


def render(quality: dict, lat: dict, fid: dict, args) -> str:
    lines = [
        "## Query encoder backends (SciFact test, 300 queries)",
        "",
        f"Machine: {machine()}. Command: `python -m eval.benchmarks.query_backends --data {args.data} --index {args.index}"
        + "".join(f" --query-encoder {q}" for q in args.query_encoder) + "`.",
        "Rows `backend · NAME` encode queries with the query encoder distilled into folder NAME (`rag train query-encoder`).",
        "Passage vectors are the index's (PyTorch fp32); only queries are encoded by the backend. Latency: one query per call,",
        f"one thread, median of {args.rounds} interleaved rounds over {args.latency_queries} queries (compare as ratios).",
        "",
        "| query backend | dense nDCG@10 | dense R@100 | hybrid nDCG@10 | hybrid R@100 | cosine to torch (min / mean) | ms / query | × torch speed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b, q in quality.items():
        d, h = q["dense"], q["hybrid"]
        lines.append(f"| {b} | {d['ndcg@10']:.4f} | {d['recall@100']:.4f} | {h['ndcg@10']:.4f} | {h['recall@100']:.4f} | "
                     f"{fid[b]['cos_min']:.4f} / {fid[b]['cos_mean']:.4f} | {lat[b]:.2f} | {lat['torch'] / lat[b]:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/scifact"))
    ap.add_argument("--index", type=Path, default=Path("build/scifact"))
    ap.add_argument("--backends", default="torch,onnx,onnx-int8")
    ap.add_argument("--query-encoder", type=Path, action="append", default=[],
                    help="also measure this distilled query encoder on every backend (repeatable)")
    ap.add_argument("--latency-queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch docs/benchmarks.md")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from eval.benchmarks.retrieval import quality as split_quality
    from rag.queries import load_queries
    from rag.encoder import Encoder, EncoderConfig
    from rag.index import open_index

    spec = open_index(args.index).manifest.dense.encoder
    backends = args.backends.split(",")
    if "torch" not in backends:
        backends.insert(0, "torch")
    def load(backend: str, query_encoder: Path | None = None) -> Encoder:
        return Encoder(EncoderConfig.from_spec(spec, query_encoder=query_encoder, backend=backend,
                                               batch_size=1 if backend != "torch" else 8))

    encoders = {b: load(b) for b in backends}
    for q in args.query_encoder:
        encoders.update({f"{b} · {q.name}": load(b, q) for b in backends})
    quality = {}
    for b, enc in encoders.items():
        q = split_quality(open_index(args.index, encoder=enc), args.data, "test")
        quality[b] = {m: q[m] for m in ("dense", "hybrid")}
        print(json.dumps({b: quality[b]}), flush=True)
    texts = list(load_queries(args.data / "queries.jsonl").values())
    fid = fidelity(encoders, texts[:300])
    lat = latency_ms(encoders, texts[: args.latency_queries], args.rounds)
    result = {"quality": quality, "latency_ms": lat, "fidelity": fid}
    print(json.dumps({"latency_ms": lat, "fidelity": fid}))
    if not args.no_write:
        write_section("query-backends", render(quality, lat, fid, args))
    return result


if __name__ == "__main__":
    main()
