"""An encoder that remembers what it encoded: the same vectors, each text computed once.

Answering many questions over one index encodes the same passages' sentences again and again
(SQuAD asks ~5 questions per paragraph): wrapping the encoder makes extractive answering encode
each sentence once, and :meth:`CachingEncoder.warm_queries` encodes all questions in full
batches up front. Memory grows with the distinct texts seen: 4·d bytes each (1.5 KB for d = 384).

Example:
    >>> class Toy:
    ...     dim = 1
    ...     def encode_queries(self, texts): return np.ones((len(texts), 1))
    ...     encode_passages = encode_queries
    >>> enc = CachingEncoder(Toy())
    >>> enc.encode_passages(["a", "b", "a"]).shape, enc.dim
    ((3, 1), 1)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class CachingEncoder:
    """Wraps an encoder; everything but the two ``encode_*`` methods (``dim``, ``spec``, …) is the wrapped one's.

    Args:
        encoder: anything with ``encode_queries`` and ``encode_passages`` (an :class:`rag.encoder.Encoder`).
    """

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def __getattr__(self, name: str):
        return getattr(self.encoder, name)

    def _get(self, kind: str, texts: Sequence[str], encode) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if (kind, t) not in self._cache]
        if missing:
            for text, vector in zip(missing, encode(missing)):
                self._cache[kind, text] = vector
        return np.stack([self._cache[kind, t] for t in texts]) if texts else self.encoder.encode_queries([])

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Query vectors, shape (len(queries), d)."""
        return self._get("query", queries, self.encoder.encode_queries)

    def encode_passages(self, passages: Sequence[str], progress: bool = False) -> np.ndarray:
        """Passage vectors, shape (len(passages), d)."""
        return self._get("passage", passages, self.encoder.encode_passages)

    def warm_queries(self, queries: Sequence[str]) -> None:
        """Encode ``queries`` now, in the wrapped encoder's batches."""
        self.encode_queries(list(queries))
