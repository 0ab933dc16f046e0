"""Dynamic block selection: attend only to the m passage blocks the question attends to most.

Blockwise sparse attention picks, per query, the key blocks worth attending to from cheap block
scores (dynamic blockwise sparse attention; cf. MInference, Jiang et al. 2024, arXiv:2407.02490,
and the block-selection step of Native Sparse Attention, Yuan et al. 2025, arXiv:2502.11089). In
RAG the blocks are the retrieved passages and their keys are already cached, so the scores cost
almost nothing:

1. *Probe*: run the question tokens over the shared prefix alone (``|q|`` tokens, no passages)
   and take, at a few layers ``l``, the queries the question would send:
   ``Q_l = RoPE(q_proj_l(norm_l(h_l)))`` ``(H, |q|, d)`` at the question's positions.
2. *Score*: attend with ``Q_l`` over ``[prefix ‖ b_1 ‖ … ‖ b_k]``'s cached keys (all blocks at
   their stored positions ``p … p+L_i-1``, the question after the longest, as TurboRAG's
   composite layout places them), and sum each block's attention mass:

       mass(b_i) = 1/(|ℓ|·H·|q|) Σ_{l∈ℓ} Σ_h Σ_t Σ_{s∈b_i} softmax_s(Q_l[h,t]·K_l[h,s] · d^-½)

   (the prefix — the BOS attention sink and instructions — is in the softmax, so heads that
   look at no passage add little).
3. *Select*: keep the ``m`` blocks of largest mass, in their retrieval order, and answer over
   those only (cached prefill over ``m`` blocks: fewer states to assemble and attend to).

The probe's hidden states saw no passage (that is what makes it cheap), so the scores
approximate the mass the full prompt would give. With ``m ≥ k`` every block is kept and the
answer equals attending to all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from indexes.errors import InputError
from rag.compat.transformers import cache_from_states, causal_lm_forward, decoder_layers, layer_queries
from rag.generation.kv_blocks import KVBlock
from rag.generation.rope import rotate_to


@dataclass(frozen=True)
class BlockSelectConfig:
    """Which blocks to keep.

    Attributes:
        m: blocks kept (the top ``m`` by attention mass); ``m ≥ k`` keeps all.
        layers: decoder layers probed; ``None``: three spread over the middle of the stack
            (``L/4, L/2, 3L/4``), where attention is most content-driven (the first layers
            attend locally, the last ones mostly to the sink).
    """

    m: int
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.m < 1:
            raise InputError(f"--select-blocks must be >= 1, got {self.m}")

    def probe_layers(self, n_layers: int) -> tuple[int, ...]:
        if self.layers is None:
            return tuple(sorted({n_layers // 4, n_layers // 2, (3 * n_layers) // 4}))
        bad = [layer for layer in self.layers if not 0 <= layer < n_layers]
        if bad:
            raise InputError(f"block selection layers {bad} out of range: the model has {n_layers} layers")
        return self.layers


def block_attention_mass(queries: Sequence[torch.Tensor], prefix_keys: Sequence[torch.Tensor],
                         block_keys: Sequence[Sequence[torch.Tensor]], scaling: float) -> torch.Tensor:
    """Mean attention mass of each block under the given queries, ``(k,)`` (module doc, step 2).

    Args:
        queries: per probed layer, rotated queries ``(H_q, n, d)``.
        prefix_keys: per probed layer, the prefix keys ``(H_kv, p, d)``.
        block_keys: per block, per probed layer, its keys ``(H_kv, L_i, d)``.
        scaling: the attention's ``q·k`` factor (``d^-½``).

    Example:
        One head, ``d = 2``, one query ``[1, 0]``, scaling 1, an empty prefix: block A's one key
        ``[2, 0]`` scores ``e²``, block B's two keys ``[0, 0]`` score ``e⁰`` each, so
        ``mass = [e²/(e²+2), 2/(e²+2)] = [0.787, 0.213]``.

        >>> q = [torch.tensor([[[1.0, 0.0]]])]
        >>> blocks = [[torch.tensor([[[2.0, 0.0]]])], [torch.zeros(1, 2, 2)]]
        >>> block_attention_mass(q, [torch.zeros(1, 0, 2)], blocks, 1.0).round(decimals=3).tolist()
        [0.787, 0.213]
    """
    k = len(block_keys)
    total = torch.zeros(k, dtype=torch.float64)
    count = 0
    for layer, q in enumerate(queries):
        parts = [prefix_keys[layer].float()] + [b[layer].float() for b in block_keys]  # each (H_kv, L, d)
        keys = torch.cat(parts, dim=1)  # (H_kv, T, d)
        group = q.shape[0] // keys.shape[0]
        keys = keys.repeat_interleave(group, dim=0)  # (H_q, T, d)
        att = torch.softmax(q.float() @ keys.transpose(1, 2) * scaling, dim=-1)  # (H_q, n, T)
        bounds = torch.tensor([p.shape[1] for p in parts]).cumsum(0)  # segment ends
        for i in range(k):
            total[i] += att[:, :, bounds[i] : bounds[i + 1]].sum().double()
        count += q.shape[0] * q.shape[1]
    return total / max(count, 1)


@torch.inference_mode()
def probe_queries(generator, prefix: KVBlock, question_ids: Sequence[int], q0: int,
                  layers: Sequence[int]) -> tuple[list[torch.Tensor], float]:
    """The question's rotated queries at ``layers`` from a forward pass over the prefix only (step 1).

    Returns:
        ``(queries, scaling)``: one ``(H_q, |q|, d)`` tensor per layer, and ``d^-½``.
    """
    model = generator.model
    dtype = next(model.parameters()).dtype
    cache = cache_from_states(prefix.keys.to(generator.device, dtype), prefix.values.to(generator.device, dtype))
    positions = torch.arange(q0, q0 + len(question_ids))  # (n,)
    x = torch.tensor([list(question_ids)], device=generator.device)  # (1, n)
    _, _, hidden = causal_lm_forward(model, x, positions[None].to(generator.device), cache, logits_to_keep=1,
                                     output_hidden_states=True)
    out, scaling = [], 1.0
    for layer in layers:
        q, scaling = layer_queries(model, layer, hidden[layer][0])  # (H_q, n, d)
        out.append(rotate_to(q, positions, model))
    return out, scaling


def select_blocks(generator, prefix: KVBlock, blocks: Sequence[KVBlock], question_ids: Sequence[int],
                  config: BlockSelectConfig) -> tuple[list[int], torch.Tensor]:
    """Indices of the blocks to keep, in their original order, and every block's mass ``(k,)``.

    Args:
        generator: the generator the states belong to.
        prefix: the shared prefix states.
        blocks: the retrieved passages' states, in retrieval order (as stored: positions from ``p``).
        question_ids: the question segment's tokens.
        config: ``m`` and the probed layers.
    """
    if config.m >= len(blocks):
        return list(range(len(blocks))), torch.full((len(blocks),), float("nan"), dtype=torch.float64)
    layers = config.probe_layers(len(decoder_layers(generator.model)))
    q0 = prefix.length + max(b.length for b in blocks)
    queries, scaling = probe_queries(generator, prefix, question_ids, q0, layers)
    device = queries[0].device
    prefix_keys = [prefix.keys[layer].to(device) for layer in layers]  # (H_kv, p, d) each
    block_keys = [[b.keys[layer].to(device) for layer in layers] for b in blocks]
    mass = block_attention_mass(queries, prefix_keys, block_keys, scaling)  # (k,)
    top = torch.argsort(mass, descending=True, stable=True)[: config.m]
    return sorted(int(i) for i in top), mass
