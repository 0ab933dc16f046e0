"""A bounded passage KV cache: store only the passages a query log retrieves most, within a disk budget.

Caching the states of every passage costs ``tokens × bytes_per_token`` each; for SmolLM2-135M
(30 layers, 3 KV heads of 64 dims, float16) that is 2·30·3·64·2 = 23,040 bytes per token, about
5 MB for a 230-token SciFact passage, so a 100M-passage corpus would need ~0.5 PB (and a 7B model
~6x more per token). Retrieval is skewed: a small set of passages answers most queries, so the
cache keeps the passages a query log retrieves most often (a static "most frequently used"
policy) until the budget is spent, and every other passage is prefilled at question time as
before. With a budget ``B`` and per-passage size ``s_p``, the selection is the greedy

    sort passages by (count desc, row asc); take p while Σ s_p ≤ B (skip those that no longer fit)

which is optimal per byte when sizes are equal and within one passage of it otherwise (the
0/1 knapsack greedy). Passages never retrieved by the log are never cached.

Example:
    >>> counts = retrieval_counts({"q1": {"a": 2.0, "b": 1.0}, "q2": {"a": 3.0}})
    >>> select_within_budget(counts, {"a": 10, "b": 10}, budget_bytes=15, order={"a": 0, "b": 1}).ids
    ('a',)
    >>> hit_rate({"a"}, {"q3": {"a": 1.0, "c": 0.5}})
    HitRate(passages=0.5, queries=0.0)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Selection:
    """The passages to cache and what they cost.

    Attributes:
        ids: passage ids, most retrieved first.
        bytes: their stored size.
        candidates: passages the log retrieved at all (cached or not).
    """

    ids: tuple[str, ...]
    bytes: int
    candidates: int


@dataclass(frozen=True)
class HitRate:
    """How much of a run the cache serves.

    Attributes:
        passages: fraction of retrieved (query, passage) pairs whose passage is cached.
        queries: fraction of queries whose every retrieved passage is cached (no prefill of passages).
    """

    passages: float
    queries: float


def retrieval_counts(run: Mapping[str, Mapping[str, float]]) -> Counter[str]:
    """How many queries of ``run`` (``{query: {passage id: score}}``, top-k each) retrieved each passage."""
    return Counter(pid for hits in run.values() for pid in hits)


def select_within_budget(counts: Mapping[str, int], size_bytes: Mapping[str, int], budget_bytes: int,
                         order: Mapping[str, int]) -> Selection:
    """The most retrieved passages whose states fit ``budget_bytes`` together (greedy, see the module).

    Args:
        counts: retrievals per passage id (ids absent or at 0 are never cached).
        size_bytes: stored size of each counted passage's states.
        budget_bytes: the disk budget (>= 0).
        order: row of each passage, the tie-break (an index's document-id order).
    """
    if budget_bytes < 0:
        raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}")
    ranked = sorted((pid for pid, c in counts.items() if c > 0), key=lambda pid: (-counts[pid], order[pid]))
    chosen: list[str] = []
    used = 0
    for pid in ranked:
        if used + size_bytes[pid] <= budget_bytes:
            chosen.append(pid)
            used += size_bytes[pid]
    return Selection(ids=tuple(chosen), bytes=used, candidates=len(ranked))


def hit_rate(cached: Collection[str], run: Mapping[str, Mapping[str, float]]) -> HitRate:
    """Share of ``run``'s retrieved passages (and of its queries, whole) that ``cached`` holds."""
    pairs = hits = full = 0
    for retrieved in run.values():
        inside = sum(pid in cached for pid in retrieved)
        pairs += len(retrieved)
        hits += inside
        full += bool(retrieved) and inside == len(retrieved)
    return HitRate(passages=hits / pairs if pairs else 0.0, queries=full / len(run) if run else 0.0)
