"""The transformers internals the toolkit relies on, in one place.

Everything here is public API in transformers ≥ 5.0 but shaped by model internals: the cache
layer classes (``DynamicLayer``, ``DynamicCache``, ``Cache(layers=...)``), the name of the cache
argument and output field of a causal LM (``past_key_values`` until 5.x renamed it ``cache``;
passing the old name is deprecated), the T5 encoder stack's ``block`` list, ``compute_bias`` and
bidirectional mask (LUMEN, :mod:`rag.fid.lumen`), the decoder-output scale before ``lm_head`` (FiDO, :mod:`rag.fid.fido`), the decoder's ``rotary_emb`` module (KV
re-positioning, :mod:`rag.generation.rope`) and a BERT-style ``encoder.layer`` list (query
encoder distillation, :mod:`rag.training.distill`). When transformers moves one of them, this
module is the only one to change.

Importing it checks the installed version (:data:`MIN_VERSION`, the lower bound declared in
``pyproject.toml``) and raises :class:`rag.compat.DependencyVersionError` if it is older.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence

import torch

from indexes.errors import InputError
from rag.compat import require

MIN_VERSION = "5.20"  # 5.0 has the cache layers this module uses; GGUF tokenizers load from 5.20 on
VERSION = require("transformers", MIN_VERSION, "rag (KV cache layers, T5 stack blocks, training arguments)")

from transformers import Cache, DynamicCache, DynamicLayer  # noqa: E402  (after the version check)

__all__ = ["MIN_VERSION", "Cache", "DynamicLayer", "bidirectional_mask", "cache_from_layers", "cache_from_pairs",
           "cache_from_states", "cache_layer_states", "causal_lm_forward", "decoder_layers", "encoder_layers",
           "layer_queries", "rotary_embedding", "set_encoder_layers", "t5_blocks", "t5_decoder_output_scale",
           "t5_position_bias", "t5_self_attention"]


# --- KV caches ---------------------------------------------------------------------------------

def cache_from_states(keys: torch.Tensor | None, values: torch.Tensor | None) -> DynamicCache:
    """A ``DynamicCache`` holding ``keys``/``values`` ``(n_layers, H, L, d)``; empty when ``None``."""
    if keys is None or values is None:
        return DynamicCache()
    return DynamicCache(ddp_cache_data=[(keys[i : i + 1], values[i : i + 1]) for i in range(keys.shape[0])])  # (1, H, L, d)


def cache_from_pairs(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> DynamicCache:
    """A ``DynamicCache`` holding one ``(keys, values)`` pair per layer, each ``(B, H, T, d)``."""
    return DynamicCache(ddp_cache_data=[(k, v) for k, v in pairs])


def cache_from_layers(layers: Sequence[DynamicLayer]) -> Cache:
    """A ``Cache`` over ready-made layer objects (e.g. preallocated ``DynamicLayer`` subclasses)."""
    return Cache(layers=list(layers))


def _cache_argument(model) -> str:
    """``cache`` where the model's forward takes it (newer 5.x), else ``past_key_values``."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def causal_lm_forward(model, input_ids: torch.Tensor, position_ids: torch.Tensor | None, cache,
                      logits_to_keep: int = 0, attention_mask: torch.Tensor | None = None,
                      output_hidden_states: bool = False):
    """One causal-LM forward pass that reads and extends ``cache``.

    Args:
        model: a Hugging Face ``*ForCausalLM``.
        input_ids: ``(B, L)`` token ids.
        position_ids: ``(B, L)`` positions, or ``None`` for the model's default.
        cache: a ``Cache`` or ``None`` (a fresh one is created).
        logits_to_keep: ``0`` for every position's logits, ``n`` for the last ``n`` only.
        attention_mask: ``(B, cached + L)`` padding mask (1 = attend), or ``None`` (no padding).
        output_hidden_states: also return the hidden states entering every layer.

    Returns:
        ``(logits (B, L or n, V), cache)``, plus the hidden states (a tuple of ``n_layers + 1``
        tensors ``(B, L, d_model)``: entry ``i < n_layers`` is the input of layer ``i``) when
        ``output_hidden_states``.
    """
    kwargs = {_cache_argument(model): cache}
    if attention_mask is not None:
        kwargs["attention_mask"] = attention_mask
    if output_hidden_states:
        kwargs["output_hidden_states"] = True
    out = model(input_ids=input_ids, position_ids=position_ids, use_cache=True, logits_to_keep=logits_to_keep, **kwargs)
    keys = out.keys()
    new_cache = out["cache"] if "cache" in keys else out["past_key_values"]
    if output_hidden_states:
        return out.logits, new_cache, out.hidden_states
    return out.logits, new_cache


