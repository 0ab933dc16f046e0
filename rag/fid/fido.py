"""FiDO: a FiD decoder with grouped-query cross-attention in only every K-th layer.

FiDO (de Jong, Zemlyanskiy, Ainslie, FitzGerald, Sanghai, Sha, Cohen, "FiDO: Fusion-in-Decoder
optimized for stronger performance and faster inference", Findings of ACL 2023, arXiv:2212.08153,
§3.2-3.3) observes that FiD's decoder is bound by memory bandwidth, not FLOPs: every generated
token reads the cross-attention keys and values of all ``N·L`` encoder states in every layer.
It removes most of that traffic in two ways:

* **Multi-query / grouped-query cross-attention** (Shazeer 2019; Ainslie et al., "GQA", EMNLP
  2023, arXiv:2305.13245): the ``H`` query heads share ``G`` key/value heads, ``G | H``
  (``G = 1`` is multi-query). For a decoder state ``x`` and encoder states ``H_enc`` (``S = N·L``)::

      Q_h = x W_q^h                  h = 1..H          # (T, d_kv)
      K_g = H_enc W_k^g, V_g = H_enc W_v^g   g = 1..G   # (S, d_kv): G heads instead of H
      A_h = softmax(Q_h K_g(h)^T + mask) V_g(h)        # g(h) = h // (H / G); T5: no 1/sqrt(d_kv)
      CrossAttn(x) = [A_1 ; ... ; A_H] W_o

  The cross KV cache per layer shrinks from ``2·H·S·d_kv`` to ``2·G·S·d_kv`` numbers. A pretrained
  multi-head checkpoint is converted as GQA does (§2.1 "uptraining"): the key and value projections
  of the heads in a group are **mean-pooled**; with ``G = H`` nothing is pooled.
* **Layer-sparse cross-attention** (LSA-K): only layers ``0, K, 2K, ...`` keep their cross-attention
  sub-layer; the others are self-attention + feed-forward only. Layer 0 always cross-attends, so
  any ``K`` (even one larger than the depth) still reads the passages.

With ``G = H`` and ``K = 1`` the decoder computes exactly what the model's own decoder does
(the tests check the logits to 1e-5 and the greedy answers token for token). Other settings change
the function: the paper fine-tunes (uptrains) after converting; this module only converts. The
self-attention and feed-forward sub-layers are the model's own modules, called through their
public ``forward`` with a transformers ``DynamicCache``; only cross-attention is new code.

Example:
    (Not run as a doctest: needs a T5-family model.)
    >>> reader = FiDReader(model, tokenizer, FiDConfig(n_passages=20))          # doctest: +SKIP
    >>> fido = FiDODecoder(model, FiDOConfig(kv_groups=1, cross_every=3))        # doctest: +SKIP
    >>> FiDOReader(reader, fido).answer(["who wrote Hamlet?"], [["..."]])        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from indexes.errors import InputError
from rag.compat.transformers import DynamicCache, t5_decoder_output_scale, t5_self_attention
from rag.fid.inputs import FiDInputs


@dataclass(frozen=True)
class FiDOConfig:
    """How the FiDO decoder cross-attends; immutable.

    Attributes:
        kv_groups: ``G``, key/value heads shared by the query heads (1 = multi-query); ``None``
            keeps one per query head (``G = H``, plain multi-head).
        cross_every: ``K``, cross-attend in layers ``0, K, 2K, ...`` only (1 = every layer).
    """

    kv_groups: int | None = 1  # the paper's choice: multi-query
    cross_every: int = 1


class GroupedCrossAttention(nn.Module):
    """Grouped-query cross-attention built from a T5 ``EncDecAttention`` (``q``, ``k``, ``v``, ``o``).

    Args:
        attention: the layer's T5 cross-attention; ``q`` and ``o`` are shared with it, ``k`` and
            ``v`` are mean-pooled over the ``H / G`` heads of each group (GQA uptraining, §2.1).
        groups: ``G``, a divisor of the number of heads ``H``.
    """

    def __init__(self, attention: nn.Module, groups: int) -> None:
        super().__init__()
        H, dk = attention.n_heads, attention.key_value_proj_dim
        self.n_heads, self.groups, self.d_kv = H, groups, dk
        self.q, self.o = attention.q, attention.o
        self.k, self.v = self._pooled(attention.k, H, groups, dk), self._pooled(attention.v, H, groups, dk)

    @staticmethod
    def _pooled(proj: nn.Linear, H: int, G: int, dk: int) -> nn.Linear:
        if G == H:
            return proj
        w = proj.weight.detach()  # (H·dk, d)
        pooled = w.reshape(G, H // G, dk, -1).mean(dim=1).reshape(G * dk, -1)  # (G·dk, d)
        out = nn.Linear(w.shape[1], G * dk, bias=False, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            out.weight.copy_(pooled)
        return out

    def project(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of the encoder states, once per question: ``(B, S, d)`` → 2 × ``(B, G, S, d_kv)``."""
        B, S, _ = h.shape
        # contiguous once per question: attention over a transposed view copies it at every step
        # (at N = 50 passages that doubled the time per answer token)
        k = self.k(h).reshape(B, S, self.groups, self.d_kv).transpose(1, 2).contiguous()  # (B, G, S, d_kv)
        v = self.v(h).reshape(B, S, self.groups, self.d_kv).transpose(1, 2).contiguous()  # (B, G, S, d_kv)
        return k, v

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Attend from decoder states ``x`` ``(B, T, d)`` to ``k``/``v`` ``(B, G, S, d_kv)``.

        ``bias`` ``(B, 1, 1, S)`` is 0 for real encoder states and the dtype's minimum for padding.
        Returns ``(B, T, d)``.
        """
        B, T, _ = x.shape
        G, R = self.groups, self.n_heads // self.groups
        # The R query heads of a group share its K/V, so they are stacked as R·T queries: (B, G, R·T, d_kv)
        q = self.q(x).reshape(B, T, G, R, self.d_kv).permute(0, 2, 3, 1, 4).reshape(B, G, R * T, self.d_kv)
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)  # T5: unscaled
        a = a.reshape(B, G, R, T, self.d_kv).permute(0, 3, 1, 2, 4)  # (B, T, G, R, d_kv): head h = g·R + r
        return self.o(a.reshape(B, T, self.n_heads * self.d_kv))  # (B, T, d)


@dataclass
class FiDOState:
    """What one decoding run keeps: the self-attention cache and the cross keys/values per cross layer."""

    cache: DynamicCache
    cross: dict[int, tuple[torch.Tensor, torch.Tensor]]  # layer → 2 × (B, G, S, d_kv)
    bias: torch.Tensor  # (B, 1, 1, S) encoder padding as an additive bias


class FiDODecoder(nn.Module):
    """The decoder of a T5-family model rebuilt with FiDO cross-attention (shares its weights).

    Args:
        model: a ``T5ForConditionalGeneration`` (or sibling) whose decoder blocks are
            ``[self-attention, cross-attention, feed-forward]``.
        config: ``G`` and ``K``.

    Raises:
        InputError: ``kv_groups`` does not divide the number of heads, or ``cross_every < 1``.
    """

    def __init__(self, model, config: FiDOConfig = FiDOConfig()) -> None:
        super().__init__()
        self.model, self.config = model, config
        decoder = model.get_decoder()
        self.blocks = decoder.block
        H = self.blocks[0].layer[1].EncDecAttention.n_heads
        G = H if config.kv_groups is None else config.kv_groups
        if G < 1 or H % G:
            raise InputError(f"--cross-kv-groups {config.kv_groups}: must divide the decoder's {H} heads")
        if config.cross_every < 1:
            raise InputError(f"--cross-every {config.cross_every}: must be 1 or more")
        self.groups = G
        self.cross_layers = tuple(range(0, len(self.blocks), config.cross_every))
        self.cross = nn.ModuleDict(
            {str(i): GroupedCrossAttention(self.blocks[i].layer[1].EncDecAttention, G) for i in self.cross_layers}
        )

    def start(self, h: torch.Tensor, mask: torch.Tensor) -> FiDOState:
        """Project the encoder states once: ``h`` ``(B, S, d)``, ``mask`` ``(B, S)`` (True = real)."""
        cross = {i: self.cross[str(i)].project(h) for i in self.cross_layers}
        bias = torch.zeros(mask.shape, dtype=h.dtype, device=h.device)
        bias = bias.masked_fill(~mask.bool().to(h.device), torch.finfo(h.dtype).min)[:, None, None]  # (B, 1, 1, S)
        return FiDOState(DynamicCache(), cross, bias)

    def step(self, decoder_input_ids: torch.Tensor, state: FiDOState) -> torch.Tensor:
        """Run ``(B, T)`` new decoder tokens after those already in ``state.cache``; → logits ``(B, T, V)``."""
        decoder = self.model.get_decoder()
        x = decoder.dropout(decoder.embed_tokens(decoder_input_ids))  # (B, T, d)
        T, past = x.shape[1], state.cache.get_seq_length()
        causal = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)  # (T, past+T)
        self_mask = torch.zeros(causal.shape, dtype=x.dtype, device=x.device).masked_fill(~causal, torch.finfo(x.dtype).min)
        self_mask = self_mask[None, None]  # (1, 1, T, past+T)
        position_bias = None
        for i, block in enumerate(self.blocks):
            x, position_bias = t5_self_attention(block.layer[0], x, self_mask, position_bias, state.cache)
            if i in state.cross:
                sub = block.layer[1]
                k, v = state.cross[i]
                x = x + sub.dropout(self.cross[str(i)](sub.layer_norm(x), k, v, state.bias))  # (B, T, d)
            x = block.layer[-1](x)  # (B, T, d)
        x = decoder.dropout(decoder.final_layer_norm(x))
        return self.model.lm_head(x * t5_decoder_output_scale(self.model))  # (B, T, V)

    def logits(self, h: torch.Tensor, mask: torch.Tensor, decoder_input_ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``(B, T, V)`` for ``decoder_input_ids`` ``(B, T)`` in one pass."""
        return self.step(decoder_input_ids, self.start(h, mask))

    @torch.no_grad()
    def greedy(self, h: torch.Tensor, mask: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Greedy decoding, as transformers' ``generate(num_beams=1)``: ``(B, 1 + T)`` ids starting with
        the decoder start token; a finished row is padded with the pad token."""
        cfg = self.model.config
        B = h.shape[0]
        state = self.start(h, mask)
        ids = torch.full((B, 1), cfg.decoder_start_token_id, dtype=torch.long, device=h.device)  # (B, 1)
        done = torch.zeros(B, dtype=torch.bool, device=h.device)
        for _ in range(max_new_tokens):
            nxt = self.step(ids[:, -1:], state)[:, -1].argmax(dim=-1)  # (B,)
            nxt = nxt.masked_fill(done, cfg.pad_token_id)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            done |= nxt == cfg.eos_token_id
            if bool(done.all()):
                break
        return ids


class FiDOReader:
    """A :class:`rag.fid.reader.FiDReader` whose answers are decoded by a :class:`FiDODecoder`.

    Args:
        reader: the FiD reader (its tokenizer, config and passage encoder are used as they are).
        decoder: the FiDO decoder built over the same model.
    """

    def __init__(self, reader, decoder: FiDODecoder) -> None:
        self.reader, self.decoder = reader, decoder
        self.tokenizer, self.config = reader.tokenizer, reader.config

    def tokenize(self, questions: Sequence[str], passages: Sequence[Sequence[str]], n_passages: int | None = None) -> FiDInputs:
        """As :meth:`rag.fid.reader.FiDReader.tokenize`."""
        return self.reader.tokenize(questions, passages, n_passages)

    @torch.no_grad()
    def generate(self, inputs: FiDInputs, *, max_new_tokens: int | None = None, num_beams: int | None = None) -> torch.Tensor:
        """Greedy answer ids ``(B, 1 + T)``.

        Raises:
            InputError: ``num_beams > 1`` (FiDO decodes greedily here).
        """
        if (num_beams or self.config.num_beams) > 1:
            raise InputError("FiDO decoding is greedy: use --num-beams 1 with --cross-kv-groups/--cross-every")
        h, mask = self.reader.encoder(inputs)  # (B, N·L, d), (B, N·L)
        return self.decoder.greedy(h, mask, max_new_tokens or self.config.max_new_tokens)

    def answer(self, questions: Sequence[str], passages: Sequence[Sequence[str]], **decoding) -> list[str]:
        """Answer each question from its passages (best first)."""
        ids = self.generate(self.tokenize(questions, passages), **decoding)
        return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
