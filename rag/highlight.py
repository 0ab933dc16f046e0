"""Where a query's terms occur in a passage, as the index's analyzer matched them.

A word of the passage is highlighted when the analyzer turns it into a term that the query also
produces: "Running" matches the query "runs" under Snowball stemming (both give ``run``), "the"
never matches (a stopword gives no term). Spans are found without re-implementing the analyzer:
the passage is cut into candidate words — runs of letters and digits joined by apostrophes, and
every CJK ideograph and kana on its own, as Lucene's standard tokenizer (UAX #29) emits them —
and each candidate is passed through the analyzer itself. Whatever the analyzer does inside
(normalisation, case folding, stopwords, stemming), a highlighted word is one whose terms
intersect the query's.

Offsets are Python string indices (Unicode code points) into the passage text, end exclusive.

Example:
    >>> from indexes.manifest import AnalyzerSpec
    >>> from rag.analyzer import Analyzer
    >>> text = "Dogs were running; the dog runs."
    >>> [text[s:e] for s, e in match_spans(Analyzer(AnalyzerSpec()), "run dog", text)]
    ['Dogs', 'running', 'dog', 'runs']
"""

from __future__ import annotations

import re
from collections.abc import Callable

# One ideograph / kana per candidate (CJK Unified Ideographs and extensions A, compatibility
# ideographs, hiragana, katakana); otherwise a run of word characters, apostrophes inside.
_IDEOGRAPH = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CANDIDATE = re.compile(rf"[{_IDEOGRAPH}]|(?:(?![{_IDEOGRAPH}])[^\W_])+(?:['’](?:(?![{_IDEOGRAPH}])[^\W_])+)*")

Spans = list[tuple[int, int]]


def match_spans(analyzer: Callable[[str], list[str]], query: str, text: str) -> Spans:
    """``[(start, end), ...]`` of the words of ``text`` whose analyzed terms occur in ``query``'s.

    Args:
        analyzer: text → terms, e.g. :class:`rag.analyzer.Analyzer` (the index's, so that the
            spans are the words BM25 matched).
        query: the query text.
        text: the passage (or title) to mark.

    Returns:
        Non-overlapping spans in increasing order; empty when nothing matches.
    """
    terms = set(analyzer(query))
    if not terms or not text:
        return []
    return [(m.start(), m.end()) for m in _CANDIDATE.finditer(text) if terms.intersection(analyzer(m.group()))]
