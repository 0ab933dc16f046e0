"""Block-attention generator training: the training forward is the inference forward, the loss sees
only answer tokens, a few seeded steps learn, bad input is a file:line error, and the CLI runs."""

from __future__ import annotations

import json

import pytest
import torch

from indexes.errors import InputError
from rag.generation.kv_blocks import BlockLayout, block_mask_logits
from rag.generation.prefill import cached_prefill
from rag.generation.prompt import PromptBuilder
from rag.generation.train import (
    IGNORE,
    GeneratorExample,
    GeneratorTrainConfig,
    answer_ids,
    answer_loss,
    batch_answer_loss,
    collate,
    load_generator_jsonl,
    sequence_logits,
    train_generator,
    training_sequence,
)
from tests.rag.kv_tiny import save_tiny_generator, tiny_generator

TOL = 1e-4
LONG = GeneratorExample("why is the sky blue?", (("Rayleigh scattering", "The sky is blue because air scatters short wavelengths."),
                                                 ("Honey bees", "Bees dance to tell the hive where flowers are."),
                                                 ("Disks", "Platters rotate under a head.")), "air scatters light")
SHORT = GeneratorExample("what do bees do?", (("Honey bees", "Bees dance."),), "they dance")


def _score(pred, golds):
    return float(pred in golds), float(pred in golds)


def _fresh(seed: int = 0):
    from rag.generation.generator import Generator

    gen = tiny_generator("llama")
    torch.manual_seed(seed)
    return Generator(type(gen.model)(gen.model.config), gen.tokenizer, name="fresh")


@pytest.mark.parametrize("layout", [BlockLayout("composite", see_prefix=True), BlockLayout("rerotate", see_prefix=False)], ids=str)
def test_training_logits_equal_block_mask_reference_and_cached_path(layout):
    # Given: a tiny random Llama and a padded batch of a three-passage and a one-passage example
    gen = tiny_generator("llama")
    builder, cfg = PromptBuilder(gen), GeneratorTrainConfig(layout=layout)
    seqs = [training_sequence(builder, e, cfg) for e in (LONG, SHORT)]
    # When: the training forward runs over the batch, and the inference path decodes the answer
    # token by token (teacher-forced) after the cached question prefill
    with torch.no_grad():
        logits = sequence_logits(gen.model, collate(seqs, gen.tokenizer.pad_token_id, torch.float32))  # (2, T, V)
    seg = builder.segments(LONG.question, LONG.passages)
    ans = answer_ids(gen, LONG.answer, cfg.max_answer_tokens)
    reference = block_mask_logits(gen, seg.prefix, seg.blocks, list(seg.question) + ans, layout)  # (T, V)
    prefill = cached_prefill(gen, seg, layout)
    pos = torch.arange(prefill.next_position, prefill.next_position + len(ans) - 1)
    decoded, _ = gen.forward(ans[:-1], pos, prefill.cache)  # (|a|-1, V)
    cached = torch.cat([prefill.logits[None], decoded])  # (|a|, V) logits that predict each answer token
    # Then: every position equals the reference, and the positions predicting the answer equal the cached path
    n = len(seqs[0].ids)
    assert (logits[0, :n] - reference).abs().max().item() <= TOL
    assert (logits[0, n - len(ans) - 1 : n - 1] - cached).abs().max().item() <= TOL
    assert cached.std().item() > 0.5  # O(1) logits: the tolerance means something
    # and the padded shorter example equals its own unpadded forward
    alone = sequence_logits(gen.model, collate(seqs[1:], 0, torch.float32)).detach()  # (1, T', V)
    assert (logits[1, : len(seqs[1].ids)] - alone[0]).abs().max().item() <= TOL


def test_full_attention_baseline_is_the_plain_causal_forward():
    # Given: the --full-attention configuration
    gen = tiny_generator("llama")
    seq = training_sequence(PromptBuilder(gen), LONG, GeneratorTrainConfig(attention="full"))
    # When
    with torch.no_grad():
        logits = sequence_logits(gen.model, collate([seq], 0, torch.float32))[0]  # (T, V)
        plain = gen.model(input_ids=seq.ids[None]).logits[0]  # (T, V) default causal mask, positions 0..T-1
    # Then
    assert (logits - plain).abs().max().item() <= TOL


