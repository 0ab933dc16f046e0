"""Documents → passages: windows of whitespace tokens with overlap.

A document of at most ``max_words`` tokens stays whole and keeps its id. A longer one becomes
windows of ``max_words`` tokens starting every ``max_words - overlap_words`` tokens, with ids
``DOCID#0``, ``DOCID#1``, …; each window is cut from the original text, so spacing and line
breaks survive. Every passage keeps its document id and title, so results can be reported per
document (max-passage, as in Dai & Callan, SIGIR 2019).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from indexes.errors import InputError
from indexes.manifest import ChunkingSpec
from indexes.passage_store import Passage
from rag.corpus import Document

_WORD = re.compile(r"\S+")


def split_document(doc: Document, spec: ChunkingSpec) -> list[Passage]:
    """The passages of one document (see the module docstring).

    Example:
        >>> d = Document("d1", "T", "a b c d e")
        >>> [p.text for p in split_document(d, ChunkingSpec(max_words=3, overlap_words=1))]
        ['a b c', 'c d e']
    """
    spans = [m.span() for m in _WORD.finditer(doc.text)]
    if len(spans) <= spec.max_words:
        return [Passage(doc.id, doc.id, doc.title, doc.text, doc.metadata)]
    stride = spec.max_words - spec.overlap_words
    out = []
    for n, start in enumerate(range(0, len(spans) - spec.overlap_words, stride)):
        window = spans[start : start + spec.max_words]
        out.append(Passage(f"{doc.id}#{n}", doc.id, doc.title, doc.text[window[0][0] : window[-1][1]], doc.metadata))
        if start + spec.max_words >= len(spans):
            break
    return out


def split_corpus(docs: Iterable[Document], spec: ChunkingSpec) -> Iterator[Passage]:
    """Passages of every document, in order."""
    if spec.overlap_words >= spec.max_words:
        raise InputError(f"--overlap ({spec.overlap_words}) must be smaller than --passage-words ({spec.max_words})")
    for doc in docs:
        yield from split_document(doc, spec)
