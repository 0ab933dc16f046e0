"""``ask``: retrieve passages, then answer with numbered citations.

    question → retriever (BM25 / dense / hybrid, or HyDE's vector) → top-k passages
             → generator over  prefix ‖ passage blocks ‖ question  (cached or full prefill)
             → answer text citing [1] … [k]

Without a generator the answer is *extractive* (:mod:`rag.extractive`): the sentences of the top
passages closest to the question under the index's bi-encoder, each with its citation, and
``kind`` says so; when no sentence is close enough, ``kind`` is ``no_answer`` and nothing is
quoted. Every answer carries timings in milliseconds: ``retrieval_ms`` (HyDE included), then for
a generated answer ``ttft_ms`` (prompt → first token: state loading, assembly and prefill) and
``decode_ms`` (first token → last), for an extractive one ``extract_ms`` (sentence splitting and
ranking).

:func:`answer_questions` is the batch entry point: models are loaded once, sentence vectors are
computed once per distinct sentence, and every question is answered by :func:`answer_one`, the
same function ``rag ask``, ``rag ask --questions``, ``rag eval qa`` and the service's ``/answer`` use.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from enum import Enum

from indexes.errors import InputError
from indexes.filters import Filter
from rag.extractive import ExtractiveConfig, extract
from rag.generation.block_select import BlockSelectConfig
from rag.generation.kv_blocks import BlockLayout
from rag.generation.kv_evict import EvictionConfig
from rag.generation.passage_cache import CacheConfig
from rag.generation.rag_fusion import FusionConfig
from rag.generation.sampling import SamplingConfig
from rag.hyde import HydeConfig
from rag.types import Hit, SearchMode

#: Heading ``rag ask`` prints above an extractive answer (never part of the ``answer`` field).
EXTRACTIVE_LABEL = "Extractive answer (no generator configured; sentences quoted from the sources):"
#: The ``answer`` text when no retrieved sentence is close enough to the question.
NO_ANSWER = "No answer found in the retrieved passages."


class AnswerKind(str, Enum):
    """How an answer was made (the ``kind`` field)."""

    GENERATED = "generated"  # written by a generator (causal LM or FiD reader)
    EXTRACTIVE = "extractive"  # sentences quoted from the passages
    NO_ANSWER = "no_answer"  # extractive, but no sentence reached the score threshold


@dataclass(frozen=True)
class AskConfig:
    """Settings of one ``ask`` call.

    Attributes:
        k: passages retrieved and placed in the prompt.
        mode: retrieval mode; HyDE always searches the dense index.
        hyde: HyDE settings, or ``None`` to search with the question itself.
        kv_cache: use stored passage states (question-only prefill) instead of a full prefill.
        layout: block positions for the cached path.
        fusion: concat (one prompt), or RAG-Sequence / RAG-Token marginalisation over passages.
        select: dynamic block selection over the cached blocks (``None``: attend to all k).
        eviction: full prefill evicted to a KV budget by H2O or SnapKV (``None``: no eviction).
        cache: the template and cache settings (must match the stored cache).
        sampling: decoding settings.
        extractive: sentences quoted and score threshold of extractive answers.
        filter: a metadata filter (:mod:`indexes.filters`) the retrieved passages must satisfy.
        rerank: rerank with the index's reranker, when it has one (:mod:`rag.rerank`).
        rerank_depth: passages reranked (``None``: the reranker's own depth).
        rerank_weight: α of the cross-encoder's score against the first stage's (``None``: the reranker's own).
    """

    k: int = 5
    mode: SearchMode = "hybrid"
    rerank: bool = True
    rerank_depth: int | None = None
    rerank_weight: float | None = None
    hyde: HydeConfig | None = None
    kv_cache: bool = False
    layout: BlockLayout = BlockLayout()
    fusion: FusionConfig = FusionConfig()
    select: BlockSelectConfig | None = None
    eviction: EvictionConfig | None = None
    cache: CacheConfig = CacheConfig()
    sampling: SamplingConfig = SamplingConfig()
    extractive: ExtractiveConfig = ExtractiveConfig()
    filter: Filter | None = None

    def __post_init__(self) -> None:
        from rag.generation.paths import PathConfig

        PathConfig(self.kv_cache, self.layout, self.fusion, self.select, self.eviction)  # options that do not combine


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
    kind: AnswerKind
    citations: tuple[Citation, ...]
    timings: dict[str, float] = field(default_factory=dict)  # retrieval_ms + ttft_ms, decode_ms or extract_ms
    prompt_tokens: int = 0
    cached_tokens: int = 0

    def to_dict(self) -> dict:
        return asdict(self) | {"kind": AnswerKind(self.kind).value}


def retrieve(question: str, index, config: AskConfig, generator=None) -> list[Hit]:
    """Top-``k`` passages for ``question`` (HyDE needs a generator and a dense index)."""
    if not question.strip():
        raise InputError("the question is empty")
    where = {} if config.filter is None else {"where": index.where(config.filter)}
    if config.hyde is None:
        return index.retriever(config.mode, rerank=config.rerank, rerank_depth=config.rerank_depth,
                               rerank_weight=config.rerank_weight).search(
            question, config.k, **where)
    if generator is None:
        raise InputError("--hyde needs a generator to write hypothetical documents: pass --generator MODEL")
    from rag.hyde import hyde_search

    return hyde_search(question, generator, index.dense, config.k, config.hyde, **where)


def _citation(n: int, h: Hit) -> Citation:
    return Citation(n=n, id=h.id, doc_id=h.doc_id, title=h.title, score=float(h.score), text=h.text)


def ask_fid(question: str, index, reader, config: AskConfig = AskConfig()) -> Answer:
    """Answer with a Fusion-in-Decoder reader (``rag.fid.answer.FiDAnswerer``) over the top-``k`` hits.

    The encoder-decoder produces its answer whole, so ``ttft_ms`` is the whole reading time
    (encoder, LUMEN memory loading and decoding) and ``decode_ms`` is 0.
    """
    return _fid(question, index, reader, config)[0]


def _fid(question: str, index, reader, config: AskConfig) -> tuple[Answer, list[Hit]]:
    if config.hyde is not None:
        raise InputError("--hyde needs a causal LM to write hypothetical documents; it does not combine with --fid")
    t0 = time.perf_counter()
    hits = retrieve(question, index, config)
    t1 = time.perf_counter()
    text = reader.answer(question, hits, max_new_tokens=config.sampling.max_new_tokens)
    t2 = time.perf_counter()
    used = hits[: reader.reader.config.n_passages]
    answer = Answer(question, text, AnswerKind.GENERATED, tuple(_citation(n, h) for n, h in enumerate(used, start=1)),
                    {"retrieval_ms": (t1 - t0) * 1e3, "ttft_ms": (t2 - t1) * 1e3, "decode_ms": 0.0})
    return answer, hits


class AnswerStream:
    """Answer text as it is generated; ``answer`` holds the :class:`Answer` and ``hits`` every
    retrieved passage (best first) once iterated. ``encoder`` ranks extractive sentences (default:
    :func:`sentence_encoder` of the index).

    Example:
        (Not run as a doctest: needs an index and a causal LM.)
        >>> stream = AnswerStream("why is the sky blue", index, generator)  # doctest: +SKIP
        >>> for piece in stream: print(piece, end="")                     # doctest: +SKIP
        >>> stream.answer.timings                                          # doctest: +SKIP
    """

    def __init__(self, question: str, index, generator=None, config: AskConfig = AskConfig(), states=None,
                 encoder=None) -> None:
        self.question, self.index, self.generator, self.config, self.states = question, index, generator, config, states
        self.encoder = encoder
        self.answer: Answer | None = None
        self.hits: list[Hit] = []

    def __iter__(self) -> Iterator[str]:
        cfg = self.config
        if cfg.kv_cache and self.generator is not None and self.states is None:
            self.states = _open_states(self.index, self.generator, cfg.cache)  # fail before any work
        t0 = time.perf_counter()
        hits = self.hits = retrieve(self.question, self.index, cfg, self.generator)
        t1 = time.perf_counter()
        retrieval_ms = 1e3 * (t1 - t0)
        if self.generator is None:
            found = extract(self.question, hits, self.encoder or sentence_encoder(self.index), cfg.extractive)
            t2 = time.perf_counter()
            timings = {"retrieval_ms": retrieval_ms, "extract_ms": 1e3 * (t2 - t1)}
            if found.found:
                cites = tuple(_citation(i + 1, hits[i]) for i in found.passages)
                self.answer = Answer(self.question, found.text, AnswerKind.EXTRACTIVE, cites, timings)
            else:
                self.answer = Answer(self.question, NO_ANSWER, AnswerKind.NO_ANSWER, (), timings)
            yield self.answer.answer
            return
        yield from self._generate(hits, retrieval_ms)

    def _generate(self, hits: list[Hit], retrieval_ms: float) -> Iterator[str]:
        from rag.generation.paths import PathConfig, generate_tokens
        from rag.generation.prompt import PromptBuilder

        cfg, gen = self.config, self.generator
        t1 = time.perf_counter()
        path = PathConfig(cfg.kv_cache, cfg.layout, cfg.fusion, cfg.select, cfg.eviction)
        used, tokens, prompt = generate_tokens(gen, PromptBuilder(gen, cfg.cache.template), self.question, hits,
                                               cfg.sampling, path, self.states)
        first = next(tokens, None)
        t2 = time.perf_counter()
        pieces: list[str] = []
        for piece in gen.stream_text(_chain(first, tokens), cfg.sampling.stop):
            pieces.append(piece)
            yield piece
        t3 = time.perf_counter()
        timings = {"retrieval_ms": retrieval_ms, "ttft_ms": 1e3 * (t2 - t1), "decode_ms": 1e3 * (t3 - t2)}
        cites = tuple(_citation(i + 1, h) for i, h in enumerate(used))
        self.answer = Answer(self.question, "".join(pieces).strip(), AnswerKind.GENERATED, cites, timings,
                             prompt_tokens=prompt.prompt_tokens, cached_tokens=prompt.cached_tokens)


def _chain(first: int | None, rest: Iterator[int]) -> Iterator[int]:
    if first is not None:
        yield first
        yield from rest


def _open_states(index, generator, cache: CacheConfig):
    from rag.generation.passage_cache import open_passage_states

    return open_passage_states(index.path, generator, cache)


def sentence_encoder(index):
    """The encoder extractive answers rank sentences with: the index's, or the default one (BM25-only index)."""
    if index.manifest.dense:
        return index.dense.encoder
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
    return answer_one(question, index, generator, config, states=states).answer


@dataclass(frozen=True)
class Question:
    """One question of a batch."""

    id: str
    text: str


@dataclass(frozen=True)
class AnswerRecord:
    """One answered question: a row of ``rag ask --questions FILE --out answers.jsonl``.

    Attributes:
        id: the question's id.
        answer: the answer, as ``rag ask --json`` prints it.
        hits: every retrieved passage, best first (an extractive answer cites only those it
            quotes; answer recall is measured on all of them).
        latency_ms: wall time of the whole question, retrieval included.
    """

    id: str
    answer: Answer
    hits: tuple[Hit, ...]
    latency_ms: float

    def to_dict(self) -> dict:
        """``{id, question, answer, kind, citations, timings, prompt_tokens, cached_tokens}``."""
        return {"id": self.id, **self.answer.to_dict()}


def answer_one(question: str, index, generator=None, config: AskConfig = AskConfig(), *, reader=None, states=None,
               encoder=None, id: str = "") -> AnswerRecord:
    """Answer one question: the single implementation behind :func:`ask`, batches and the service.

    Args:
        question: the question text.
        index: an open :class:`rag.index.Index`.
        generator: a loaded causal LM, or ``None`` (extractive answer, unless ``reader``).
        config: retrieval, extraction, cache and decoding settings.
        reader: a loaded :class:`rag.fid.answer.FiDAnswerer`; takes precedence over ``generator``.
        states: opened passage states for ``config.kv_cache`` (default: opened here).
        encoder: sentence encoder of extractive answers (default: :func:`sentence_encoder`).
        id: the question's id, copied to the record.

    Raises:
        InputError: an empty question, or options that do not combine (``--hyde`` without generator).
    """
    t0 = time.perf_counter()
    if reader is not None:
        answer, hits = _fid(question, index, reader, config)
    else:
        stream = AnswerStream(question, index, generator, config, states, encoder)
        for _ in stream:
            pass
        answer, hits = stream.answer, stream.hits
    return AnswerRecord(id, answer, tuple(hits), 1e3 * (time.perf_counter() - t0))


def answer_questions(questions: Iterable[Question], index, generator=None, config: AskConfig = AskConfig(), *,
                     reader=None, states=None) -> Iterator[AnswerRecord]:
    """Answer many questions with models loaded once: one :class:`AnswerRecord` per question, in order.

    Extractive answers rank sentences with a :class:`~rag.encoder_cache.CachingEncoder`, so a
    sentence shared by many questions' passages is encoded once; with an index opened by
    :func:`open_batch_index` the questions are also encoded up front, in full batches, and the
    same vectors serve retrieval and extraction. The cached generation path opens the passage
    states once.

    Example:
        >>> index = open_batch_index("build/demo-index")                       # doctest: +SKIP
        >>> for r in answer_questions([Question("q1", "why is the sky blue")], index):  # doctest: +SKIP
        ...     print(r.to_dict()["kind"], r.answer.answer)
    """
    from rag.encoder_cache import CachingEncoder

    questions = list(questions)
    encoder = None
    if reader is None and generator is None:
        encoder = sentence_encoder(index)
        if isinstance(encoder, CachingEncoder):  # the index's own: retrieval shares the vectors
            encoder.warm_queries([q.text for q in questions if q.text.strip()])
        else:
            encoder = CachingEncoder(encoder)
    elif reader is None and config.kv_cache and states is None:
        states = _open_states(index, generator, config.cache)
    for q in questions:
        yield answer_one(q.text, index, generator, config, reader=reader, states=states, encoder=encoder, id=q.id)


def open_batch_index(path, **kwargs):
    """Open an index whose dense encoder remembers what it encoded (for :func:`answer_questions`).

    Args:
        path: index directory.
        **kwargs: passed to :func:`rag.index.open_index` (e.g. ``device``, ``encoder_backend``).
    """
    from pathlib import Path

    from indexes.manifest import Manifest
    from rag.encoder import Encoder, EncoderConfig
    from rag.encoder_cache import CachingEncoder
    from rag.index import open_index

    dense = Manifest.read(Path(path)).dense
    if dense is None or "encoder" in kwargs:
        return open_index(path, **kwargs)
    config = EncoderConfig.from_dense(dense, index_name=str(path), device=kwargs.get("device"),
                                      backend=kwargs.pop("encoder_backend", "auto"))
    return open_index(path, encoder=CachingEncoder(Encoder(config)), **kwargs)
