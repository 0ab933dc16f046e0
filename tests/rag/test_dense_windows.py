"""Dense retrieval reads every passage whole: token windows of the encoder's input, scored by MaxP."""

from __future__ import annotations

import json

import numpy as np
import pytest

from indexes.dense_store import PASSAGES_NAME, DenseStore, write_vectors
from indexes.manifest import FaissSpec, Manifest
from rag.index import open_index
from rag.indexer import IndexOptions, build_index
from rag.windows import fit_windows

FILLER = ("The committee met on Tuesday to review the annual budget, the office lease and the schedule of "
          "meetings for the coming year, and the minutes were approved without changes. ")
NEEDLE = "Axolotls regrow whole limbs, including bone, muscle and nerves, after an amputation."
DISTRACTORS = ["Bake the bread at a high temperature until the crust turns golden brown.",
               "The central bank raised interest rates to slow down inflation.",
               "The striker scored twice in the second half of the final.",
               "Glaciers carve deep valleys as they slowly move downhill.",
               "The opera premiered in Vienna and was an immediate success.",
               "Solar panels convert sunlight into electricity with semiconductor cells.",
               "The treaty ended a long war between the two kingdoms.",
               "Regular stretching improves flexibility and reduces muscle soreness.",
               "The novel follows a detective investigating a murder in Oslo.",
               "Coffee plants grow best at high altitudes in tropical climates.",
               "The spacecraft entered orbit around Jupiter after a five-year journey.",
               "Medieval castles were built with thick stone walls and moats.",
               "The programming language uses indentation to delimit blocks of code.",
               "Honey bees communicate the location of flowers with a waggle dance.",
               "The marathon route passes along the river and through the old town."]


@pytest.fixture(scope="module")
def long_passage_corpus(tmp_path_factory, encoder):
    """16 documents; ``long`` is ~470 word pieces and names axolotls only in its last sentence."""
    tok = encoder.model.tokenizer
    filler = ""
    while len(tok(filler + NEEDLE, add_special_tokens=False)["input_ids"]) < 455:
        filler += FILLER
    docs = [{"_id": "long", "title": "", "text": filler + NEEDLE}]
    docs += [{"_id": f"d{i:02d}", "title": "", "text": t} for i, t in enumerate(DISTRACTORS)]
    path = tmp_path_factory.mktemp("long") / "corpus.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    out = path.parent / "index"
    build_index(path, out, IndexOptions(progress=False), encoder=encoder)
    return path, out


def test_distinctive_sentence_past_the_encoder_window_ranks_first_by_dense(long_passage_corpus, encoder):
    # Given a 16-document corpus whose only axolotl sentence starts past MiniLM's 256-piece window
    _, out = long_passage_corpus
    text = open_index(out).store.get([open_index(out).store.rows_of(["long"])[0]])[0].text
    pieces = encoder.model.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(pieces) > encoder.model.max_seq_length + 150
    query = "Which amphibian can regrow its limbs?"
    # (the fault: one truncated vector per passage does not see the sentence)
    truncated = encoder.encode_passages([text])[0] @ encoder.encode_queries([query])[0]
    others = encoder.encode_passages(DISTRACTORS) @ encoder.encode_queries([query])[0]
    assert truncated < others.max()
    # When
    hits = open_index(out, encoder=encoder).retriever("dense").search(query, 3)
    # Then
    assert hits[0].id == "long"
    assert open_index(out, encoder=encoder).retriever("bm25").search("axolotl limbs", 1)[0].id == "long"


def test_manifest_records_the_windows_and_short_passages_keep_their_single_vector(long_passage_corpus, encoder):
    # Given
    _, out = long_passage_corpus
    manifest = Manifest.read(out)
    store = DenseStore(out / manifest.segments[0].name, manifest.dense.faiss, windowed=True)
    index = open_index(out, encoder=encoder)
    # Then: the long passage has several rows, every other passage exactly one, equal to encode_passages
    assert manifest.dense.windows.max_tokens == encoder.model.max_seq_length
    assert manifest.dense.vectors == store.vectors.shape[0] > len(store) == 16
    long_row = index.store.rows_of(["long"])[0]
    assert np.diff(store.offsets)[long_row] >= 2
    short_rows = [r for r in range(16) if r != long_row]
    assert set(np.diff(store.offsets)[short_rows]) == {1}
    texts = [p.text for p in index.store.get(short_rows)]
    np.testing.assert_allclose(store.vectors[store.offsets[short_rows]], encoder.encode_passages(texts), atol=1e-6)


def test_windows_are_verbatim_fit_the_encoder_and_cover_every_token(encoder):
    # Given a text of ~1,000 pieces
    tok, limit = encoder.model.tokenizer, encoder.model.max_seq_length
    text = " ".join(f"word{i} is followed by some ordinary filler text." for i in range(120))
    # When
    pieces = fit_windows(tok, text, limit, prefix="passage: ", overlap=32)
    # Then
    assert len(pieces) >= 4
    assert all(p in text for p in pieces)
    assert all(len(tok("passage: " + p)["input_ids"]) <= limit for p in pieces)
    assert pieces[0].startswith("word0 ") and pieces[-1].endswith("filler text.")
    covered = set()
    for p in pieces:
        start = text.index(p)
        covered.update(range(start, start + len(p)))
    assert covered >= {i for i, c in enumerate(text) if not c.isspace()}
    assert fit_windows(tok, "a short text", limit) == ["a short text"]


def test_flat_maxp_search_equals_brute_force_max_over_windows(tmp_path):
    # Given 300 passages with 1-4 windows each and random unit vectors
    rng = np.random.default_rng(0)
    owner = np.repeat(np.arange(300), rng.integers(1, 5, 300))
    x = rng.standard_normal((owner.size, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.standard_normal((7, 16)).astype(np.float32)
    write_vectors(tmp_path, x, owner)
    store = DenseStore(tmp_path, FaissSpec(kind="flat"), use_gpu=False, windowed=True)
    # When
    scores, rows = store.search(q, 20)
    # Then
    full = np.full((7, 300), -np.inf)
    for r, p in enumerate(owner):
        full[:, p] = np.maximum(full[:, p], q @ x[r])
    expected = np.argsort(-full, axis=1, kind="stable")[:, :20]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, 1), atol=1e-5)
    np.testing.assert_allclose(store.passage_scores(q[0], np.array([5, 0, 299])), full[0, [5, 0, 299]], atol=1e-5)


def test_an_index_without_a_window_map_reads_one_vector_per_passage(tmp_path):
    # Given vectors written the way indexes were before windowing (no vector_passages.npy)
    x = np.eye(4, dtype=np.float32)
    write_vectors(tmp_path, x)
    assert not (tmp_path / PASSAGES_NAME).exists()
    # When
    store = DenseStore(tmp_path, FaissSpec(kind="flat"), use_gpu=False)
    scores, rows = store.search(x[[2]], 2)
    # Then
    assert len(store) == 4 and rows[0, 0] == 2 and scores[0, 0] == pytest.approx(1.0)
