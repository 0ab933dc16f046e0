"""Text → BM25 terms: Unicode normalisation, lowercasing, tokenising, stopwords, stemming.

The default chain mirrors a Lucene ``EnglishAnalyzer`` as used by Anserini/Pyserini: Lucene's
33-word English stopword set and a Snowball stemmer (PyStemmer, a C implementation). Every step
can be switched off through :class:`~indexes.manifest.AnalyzerSpec`, which is stored in the
manifest so queries are analyzed exactly as the corpus was.

Example:
    >>> Analyzer(AnalyzerSpec())("The Running dogs' ＡＢＣ")
    ['run', 'dog', 'abc']
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer

from indexes.manifest import AnalyzerSpec

#: Lucene's ``EnglishAnalyzer.ENGLISH_STOP_WORDS_SET``.
LUCENE_ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)


class Analyzer:
    """Callable analyzer; thread-safe (the stem cache is per instance and only grows)."""

    def __init__(self, spec: AnalyzerSpec) -> None:
        self.spec = spec
        self._pattern = re.compile(spec.token_pattern)
        self._stop = LUCENE_ENGLISH_STOPWORDS if spec.stopwords == "english" else frozenset()
        stemmer = None if spec.stemmer == "none" else Stemmer.Stemmer(spec.stemmer)
        # Stemming dominates analysis time; words repeat, so memoise (bm25s does the same).
        self._stem = lru_cache(maxsize=1 << 20)(stemmer.stemWord) if stemmer else None

    def __call__(self, text: str) -> list[str]:
        if self.spec.normalize != "none":
            text = unicodedata.normalize(self.spec.normalize, text)
        if self.spec.lowercase:
            text = text.lower()
        tokens = [t for t in self._pattern.findall(text) if t not in self._stop]
        if self._stem is not None:
            tokens = [self._stem(t) for t in tokens]
        return tokens
