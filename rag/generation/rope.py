"""Rotary position embeddings (RoPE): detect them and move cached keys to new positions.

RoPE (Su et al., 2021, arXiv:2104.09864, §3.4) encodes position ``m`` by rotating each pair of
query/key channels by the angle ``m·θ_i`` with ``θ_i = base^(-2i/d)``. In the "rotate-half"
layout used by Llama, Qwen2 and Mistral,

    RoPE(x, m) = x ⊙ cos(m·θ) + rotate_half(x) ⊙ sin(m·θ),   rotate_half([x1, x2]) = [-x2, x1].

Rotations compose, ``R(δ)·R(m) = R(m + δ)``, so a key cached at position ``m`` is moved to
``m + δ`` by rotating it once more by ``δ``, without recomputing it. Block-Attention (Sun et al.,
2024, arXiv:2409.15355, §3.2 "position re-encoding") uses this to place independently encoded
passage blocks at their actual offsets in a prompt.

The angles come from the model's own rotary module (``model.model.rotary_emb``, found by
:func:`rag.compat.transformers.rotary_embedding`), so every RoPE
variant whose frequencies do not depend on the sequence length (default, linear, llama3, YaRN
without its attention scaling) is handled without copying its code.
"""

from __future__ import annotations

import torch

from indexes.errors import InputError


def rotary_module(model) -> torch.nn.Module:
    """The rotary-embedding module of a Hugging Face causal LM.

    Raises:
        InputError: the model has no rotary position embeddings (e.g. GPT-2's learned absolute
            positions), so cached keys cannot be re-positioned.
    """
    from rag.compat.transformers import rotary_embedding

    rotary = rotary_embedding(model)
    if rotary is None:
        name = getattr(model.config, "model_type", type(model).__name__)
        raise InputError(
            f"model type {name!r} has no rotary position embeddings; passage KV caching needs a RoPE "
            "model (Llama, Qwen2, Mistral families); answer without the passage KV cache"
        )
    return rotary


def rope_cos_sin(model, positions: torch.Tensor, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Pure rotation angles ``cos(m·θ), sin(m·θ)`` for integer ``positions`` (n,) → (n, d) each.

    The module's ``attention_scaling`` (YaRN/LongRoPE magnitude factor) is divided out: it is
    already inside the cached keys and must not be applied twice.
    """
    rotary = rotary_module(model)
    x = torch.zeros((), dtype=torch.float32, device=rotary.inv_freq.device)
    cos, sin = rotary(x, position_ids=positions.reshape(1, -1).to(rotary.inv_freq.device))  # (1, n, d)
    scale = float(getattr(rotary, "attention_scaling", 1.0) or 1.0)
    return (cos[0] / scale).to(dtype), (sin[0] / scale).to(dtype)  # (n, d)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rerotate(keys: torch.Tensor, delta: int, model) -> torch.Tensor:
    """Move rotary-encoded ``keys`` (..., L, d) by ``delta`` positions: ``R(δ)·k``.

    Computed in float32 and returned in ``keys.dtype``; ``delta == 0`` returns ``keys`` as is.

    Raises:
        InputError: the model rotates only part of each head (partial rotary), which this
            rotate-half implementation does not cover.
    """
    if delta == 0:
        return keys
    cos, sin = rope_cos_sin(model, torch.tensor([delta]))  # (1, d)
    if cos.shape[-1] != keys.shape[-1]:
        raise InputError(
            f"partial rotary embeddings ({cos.shape[-1]} of {keys.shape[-1]} channels) are not supported for KV caching"
        )
    k = keys.to(torch.float32)  # (..., L, d)
    return (k * cos + _rotate_half(k) * sin).to(keys.dtype)  # (..., L, d)


def rerotate_(keys: torch.Tensor, delta: int, model) -> torch.Tensor:
    """In-place :func:`rerotate` of a float32 tensor or view (one temporary instead of four)."""
    if delta == 0:
        return keys
    if keys.dtype != torch.float32:
        return keys.copy_(rerotate(keys, delta, model))
    cos, sin = rope_cos_sin(model, torch.tensor([delta]))  # (1, d)
    if cos.shape[-1] != keys.shape[-1]:
        return keys.copy_(rerotate(keys, delta, model))  # raises the partial-rotary error
    rotated = _rotate_half(keys)  # (..., L, d)
    return keys.mul_(cos.to(keys.device)).addcmul_(rotated, sin.to(keys.device))  # (..., L, d)


def rotate_to(x: torch.Tensor, positions: torch.Tensor, model) -> torch.Tensor:
    """Apply RoPE at ``positions`` (n,) to un-rotated states ``x`` (..., n, d), as the model's attention does.

    Used for query states computed outside the attention module (attention probes); computed in
    float32 and returned in ``x.dtype``. Unlike :func:`rope_cos_sin`, the module's
    ``attention_scaling`` is kept, since the attention applies it to fresh states.
    """
    rotary = rotary_module(model)
    zero = torch.zeros((), dtype=torch.float32, device=rotary.inv_freq.device)
    cos, sin = rotary(zero, position_ids=positions.reshape(1, -1).to(rotary.inv_freq.device))  # (1, n, d)
    cos, sin = cos[0].to(x.device), sin[0].to(x.device)  # (n, d)
    y = x.to(torch.float32)  # (..., n, d)
    return (y * cos + _rotate_half(y) * sin).to(x.dtype)  # (..., n, d)
