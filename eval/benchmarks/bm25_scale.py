"""BM25 at scale: ours (MaxScore-pruned and exhaustive) vs bm25s (and rank-bm25), same tokens, one run.

Two corpora: BEIR SciFact (5,183 abstracts) and a synthetic corpus of ``--passages`` passages
(1,000,000 by default; ``--queries`` of the SciFact queries are timed on it) made of real text: every sentence of SciFact and of SQuAD v1.1 dev, each
analyzed once by our analyzer, recombined at random (seeded) into passages of 1-6 sentences. Both
libraries get the same analyzed tokens (bm25s through its ``Tokenized`` ids), the same BM25
(``lucene``, k1=0.9, b=0.4, as Anserini) and the same queries (the 1,109 SciFact queries,
analyzed, repeated terms removed, out-of-vocabulary terms dropped). Each query is answered alone
(top 10) on one thread; queries/s is the total over all queries. Top-10 agreement compares row
sets; a disagreement counts as a tie when every differing passage scores within 1e-5 (relative)
of the 10th score (bm25s scores in float32). Memory is the bytes of each index's arrays.

Usage:
    python -m eval.benchmarks.bm25_scale --data ../shared/data --passages 1000000
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
import time
import unittest.mock
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from eval.benchmarks.report import machine, write_section
from indexes.bm25_store import BM25Data
from indexes.manifest import AnalyzerSpec, BM25Spec
from rag.analyzer import Analyzer
from rag.bm25 import BM25Scorer
from rag.compat import numba as numba_compat

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sentences(data: Path) -> list[str]:
    out = []
    for line in (data / "scifact" / "corpus.jsonl").open(encoding="utf-8"):
        if line.strip():
            out += _SENTENCE.split(json.loads(line)["text"])
    squad = json.loads((data / "squad-dev" / "dev-v1.1.json").read_text(encoding="utf-8"))
    for article in squad["data"]:
        for para in article["paragraphs"]:
            out += _SENTENCE.split(para["context"])
    return [s for s in out if s.strip()]


def synthetic(token_lists: list[list[str]], n: int, seed: int) -> tuple[BM25Data, dict]:
    """``n`` passages of 1-6 random sentences (as token lists), built directly as a CSR matrix."""
    vocab: dict[str, int] = {}
    ids = [np.fromiter((vocab.setdefault(t, len(vocab)) for t in toks), np.int64, len(toks)) for toks in token_lists]
    flat = np.concatenate(ids)  # (T,)
    lens = np.fromiter((a.size for a in ids), np.int64, len(ids))  # (S,)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]])  # (S,)
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 7, size=n)  # sentences per passage (1-6: ~60 analyzed tokens, MS MARCO-like)
    chosen = rng.integers(0, len(ids), size=int(per.sum()))  # (C,)
    owner = np.repeat(np.arange(n), per)  # (C,) passage of each chosen sentence
    clen = lens[chosen]
    total = int(clen.sum())
    start = np.concatenate([[0], np.cumsum(clen)[:-1]])
    tok_pos = np.repeat(offs[chosen] - start, clen) + np.arange(total)  # (T',) positions in flat
    terms, docs = flat[tok_pos], np.repeat(owner, clen)
    tf = sp.coo_matrix((np.ones(total, np.int32), (terms, docs)), shape=(len(vocab), n)).tocsr()
    tf.sum_duplicates()
    dl = np.bincount(docs, minlength=n)
    words = tuple(sorted(vocab, key=vocab.__getitem__))
    stats = {"passages": n, "sentences_pool": len(ids), "vocabulary": int(np.count_nonzero(np.diff(tf.indptr))),
             "tokens": total, "postings": int(tf.nnz), "len_mean": float(dl.mean()), "len_median": float(np.median(dl)),
             "len_p90": float(np.percentile(dl, 90)), "len_max": int(dl.max())}
    return BM25Data(words, tf, dl.astype(np.int64)), stats


def bm25s_index(data: BM25Data):
    import bm25s
    from bm25s.tokenization import Tokenized

    csc = data.tf.T.tocsr()  # (N, V): each passage's terms, repeated by tf
    ids = [np.repeat(csc.indices[a:b], csc.data[a:b]).tolist() for a, b in zip(csc.indptr[:-1], csc.indptr[1:])]
    model = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
    model.index(Tokenized(ids=ids, vocab={t: i for i, t in enumerate(data.vocab)}), show_progress=False)
    return model


def run_ours(scorer: BM25Scorer, queries: list[np.ndarray], path: str) -> tuple[list, float]:
    """Answer every query on one of our paths: ``top_k`` with or without numba, or an exhaustive scan."""
    kernels = numba_compat.bm25_kernels()
    none = np.zeros(0, dtype=bool)
    fn = {"compiled": scorer.top_k, "numpy": scorer.top_k, "numpy-exhaustive": scorer.top_k_exhaustive,
          "compiled-exhaustive": lambda q, k: kernels.exhaustive_top_k(scorer.indptr, scorer.indices, scorer.weights,
                                                                       scorer.n_docs, q, k, none)}[path]
    numpy_only = contextlib.nullcontext() if path.startswith("compiled") else \
        unittest.mock.patch.object(numba_compat, "bm25_kernels", lambda: None)
    with numpy_only:
        fn(queries[0], 10)  # warm-up: loads the compiled kernels from numba's cache (or compiles them once)
        t = time.perf_counter()
        out = [fn(q, 10) for q in queries]
        return out, time.perf_counter() - t


def run_bm25s(model, queries: list[np.ndarray], backend: str = "numpy") -> tuple[list, float]:
    model.backend = backend
    model.retrieve([queries[0].tolist()], k=10, show_progress=False, n_threads=0, backend_selection=backend)  # JIT warm-up
    out = []
    t = time.perf_counter()
    for q in queries:
        docs, scores = model.retrieve([q.tolist()], k=10, show_progress=False, n_threads=0, backend_selection=backend)
        out.append((docs[0], scores[0]))
    return out, time.perf_counter() - t


def alternating(scorer: BM25Scorer, model, queries: list[np.ndarray], rounds: int) -> tuple[float, float]:
    """Queries/s of ours (``top_k``) and bm25s-numba timed call by call, the two alternating per query.

    Each call then finds the other library's data in the CPU caches, as in a process doing other
    work between queries; the best of ``rounds`` per query is summed.
    """
    ours = lambda q: scorer.top_k(q, 10)  # noqa: E731
    theirs = lambda q: model.retrieve([q.tolist()], k=10, show_progress=False, n_threads=0, backend_selection="numba")  # noqa: E731
    best = np.full((2, len(queries)), np.inf)
    for r in range(rounds):
        for j, q in enumerate(queries):
            for which in ((0, 1) if (r + j) % 2 == 0 else (1, 0)):
                t = time.perf_counter()
                (ours, theirs)[which](q)
                best[which, j] = min(best[which, j], time.perf_counter() - t)
    return len(queries) / best[0].sum(), len(queries) / best[1].sum()


def agreement(scorer: BM25Scorer, ours: list, theirs: list, queries: list[np.ndarray]) -> tuple[int, int, int]:
    """(identical top-10 sets, differing only by ties, really different)."""
    same = ties = diff = 0
    for (rows, scores), (docs, _), q in zip(ours, theirs, queries):
        a, b = set(rows.tolist()), set(int(d) for d in docs)
        if a == b:
            same += 1
            continue
        full = scorer.scores(q)
        kth = scores[-1]
        if all(abs(full[r] - kth) <= 1e-5 * max(1.0, abs(kth)) for r in a ^ b):
            ties += 1
        else:
            diff += 1
    return same, ties, diff


def bench(name: str, data: BM25Data, analyzer: Analyzer, query_texts: list[str], rank_bm25_tokens=None,
          n_queries: int | None = None, rounds: int = 3) -> list[str]:
    t = time.perf_counter()
    scorer = BM25Scorer(data, BM25Spec(variant="lucene", k1=0.9, b=0.4), prune_min_docs=0)
    ours_build = time.perf_counter() - t
    queries = [np.unique(scorer.lookup(analyzer(q))) for q in query_texts]
    queries = [q for q in queries if q.size][:n_queries]
    t = time.perf_counter()
    model = bm25s_index(data)
    theirs_build = time.perf_counter() - t
    kernels = numba_compat.bm25_kernels()
    head = scorer.indptr[:2]  # one term: loads the compiled builders from numba's cache, untimed
    kernels.window_blocks(head, scorer.indices, scorer.weights), kernels.kth_largest(head, scorer.weights, 1)
    kernels.sub_blocks(head, scorer.indices, scorer.weights, scorer.upper[:1], scorer.n_docs, 1 << 62)
    t = time.perf_counter()  # what the first pruned query of a process builds (numba cache load excluded)
    blocks, subs, seeds = scorer.prepare_pruning()
    prep_s, prep_mb = time.perf_counter() - t, sum(a.nbytes for a in (*blocks, *subs, seeds)) / 2**20
    runs = {"compiled": lambda: run_ours(scorer, queries, "compiled"), "numba": lambda: run_bm25s(model, queries, "numba"),
            "numpy": lambda: run_ours(scorer, queries, "numpy"),
            "compiled-exhaustive": lambda: run_ours(scorer, queries, "compiled-exhaustive"),
            "numpy-exhaustive": lambda: run_ours(scorer, queries, "numpy-exhaustive")}
    out, best = {}, {}
    for r in range(rounds):  # interleaved rounds, best of each: the VM is shared, bursts of load hit one round
        for path in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            res, sec = runs[path]()
            out.setdefault(path, res)
            best[path] = min(best.get(path, np.inf), sec)
    alt_ours, alt_theirs = alternating(scorer, model, queries, rounds)
    (pruned, s_pruned), (np_pruned, s_np_pruned) = (out["compiled"], best["compiled"]), (out["numpy"], best["numpy"])
    (cfull, s_cfull), (full, s_full) = (out["compiled-exhaustive"], best["compiled-exhaustive"]), (out["numpy-exhaustive"], best["numpy-exhaustive"])
    numba, s_numba = out["numba"], best["numba"]
    theirs, s_theirs = run_bm25s(model, queries)
    same_numba = sum(set(a[0].tolist()) == set(int(d) for d in b[0]) for a, b in zip(pruned, numba))
    same, ties, diff = agreement(scorer, pruned, theirs, queries)
    exact = sum(a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist() for a, b in zip(pruned, full))
    exact_np = sum(a[0].tolist() == b[0].tolist() for a, b in zip(np_pruned, full))
    exact_cfull = sum(a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist() for a, b in zip(cfull, full))
    ours_mb = sum(a.nbytes for a in (scorer.indptr, scorer.indices, scorer.weights, scorer.upper, scorer.lower)) / 2**20
    theirs_mb = sum(np.asarray(model.scores[k]).nbytes for k in ("data", "indices", "indptr")) / 2**20
    Q = len(queries)
    row = lambda label, s, extra="": f"| {label} | {Q / s:,.0f} | {s_theirs / s:.2f} | {s_numba / s:.2f} | {extra}"
    lines = [f"**{name}** ({data.n_docs:,} passages, {Q} queries, top-10, one thread):", "",
             "| implementation | queries/s | × bm25s | × bm25s-numba | index arrays (MiB) | build from counts (s) |",
             "|---|---|---|---|---|---|",
             row("ours, compiled block-max MaxScore (`top_k`, numba installed)", s_pruned,
                 f"{ours_mb:,.0f} + {prep_mb:,.0f} | {ours_build:.1f} + {prep_s:.1f} |"),
             row("ours, numpy MaxScore (`top_k` without numba)", s_np_pruned, f"{ours_mb:,.0f} | |"),
             row("ours, compiled exhaustive (`bm25_kernels.exhaustive_top_k`)", s_cfull, f"{ours_mb:,.0f} | |"),
             row("ours, numpy exhaustive (`top_k_exhaustive`)", s_full, f"{ours_mb:,.0f} | |"),
             row(f"bm25s {__import__('bm25s').__version__} (default numpy backend, same tokens)", s_theirs,
                 f"{theirs_mb:,.0f} | {theirs_build:.1f} |"),
             row("bm25s, numba backend (JIT-compiled loops; compile time excluded)", s_numba, f"{theirs_mb:,.0f} | |")]
    if rank_bm25_tokens is not None:
        from rank_bm25 import BM25Okapi

        rb = BM25Okapi(rank_bm25_tokens)
        okapi = BM25Scorer(data, BM25Spec(variant="okapi"))
        sample = query_texts[:100]
        t = time.perf_counter()
        for q in sample:
            np.argsort(-rb.get_scores(analyzer(q)))[:10]
        rb_qps = len(sample) / (time.perf_counter() - t)
        t = time.perf_counter()
        for q in sample:
            okapi.top_k(okapi.lookup(analyzer(q)), 10)
        ok_qps = len(sample) / (time.perf_counter() - t)
        lines.append(f"| rank-bm25 `BM25Okapi` (100 queries; ours `okapi` on them: {ok_qps:,.0f} q/s) | {rb_qps:,.1f} | "
                     f"{s_theirs / Q * rb_qps:.3f} | {s_numba / Q * rb_qps:.4f} | | |")
    lines += ["", f"Best of {rounds} interleaved rounds per implementation (bm25s's default backend: one round). "
              f"The compiled path's block maxima and starting thresholds (`+` above) are built on its first query. "
              f"Top-10 vs bm25s: {same}/{Q} identical sets, {ties} differ only by ties at the 10th score (float32 in bm25s), "
              f"{diff} otherwise (numba backend: {same_numba}/{Q} identical sets). Compiled MaxScore vs numpy exhaustive: {exact}/{Q} "
              f"identical ranked lists with bit-identical scores (compiled exhaustive: {exact_cfull}/{Q}; numpy MaxScore: {exact_np}/{Q} identical lists). "
              f"Ours (compiled MaxScore) vs bm25s-numba: **{s_numba / s_pruned:.2f}×** the queries/s; timed call by call "
              f"with the two alternating per query (best of {rounds}): ours {alt_ours:,.0f} q/s, bm25s-numba {alt_theirs:,.0f} q/s, "
              f"**{alt_ours / alt_theirs:.2f}×**.", ""]
    print("\n".join(lines), flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with scifact/ and squad-dev/")
    ap.add_argument("--passages", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--queries", type=int, default=300, help="queries timed on the synthetic corpus (first N SciFact queries)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (best kept)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    analyzer = Analyzer(AnalyzerSpec())
    query_texts = [json.loads(line)["text"] for line in (args.data / "scifact" / "queries.jsonl").open(encoding="utf-8") if line.strip()]
    rows = [json.loads(line) for line in (args.data / "scifact" / "corpus.jsonl").open(encoding="utf-8") if line.strip()]
    sci_tokens = [analyzer(f"{r.get('title', '')} {r['text']}") for r in rows]
    out = ["## BM25 at scale: ours vs bm25s (same tokens)", "",
           f"Machine: {machine()}; a 2-core VM **shared with other engineers' jobs**, so rates are indicative and only "
           f"ratios measured in the same run compare. Date: {dt.date.today().isoformat()}. Command: "
           f"`nice -n 10 python -m eval.benchmarks.bm25_scale --data {args.data} --passages {args.passages} --queries {args.queries}`.", ""]
    out += bench("SciFact", BM25Data.from_token_lists(sci_tokens), analyzer, query_texts, rank_bm25_tokens=sci_tokens, rounds=args.rounds)
    t = time.perf_counter()
    sents = sentences(args.data)
    data, stats = synthetic([analyzer(s) for s in sents], args.passages, args.seed)
    print(f"synthetic corpus built in {time.perf_counter() - t:.0f}s: {stats}", flush=True)
    out += [f"Synthetic corpus: {stats['passages']:,} passages of 1-6 sentences drawn (seed {args.seed}) from "
            f"{stats['sentences_pool']:,} SciFact and SQuAD-dev sentences; vocabulary {stats['vocabulary']:,} terms, "
            f"{stats['tokens']:,} tokens, {stats['postings']:,} postings; analyzed length mean {stats['len_mean']:.1f}, "
            f"median {stats['len_median']:.0f}, p90 {stats['len_p90']:.0f}, max {stats['len_max']}.", ""]
    out += bench("Synthetic", data, analyzer, query_texts, n_queries=args.queries, rounds=args.rounds)
    if not args.no_write:
        write_section("bm25-scale", "\n".join(out))


if __name__ == "__main__":
    main()
