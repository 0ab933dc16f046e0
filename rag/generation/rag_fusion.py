"""RAG-Sequence and RAG-Token: marginalise the answer over the retrieved passages.

Lewis et al., "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks", NeurIPS 2020
(arXiv:2005.11401), §2.1. With ``z`` ranging over the top-k passages and the retriever's prior
``p(z|x) = softmax(s_z / τ)`` (``s_z`` the retrieval score, ``τ`` a temperature: the paper's
``p_η(z|x) ∝ exp(d(z)ᵀq(x))`` is ``τ = 1`` over inner products):

    RAG-Sequence:  p(y|x) ≈ Σ_z p(z|x) Π_i p(y_i | x, z, y_<i)
    RAG-Token:     p(y|x) ≈ Π_i Σ_z p(z|x) p(y_i | x, z, y_<i)

``p(·|x, z, ·)`` is the decoder-only generator over the prompt ``prefix ‖ b_z ‖ q`` (one passage
block; its states come from the passage KV store, so each prompt costs only its question
prefill). The k prompts are decoded side by side in one batch (:class:`PassageBatch`).

- **RAG-Token** decodes one token at a time from the mixture ``Σ_z p(z|x) p(w|x,z,y_<t)``
  (greedy: its argmax; sampling: drawn from it), and feeds the chosen token to every passage.
- **RAG-Sequence** cannot be decoded token by token (§2.5): each passage ``z`` proposes a
  candidate (greedy or sampled decoding after prompt ``z``; the paper's beam of size 1), then
  *Thorough Decoding* scores every candidate under every passage with one teacher-forced
  batched forward pass per candidate and returns ``argmax_y Σ_z p(z|x) p(y|x,z)``. *Fast
  Decoding* skips those passes and takes ``p(y|x,z) = 0`` where ``y`` was not proposed by ``z``.
  A candidate's probability includes its end-of-sequence token when it ended with one.

With ``k = 1`` both reduce to plain generation over that passage (token for token, greedy).
``concat`` is the usual prompt with all k passages (no marginalisation).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from indexes.errors import InputError
from rag.generation.passage_batch import PassageBatch
from rag.generation.sampling import SamplingConfig, TokenSampler

Fusion = Literal["concat", "rag-sequence", "rag-token"]
SequenceDecoding = Literal["thorough", "fast"]


@dataclass(frozen=True)
class FusionConfig:
    """How the k passages are combined.

    Attributes:
        fusion: ``concat`` (one prompt with every passage), ``rag-sequence`` or ``rag-token``.
        temperature: ``τ`` of the prior ``p(z|x) = softmax(s_z / τ)``; ``τ → 0`` puts all mass
            on the top passage, large ``τ`` spreads it evenly. 1.0 suits the hybrid retriever's
            z-scored fused scores (spread of ~1 between the top passages).
        decoding: RAG-Sequence only, ``thorough`` (score every candidate under every passage)
            or ``fast`` (only under the passages that proposed it).
    """

    fusion: Fusion = "concat"
    temperature: float = 1.0
    decoding: SequenceDecoding = "thorough"

    def __post_init__(self) -> None:
        if self.fusion not in ("concat", "rag-sequence", "rag-token"):
            raise InputError(f"fusion must be concat, rag-sequence or rag-token, not {self.fusion!r}")
        if not self.temperature > 0:
            raise InputError(f"the fusion temperature must be > 0, got {self.temperature}")
        if self.decoding not in ("thorough", "fast"):
            raise InputError(f"RAG-Sequence decoding must be thorough or fast, not {self.decoding!r}")


def passage_prior(scores: Sequence[float], temperature: float = 1.0) -> torch.Tensor:
    """``log p(z|x) = log_softmax(s / τ)``, ``(k,)`` float64.

    Example:
        >>> passage_prior([2.0, 1.0], temperature=0.5).exp().round(decimals=4).tolist()  # e^4/(e^4+e^2)
        [0.8808, 0.1192]
    """
    s = torch.tensor(list(scores), dtype=torch.float64)  # (k,)
    return torch.log_softmax(s / temperature, dim=0)


def mixture_logprobs(logits: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """RAG-Token's next-token distribution ``log Σ_z p(z|x) p(w|x,z,y_<t)``, ``(V,)``.

    Args:
        logits: next-token logits after each passage's prompt, ``(k, V)``.
        log_prior: ``log p(z|x)``, ``(k,)``.
    """
    logp = torch.log_softmax(logits.double(), dim=-1)  # (k, V)
    return torch.logsumexp(log_prior.double()[:, None] + logp, dim=0)  # (V,)


def rag_token_tokens(generator, batch: PassageBatch, log_prior: torch.Tensor, config: SamplingConfig) -> Iterator[int]:
    """Token ids decoded from RAG-Token's per-step mixture (stops at end-of-sequence, not yielded)."""
    sampler = TokenSampler(config, device="cpu")
    logits = batch.logits  # (k, V)
    for step in range(config.max_new_tokens):
        mix = mixture_logprobs(logits, log_prior)  # (V,)
        token = sampler.pick(mix.float())
        if token in generator.eos_ids:
            return
        yield token
        if step + 1 == config.max_new_tokens:
            return
        logits = batch.step(torch.full((batch.k, 1), token))[:, -1]  # (k, V)


