"""BM25 analyzer version 2 (Unicode word segmentation) against version 1 on real corpora.

Builds BM25-only indexes of SciFact with each analyzer version and compares their terms (passages
whose terms differ), analysis time and test-split quality; then indexes SQuAD v1.1 dev straight
from its JSON file and scores paragraph retrieval with its own questions as queries and qrels.
Writes the ``analyzer`` section of docs/benchmarks.md.

Usage:
    python -m eval.benchmarks.analyzer --scifact ../shared/data/scifact --squad ../shared/data/squad-dev/dev-v1.1.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from eval.benchmarks.report import machine, write_section
from eval.retrieval import evaluate
from indexes.manifest import AnalyzerSpec
from rag.analyzer import Analyzer
from rag.batch import search_run
from rag.corpus import read_corpus
from rag.encoder import passage_text
from rag.index import open_index
from rag.indexer import IndexOptions, build_index
from rag.queries import load_qrels, load_queries

METRICS = ("ndcg@10", "recall@100", "mrr@10")


def bm25_quality(corpus: Path, queries: dict[str, str], qrels, out: Path, analyzer: AnalyzerSpec) -> dict[str, float]:
    build_index(corpus, out, IndexOptions(analyzer=analyzer, encoder=None, progress=False))
    index = open_index(out)
    try:
        return evaluate(search_run(index, {q: queries[q] for q in qrels}, "bm25", k=100), qrels, METRICS)[0]
    finally:
        index.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scifact", type=Path, required=True)
    parser.add_argument("--squad", type=Path, required=True)
    args = parser.parse_args(argv)

    texts = [passage_text(d.title, d.text) for d in read_corpus(args.scifact / "corpus.jsonl")]
    v1, v2 = Analyzer(AnalyzerSpec(version=1)), Analyzer(AnalyzerSpec(version=2))
    seconds, terms = {}, {}
    for name, analyze in (("v1", v1), ("v2", v2)):
        t = time.perf_counter()
        terms[name] = [analyze(x) for x in texts]
        seconds[name] = time.perf_counter() - t
    differ = sum(a != b for a, b in zip(terms["v1"], terms["v2"]))
    non_ascii = sum(not x.isascii() for x in texts)

    queries, qrels = load_queries(args.scifact / "queries.jsonl"), load_qrels(args.scifact / "qrels" / "test.tsv")
    squad_q, squad_qrels = load_queries(args.squad), load_qrels(args.squad)
    with tempfile.TemporaryDirectory() as tmp:
        scifact = {name: bm25_quality(args.scifact / "corpus.jsonl", queries, qrels, Path(tmp) / name,
                                      AnalyzerSpec(version=v)) for name, v in (("v1", 1), ("v2", 2))}
        squad = bm25_quality(args.squad, squad_q, squad_qrels, Path(tmp) / "squad", AnalyzerSpec())

    rows = "\n".join(f"| SciFact test, analyzer {name} | {len(qrels)} | " + " | ".join(f"{m[k]:.4f}" for k in METRICS) + " |"
                     for name, m in scifact.items())
    rows += f"\n| SQuAD v1.1 dev paragraphs, analyzer v2 | {len(squad_qrels)} | " + " | ".join(f"{squad[k]:.4f}" for k in METRICS) + " |"
    markdown = f"""## BM25 analyzer version 2: Unicode word segmentation

Machine: {machine()}; {dt.date.today().isoformat()}. Command:
`python -m eval.benchmarks.analyzer --scifact ../shared/data/scifact --squad ../shared/data/squad-dev/dev-v1.1.json`
(BM25-only indexes, `lucene` k1=0.9 b=0.4, documents ranked by their best passage).

| corpus, analyzer | queries | nDCG@10 | Recall@100 | MRR@10 |
|---|---|---|---|---|
{rows}

Terms: of the {len(texts)} SciFact documents ({non_ascii} hold non-ASCII text: Greek letters,
accents, symbols), {differ} get different terms from version 2 than from version 1. Analysis of
the whole corpus: {seconds['v1']:.2f} s (v1) vs {seconds['v2']:.2f} s (v2). SQuAD is indexed from its JSON file (`rag index
dev-v1.1.json`: {len(squad_q)} questions, each answerable one judging its own paragraph
`<title>/p<n>` relevant; `rag eval retrieval --queries dev-v1.1.json --qrels dev-v1.1.json`).
"""
    print(markdown)
    write_section("analyzer", markdown)


if __name__ == "__main__":
    main()
