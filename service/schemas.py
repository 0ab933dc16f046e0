"""Request and response bodies of the REST API (pydantic), with OpenAPI examples.

Request models are *built from the settings* by :func:`request_models`, so the schema carries
the limits the server enforces (``maxLength`` of a query, ``maximum`` of ``k``, ``maxItems`` of a
batch): clients, generated SDKs and the schemathesis fuzz test all see the real contract, and a
violation is a 422 that names the field. Response models are fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.settings import INDEX_NAME, Settings

Mode = Literal["bm25", "dense", "hybrid"]
_QUERY = "does vitamin D reduce the risk of fractures"


class _Model(BaseModel):
    # strict: a JSON bool or string where a number is expected (``"k": true``, ``"rerank_weight": "0.3"``) is a
    # 422 naming the field, never coerced; an integer still fills a float field (JSON ``1`` for ``1.0``).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Highlights(BaseModel):
    """Spans of the query's terms, as the index's analyzer matched them (stemmed forms too)."""

    title: list[tuple[int, int]] = Field(description="[start, end) offsets in the title, in Unicode code points.")
    text: list[tuple[int, int]] = Field(description="[start, end) offsets in the passage text, in Unicode code points.")


class HitOut(BaseModel):
    """One ranked passage: the fields of :class:`rag.types.Hit` and of ``rag search --json``."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="Passage id: the document id, or 'DOCID#n' for the n-th window.")
    doc_id: str
    score: float = Field(description="Retriever score; comparable within one ranking only.")
    title: str
    text: str
    metadata: dict[str, Any]
    highlights: Highlights | None = Field(None, description="Only with `highlight: true`: where the query's terms occur.")


class SearchResponse(BaseModel):
    hits: list[HitOut]
    index: str
    mode: Mode
    timing_ms: float = Field(description="Server-side search time, excluding HTTP and JSON.")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "hits": [{"id": "4983", "doc_id": "4983", "score": 12.7, "title": "Vitamin D and fracture risk",
                  "text": "…", "metadata": {}}], "index": "scifact", "mode": "hybrid", "timing_ms": 3.1}]})


class BatchResult(BaseModel):
    hits: list[HitOut]


class BatchResponse(BaseModel):
    results: list[BatchResult] = Field(description="One entry per query, in request order.")
    index: str
    mode: Mode
    timing_ms: float


class CitationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    n: int = Field(description="The number [n] the answer cites this passage by.")
    id: str
    doc_id: str
    title: str
    score: float
    text: str


class AnswerResponse(BaseModel):
    question: str
    answer: str
    kind: Literal["generated", "extractive", "no_answer"] = Field(
        description="generated; extractive (sentences quoted from the passages); no_answer (no sentence was close "
                    "enough to the question: nothing is quoted).")
    citations: list[CitationOut]
    timings: dict[str, float] = Field(description="Milliseconds: retrieval_ms, then ttft_ms and decode_ms for a "
                                                  "generated answer, extract_ms for an extractive one.")
    prompt_tokens: int
    cached_tokens: int
    index: str


class IndexInfo(BaseModel):
    """Manifest facts of one served index."""

    name: str
    modes: list[Mode]
    documents: int
    passages: int
    created_at: str
    encoder: str | None = Field(description="Dense encoder id, or null without a dense part.")
    dim: int | None
    backend: str | None = None  # vector search: flat, hnsw or ivfpq (FAISS), or milvus
    faiss: str | None  # deprecated alias of backend
    bm25: dict[str, Any] | None = Field(description="BM25 variant and parameters, analyzer, vocabulary.")


class IndexList(BaseModel):
    indexes: list[IndexInfo]
    default: str | None


class Health(BaseModel):
    status: str
    indexes: list[str] = Field([], description="Names of the indexes this server serves (configured; the same on /healthz "
                               "and /readyz, loaded or not: `status` says whether they can be searched).")
    detail: str | None = None


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. validation_error, index_not_found.")
    message: str = Field(description="What went wrong and what to do; names the field when one is at fault.")
    fields: list[str] | None = Field(None, description="Offending field paths (every 422; \"body\" when the request as a "
                                                       "whole is at fault).")


class ErrorBody(BaseModel):
    error: ErrorInfo

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": {"code": "validation_error", "message": "body.k: Input should be less than or equal to 100",
                   "fields": ["k"]}}]})


class FusionIn(_Model):
    """How the k passages are combined (``rag ask --fusion``; Lewis et al. 2020)."""

    method: Literal["concat", "rag-sequence", "rag-token"] = Field(
        description="concat (one prompt with every passage), rag-sequence or rag-token (marginalise over passages).")
    temperature: float = Field(1.0, gt=0, allow_inf_nan=False,
                               description="τ of the passage prior p(z|x) = softmax(score / τ) (rag-sequence / rag-token).")
    decoding: Literal["thorough", "fast"] = Field(
        "thorough", description="rag-sequence: score every candidate under every passage (thorough) or only under "
                                "the passages that proposed it (fast).")


class EvictIn(_Model):
    """Full prefill, then evict its KV cache to a budget (``rag ask --evict --kv-budget``)."""

    method: Literal["h2o", "snapkv"] = Field(description="h2o (accumulated attention) or snapkv (observation-window votes).")
    budget: int = Field(ge=1, description="Prompt tokens kept per layer and KV head.")


