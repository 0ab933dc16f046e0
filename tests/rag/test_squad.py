"""SQuAD v1.1/v2.0 JSON as a corpus (``rag index dev.json``), as queries and as qrels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexes.errors import InputError
from indexes.manifest import ChunkingSpec
from rag.chunking import split_corpus
from rag.cli import main
from rag.corpus import read_corpus
from rag.queries import load_qrels, load_queries
from rag.squad import read_squad

SQUAD = Path(__file__).parents[1] / "fixtures" / "squad-tiny.json"
PARAGRAPHS = ["Super_Bowl_50/p0", "Super_Bowl_50/p1", "Amazon_rainforest/p0"]


def test_paragraphs_are_documents_with_stable_readable_ids():
    # When
    docs = list(read_corpus(SQUAD))
    # Then one document per paragraph, in file order, titled without underscores
    assert [d.id for d in docs] == PARAGRAPHS
    assert docs[0].title == "Super Bowl 50" and docs[2].text.startswith("The Amazon rainforest")


def test_questions_are_queries_and_answerable_ones_judge_their_paragraph():
    assert load_queries(SQUAD) == {"sb1": "Which team won Super Bowl 50?", "sb2": "Where was the stadium of the game?",
                                   "am1": "What basin does the rainforest cover?",
                                   "am2": "What colour is the rainforest on Mars?"}
    # am2 is unanswerable (v2.0): no paragraph is relevant to it
    assert load_qrels(SQUAD) == {"sb1": {"Super_Bowl_50/p0": 1}, "sb2": {"Super_Bowl_50/p1": 1},
                                 "am1": {"Amazon_rainforest/p0": 1}}


def test_ids_never_clash_with_passage_windows():
    # Given paragraphs long enough to be cut into 8-word windows
    passages = list(split_corpus(read_corpus(SQUAD), ChunkingSpec(max_words=8, overlap_words=2)))
    # Then window ids extend the paragraph id, and all are distinct
    assert passages[0].id == "Super_Bowl_50/p0#0" and passages[0].doc_id == "Super_Bowl_50/p0"
    assert len({p.id for p in passages}) == len(passages)


def test_articles_sharing_a_title_continue_its_paragraph_numbers(tmp_path):
    f = tmp_path / "d.json"
    para = {"context": "text", "qas": []}
    f.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [para]}, {"title": "T", "paragraphs": [para, para]}]}))
    assert [p.id for p in read_squad(f)[0]] == ["T/p0", "T/p1", "T/p2"]


def test_a_malformed_squad_file_names_the_field(tmp_path):
    f = tmp_path / "d.json"
    f.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "ok"}, {"qas": []}]}]}))
    with pytest.raises(InputError, match=r"d\.json: data\[0\]\.paragraphs\[1\]\.context: expected a str"):
        list(read_corpus(f))


def test_json_lines_named_json_are_still_json_lines(tmp_path):
    f = tmp_path / "c.json"
    f.write_text('{"_id": "1", "text": "one"}\n{"_id": "2", "text": "two"}\n')
    assert [d.id for d in read_corpus(f)] == ["1", "2"]


def test_rag_index_search_and_eval_on_a_squad_file(tmp_path, capsys):
    # Given
    out = tmp_path / "squad"
    # When the SQuAD file is indexed directly (BM25 only), and searched and evaluated with its questions
    assert main(["index", str(SQUAD), "--out", str(out), "--no-dense"]) == 0
    capsys.readouterr()
    assert main(["search", "--index", str(out), "--mode", "bm25", "--json", "Which team won Super Bowl 50?"]) == 0
    top = json.loads(capsys.readouterr().out)["hits"][0]
    rc = main(["eval", "retrieval", "--index", str(out), "--queries", str(SQUAD), "--qrels", str(SQUAD),
               "--mode", "bm25", "--json"])
    metrics = json.loads(capsys.readouterr().out)
    # Then each answerable question finds its own paragraph first (its rarest terms occur only
    # there: "super bowl 50", "stadium", "basin"), so every rank-based metric is 1
    assert top["id"] == "Super_Bowl_50/p0" and top["title"] == "Super Bowl 50"
    assert rc == 0 and metrics["queries"] == 3 and metrics["mrr@10"] == 1.0 and metrics["ndcg@10"] == 1.0
