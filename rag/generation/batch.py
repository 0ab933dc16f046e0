"""Greedy completions of several chat prompts in one left-padded batch.

A small causal LM on a CPU is bound by reading its weights once per decoding step; decoding ``B``
prompts together reads them once for ``B`` tokens, so writing query2doc's pseudo-documents for
a query set costs about ``1/B`` of one-by-one completion. The batch goes through transformers'
``generate`` (left padding and the attention mask, from which it derives each row's positions),
so each row decodes as :meth:`rag.generation.generator.Generator.complete` would alone, up to
float rounding of padded shapes (tested token for token on a tiny model).

Example:
    (Not run as a doctest: needs a causal LM.)
    >>> complete_batch(generator, ["Write a passage about BM25.", "Define recall."],
    ...                SamplingConfig(max_new_tokens=64, temperature=0.0))        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

from indexes.errors import InputError
from rag.generation.sampling import SamplingConfig


def complete_batch(generator, users: Sequence[str], config: SamplingConfig, system: str | None = None) -> list[str]:
    """Greedy answers to ``users`` (one chat prompt each), decoded in one batch.

    Args:
        generator: a :class:`rag.generation.generator.Generator`.
        users: the user messages.
        config: ``max_new_tokens`` and ``stop`` are used; decoding is greedy.
        system: an optional system message for every prompt.

    Returns:
        One text per prompt, cut at an end-of-sequence token or the first stop string.

    Raises:
        InputError: ``config`` asks for sampling (greedy only here).
    """
    import torch
    from transformers import GenerationConfig

    if not config.greedy:
        raise InputError("batched completion is greedy: use temperature 0")
    if not users:
        return []
    tok = generator.tokenizer
    rows = [generator.encode(generator.chat_text(u, system)) for u in users]
    pad = tok.pad_token_id if tok.pad_token_id is not None else sorted(generator.eos_ids)[0]
    L = max(map(len, rows))
    ids = torch.tensor([[pad] * (L - len(r)) + r for r in rows], device=generator.device)  # (B, L) left-padded
    mask = torch.tensor([[0] * (L - len(r)) + [1] * len(r) for r in rows], device=generator.device)  # (B, L)
    # A whole GenerationConfig, so that no default of the model's own (a repetition penalty, say)
    # changes the argmax chain that Generator.complete follows.
    plain = GenerationConfig(max_new_tokens=config.max_new_tokens, do_sample=False, num_beams=1,
                             eos_token_id=sorted(generator.eos_ids), pad_token_id=pad)
    with torch.inference_mode():
        out = generator.model.generate(input_ids=ids, attention_mask=mask, generation_config=plain)  # (B, L + T)
    texts = []
    for row in out[:, L:].tolist():
        end = next((i for i, t in enumerate(row) if t in generator.eos_ids), len(row))
        text = tok.decode(row[:end], skip_special_tokens=True)
        cut = min((i for i in (text.find(s) for s in config.stop) if i >= 0), default=len(text))
        texts.append(text[:cut])
    return texts