@dataclass(frozen=True)
class RequestModels:
    """The request bodies, built for one :class:`~service.settings.Settings`."""

    search: type[BaseModel]
    batch: type[BaseModel]
    answer: type[BaseModel]


def request_models(s: Settings) -> RequestModels:
    """Request models whose constraints are ``s``'s limits."""
    text = dict(min_length=1, max_length=s.max_query_chars, pattern=r"\S")  # \S: not blank
    Query = Annotated[str, Field(description=f"Query text, 1–{s.max_query_chars} characters.", examples=[_QUERY], **text)]
    K = Annotated[int, Field(ge=1, le=s.max_k, description=f"Results wanted, 1–{s.max_k}.")]
    Index = Annotated[str | None, Field(pattern=INDEX_NAME.pattern, examples=[s.default_index],
                                         description="Configured index name (GET /indexes); default index if omitted.")]
    Filter = Annotated[dict[str, Any] | None, Field(
        examples=[{"year": {"$gte": 2010}, "source": {"$in": ["pubmed", "arxiv"]}}],
        description="Metadata filter applied before the top-k cut: {field: value} (equality), {field: {$eq|$in|$gt|$gte|"
                    "$lt|$lte: value}}, {$and: [...]}, {$or: [...]}. An unknown field or a value of the wrong type is a "
                    "422 that names the field.")]
    Rerank = Annotated[bool | None, Field(description="Rerank the top passages with the service's cross-encoder "
                                                      "(default: when the service has one; true without one: 422).")]
    RerankDepth = Annotated[int | None, Field(ge=1, le=s.max_rerank_depth, description=(
        f"Passages reranked, 1–{s.max_rerank_depth} (default: the service's, {s.rerank_depth})."))]
    RerankWeight = Annotated[float | None, Field(ge=0.0, le=1.0, description=(
        "α in [0, 1]: reranked passages ordered by α·CE + (1−α)·first stage, each min-max normalised per query "
        "(default: the service's --rerank-weight, else the model's rerank.json, else 1 = cross-encoder only)."))]

    class SearchRequest(_Model):
        query: Query
        k: K = 10
        mode: Mode = "hybrid"
        index: Index = None
        filter: Filter = None
        rerank: Rerank = None
        rerank_depth: RerankDepth = None
        rerank_weight: RerankWeight = None
        highlight: bool = Field(False, description="Add each hit's `highlights`: the spans of the query's terms.")

    class BatchSearchRequest(_Model):
        queries: Annotated[list[Query], Field(min_length=1, max_length=s.max_batch, examples=[[_QUERY, "what causes tuberculosis"]])]
        k: K = 10
        mode: Mode = "hybrid"
        index: Index = None
        filter: Filter = None
        rerank: Rerank = None
        rerank_depth: RerankDepth = None
        rerank_weight: RerankWeight = None

    class AnswerRequest(_Model):
        question: Annotated[str, Field(examples=["Does vitamin D reduce fractures?"], **text)]
        k: Annotated[int, Field(ge=1, le=min(s.max_k, 20))] = 5  # passages in the prompt
        mode: Mode = "hybrid"
        index: Index = None
        filter: Filter = None
        rerank: Rerank = None
        rerank_depth: RerankDepth = None
        rerank_weight: RerankWeight = None
        stream: bool = Field(False, description="Answer as Server-Sent Events: `token` events, then one `answer` "
                                                 "event holding the AnswerResponse (or one `error` event).")
        # The generation path of `rag ask` (decoder-only generator; a FiD or extractive server: 422)
        kv_cache: bool = Field(False, description="Read the passages' KV states stored by `rag cache build` "
                                                  "(question-only prefill); `select_blocks` needs it.")
        fusion: FusionIn | None = Field(None, examples=[{"method": "rag-token", "temperature": 1.0}],
                                        description="RAG-Sequence / RAG-Token fusion (default: concat).")
        select_blocks: int | None = Field(None, ge=1, description="With `kv_cache`: attend only to the M cached "
                                                                  "blocks the question attends to most.")
        evict: EvictIn | None = Field(None, examples=[{"method": "snapkv", "budget": 256}],
                                      description="Evict a full prefill's KV cache to a budget (not with `kv_cache` "
                                                  "or a RAG fusion).")
        # Decoding (`rag ask --max-new-tokens/--temperature/--top-p/--top-k/--seed`); null: the server's default
        max_new_tokens: int | None = Field(None, ge=1, le=s.answer_max_new_tokens, description=(
            f"Generated tokens at most, 1–{s.answer_max_new_tokens} (the server's answer_max_new_tokens, also the "
            "default); needs a generator (causal LM or FiD reader)."))
        temperature: float | None = Field(None, ge=0, allow_inf_nan=False, description=(
            "Sampling temperature τ: softmax(z / τ); 0 = greedy decoding (the default). Causal LM only."))
        top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling mass (default 1: off). Causal LM only.")
        top_k: int | None = Field(None, ge=0, description="Sample among the k most likely tokens (default 0: off). "
                                                          "Causal LM only.")
        seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Seed of the sampling RNG: the same seed, "
                                                                      "the same sample (default: unseeded). Causal LM only.")

    return RequestModels(SearchRequest, BatchSearchRequest, AnswerRequest)