@dataclass(frozen=True)
class SequenceCandidate:
    """One RAG-Sequence hypothesis.

    Attributes:
        tokens: its token ids, the end-of-sequence token included when it ended with one.
        log_p: ``log p(y|x,z)`` per passage, ``(k,)`` (``-inf`` where not scored: Fast Decoding).
        score: ``log Σ_z p(z|x) p(y|x,z)``.
    """

    tokens: tuple[int, ...]
    log_p: tuple[float, ...]
    score: float


def _propose(generator, batch: PassageBatch, config: SamplingConfig) -> tuple[list[list[int]], torch.Tensor]:
    """One candidate per passage, decoded after its own prompt; and their ``log p(y_z|x,z)`` ``(k,)``."""
    samplers = [TokenSampler(config, device="cpu") for _ in range(batch.k)]
    if config.seed is not None:  # distinct, reproducible streams per passage
        for z, s in enumerate(samplers):
            s.rng.manual_seed(config.seed + z)
    out: list[list[int]] = [[] for _ in range(batch.k)]
    done = [False] * batch.k
    log_p = torch.zeros(batch.k, dtype=torch.float64)
    logits = batch.logits  # (k, V)
    for step in range(config.max_new_tokens):
        logp = torch.log_softmax(logits.double(), dim=-1)  # (k, V)
        picks = []
        for z in range(batch.k):
            token = samplers[z].pick(logits[z]) if not done[z] else next(iter(generator.eos_ids), 0)
            if not done[z]:
                out[z].append(token)
                log_p[z] += logp[z, token]
                done[z] = token in generator.eos_ids or _stopped(generator, out[z], config.stop)
            picks.append(token)
        if all(done) or step + 1 == config.max_new_tokens:
            break
        logits = batch.step(torch.tensor(picks)[:, None])[:, -1]  # (k, V)
    return out, log_p


def _stopped(generator, tokens: list[int], stop: tuple[str, ...]) -> bool:
    if not stop:
        return False
    text = generator.tokenizer.decode(tokens, skip_special_tokens=True)
    return any(s in text for s in stop)


@torch.inference_mode()
def score_candidate(batch: PassageBatch, tokens: Sequence[int]) -> torch.Tensor:
    """``log p(y|x,z)`` of one token sequence under every passage's prompt, ``(k,)`` float64.

    Teacher forcing: ``log p(y_0|x,z)`` from the prompt logits, then one batched forward pass
    over ``y_0 … y_{n-2}``; the batch is rewound to the prompts afterwards.
    """
    start = batch.length
    logp = torch.log_softmax(batch.logits.double(), dim=-1)[:, tokens[0]]  # (k,)
    if len(tokens) > 1:
        ids = torch.tensor([list(tokens[:-1])] * batch.k)  # (k, n-1)
        step = torch.log_softmax(batch.step(ids).double(), dim=-1)  # (k, n-1, V)
        target = torch.tensor(list(tokens[1:]))  # (n-1,)
        logp = logp + step[:, torch.arange(len(tokens) - 1), target].sum(dim=1)  # (k,)
        batch.rewind(start)
    return logp


def rag_sequence_decode(generator, batch: PassageBatch, log_prior: torch.Tensor, config: SamplingConfig,
                        decoding: SequenceDecoding = "thorough") -> list[SequenceCandidate]:
    """RAG-Sequence candidates, best first (the answer is the first one's tokens).

    Args:
        generator: the generator the batch belongs to.
        batch: the k passages' prompts (rewound to the prompts on return).
        log_prior: ``log p(z|x)``, ``(k,)``.
        config: decoding of the per-passage proposals.
        decoding: ``thorough`` or ``fast`` (module doc).
    """
    start = batch.length
    proposals, own = _propose(generator, batch, config)
    batch.rewind(start)
    distinct: dict[tuple[int, ...], torch.Tensor] = {}
    for z, tokens in enumerate(proposals):
        if not tokens:
            continue
        key = tuple(tokens)
        if key not in distinct:
            distinct[key] = torch.full((batch.k,), float("-inf"), dtype=torch.float64)
        distinct[key][z] = own[z]
    if decoding == "thorough":
        distinct = {y: score_candidate(batch, y) for y in distinct}
    prior = log_prior.double()
    ranked = [SequenceCandidate(y, tuple(lp.tolist()), float(torch.logsumexp(prior + lp, dim=0)))
              for y, lp in distinct.items()]
    return sorted(ranked, key=lambda c: -c.score)


def answer_tokens(candidate: SequenceCandidate | None, eos_ids) -> list[int]:
    """The candidate's tokens without a final end-of-sequence token."""
    if candidate is None:
        return []
    tokens = list(candidate.tokens)
    return tokens[:-1] if tokens and tokens[-1] in eos_ids else tokens
