"""Text → BM25 terms: Unicode normalisation, case folding, word segmentation, stopwords, stemming.

Version 2 (the default, :data:`indexes.manifest.ANALYZER_VERSION`) analyzes every script:

1. **Normalise** (NFKC by default): full-width forms, ligatures and compatibility characters fold
   to their plain forms, and decomposed accents compose (``cafe`` + U+0301 → ``café``).
2. **Case-fold** with Unicode's full case folding (``str.casefold``, CaseFolding.txt): ``Straße``
   and ``STRASSE`` give the same term. The folding is language-independent: no Turkish dotless
   ``ı`` rule, as in Lucene's ``LowerCaseFilter`` and ICU's default folding. Accents are kept.
3. **Segment into words**: maximal runs of word characters (letters, combining marks, digits,
   connector punctuation), each split at the word boundaries of Unicode's UAX #29, as Lucene's
   ``StandardTokenizer`` splits text. So a Han ideograph or a Hiragana character is one token
   (``苹果`` → ``苹``, ``果``), Katakana and Hangul runs stay whole, and a combining mark stays in
   its word (Devanagari ``हिन्दी``, Arabic harakat). Thai, Lao, Khmer and Myanmar have no word
   separators and UAX #29 without a dictionary splits them into character clusters, which
   become the terms (as ideographs do; a dictionary segmenter would give words). Unlike UAX #29,
   punctuation inside a word always splits it (``don't`` → ``don``, ``t``; ``3.14`` → ``3``,
   ``14``), as version 1 and scikit-learn's default pattern did, so English text gives exactly
   version 1's terms.
4. **Drop one-character tokens**, except where one character is a word or a syllable:
   ideographs, kana, Hangul and the scripts written without spaces (Unicode line-break classes
   ID, CJ, SA, H2, H3, JL, JV, JT). A single Latin, Greek or Cyrillic letter or digit carries no
   signal (``vitamin c`` → ``vitamin``), as in version 1.
5. **Stopwords**: Lucene's 33-word English set, and 6. **stemming**: Snowball English
   (PyStemmer, a C implementation), as a Lucene ``EnglishAnalyzer`` in Anserini/Pyserini. Both
   only change English words; terms of other scripts pass through unchanged.

Version 1 (indexes built before the version was recorded): the matches of ``token_pattern``
(Python ``re``; ``(?u)\\b\\w\\w+\\b``) in ``str.lower()`` text. Such indexes keep it, so their
queries are analyzed as their passages were; rebuild them to analyze every script (2).

Segmentation uses the ``regex`` module: its ``WORD`` flag gives UAX #29 word boundaries and its
tables cover the Unicode properties used here; it is maintained with each Unicode release, ships
wheels for every platform, and is already a dependency of ``transformers``. PyICU (ICU's
``BreakIterator``, with dictionaries for Thai and CJK words) needs the ICU C++ libraries and a
compiler to install, which the offline ``make test`` on a fresh clone cannot assume.

Every step can be switched off through :class:`~indexes.manifest.AnalyzerSpec`, which is stored
in the manifest so queries are analyzed exactly as the corpus was.

Example:
    >>> Analyzer(AnalyzerSpec())("The Running dogs' ＡＢＣ")
    ['run', 'dog', 'abc']
    >>> Analyzer(AnalyzerSpec())("果园里的苹果")
    ['果', '园', '里', '的', '苹', '果']
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import regex
import Stemmer

from indexes.manifest import AnalyzerSpec

#: Lucene's ``EnglishAnalyzer.ENGLISH_STOP_WORDS_SET``.
LUCENE_ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with".split()
)

_WORD_RUN = regex.compile(r"\w+", regex.V1)  # letters, marks, digits, connector punctuation
_UAX29_BOUNDARY = regex.compile(r"\b", regex.V1 | regex.WORD)  # Unicode default word boundaries
_ONE_GRAPHEME = regex.compile(r"\X", regex.V1)
_WORD_SIZED_CHARACTER = regex.compile(
    r"[\p{Line_Break=ID}\p{Line_Break=CJ}\p{Line_Break=SA}"
    r"\p{Line_Break=H2}\p{Line_Break=H3}\p{Line_Break=JL}\p{Line_Break=JV}\p{Line_Break=JT}]", regex.V1)


def unicode_words(text: str) -> list[str]:
    """Steps 3 and 4 of version 2 (see the module docstring), on already normalised text.

    Example:
        >>> unicode_words("iPhone用のケース a 3.14 हिन्दी")
        ['iPhone', '用', 'の', 'ケース', '14', 'हिन्दी']
    """
    out = []
    for run in _WORD_RUN.findall(text):
        if run.isascii():  # UAX #29 never breaks between ASCII letters, digits and "_"
            if len(run) > 1:
                out.append(run)
            continue
        for word in _UAX29_BOUNDARY.split(run):
            if not word:
                continue
            if (len(word) == 1 or (len(word) < 8 and _ONE_GRAPHEME.fullmatch(word))) \
                    and not _WORD_SIZED_CHARACTER.match(word):
                continue
            out.append(word)
    return out


class Analyzer:
    """Callable analyzer; thread-safe (the stem cache is per instance and only grows)."""

    def __init__(self, spec: AnalyzerSpec) -> None:
        self.spec = spec
        self._pattern = re.compile(spec.token_pattern) if spec.token_pattern is not None else None
        self._fold = str.lower if spec.version == 1 else str.casefold
        self._stop = LUCENE_ENGLISH_STOPWORDS if spec.stopwords == "english" else frozenset()
        stemmer = None if spec.stemmer == "none" else Stemmer.Stemmer(spec.stemmer)
        # Stemming dominates analysis time; words repeat, so memoise (bm25s does the same).
        self._stem = lru_cache(maxsize=1 << 20)(stemmer.stemWord) if stemmer else None

    def __call__(self, text: str) -> list[str]:
        if self.spec.normalize != "none":
            text = unicodedata.normalize(self.spec.normalize, text)
        if self.spec.lowercase:
            text = self._fold(text)
        words = self._pattern.findall(text) if self._pattern is not None else unicode_words(text)
        tokens = [t for t in words if t not in self._stop]
        if self._stem is not None:
            tokens = [self._stem(t) for t in tokens]
        return tokens
