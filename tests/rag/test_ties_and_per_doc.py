"""Rankings under tied scores, and per-document search when one document has many windows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.retrieval import evaluate, read_trec_run, write_trec_run
from rag.batch import search_run
from rag.cli import main
from rag.index import open_index
from rag.indexer import IndexOptions, build_index

TWIN = "Tidal forces from the moon raise ocean tides twice a day."
DOCS = [{"_id": "b-tide", "title": "", "text": TWIN},  # relevant; first in doc-id order
        {"_id": "m-lunar", "title": "", "text": "The lunar surface is covered in fine dust and craters."},
        {"_id": "a-bread", "title": "", "text": "Knead the dough and let it rise before baking."},
        {"_id": "c-tide", "title": "", "text": TWIN}]  # an exact duplicate of b-tide


def write_jsonl(path: Path, docs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def twin_indexes(tmp_path_factory, encoder):
    """The same four documents indexed from the file in two orders."""
    root = tmp_path_factory.mktemp("twins")
    out = []
    for name, docs in (("fwd", DOCS), ("rev", DOCS[::-1])):
        build_index(write_jsonl(root / f"{name}.jsonl", docs), root / name, IndexOptions(progress=False), encoder=encoder)
        out.append(root / name)
    return out


def test_evaluation_scores_the_returned_order_of_tied_documents():
    # Given two documents with equal scores, the relevant one returned first
    # (pytrec_eval alone would order the tie by document id: c-tide first, MRR 0.5, nDCG 0.631)
    qrels = {"q": {"b-tide": 1}}
    run = {"q": {"b-tide": 0.7, "c-tide": 0.7, "m-lunar": 0.2}}
    # When
    means, _ = evaluate(run, qrels)
    # Then
    assert means["mrr@10"] == 1.0 and means["ndcg@10"] == 1.0 and means["map@100"] == 1.0
    # and the tie in the other order is evaluated in that order
    means, _ = evaluate({"q": {"c-tide": 0.7, "b-tide": 0.7}}, qrels)
    assert means["mrr@10"] == 0.5


def test_a_run_file_keeps_its_rank_order_for_tied_scores(tmp_path):
    # Given a run whose tied documents are not in id order
    run = {"q": {"z": 1.0, "a": 1.0, "m": 0.5}}
    # When
    write_trec_run(tmp_path / "r.trec", run)
    back = read_trec_run(tmp_path / "r.trec")
    # Then
    assert list(back["q"]) == ["z", "a", "m"]
    assert evaluate(back, {"q": {"z": 1}})[0]["mrr@10"] == 1.0


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_ties_break_by_document_id_whatever_the_corpus_order(twin_indexes, encoder, mode):
    # Given the same corpus indexed in two orders
    query = "why are there two ocean tides a day"
    # When
    runs = [[(h.id, h.score) for h in open_index(p, encoder=encoder).retriever(mode).search(query, 4)] for p in twin_indexes]
    top1 = [open_index(p, encoder=encoder).retriever(mode).search(query, 1)[0].id for p in twin_indexes]
    # Then: identical rankings and scores, the tie in doc-id order, also at the cut-off
    assert runs[0] == runs[1]
    assert [i for i, _ in runs[0][:2]] == ["b-tide", "c-tide"] and runs[0][0][1] == runs[0][1][1]
    assert top1 == ["b-tide", "b-tide"]


def test_eval_retrieval_of_tied_duplicates_reports_the_returned_ranking(twin_indexes, tmp_path, capsys):
    # Given
    queries = write_jsonl(tmp_path / "q.jsonl", [{"_id": "q", "text": "why are there two ocean tides a day"}])
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq\tb-tide\t1\n", encoding="utf-8")
    # When
    rc = main(["eval", "retrieval", "--index", str(twin_indexes[1]), "--queries", str(queries), "--qrels", str(qrels),
               "--mode", "bm25", "--json", "--run", str(tmp_path / "run.trec")])
    # Then
    metrics = json.loads(capsys.readouterr().out)
    assert rc == 0 and metrics["mrr@10"] == 1.0 and metrics["ndcg@10"] == 1.0
    assert (tmp_path / "run.trec").read_text().split()[2] == "b-tide"


@pytest.fixture(scope="module")
def crowded_index(tmp_path_factory):
    """One document split into 1,020 windows that all match 'apple' strongly, and 6 others that match once
    (more windows than the first depth of a k=100 evaluation, 100 + 9·100)."""
    root = tmp_path_factory.mktemp("crowd")
    docs = [{"_id": "big", "title": "", "text": " ".join(["apple"] * 5100)}]
    docs += [{"_id": f"s{i}", "title": "", "text": f"an apple {w}"} for i, w in enumerate(["pie", "tree", "juice", "core", "seed", "peel"])]
    corpus = write_jsonl(root / "c.jsonl", docs)
    out = root / "idx"
    assert main(["index", str(corpus), "--out", str(out), "--no-dense", "--passage-words", "5", "--overlap", "0"]) == 0
    return root, out


def test_per_doc_search_returns_k_documents_when_one_document_fills_the_passage_depth(crowded_index, capsys):
    # Given: 1,020 windows of 'big' outrank every other passage; per_document_depth(3) is 30
    root, out = crowded_index
    assert open_index(out).per_document_depth(3) == 30
    capsys.readouterr()
    # When
    rc = main(["search", "--index", str(out), "--mode", "bm25", "--per-doc", "-k", "3", "--json", "apple"])
    # Then
    docs = [h["doc_id"] for h in json.loads(capsys.readouterr().out)["hits"]]
    assert rc == 0 and len(docs) == 3 and docs[0] == "big" and len(set(docs)) == 3


def test_batch_search_and_eval_use_k_documents_too(crowded_index, capsys):
    # Given
    root, out = crowded_index
    index = open_index(out)
    # When
    run = search_run(index, {"q": "apple"}, "bm25", k=3)
    big_run = search_run(index, {"q": "apple"}, "bm25", k=100)
    # Then: three documents; and every matching document (7) when k exceeds them
    assert len(run["q"]) == 3 and next(iter(run["q"])) == "big"
    assert len(big_run["q"]) == 7
    queries = write_jsonl(root / "q.jsonl", [{"_id": "q", "text": "apple"}])
    (root / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq\ts5\t1\n", encoding="utf-8")
    capsys.readouterr()
    rc = main(["eval", "retrieval", "--index", str(out), "--queries", str(queries), "--qrels", str(root / "qrels.tsv"),
               "--mode", "bm25", "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["recall@100"] == 1.0
