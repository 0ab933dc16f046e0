"""``POST /answer`` with ``kv_cache``: opening the passage KV states per request vs once per commit.

Every ``kv_cache`` request used to open the index's KV store (read the manifest, fingerprint the
prompt template, ``safe_open`` every shard and list its keys); the service now opens it once per
(commit, generator) (``service.state.LoadedIndex.passage_states``). Two figures on an index whose
KV store holds SmolLM2 states:

1. in process: the time of :func:`rag.generation.passage_cache.open_passage_states` (what each
   request paid) against the cached lookup (what each request pays now), median of ``--repeat``;
2. over HTTP (with ``--before TREE``, a source tree of the old code, e.g. from ``git archive``):
   client-side latency of ``--requests`` ``kv_cache`` answers of one new token (SQuAD questions on
   the articles whose states are stored; bm25, k = 3), after one warm-up request, from a server
   started from ``TREE`` and one from this tree, one after the other.

Usage:
    python -m eval.benchmarks.answer_kv_states --index build/squad --generator smollm2 \\
        --squad ../shared/data/squad-dev/dev-v1.1.json [--before /tmp/old-tree] [--requests 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def in_process(index: Path, generator: str, repeat: int) -> dict[str, float]:
    """Median ms of opening the states (per request, before) and of the cached lookup (now)."""
    from rag.generation.generator import Generator, GeneratorConfig
    from rag.generation.passage_cache import CacheConfig, open_passage_states
    from rag.index import Index
    from service.state import LoadedIndex

    gen, idx = Generator.load(GeneratorConfig(generator)), Index(index)
    entry = LoadedIndex("bench", idx.manifest, index=idx)
    opens, lookups = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        open_passage_states(index, gen, CacheConfig())
        opens.append(time.perf_counter() - t)
    entry.passage_states(gen, CacheConfig())
    for _ in range(repeat):
        t = time.perf_counter()
        entry.passage_states(gen, CacheConfig())
        lookups.append(time.perf_counter() - t)
    shards = len(entry.passage_states(gen, CacheConfig()).store.spec.shards)
    return {"open_ms": 1e3 * statistics.median(opens), "lookup_ms": 1e3 * statistics.median(lookups), "shards": shards}


def store_open_ms(folder: Path, repeat: int) -> str:
    """Shards, passages and median ms of opening the KV store at ``folder`` (the bulk of ``open_passage_states``)."""
    from indexes.kv_store import KVStore

    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        store = KVStore(folder)
        times.append(time.perf_counter() - t)
    return f"{len(store.spec.shards)} shards, {len(store)} passages: {1e3 * statistics.median(times):.1f} ms"


def questions(squad: Path, index: Path, generator_titles: set[str], n: int) -> list[str]:
    """``n`` SQuAD questions of the articles whose passages the KV store holds."""
    data = json.loads(squad.read_text(encoding="utf-8"))["data"]
    return [qa["question"] for art in data if art["title"] in generator_titles
            for para in art["paragraphs"] for qa in para["qas"]][:n]


def http(tree: Path, index: Path, generator: str, texts: list[str]) -> list[float]:
    """Client-side seconds of each ``kv_cache`` answer after a warm-up, from a server run from ``tree``."""
    import httpx

    port = 8700 + os.getpid() % 200
    env = {**os.environ, "PYTHONPATH": str(tree), "RAG_ANSWER_MAX_NEW_TOKENS": "1", "HF_HUB_OFFLINE": "1"}
    log = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--index", f"squad={index}", "--generator",
                             generator, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tree)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server from {tree} did not start; log: {log.name}")
            time.sleep(1)
        out = []
        with httpx.Client(base_url=url, timeout=600) as c:
            for i, q in enumerate([texts[0], *texts]):
                t = time.perf_counter()
                r = c.post("/answer", json={"question": q, "k": 3, "mode": "bm25", "kv_cache": True})
                assert r.status_code == 200, r.text
                if i:  # the first request opens the states in both versions
                    out.append(time.perf_counter() - t)
        return out
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--index", type=Path, required=True)
    p.add_argument("--generator", default="smollm2")
    p.add_argument("--squad", type=Path, default=Path("../shared/data/squad-dev/dev-v1.1.json"))
    p.add_argument("--before", type=Path, help="Source tree of the old code (per-request opening), for the HTTP A/B.")
    p.add_argument("--requests", type=int, default=8)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--store", type=Path, action="append", default=[],
                   help="Also time opening this KV store folder (read only; any model's), to see the cost grow with shards.")
    a = p.parse_args()
    r = in_process(a.index, a.generator, a.repeat)
    print(f"in process ({r['shards']} shards): open_passage_states {r['open_ms']:.1f} ms per request before, "
          f"cached lookup {r['lookup_ms'] * 1e3:.1f} µs now", flush=True)
    for folder in a.store:
        print(f"KVStore open of {folder} ({store_open_ms(folder, a.repeat)})", flush=True)
    if a.before is None:
        return
    from indexes.kv_store import KVStore
    from indexes.manifest import Manifest

    store = KVStore(a.index / next(c.path for c in Manifest.read(a.index).caches if c.kind == "kv"))
    titles = {pid.split("/")[0].split("#")[0] for pid in store.ids()}
    texts = questions(a.squad, a.index, titles, a.requests)
    for name, tree in (("before", a.before), ("now", ROOT)):
        s = http(tree, a.index, a.generator, texts)
        print(f"HTTP {name}: median {1e3 * statistics.median(s):.0f} ms, min {1e3 * min(s):.0f}, max {1e3 * max(s):.0f} "
              f"({len(s)} kv_cache answers of one token)", flush=True)


if __name__ == "__main__":
    main()
