"""Analyzer version 2: Unicode word segmentation and case folding for every script, English unchanged,
and indexes built by version 1 still analyzed by version 1."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexes.errors import IndexFormatError
from indexes.manifest import ANALYZER_VERSION, V1_TOKEN_PATTERN, AnalyzerSpec, Manifest
from rag.analyzer import Analyzer, unicode_words
from rag.index import open_index
from rag.indexer import IndexOptions, build_index

PLAIN = AnalyzerSpec(stopwords="none", stemmer="none")


@pytest.mark.parametrize("text, words", [
    # one token per Han ideograph and per Hiragana character, as Lucene's StandardTokenizer (UAX #29)
    ("果园里的苹果秋天成熟", ["果", "园", "里", "的", "苹", "果", "秋", "天", "成", "熟"]),
    ("iPhone用のケース", ["iPhone", "用", "の", "ケース"]),  # Katakana runs stay whole
    ("DNA複製", ["DNA", "複", "製"]),
    # Hangul words stay whole; a one-syllable word is a word
    ("서울특별시의 한국어 물", ["서울특별시의", "한국어", "물"]),
    # combining marks stay in their word (Python's re \w splits these at every vowel sign)
    ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),
    ("ٱلْعَرَبِيَّة", ["ٱلْعَرَبِيَّة"]),
    ("தமிழ் மொழி", ["தமிழ்", "மொழி"]),
    # Thai has no spaces and UAX #29 without a dictionary gives one token per character cluster
    ("ภาษาไทยง่าย", ["ภ", "า", "ษ", "า", "ไ", "ท", "ย", "ง่", "า", "ย"]),
    # punctuation inside a word splits it, and single Latin letters and digits are dropped, as in v1
    ("don't U.S.A. 3.14 vitamin c d3 foo_bar", ["don", "14", "vitamin", "d3", "foo_bar"]),
    ("😀 — «Привет», мир!", ["Привет", "мир"]),
])
def test_unicode_words_by_hand(text, words):
    assert unicode_words(text) == words


def test_case_folding_is_unicode_case_folding():
    analyze = Analyzer(PLAIN)
    assert analyze("Straße") == analyze("STRASSE") == ["strasse"]
    assert analyze("ΣΑΣ") == analyze("σας") == ["σασ"]  # final sigma folds to σ
    assert analyze("ＡＢＣ Ⅻ") == ["abc", "xii"]  # NFKC: full-width letters, Roman numeral


def test_accents_are_kept_and_decomposed_accents_compose():
    analyze = Analyzer(PLAIN)
    assert analyze("cafe\u0301") == analyze("café") == ["café"] != analyze("cafe")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable, max_size=80))
def test_ascii_text_gets_exactly_the_terms_of_version_1(text):
    # English defaults (stopwords, stemming) apply; tokenisation of ASCII is unchanged
    assert Analyzer(AnalyzerSpec())(text) == Analyzer(AnalyzerSpec(version=1))(text)


def test_english_defaults_still_apply():
    assert Analyzer(AnalyzerSpec())("The Running Dogs are in the ＰＡＲＫ") == ["run", "dog", "park"]


@pytest.fixture(scope="module")
def cjk_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("cjk")
    corpus = root / "c.jsonl"
    rows = [{"_id": "z1", "text": "Apples ripen in the orchard in autumn."},
            {"_id": "z2", "text": "果园里的苹果秋天成熟"},
            {"_id": "z3", "text": "秋天的天空很蓝"},
            {"_id": "t1", "text": "ภาษาไทยง่ายนิดเดียว"},
            {"_id": "h1", "text": "हिन्दी भाषा सीखना आसान है"}]
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return root, corpus


def _bm25_ids(index_dir, query):
    return [h.id for h in open_index(index_dir).retriever("bm25").search(query, k=5)]


def test_bm25_finds_a_chinese_word_inside_a_sentence(cjk_corpus):
    # Given the corpus, indexed with the default analyzer
    root, corpus = cjk_corpus
    manifest, _ = build_index(corpus, root / "v2", IndexOptions(encoder=None, progress=False))
    # Then 苹果 (terms 苹, 果) matches only z2, 秋天 matches z2 and z3, and other scripts are found by a word
    assert manifest.bm25.analyzer.version == ANALYZER_VERSION == 2
    assert _bm25_ids(root / "v2", "苹果") == ["z2"]
    assert set(_bm25_ids(root / "v2", "秋天")) == {"z2", "z3"}
    assert _bm25_ids(root / "v2", "ภาษาไทย") == ["t1"]
    assert _bm25_ids(root / "v2", "हिन्दी") == ["h1"]


def test_an_index_without_an_analyzer_version_keeps_version_1(cjk_corpus):
    # Given an index whose manifest predates analyzer versions (built by v1, no "version" key)
    root, corpus = cjk_corpus
    build_index(corpus, root / "old", IndexOptions(analyzer=AnalyzerSpec(version=1), encoder=None, progress=False))
    path = root / "old" / "manifest.json"
    raw = json.loads(path.read_text())
    del raw["bm25"]["analyzer"]["version"]
    path.write_text(json.dumps(raw))
    # When it is opened
    analyzer = Manifest.read(root / "old").bm25.analyzer
    # Then its queries are analyzed as its passages were: v1 kept each run of ideographs whole
    assert (analyzer.version, analyzer.token_pattern) == (1, V1_TOKEN_PATTERN)
    assert _bm25_ids(root / "old", "果园里的苹果秋天成熟") == ["z2"]
    assert _bm25_ids(root / "old", "苹果") == []


def test_an_invalid_token_pattern_in_a_manifest_names_the_field(cjk_corpus):
    root, corpus = cjk_corpus
    build_index(corpus, root / "bad", IndexOptions(encoder=None, progress=False))
    path = root / "bad" / "manifest.json"
    raw = json.loads(path.read_text())
    raw["bm25"]["analyzer"]["token_pattern"] = "(unclosed"
    path.write_text(json.dumps(raw))
    with pytest.raises(IndexFormatError, match=r"invalid manifest field 'bm25\.analyzer\.token_pattern'"):
        Manifest.read(root / "bad")
