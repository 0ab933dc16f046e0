"""Shared pieces of the live-index tests: a tiny deterministic encoder and corpus writers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from indexes.manifest import EncoderSpec

WORDS = ("virus", "vaccine", "sky", "blue", "light", "ocean", "salt", "gene", "cell", "protein", "storm", "rain")


class HashEncoder:
    """Bag-of-words vectors from word hashes: exact and batch-independent, so a fresh build and an
    updated index hold bit-identical vectors. Texts of more than 12 words get two windows (MaxP)."""

    dim = 16

    def spec(self) -> EncoderSpec:
        return EncoderSpec(model="test:hash", dim=self.dim, max_seq_length=12)

    def _vector(self, words: Sequence[str]) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        for w in words:
            v[int(hashlib.sha256(w.encode()).hexdigest(), 16) % self.dim] += 1.0
        v[0] += 0.5  # never the zero vector
        return v / np.linalg.norm(v)

    def encode_passage_windows(self, texts: Sequence[str], overlap: int, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        rows, owner = [], []
        for j, t in enumerate(texts):
            words = t.lower().split()
            for part in ([words] if len(words) <= 12 else [words[:12], words[6:]]):
                rows.append(self._vector(part))
                owner.append(j)
        return np.stack(rows), np.asarray(owner, np.int64)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        return np.stack([self._vector(q.lower().split()) for q in queries])


def text_of(doc_id: str, version: int) -> str:
    """A deterministic text for ``doc_id`` at ``version`` (lengths 3..20 words, so some have two windows)."""
    rng = np.random.default_rng(int(hashlib.sha256(f"{doc_id}/{version}".encode()).hexdigest()[:8], 16))
    return " ".join(rng.choice(WORDS, size=int(rng.integers(3, 21))))


def meta_of(doc_id: str, version: int) -> dict:
    """Deterministic metadata of ``doc_id`` at ``version``: ``year`` (an int, sometimes x.5 or the string
    "n/a"), ``source`` (a/b/c), ``open`` (a bool) and ``flag`` (``true`` or ``1``: never the same
    for a filter); each field sometimes absent or null."""
    rng = np.random.default_rng(int(hashlib.sha256(f"meta/{doc_id}/{version}".encode()).hexdigest()[:8], 16))
    m: dict = {}
    if rng.random() < 0.9:
        m["year"] = [int(rng.integers(2000, 2006)), int(rng.integers(2000, 2006)) + 0.5, "n/a"][int(rng.choice(3, p=[.7, .2, .1]))]
    if rng.random() < 0.85:
        m["source"] = str(rng.choice(["a", "b", "c"]))
    if rng.random() < 0.7:
        m["open"] = bool(rng.integers(2))
    m["flag"] = [True, 1, 1.0, None, False, 0][int(rng.integers(6))]
    return m


def write_corpus(path: Path, docs: Mapping[str, int], metadata: bool = False) -> Path:
    """A JSONL corpus of ``{doc_id: version}`` (with :func:`meta_of` as top-level fields if ``metadata``)."""
    path.write_text("".join(json.dumps({"_id": d, "title": "", "text": text_of(d, v)} | (meta_of(d, v) if metadata else {}))
                            + "\n" for d, v in docs.items()))
    return path