def cache_layer_states(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(keys, values)`` of every layer of a ``Cache``, each ``(B, H_kv, T, d)`` (views, not copies)."""
    return [(layer.keys, layer.values) for layer in cache.layers]


# --- Decoder layers (attention probes: block selection, KV eviction) ---------------------------

def decoder_layers(model) -> torch.nn.ModuleList:
    """The decoder layers of a Llama-style causal LM (``model.model.layers``).

    Raises:
        InputError: the model has no such list (attention probes need a Llama-style decoder).
    """
    base = getattr(model, "base_model", model)
    layers = getattr(base, "layers", None)
    if layers is None or not len(layers) or not hasattr(layers[0], "self_attn") or not hasattr(layers[0].self_attn, "q_proj"):
        raise InputError(f"{type(model).__name__} is not a Llama-style decoder (layers[i].self_attn.q_proj): "
                         "attention probes need one")
    return layers


def layer_queries(model, layer: int, hidden: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Query states of decoder layer ``layer`` before RoPE, and the attention scaling.

    The layer's own modules compute them, as its attention does: ``q_proj(input_layernorm(h))``,
    split into heads, then ``q_norm`` where the architecture has one (Qwen3).

    Args:
        model: a Llama-style causal LM.
        layer: the layer index.
        hidden: the layer's input hidden states, ``(n, d_model)``.

    Returns:
        ``(queries (H_q, n, d_head), scaling)``; ``scaling`` multiplies ``q·k`` (``d_head^-0.5``).
    """
    block = decoder_layers(model)[layer]
    attn = block.self_attn
    head_dim = attn.head_dim
    q = attn.q_proj(block.input_layernorm(hidden)).view(hidden.shape[0], -1, head_dim)  # (n, H_q, d)
    if getattr(attn, "q_norm", None) is not None:
        q = attn.q_norm(q)
    return q.transpose(0, 1), float(getattr(attn, "scaling", head_dim**-0.5))  # (H_q, n, d)


# --- T5 encoder stack (LUMEN) ------------------------------------------------------------------

def t5_blocks(stack) -> torch.nn.ModuleList:
    """The ``T5Block`` layers of a T5-family encoder stack.

    Raises:
        InputError: the stack is not T5-shaped (no ``block`` list with relative attention bias).
    """
    blocks = getattr(stack, "block", None)
    if blocks is None or not len(blocks) or not hasattr(blocks[0].layer[0].SelfAttention, "compute_bias"):
        raise InputError(f"{type(stack).__name__} is not a T5-family encoder stack (block[i].layer[0].SelfAttention): "
                         "FiD/LUMEN readers need a T5-family model")
    return blocks


def t5_position_bias(stack, length: int, device) -> torch.Tensor:
    """The shared relative position bias ``(1, heads, T, T)`` that ``T5Stack.forward`` passes to every block."""
    return t5_blocks(stack)[0].layer[0].SelfAttention.compute_bias(length, length, device=device)


def bidirectional_mask(config, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor):
    """The encoder attention mask ``T5Stack.forward`` builds from a ``(R, T)`` padding mask."""
    from transformers.masking_utils import create_bidirectional_mask

    # The embeddings argument is `input_embeds` in 5.0 and `inputs_embeds` in later 5.x releases.
    params = inspect.signature(create_bidirectional_mask).parameters
    embeds = "inputs_embeds" if "inputs_embeds" in params else "input_embeds"
    return create_bidirectional_mask(config=config, attention_mask=attention_mask.long(), **{embeds: inputs_embeds})


@functools.cache
def _mask_folded_into_bias(attention_class: type) -> bool:
    """Whether this T5 attention adds the mask to the position bias it computes, and ignores the
    mask when it is given a bias (transformers 5.0), rather than applying the mask separately (later 5.x)."""
    return "position_bias + causal_mask" in inspect.getsource(attention_class.forward)


def run_t5_blocks(stack, h: torch.Tensor, mask: torch.Tensor, blocks: Sequence[torch.nn.Module]) -> torch.Tensor:
    """Run ``blocks`` over hidden states ``h`` ``(R, T, d)`` with padding ``mask`` ``(R, T)``, as ``T5Stack.forward`` does.

    ``T5Stack`` lets its first block compute the relative position bias and hands it to the
    others; here the bias comes from block 0 explicitly, so that the live layers of LUMEN (which
    do not start at block 0) see the same bias, with the padding mask applied as each
    transformers release expects it.
    """
    if len(blocks) == 0:
        return h
    attn_mask = bidirectional_mask(stack.config, h, mask)
    bias = t5_position_bias(stack, h.shape[1], h.device)  # (1, heads, T, T)
    if attn_mask is not None and _mask_folded_into_bias(type(blocks[0].layer[0].SelfAttention)):
        bias = bias + attn_mask[:, :, :, : h.shape[1]]  # (R, heads, T, T)
    for block in blocks:
        h = block(h, attn_mask, bias)[0]  # (R, T, d)
    return h


def t5_self_attention(layer, h: torch.Tensor, mask: torch.Tensor, position_bias: torch.Tensor | None, cache):
    """Call a T5 decoder block's self-attention sub-layer (``block.layer[0]``) on ``h`` ``(B, T, d)``,
    reading and extending ``cache`` (named ``cache`` or ``past_key_values`` by the release).

    Returns:
        ``(hidden (B, T, d), position_bias)``: the bias to hand to the next block, as ``T5Stack`` does.
    """
    kwargs = {_cache_argument(layer): cache}
    out = layer(h, attention_mask=mask, position_bias=position_bias, **kwargs)
    return out[0], out[1]


def t5_decoder_output_scale(model) -> float:
    """The factor T5 multiplies the decoder's output by before ``lm_head``: ``d_model ** -0.5`` when
    the output embedding is tied to the input one (``scale_decoder_outputs`` in later 5.x,
    ``tie_word_embeddings`` before), else 1."""
    config = model.config
    scale = getattr(config, "scale_decoder_outputs", None)
    if scale is None:
        scale = getattr(config, "tie_word_embeddings", True)
    return config.d_model ** -0.5 if scale else 1.0


# --- Rotary embeddings (KV re-positioning) -----------------------------------------------------

def rotary_embedding(model) -> torch.nn.Module | None:
    """The rotary-embedding module (with ``inv_freq``) of a causal LM's base model, or ``None``."""
    base = getattr(model, "base_model", model)
    rotary = getattr(base, "rotary_emb", None)
    return rotary if rotary is not None and hasattr(rotary, "inv_freq") else None


# --- BERT-style encoder layers (distillation) ----------------------------------------------------

def encoder_layers(auto_model) -> torch.nn.ModuleList | None:
    """The transformer layers of a BERT-style encoder (``encoder.layer``), or ``None``."""
    return getattr(getattr(auto_model, "encoder", None), "layer", None)


def set_encoder_layers(auto_model, layers: Sequence[torch.nn.Module]) -> None:
    """Replace a BERT-style encoder's layers and its ``num_hidden_layers`` so it saves and reloads with them."""
    auto_model.encoder.layer = torch.nn.ModuleList(layers)
    auto_model.config.num_hidden_layers = len(layers)