def test_loss_only_counts_answer_tokens():
    # Given: a sequence whose labels were built for a 2-token answer + EOS
    gen = tiny_generator("llama")
    seq = training_sequence(PromptBuilder(gen), SHORT, GeneratorTrainConfig())
    ans = answer_ids(gen, SHORT.answer, 32)
    T = len(seq.ids)
    # Then: exactly the last |a| labels are set, to the answer ids (EOS last), the rest ignored
    assert ans[-1] == gen.tokenizer.sep_token_id and len(ans) == 3
    assert seq.labels[: T - 3].eq(IGNORE).all() and seq.labels[T - 3 :].tolist() == ans
    # When: logits are uniform except at the prompt (any values there)
    V = 7
    logits = torch.zeros(1, 5, V)  # (B, T, V)
    logits[0, :2] = torch.randn(2, V) * 100  # positions predicting prompt tokens: must not count
    labels = torch.tensor([[IGNORE, IGNORE, IGNORE, 3, 4]])  # tokens 3, 4 are the answer
    # Then: the loss is the NLL of 2 tokens under a uniform distribution, log 7 (hand-computed)
    assert answer_loss(logits, labels).item() == pytest.approx(torch.log(torch.tensor(7.0)).item(), abs=1e-6)


@pytest.mark.parametrize("attention", ["block", "full"])
def test_training_loss_with_logits_kept_at_answer_positions_equals_the_full_logits_loss(attention):
    # Given: a padded batch whose answers end at different positions (a long and a short prompt)
    gen = tiny_generator("llama")
    cfg = GeneratorTrainConfig(attention=attention)
    batch = collate([training_sequence(PromptBuilder(gen), e, cfg) for e in (LONG, SHORT)], 0, torch.float32)
    with torch.no_grad():
        # When: the loss is computed from logits at every position, and from the kept positions only
        slow = answer_loss(sequence_logits(gen.model, batch), batch["labels"])
        fast = batch_answer_loss(gen.model, batch)
    # Then: same loss (the fast path is what training runs)
    assert slow.item() > 0.1
    assert fast.item() == pytest.approx(slow.item(), abs=1e-5)


def test_a_few_seeded_steps_lower_the_loss_and_are_reproducible(tmp_path):
    # Given: two identically seeded fresh models and a two-example toy set
    cfg = GeneratorTrainConfig(steps=6, batch_size=2, lr=3e-3, warmup_steps=1, eval_every=6, eval_examples=1, seed=1,
                               max_answer_tokens=4)
    data = [LONG, SHORT]
    # When: both train for 6 steps
    a = train_generator(_fresh(), data, data, cfg, tmp_path / "a", score=_score)
    b = train_generator(_fresh(), data, data, cfg, tmp_path / "b", score=_score)
    # Then: the loss fell, the runs are identical, and the final model and history were written
    assert a.history[-1]["loss"] < 0.5 * a.history[0]["loss"]
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]
    assert "em" in a.history[-1] and (tmp_path / "a" / "final" / "config.json").is_file()


def test_lora_trains_adapters_and_saves_a_merged_model(tmp_path):
    # Given: a fresh model trained with LoRA for 2 steps
    gen = _fresh()
    base = gen.model.model.layers[0].mlp.up_proj.weight.clone()
    q = gen.model.model.layers[0].self_attn.q_proj.weight.clone()
    cfg = GeneratorTrainConfig(steps=2, batch_size=2, lr=1e-2, warmup_steps=1, eval_every=2, eval_examples=1, lora=True,
                               lora_rank=4, max_answer_tokens=4)
    # When
    train_generator(gen, [LONG, SHORT], [SHORT], cfg, tmp_path, score=_score)
    # Then: merged attention weights moved, non-adapted weights are untouched, final/ is a plain model (no adapter)
    assert not torch.equal(gen.model.model.layers[0].self_attn.q_proj.weight, q)
    assert torch.equal(gen.model.model.layers[0].mlp.up_proj.weight, base)
    assert (tmp_path / "final" / "config.json").is_file() and not (tmp_path / "final" / "adapter_config.json").exists()


