"""Measurements behind the cost model of docs/scale-out.md: bytes, build time and query latency vs corpus size.

Synthetic corpora of N passages are made from real text: the sentences of SciFact's abstracts and
SQuAD dev's paragraphs, recombined at random (3-9 sentences per passage, fixed seed), so term
statistics and passage lengths look like a real collection while N can reach 1M. Each part is
measured with the toolkit's own writers and FAISS's index types:

* ``text``: ``passages.sqlite`` (:func:`indexes.passage_store.write_passages`): bytes and seconds per passage;
* ``bm25``: analyzer + postings (:class:`indexes.bm25_store.BM25Data`): bytes and seconds per passage;
* ``faiss``: random unit vectors of dim 384 (MiniLM's), which time and size FAISS exactly as real
  ones would (recall is not measured on them): flat, int8 scalar-quantised flat, HNSW (M=32) and
  IVF-PQ (d/4 sub-quantisers of 8 bits): index bytes, build seconds, query latency (one thread,
  k=10, one query at a time; median and p95 of ``--queries``);
* ``milvus``: the same vectors in a Milvus Lite collection (FLAT, IP) through pymilvus: insert,
  flush+load and query latency, file bytes, process RSS growth;
* ``encode``: passage windows per passage and encoder throughput on one core (torch and
  onnx-int8, a sample of synthetic passages) — the rate the encode hours are extrapolated from;
* ``kv``: SmolLM2 passage block tokens per passage (the tokenizer only).

Every result is appended as one JSON line to ``--results`` with the command, date and load
average; docs/scale-out.md tabulates them. Times are CPU seconds of one thread (``process_time``
/ ``thread_time``) unless named wall: on a shared machine they are what a core spends, where wall
time mostly measures the queue for a core.

Usage:
    python -m eval.benchmarks.scale_cost --sizes 10000 100000 1000000 --parts text bm25 faiss --results build/scale.jsonl
    python -m eval.benchmarks.scale_cost --sizes 10000 --parts milvus encode kv --results build/scale.jsonl
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

DIM = 384  # all-MiniLM-L6-v2


def sentences(data: Path) -> list[str]:
    """Sentences of SciFact's corpus and SQuAD dev's paragraphs."""
    split = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
    texts = [json.loads(line)["text"] for line in (data / "scifact" / "corpus.jsonl").open(encoding="utf-8") if line.strip()]
    squad = json.loads((data / "squad-dev" / "dev-v1.1.json").read_text(encoding="utf-8"))
    texts += [p["context"] for a in squad["data"] for p in a["paragraphs"]]
    return [s.strip() for t in texts for s in split.split(t) if len(s.split()) >= 4]


def synthetic_passages(pool: list[str], n: int, seed: int = 0):
    """``n`` passages of 3-9 random sentences of ``pool`` (ids p0000000.., one document each)."""
    from indexes.passage_store import Passage

    rng = np.random.default_rng(seed)
    counts = rng.integers(3, 10, size=n)
    picks = rng.integers(0, len(pool), size=int(counts.sum()))
    out, at = [], 0
    for i, c in enumerate(counts):
        text = " ".join(pool[j] for j in picks[at : at + c])
        at += c
        out.append(Passage(id=f"p{i:07d}", doc_id=f"p{i:07d}", title="", text=text))
    return out


def random_vectors(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)  # (n, d)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure_text(passages, tmp: Path) -> dict:
    from indexes.passage_store import write_passages

    folder = tmp / "text"
    folder.mkdir()
    t = time.process_time()
    write_passages(folder, passages)
    s = time.process_time() - t
    return {"part": "text", "bytes_per_passage": dir_bytes(folder) / len(passages), "cpu_s_per_passage": s / len(passages),
            "words_per_passage": float(np.mean([len(p.text.split()) for p in passages[:20000]]))}


def measure_bm25(passages, tmp: Path) -> dict:
    from indexes.bm25_store import BM25Data
    from indexes.manifest import AnalyzerSpec
    from rag.analyzer import Analyzer

    folder = tmp / "bm25"
    folder.mkdir()
    analyze = Analyzer(AnalyzerSpec())
    t = time.process_time()
    data = BM25Data.from_token_lists(analyze(p.text) for p in passages)
    data.write(folder)
    s = time.process_time() - t
    return {"part": "bm25", "bytes_per_passage": dir_bytes(folder) / len(passages), "cpu_s_per_passage": s / len(passages),
            "vocabulary": len(data.vocab)}


def _latency(search, queries: np.ndarray) -> dict:
    """Median / p95 wall ms per query and median CPU ms of this thread (what a core spends; robust to a shared machine)."""
    wall, cpu = [], []
    for q in queries:
        t, c = time.perf_counter(), time.thread_time()
        search(q[None, :])
        wall.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    return {"query_ms_p50": float(np.median(wall) * 1e3), "query_ms_p95": float(np.percentile(wall, 95) * 1e3),
            "query_cpu_ms_p50": float(np.median(cpu) * 1e3)}


def measure_faiss(n: int, kinds: list[str], n_queries: int, hnsw_max: int, nlist_max: int) -> Iterator[dict]:
    import faiss

    faiss.omp_set_num_threads(1)  # latency per core; builds below use the same single thread
    x = random_vectors(n)
    queries = random_vectors(n_queries, seed=1)
    for kind in kinds:
        if kind == "hnsw" and n > hnsw_max:
            continue
        t = time.process_time()
        if kind == "flat":
            index = faiss.IndexFlatIP(DIM)
        elif kind == "int8":
            index = faiss.IndexScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
            index.train(x[: min(n, 65536)])
        elif kind == "hnsw":  # as indexes.dense_store.build_faiss: M=32, efConstruction 64, efSearch 128
            index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 64
            index.hnsw.efSearch = 128
        else:  # ivfpq as build_faiss (4·sqrt(n) lists, d/4 sub-quantisers, nprobe 16), trained on a 39-per-list sample
            nlist = min(nlist_max, max(1, int(4 * np.sqrt(n))))
            index = faiss.IndexIVFPQ(faiss.IndexFlatIP(DIM), DIM, nlist, DIM // 4, 8, faiss.METRIC_INNER_PRODUCT)
            index.cp.max_points_per_centroid = 39  # train on 39·nlist points (FAISS's minimum): minutes, not hours, at 1M
            index.train(x[: min(n, 39 * nlist)])
            index.nprobe = 16
        index.add(x)
        build = time.process_time() - t
        yield {"part": "faiss", "kind": kind, "bytes_per_passage": faiss.serialize_index(index).size / n,
               "build_cpu_s_per_passage": build / n, **_latency(lambda q: index.search(q, 10), queries),
               **({"nlist": index.nlist} if kind == "ivfpq" else {})}
        del index


def measure_milvus(n: int, n_queries: int, tmp: Path) -> dict:
    import psutil
    from pymilvus import DataType, MilvusClient

    proc = psutil.Process()
    rss0 = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
    x = random_vectors(n)
    queries = random_vectors(n_queries, seed=1)
    uri = str(tmp / "milvus.db")
    t = time.perf_counter()
    client = MilvusClient(uri)
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    params = client.prepare_index_params()
    params.add_index(field_name="vec", index_type="FLAT", metric_type="IP")
    client.create_collection("passages", schema=schema, index_params=params)
    opened = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, n, 5000):
        client.insert("passages", [{"id": j, "vec": x[j]} for j in range(i, min(n, i + 5000))])
    insert = time.perf_counter() - t
    t = time.perf_counter()
    client.flush("passages")
    client.load_collection("passages")
    load = time.perf_counter() - t
    latency = _latency(lambda q: client.search("passages", data=[q[0]], limit=10, anns_field="vec", output_fields=["id"]), queries)
    rss1 = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
    client.close()
    return {"part": "milvus", "kind": "milvus-lite FLAT", "bytes_per_passage": dir_bytes(tmp) / n if (tmp / "milvus.db").is_dir()
            else os.path.getsize(uri) / n, "open_s": opened, "insert_s_per_passage": insert / n, "flush_load_s": load,
            **latency, "rss_growth_bytes_per_passage": (rss1 - rss0) / n}


def measure_encode(passages, sample: int) -> list[dict]:
    import torch

    from rag.encoder import Encoder, EncoderConfig

    torch.set_num_threads(1)
    texts = [p.text for p in passages[:sample]]
    rows = []
    for backend in ("torch", "onnx-int8"):
        enc = Encoder(EncoderConfig(device="cpu", backend=backend, onnx_threads=1))
        windows, owner = [], []
        for i, t in enumerate(texts):
            w = enc.passage_windows(t, 64)
            windows += w
            owner += [i] * len(w)
        enc.encode_passages(windows[:16])  # warm-up
        t = time.process_time()
        enc.encode_passages(windows)
        s = time.process_time() - t  # CPU seconds of this one-thread process: a core's rate, whatever the load
        rows.append({"part": "encode", "backend": backend, "windows_per_passage": len(windows) / len(texts),
                     "windows_per_cpu_s": len(windows) / s, "sample": len(texts)})
    return rows


def measure_kv(passages, sample: int) -> dict:
    from rag.generation.generator import Generator, GeneratorConfig
    from rag.generation.passage_cache import CacheConfig
    from rag.generation.prompt import PromptBuilder

    gen = Generator.load(GeneratorConfig("smollm2"))
    builder = PromptBuilder(gen, CacheConfig().template)
    tokens = [len(builder.block_ids(p.title, p.text)) for p in passages[:sample]]
    c = gen.model.config.get_text_config()
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    per_token = 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim * 2  # K and V, float16
    return {"part": "kv", "model": "smollm2", "tokens_per_passage": float(np.mean(tokens)), "bytes_per_token": per_token,
            "bytes_per_passage": float(np.mean(tokens)) * per_token, "sample": len(tokens)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--parts", nargs="+", default=["text", "bm25", "faiss"],
                    choices=["text", "bm25", "faiss", "milvus", "encode", "kv"])
    ap.add_argument("--kinds", nargs="+", default=["flat", "int8", "hnsw", "ivfpq"])
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--hnsw-max", type=int, default=100_000, help="largest N that builds HNSW (1M takes too long on 2 cores)")
    ap.add_argument("--nlist-max", type=int, default=256, help="cap on IVF lists (4·sqrt(N) is 4000 at 1M: its k-means does not fit here)")
    ap.add_argument("--sample", type=int, default=64, help="passages for the encode / kv parts")
    ap.add_argument("--results", type=Path, required=True)
    args = ap.parse_args(argv)
    pool = sentences(args.data)
    command = "python -m eval.benchmarks.scale_cost " + " ".join(sys.argv[1:] if argv is None else argv)
    for n in args.sizes:
        passages = synthetic_passages(pool, n) if set(args.parts) & {"text", "bm25", "encode", "kv"} else []
        tmp = Path(tempfile.mkdtemp(prefix=f"scale-{n}-", dir=args.results.parent))
        try:
            for part in args.parts:
                if part == "text":
                    rows = iter([measure_text(passages, tmp)])
                elif part == "bm25":
                    rows = iter([measure_bm25(passages, tmp)])
                elif part == "faiss":
                    rows = measure_faiss(n, args.kinds, args.queries, args.hnsw_max, args.nlist_max)
                elif part == "milvus":
                    rows = iter([measure_milvus(n, args.queries, tmp)])
                elif part == "encode":
                    rows = iter(measure_encode(passages, args.sample))
                else:
                    rows = iter([measure_kv(passages, args.sample)])
                for row in rows:  # each row is written as soon as it is measured
                    row.update(n=n, date=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                               load_avg_1m=round(os.getloadavg()[0], 1), command=command)
                    with args.results.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
                    print(json.dumps(row), flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
