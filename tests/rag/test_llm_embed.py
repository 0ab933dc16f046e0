"""Decoder-LLM embeddings: pooled positions by hand (PromptEOL: last token; Echo: second copy only),
batch equals one-by-one, and an ``llm:MODEL`` index searched through its manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rag.llm_embed import TEMPLATES, LLMEmbedder, layout, leading_special_tokens
from tests.conftest import FIXTURES
from tests.rag.kv_tiny import save_tiny_generator, tiny_generator


@pytest.fixture(scope="module")
def tiny():
    gen = tiny_generator("llama", 0)
    return gen.model, gen.tokenizer


def _piece(tok, s):
    return tok(s, add_special_tokens=False)["input_ids"]


def _states(model, ids):
    with torch.no_grad():
        return model.base_model(input_ids=torch.tensor([ids])).last_hidden_state[0]  # (L, d)


def test_layouts_by_hand(tiny):
    # Given: the WordPiece tokenizer ([CLS] leads every text) and a two-word text
    _, tok = tiny
    x = _piece(tok, "blue sky")
    cls = leading_special_tokens(tok)
    # When: the text is laid out for each pooling
    eol, echo, mean = (layout(tok, "blue sky", p, 256) for p in ("prompteol", "echo", "mean"))
    # Then: PromptEOL = [CLS] + prompt + text + closing prompt, pooled at the last position
    before, _, after = TEMPLATES["prompteol"]
    assert cls == [tok.cls_token_id]
    assert eol.ids == cls + _piece(tok, before) + x + _piece(tok, after) and eol.pool == (len(eol.ids) - 1, len(eol.ids))
    # Echo = [CLS] + "rewrite" + text + ", rewritten sentence:" + text, pooled over the second copy only
    b, mid, _ = TEMPLATES["echo"]
    first = len(cls) + len(_piece(tok, b))
    second = first + len(x) + len(_piece(tok, mid))
    assert echo.ids == cls + _piece(tok, b) + x + _piece(tok, mid) + x
    assert echo.pool == (second, second + len(x)) and echo.ids[first : first + len(x)] == x
    # mean = [CLS] + text, pooled over the text
    assert mean.ids == cls + x and mean.pool == (1, 1 + len(x))


def test_text_is_cut_to_max_tokens(tiny):
    # Given / When: a 6-word text read with at most 3 text tokens
    _, tok = tiny
    echo = layout(tok, "one two three four five six", "echo", 3)
    # Then: both copies hold the first 3 tokens
    a, b = echo.pool
    assert b - a == 3 and echo.ids[a:b] == _piece(tok, "one two three")


def test_pooled_vectors_are_the_hand_picked_hidden_states(tiny):
    # Given: the tiny Llama and one text
    model, tok = tiny
    text = "honey bees dance to show the way"
    x = _piece(tok, text)
    # When: each pooling embeds it (unnormalised)
    vecs = {p: LLMEmbedder(model, tok, p).embed([layout(tok, text, p, 256)])[0] for p in ("prompteol", "echo", "mean")}
    # Then: PromptEOL is the last prompt token's state
    ids = layout(tok, text, "prompteol", 256).ids
    assert torch.allclose(vecs["prompteol"], _states(model, ids)[-1], atol=1e-5)
    # Echo is the mean over the last len(x) positions (the second copy: the template ends with it)
    ids = layout(tok, text, "echo", 256).ids
    h = _states(model, ids)
    assert torch.allclose(vecs["echo"], h[-len(x):].mean(0), atol=1e-5)
    # ... and not the mean over the first copy, which has not seen the whole text
    first = len(leading_special_tokens(tok)) + len(_piece(tok, TEMPLATES["echo"][0]))
    assert not torch.allclose(vecs["echo"], h[first : first + len(x)].mean(0), atol=1e-3)
    # mean is the mean over the text after [CLS]
    assert torch.allclose(vecs["mean"], _states(model, [tok.cls_token_id] + x)[1:].mean(0), atol=1e-5)


@pytest.mark.parametrize("pooling", ["prompteol", "echo", "mean"])
def test_batch_equals_one_by_one(tiny, pooling):
    # Given: texts of very different lengths (right padding in a batch)
    model, tok = tiny
    emb = LLMEmbedder(model, tok, pooling)
    texts = ["a", "the sky is blue because air scatters short wavelengths more than long ones", "vaccines", ""]
    # When: they are encoded in one batch and one at a time
    batch = emb.encode(texts, batch_size=8)
    alone = np.vstack([emb.encode([t], batch_size=1) for t in texts])
    # Then: the unit vectors agree to float rounding
    assert np.allclose(batch, alone, atol=1e-5)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_llm_index_search_follows_the_manifest(tmp_path, capsys):
    from rag.cli import main

    # Given: the fixture corpus indexed with the tiny Llama's Echo embeddings
    model_dir = save_tiny_generator(tmp_path / "tiny-llama")
    out = tmp_path / "idx"
    assert main(["index", str(FIXTURES / "corpus.jsonl"), "--out", str(out), "--no-bm25", "--encoder",
                 f"llm:{model_dir}", "--llm-pooling", "echo", "--device", "cpu"]) == 0
    spec = json.loads((out / "manifest.json").read_text())["dense"]["encoder"]
    capsys.readouterr()
    # When: a dense search runs with nothing but the index
    assert main(["search", "--index", str(out), "--mode", "dense", "-k", "1", "--json", "blue sky"]) == 0
    hit = json.loads(capsys.readouterr().out)["hits"][0]
    # Then: the manifest records the pooling and the dimension, and the score is the cosine of
    # the Echo query vector with the hit's Echo passage vector
    assert spec["model"] == f"llm:{model_dir}" and spec["pooling"] == "echo" and spec["dim"] == 64
    gen = tiny_generator("llama", 0)
    emb = LLMEmbedder(gen.model, gen.tokenizer, "echo")
    text = f"{hit['title']} {hit['text']}" if hit["title"] else hit["text"]
    q, p = emb.encode(["blue sky"]), emb.encode([text])
    assert hit["score"] == pytest.approx(float(q[0] @ p[0]), abs=1e-4)


def test_pooling_without_an_llm_encoder_is_a_user_error(tmp_path, capsys):
    from rag.cli import main

    # Given / When: --llm-pooling with the default MiniLM encoder
    rc = main(["index", str(FIXTURES / "corpus.jsonl"), "--out", str(tmp_path / "i"), "--llm-pooling", "echo"])
    # Then: one line names the option and what it needs
    assert rc != 0 and "--llm-pooling is for a causal LM encoder (--encoder llm:MODEL)" in capsys.readouterr().err
