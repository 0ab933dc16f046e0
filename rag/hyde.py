"""HyDE: search with the embedding of hypothetical documents written by a generator.

Hypothetical Document Embeddings (Gao et al., 2022, "Precise Zero-Shot Dense Retrieval without
Relevance Labels", arXiv:2212.10496, §3.2): an instruction-following LM writes ``N`` documents
that *would* answer the query; their embeddings and the query's are averaged,

    v = 1/(N+1) · ( f(q) + Σ_{i=1..N} f(d̂_i) ),

and the dense index is searched with ``v``. The hypothetical documents may be factually wrong;
what matters is that they look like relevant documents, so ``v`` lands in their neighbourhood.
The paper's code samples ``N = 8`` documents at temperature 0.7 with at most 512 new tokens.
We L2-normalise ``v`` so scores stay cosines (the ranking is unchanged for inner product).

Example:
    (Not run as a doctest: needs an index on disk and a causal LM.)
    >>> from rag.index import open_index                                       # doctest: +SKIP
    >>> dense = open_index("build/demo-index").retriever("dense")              # doctest: +SKIP
    >>> hits = hyde_search("why is the sky blue", generator, dense, k=3)      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from indexes.errors import InputError
from rag.generation.sampling import SamplingConfig
from rag.types import Hit


@dataclass(frozen=True)
class HydeConfig:
    """HyDE settings; defaults follow the paper's released code.

    Attributes:
        n: number of hypothetical documents ``N``.
        temperature: sampling temperature (0.7 in the paper's code).
        max_new_tokens: length limit of each document (512 in the paper's code).
        prompt: the task instruction; ``{question}`` is replaced by the query (the paper's
            web-search prompt).
        seed: base seed for reproducible documents (document ``i`` uses ``seed + i``).
    """

    n: int = 8
    temperature: float = 0.7
    max_new_tokens: int = 512
    prompt: str = "Please write a passage to answer the question.\nQuestion: {question}\nPassage:"
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise InputError(f"HyDE needs at least one hypothetical document, got n={self.n}")


class TextSampler(Protocol):
    """What HyDE needs from a generator (``rag.generation.generator.Generator`` fits)."""

    def sample_texts(self, user: str, n: int, config: SamplingConfig) -> list[str]: ...


class QueryEncoder(Protocol):
    """What HyDE needs from an encoder (``rag.encoder.Encoder`` fits)."""

    def encode_queries(self, queries: list[str]) -> np.ndarray: ...

    def encode_passages(self, passages: list[str]) -> np.ndarray: ...


def hypothetical_documents(query: str, generator: TextSampler, config: HydeConfig = HydeConfig()) -> list[str]:
    """The ``N`` documents the generator writes for ``query``."""
    sampling = SamplingConfig(max_new_tokens=config.max_new_tokens, temperature=config.temperature, seed=config.seed)
    return generator.sample_texts(config.prompt.format(question=query), config.n, sampling)


def hyde_vector(query: str, documents: list[str], encoder: QueryEncoder) -> np.ndarray:
    """``v = normalise(mean(f(q), f(d̂_1), …, f(d̂_N)))``, (d,) float32."""
    q = encoder.encode_queries([query])  # (1, d)
    D = encoder.encode_passages(documents) if documents else np.zeros((0, q.shape[1]), np.float32)  # (N, d)
    v = np.concatenate([q, D]).mean(axis=0)  # (d,)
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def hyde_search(query: str, generator: TextSampler, dense, k: int = 10, config: HydeConfig = HydeConfig(),
                where=None) -> list[Hit]:
    """Top-``k`` hits of the dense retriever ``dense`` for the HyDE vector of ``query``.

    ``dense`` must offer ``.encoder`` and ``.search_vectors(vectors (B, d), k)`` (the dense
    retriever of ``rag.index.Index``); ``where`` is a metadata filter (``Index.where``). Call this from ``rag search --hyde`` and the service.
    """
    documents = hypothetical_documents(query, generator, config)
    v = hyde_vector(query, documents, dense.encoder)  # (d,)
    if where is None:
        return dense.search_vectors(v[None, :], k)[0]
    return dense.search_vectors(v[None, :], k, where)[0]
