"""``ask``: retrieve passages, then answer with numbered citations.

    question → retriever (BM25 / dense / hybrid, or HyDE's vector) → top-k passages
             → generator over  prefix ‖ passage blocks ‖ question  (cached or full prefill)
             → answer text citing [1] … [k]

Without a generator the answer is *extractive*: the sentences of the top passages closest to
the question under the index's bi-encoder (cosine of unit vectors), each with its citation, and
labelled as extractive. Every answer carries timings in milliseconds: ``retrieval_ms`` (HyDE
included), ``ttft_ms`` (prompt → first token: state loading, assembly and prefill) and
``decode_ms`` (first token → last).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from indexes.errors import InputError
from rag.generation.kv_blocks import BlockLayout
from rag.generation.passage_cache import CacheConfig
from rag.generation.sampling import SamplingConfig
from rag.hyde import HydeConfig
from rag.types import Hit, SearchMode

EXTRACTIVE_LABEL = "Extractive answer (no generator configured; sentences quoted from the sources):"
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class AskConfig:
    """Settings of one ``ask`` call.

    Attributes:
        k: passages retrieved and placed in the prompt.
        mode: retrieval mode; HyDE always searches the dense index.
        hyde: HyDE settings, or ``None`` to search with the question itself.
        kv_cache: use stored passage states (question-only prefill) instead of a full prefill.
        layout: block positions for the cached path.
        cache: the template and cache settings (must match the stored cache).
        sampling: decoding settings.
        extractive_sentences: sentences quoted by the extractive answer.
    """

    k: int = 5
    mode: SearchMode = "hybrid"
    hyde: HydeConfig | None = None
    kv_cache: bool = False
    layout: BlockLayout = BlockLayout()
    cache: CacheConfig = CacheConfig()
    sampling: SamplingConfig = SamplingConfig()
    extractive_sentences: int = 3  # enough to carry an answer, short enough to read


@dataclass(frozen=True)
class Citation:
    """A passage given to the generator (or quoted), under its number ``[n]``."""

    n: int
    id: str
    doc_id: str
    title: str
    score: float
    text: str


@dataclass(frozen=True)
class Answer:
    """The result of ``ask``; ``to_dict`` is the JSON of ``rag ask --json`` and the REST API."""

    question: str
    answer: str
    kind: Literal["generated", "extractive"]
    citations: tuple[Citation, ...]
    timings: dict[str, float] = field(default_factory=dict)  # retrieval_ms, ttft_ms, decode_ms
    prompt_tokens: int = 0
    cached_tokens: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def retrieve(question: str, index, config: AskConfig, generator=None) -> list[Hit]:
    """Top-``k`` passages for ``question`` (HyDE needs a generator and a dense index)."""
    if not question.strip():
        raise InputError("the question is empty")
    if config.hyde is None:
        return index.retriever(config.mode).search(question, config.k)
    if generator is None:
        raise InputError("--hyde needs a generator to write hypothetical documents: pass --generator MODEL")
    from rag.hyde import hyde_search

    return hyde_search(question, generator, index.dense, config.k, config.hyde)


def extractive_answer(question: str, hits: list[Hit], encoder, n_sentences: int = 3) -> tuple[str, tuple[Citation, ...]]:
    """The ``n_sentences`` sentences of ``hits`` most similar to ``question``, cited.

    Sentences are ranked by ``cos(f(q), f(s))`` with the bi-encoder ``f``; each is followed by
    ``[n]``, the rank of its passage. Returns the labelled text and the passages quoted.
    """
    sentences = [(i, s.strip()) for i, h in enumerate(hits) for s in _SENTENCE.split(h.text) if s.strip()]
    if not sentences:
        return f"{EXTRACTIVE_LABEL} no passage matched the question.", ()
    q = encoder.encode_queries([question])  # (1, d)
    S = encoder.encode_passages([s for _, s in sentences])  # (n, d)
    scores = (S @ q[0]).astype(np.float64)  # (n,)
    best = np.argsort(-scores, kind="stable")[:n_sentences]
    quoted = sorted({sentences[j][0] for j in best})
    text = " ".join(f"{sentences[j][1]} [{sentences[j][0] + 1}]" for j in best)
    return f"{EXTRACTIVE_LABEL} {text}", tuple(_citation(i + 1, hits[i]) for i in quoted)


def _citation(n: int, h: Hit) -> Citation:
    return Citation(n=n, id=h.id, doc_id=h.doc_id, title=h.title, score=float(h.score), text=h.text)


def ask_fid(question: str, index, reader, config: AskConfig = AskConfig()) -> Answer:
    """Answer with a Fusion-in-Decoder reader (``rag.fid.answer.FiDAnswerer``) over the top-``k`` hits.

    The encoder-decoder produces its answer whole, so ``ttft_ms`` is the whole reading time
    (encoder, LUMEN memory loading and decoding) and ``decode_ms`` is 0.
    """
    if config.hyde is not None:
        raise InputError("--hyde needs a causal LM to write hypothetical documents; it does not combine with --fid")
    t0 = time.perf_counter()
    hits = retrieve(question, index, config)
    t1 = time.perf_counter()
    text = reader.answer(question, hits)
    t2 = time.perf_counter()
    used = hits[: reader.reader.config.n_passages]
    return Answer(question, text, "generated", tuple(_citation(n, h) for n, h in enumerate(used, start=1)),
                  {"retrieval_ms": (t1 - t0) * 1e3, "ttft_ms": (t2 - t1) * 1e3, "decode_ms": 0.0})


class AnswerStream:
    """Answer text as it is generated; ``answer`` holds the :class:`Answer` once iterated.

    Example:
        (Not run as a doctest: needs an index and a causal LM.)
        >>> stream = AnswerStream("why is the sky blue", index, generator)  # doctest: +SKIP
        >>> for piece in stream: print(piece, end="")                     # doctest: +SKIP
        >>> stream.answer.timings                                          # doctest: +SKIP
    """

    def __init__(self, question: str, index, generator=None, config: AskConfig = AskConfig(), states=None) -> None:
        self.question, self.index, self.generator, self.config, self.states = question, index, generator, config, states
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        cfg = self.config
        if cfg.kv_cache and self.generator is not None and self.states is None:
            self.states = _open_states(self.index, self.generator, cfg.cache)  # fail before any work
        t0 = time.perf_counter()
        hits = retrieve(self.question, self.index, cfg, self.generator)
        t1 = time.perf_counter()
        retrieval_ms = 1e3 * (t1 - t0)
        if self.generator is None:
            encoder = self.index.dense.encoder if self.index.manifest.dense else _default_encoder()
            text, cites = extractive_answer(self.question, hits, encoder, cfg.extractive_sentences)
            t2 = time.perf_counter()
            self.answer = Answer(self.question, text, "extractive", cites,
                                 {"retrieval_ms": retrieval_ms, "ttft_ms": 1e3 * (t2 - t1), "decode_ms": 0.0})
            yield text
            return
        yield from self._generate(hits, retrieval_ms)

    def _generate(self, hits: list[Hit], retrieval_ms: float) -> Iterator[str]:
        from rag.generation.prefill import cached_prefill, full_prefill
        from rag.generation.prompt import PromptBuilder

        cfg, gen = self.config, self.generator
        t1 = time.perf_counter()
        segments = PromptBuilder(gen, cfg.cache.template).segments(self.question, [(h.title, h.text) for h in hits])
        if cfg.kv_cache:
            states = self.states
            prefill = cached_prefill(gen, segments, cfg.layout, states.prefix(), states.blocks([h.id for h in hits]),
                                     reserve=cfg.sampling.max_new_tokens, workspace=states.workspace)
        else:
            prefill = full_prefill(gen, segments)
        tokens = gen.iter_tokens(prefill, cfg.sampling)
        first = next(tokens, None)
        t2 = time.perf_counter()
        pieces: list[str] = []
        for piece in gen.stream_text(_chain(first, tokens), cfg.sampling.stop):
            pieces.append(piece)
            yield piece
        t3 = time.perf_counter()
        timings = {"retrieval_ms": retrieval_ms, "ttft_ms": 1e3 * (t2 - t1), "decode_ms": 1e3 * (t3 - t2)}
        cites = tuple(_citation(i + 1, h) for i, h in enumerate(hits))
        self.answer = Answer(self.question, "".join(pieces).strip(), "generated", cites, timings,
                             prompt_tokens=prefill.prompt_tokens, cached_tokens=prefill.cached_tokens)


def _chain(first: int | None, rest: Iterator[int]) -> Iterator[int]:
    if first is not None:
        yield first
        yield from rest


def _open_states(index, generator, cache: CacheConfig):
    from rag.generation.passage_cache import open_passage_states

    return open_passage_states(index.path, generator, cache)


def _default_encoder():
    from rag.encoder import Encoder

    return Encoder()


def ask(question: str, index, generator=None, config: AskConfig = AskConfig(), states=None) -> Answer:
    """Answer ``question`` from ``index`` (see :class:`AnswerStream` for streaming).

    Args:
        question: the question text.
        index: an open :class:`rag.index.Index`.
        generator: a loaded :class:`~rag.generation.generator.Generator`, or ``None`` for an
            extractive answer.
        config: retrieval, cache and decoding settings.
        states: already opened passage states (the service opens them once); default: open the
            index's KV store matching the generator when ``config.kv_cache``.
    """
    stream = AnswerStream(question, index, generator, config, states)
    for _ in stream:
        pass
    assert stream.answer is not None
    return stream.answer