def test_saving_a_lora_adapter_never_reaches_the_network(tmp_path, monkeypatch):
    import socket

    # Given: a LoRA run whose base is a model *name* (peft's default would look it up on the Hub
    # to check for changed embeddings), with every name lookup recorded
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # as on a user's machine
    lookups = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: lookups.append(a[0]) or (_ for _ in ()).throw(OSError("offline")))
    cfg = GeneratorTrainConfig(steps=1, batch_size=2, lr=1e-2, warmup_steps=1, eval_every=1, eval_examples=1, lora=True,
                               lora_rank=4, max_answer_tokens=4)
    # When: it trains and saves its adapter
    train_generator(_fresh(), [LONG, SHORT], [SHORT], cfg, tmp_path, score=_score)
    # Then: the adapter is written and no host name was ever looked up
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert lookups == []


def test_lora_adapter_folder_loads_by_path_and_changes_the_logits(tmp_path):
    from rag.generation.generator import Generator, GeneratorConfig

    # Given: a saved tiny model (a --generator folder) trained with LoRA through the loader
    base_dir = save_tiny_generator(tmp_path / "base")
    gen = Generator.load(GeneratorConfig(str(base_dir)))
    cfg = GeneratorTrainConfig(steps=2, batch_size=2, lr=1e-2, warmup_steps=1, eval_every=2, eval_examples=1, lora=True,
                               lora_rank=4, max_answer_tokens=4)
    train_generator(gen, [LONG, SHORT], [SHORT], cfg, tmp_path / "run", score=_score)
    # When: the adapter folder is loaded by path, next to the base
    adapter = Generator.load(GeneratorConfig(str(tmp_path / "run" / "adapter")))
    base = Generator.load(GeneratorConfig(str(base_dir)))
    ids = torch.tensor([base.encode("why is the sky blue")])
    with torch.no_grad():
        got, before, trained = adapter.model(ids).logits, base.model(ids).logits, gen.model(ids).logits
    # Then: it names its base by absolute path, gives the trained model's logits (not the base's),
    # and has its own revision (so its KV caches never mix with the base model's)
    record = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert record["base_model_name_or_path"] == str(base_dir.resolve())
    assert not torch.allclose(got, before, atol=1e-3)
    assert torch.allclose(got, trained, atol=1e-4), (got - trained).abs().max()
    assert adapter.revision not in (None, base.revision)


@pytest.mark.parametrize("line, message", [
    ('{"question": "q", "passages": ["p"]}', r"qa\.jsonl:2: field 'answer'"),
    ('{"question": "q", "passages": [], "answer": "a"}', r"qa\.jsonl:2: 'passages' and 'answer' must not be empty"),
    ('not json', r"qa\.jsonl:2: not a JSON object"),
])
def test_bad_input_names_file_and_line(tmp_path, line, message):
    # Given: a file whose second line is bad
    path = tmp_path / "qa.jsonl"
    path.write_text('{"question": "q", "passages": [{"title": "t", "text": "x"}], "answer": "a"}\n' + line + "\n")
    # When / Then
    with pytest.raises(InputError, match=message):
        load_generator_jsonl(path)


def test_cli_trains_and_reports_bad_input(tmp_path, capsys):
    from rag.cli import main

    # Given: a tiny model directory and a QA file
    save_tiny_generator(tmp_path / "m")
    rows = [{"question": e.question, "passages": [{"title": t, "text": x} for t, x in e.passages], "answer": e.answer}
            for e in (LONG, SHORT)]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["train", "generator", "--block-attention", "--model", str(tmp_path / "m"), "--dev", str(tmp_path / "qa.jsonl"),
            "--out", str(tmp_path / "o"), "--steps", "2", "--batch-size", "2", "--eval-examples", "1", "--max-answer-tokens", "4"]
    # When: it runs on good input and on a missing training file
    ok = main(args + ["--train", str(tmp_path / "qa.jsonl")])
    bad = main(args + ["--train", str(tmp_path / "missing.jsonl")])
    # Then
    assert ok == 0 and (tmp_path / "o" / "final" / "config.json").is_file() and (tmp_path / "o" / "curves.png").is_file()
    assert bad == 1 and "missing.jsonl: cannot read QA file" in capsys.readouterr().err
