"""KV eviction after a full-context prefill (H2O, SnapKV), and the retrieval alternative.

Under a KV budget of ``B`` prompt tokens kept (per layer and KV head), two ways to fit:

- **retrieve** (our cached path): put only the top passages whose blocks fit in ``B`` into the
  prompt (:func:`blocks_within_budget`), prefill the question over their stored states.
- **evict**: prefill the whole prompt ``prefix ‖ b_1 ‖ … ‖ b_k ‖ q`` causally, then keep ``B`` of
  its ``T`` keys/values per head and decode from those:

  * *H2O* (Zhang et al., NeurIPS 2023, arXiv:2306.14048, §3-4): keep the ``B/2`` most recent
    tokens and the ``B - B/2`` "heavy hitters" with the largest attention accumulated over every
    query of the prompt, ``A[h, s] = Σ_t softmax_s(q_t·k_s · d^-½)`` (causal).
  * *SnapKV* (Li et al., 2024, arXiv:2404.14469, §4): keep the observation window (the last
    ``w`` prompt tokens, where the question is) and the ``B - w`` tokens with most votes from
    that window, ``A[h, s] = Σ_{t ∈ window} softmax_s(·)``, smoothed by a max-pool of width
    ``kernel`` so that neighbours of a hit are kept with it (clustered spans, §4.2).

  Selection is per KV head (the scores of the query heads sharing it are summed, GQA). Eviction
  is done once, after the prefill (SnapKV's protocol; H2O also keeps evicting during decoding,
  which short answers hardly need): the first token is predicted from the full prompt, the
  following ones from the kept states plus the generated tokens. Kept keys keep their rotary
  positions, and generated tokens continue at position ``T``.

The attention maps are recomputed from the prefill's hidden states and cached keys (queries by
the layer's own projections, :func:`rag.compat.transformers.layer_queries`), row chunk by row
chunk, so no ``(H, T, T)`` map of every layer is ever held; the evicted cache is an ordinary
``transformers`` ``DynamicCache`` of the kept states. With ``B ≥ T`` every position is kept, in
order, and decoding equals decoding without eviction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from indexes.errors import InputError
from rag.compat.transformers import cache_from_pairs, cache_layer_states, causal_lm_forward, layer_queries
from rag.generation.prefill import Prefill
from rag.generation.rope import rotate_to

Policy = Literal["h2o", "snapkv"]


@dataclass(frozen=True)
class EvictionConfig:
    """Which states to keep after a full prefill.

    Attributes:
        policy: ``h2o`` or ``snapkv`` (module doc).
        budget: prompt tokens kept per layer and KV head, ``B``.
        window: SnapKV's observation window ``w`` (the last prompt tokens, always kept); 32 as in
            the paper's LongBench runs, which covers a SQuAD question and the answer cue.
        kernel: SnapKV's max-pool width (odd); 7 as in the paper's experiments.
        chunk: query rows scored at once (bounds memory to ``H·chunk·T`` floats).
    """

    policy: Policy
    budget: int
    window: int = 32
    kernel: int = 7
    chunk: int = 256

    def __post_init__(self) -> None:
        if self.policy not in ("h2o", "snapkv"):
            raise InputError(f"eviction policy must be h2o or snapkv, not {self.policy!r}")
        if self.budget < 1:
            raise InputError(f"the KV budget must be >= 1 token, got {self.budget}")
        if self.window < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise InputError(f"SnapKV needs window >= 1 and an odd kernel, got {self.window} and {self.kernel}")


def blocks_within_budget(prefix: int, lengths: Sequence[int], question: int, budget: int) -> int:
    """How many of the top blocks fit: the largest ``n`` with ``prefix + Σ_{i<n} L_i + question ≤ budget``."""
    used, n = prefix + question, 0
    for length in lengths:
        if used + length > budget:
            break
        used, n = used + length, n + 1
    return n


def attention_scores(queries: torch.Tensor, keys: torch.Tensor, scaling: float, rows: range,
                     chunk: int = 256) -> torch.Tensor:
    """Attention accumulated by query ``rows`` on every key, per KV head: ``(H_kv, T)`` float64.

    Args:
        queries: rotated queries of every prompt token, ``(H_q, T, d)``.
        keys: the cached keys, ``(H_kv, T, d)``.
        scaling: ``d^-½``.
        rows: query positions summed over (causal: row ``t`` sees keys ``≤ t``).
        chunk: rows per matrix product.
    """
    H_q, T, _ = queries.shape
    H_kv = keys.shape[0]
    k = keys.float().repeat_interleave(H_q // H_kv, dim=0)  # (H_q, T, d)
    total = torch.zeros(H_q, T, dtype=torch.float64)
    for start in range(rows.start, rows.stop, chunk):
        t = torch.arange(start, min(start + chunk, rows.stop))  # (c,)
        s = queries[:, t].float() @ k.transpose(1, 2) * scaling  # (H_q, c, T)
        s = s.masked_fill(torch.arange(T)[None, None, :] > t[None, :, None], float("-inf"))
        total += torch.softmax(s, dim=-1).sum(dim=1).double().cpu()  # (H_q, T)
    return total.view(H_kv, H_q // H_kv, T).sum(dim=1)  # (H_kv, T)


def keep_positions(scores: torch.Tensor, budget: int, recent: int) -> torch.Tensor:
    """Per head, the ``recent`` last positions plus the ``budget - recent`` best-scored others, sorted.

    Args:
        scores: ``(H, T)`` importance of every position.
        budget: positions kept per head; ``≥ T`` keeps all.
        recent: trailing positions always kept (``min(recent, budget)``).

    Returns:
        ``(H, min(budget, T))`` positions in increasing order.

    Example:
        >>> keep_positions(torch.tensor([[5.0, 1.0, 4.0, 0.0, 2.0, 3.0]]), budget=4, recent=2).tolist()
        [[0, 2, 4, 5]]
    """
    H, T = scores.shape
    if budget >= T:
        return torch.arange(T).expand(H, T)
    recent = min(recent, budget)
    older = scores[:, : T - recent]  # (H, T - recent)
    heavy = torch.topk(older, budget - recent, dim=-1, sorted=False).indices  # (H, budget - recent)
    tail = torch.arange(T - recent, T).expand(H, recent)  # (H, recent)
    return torch.sort(torch.cat([heavy, tail], dim=1), dim=1).values  # (H, budget)


@torch.inference_mode()
def prefill_for_eviction(generator, ids: Sequence[int]):
    """Causal prefill of ``ids`` keeping what eviction needs: ``(last logits (V,), cache, hidden states)``."""
    x = torch.tensor([list(ids)], device=generator.device)  # (1, T)
    logits, cache, hidden = causal_lm_forward(generator.model, x, None, None, logits_to_keep=1,
                                              output_hidden_states=True)
    return logits[0, -1], cache, hidden


@torch.inference_mode()
def eviction_scores(generator, cache, hidden, config: EvictionConfig) -> list[torch.Tensor]:
    """Per layer, the policy's importance of every prompt position, ``(H_kv, T)`` (module doc)."""
    model = generator.model
    out = []
    for layer, (k, _) in enumerate(cache_layer_states(cache)):  # (1, H_kv, T, d)
        T = k.shape[-2]
        q, scaling = layer_queries(model, layer, hidden[layer][0])  # (H_q, T, d)
        q = rotate_to(q, torch.arange(T), model)
        if config.policy == "h2o":
            out.append(attention_scores(q, k[0], scaling, range(T), config.chunk))  # (H_kv, T)
            continue
        w = min(config.window, T)
        votes = attention_scores(q, k[0], scaling, range(T - w, T), config.chunk)  # (H_kv, T)
        out.append(torch.nn.functional.max_pool1d(votes[None], config.kernel, stride=1, padding=config.kernel // 2)[0])
    return out


def recent_tokens(config: EvictionConfig) -> int:
    """Trailing positions always kept: H2O's recent half of the budget, SnapKV's observation window."""
    return config.budget // 2 if config.policy == "h2o" else config.window


def evict(cache, scores: Sequence[torch.Tensor] | None, config: EvictionConfig) -> tuple[object, list[torch.Tensor]]:
    """A ``DynamicCache`` of the kept states, and the kept positions per layer ``(H_kv, min(B, T))``.

    ``scores`` may be ``None`` when ``B ≥ T`` (every position is kept).
    """
    pairs, kept = [], []
    for layer, (k, v) in enumerate(cache_layer_states(cache)):  # (1, H_kv, T, d) each
        T = k.shape[-2]
        if config.budget >= T:
            keep = torch.arange(T).expand(k.shape[1], T)
        else:
            keep = keep_positions(scores[layer], config.budget, recent_tokens(config))  # (H_kv, B)
        idx = keep.to(k.device)[None, :, :, None].expand(1, -1, -1, k.shape[-1])  # (1, H_kv, B, d)
        pairs.append((torch.gather(k, 2, idx), torch.gather(v, 2, idx)))  # (1, H_kv, B, d) each
        kept.append(keep)
    return cache_from_pairs(pairs), kept


def evicted_prefill(generator, ids: Sequence[int], config: EvictionConfig) -> tuple[Prefill, list[torch.Tensor]]:
    """Full causal prefill of ``ids``, then the cache evicted to ``config.budget`` per head.

    Returns:
        ``(prefill, kept)``: the :class:`Prefill` to decode from and, per layer, the kept
        positions ``(H_kv, min(B, T))``.
    """
    logits, cache, hidden = prefill_for_eviction(generator, ids)
    scores = eviction_scores(generator, cache, hidden, config) if config.budget < len(ids) else None
    kept_cache, kept = evict(cache, scores, config)
    return Prefill(logits=logits, cache=kept_cache, next_position=len(ids), prompt_tokens=len(ids)), kept
