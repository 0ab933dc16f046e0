"""FiDO (de Jong et al. 2023): G = H and K = 1 equals the plain FiD reader; shapes and pooling by hand."""

from __future__ import annotations

import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

from indexes.errors import InputError
from rag.fid.fido import FiDOConfig, FiDODecoder, FiDOReader, GroupedCrossAttention
from rag.fid.reader import FiDConfig, FiDReader, answer_labels

CONFIG = FiDConfig(n_passages=3, max_passage_tokens=64, max_new_tokens=6)


def _encoded(tiny):
    reader = FiDReader(tiny.model, tiny.tokenizer, CONFIG)
    inputs = reader.tokenize(tiny.questions, tiny.passages)
    with torch.no_grad():
        h, mask = reader.encoder(inputs)  # (B, N·L, d), (B, N·L)
    return reader, inputs, h, mask


def test_one_group_per_head_every_layer_equals_plain_fid_logits(tiny):
    # Given: the tiny T5 read as plain FiD and through a FiDO decoder with G = H = 4 and K = 1
    reader, inputs, h, mask = _encoded(tiny)
    labels = answer_labels(tiny.tokenizer, ["william shakespeare", "in 1927"], max_tokens=8)
    fido = FiDODecoder(tiny.model, FiDOConfig(kv_groups=None, cross_every=1))
    # When: both score the same answers with teacher forcing
    with torch.no_grad():
        plain = reader.forward(inputs, labels).logits  # (B, T, V)
        ours = fido.logits(h, mask, tiny.model.prepare_decoder_input_ids_from_labels(labels=labels))
    # Then: the logits agree to 1e-5, padded encoder states included in the batch
    assert (plain - ours).abs().max() <= 1e-5


def test_one_group_per_head_every_layer_decodes_the_plain_answers(tiny):
    # Given: a FiDO reader with G = H (given explicitly as 4) and K = 1 over the plain reader
    reader, inputs, _, _ = _encoded(tiny)
    fido = FiDOReader(reader, FiDODecoder(tiny.model, FiDOConfig(kv_groups=4, cross_every=1)))
    # When: both decode greedily
    plain, ours = reader.generate(inputs), fido.generate(inputs)
    # Then: the token ids are identical (transformers' generate vs our cached loop)
    assert ours.tolist() == plain.tolist()


def test_incremental_steps_equal_one_teacher_forced_pass(tiny):
    # Given: a multi-query, layer-sparse decoder (G = 1, K = 2) and a 5-token decoder input
    _, _, h, mask = _encoded(tiny)
    fido = FiDODecoder(tiny.model, FiDOConfig(kv_groups=1, cross_every=2))
    ids = torch.tensor([[0, 5, 9, 7, 3], [0, 8, 8, 2, 4]])
    # When: logits come from one pass and from five cached one-token steps
    with torch.no_grad():
        full = fido.logits(h, mask, ids)  # (B, 5, V)
        state = fido.start(h, mask)
        steps = torch.cat([fido.step(ids[:, t : t + 1], state) for t in range(5)], dim=1)
    # Then: the cached path equals the full pass
    assert (full - steps).abs().max() <= 1e-5


def test_multi_query_and_layer_sparsity_change_the_function(tiny):
    # Given: the plain-equivalent decoder and two FiDO variants
    _, _, h, mask = _encoded(tiny)
    ids = torch.tensor([[0, 5, 9], [0, 8, 8]])
    with torch.no_grad():
        plain = FiDODecoder(tiny.model, FiDOConfig(kv_groups=None)).logits(h, mask, ids)
        mq = FiDODecoder(tiny.model, FiDOConfig(kv_groups=1)).logits(h, mask, ids)
        lsa = FiDODecoder(tiny.model, FiDOConfig(kv_groups=None, cross_every=2)).logits(h, mask, ids)
    # Then: pooling keys/values and dropping a cross-attention layer are not no-ops (random weights)
    assert (plain - mq).abs().max() > 1e-3 and (plain - lsa).abs().max() > 1e-3


def test_cross_kv_shapes_by_hand():
    # Given: a 5-layer decoder with H = 4 heads of d_kv = 8, G = 2 groups, cross-attention every K = 2 layers
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(vocab_size=50, d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                                num_decoder_layers=5, num_heads=4, dropout_rate=0.0)).eval()
    fido = FiDODecoder(model, FiDOConfig(kv_groups=2, cross_every=2))
    h, mask = torch.randn(3, 7, 16), torch.ones(3, 7, dtype=torch.bool)  # B = 3, S = N·L = 7
    # When: the encoder states are projected once
    state = fido.start(h, mask)
    # Then: layers 0, 2, 4 cross-attend; each keeps K and V of shape (B, G, S, d_kv) = (3, 2, 7, 8):
    # 3 layers × 2 × 3·2·7·8 = 2,016 numbers, against 5 × 2 × 3·4·7·8 = 6,720 for plain FiD
    assert fido.cross_layers == (0, 2, 4)
    assert all(k.shape == v.shape == (3, 2, 7, 8) for k, v in state.cross.values())
    assert sum(k.numel() + v.numel() for k, v in state.cross.values()) == 2016
    # and a step of 2 tokens gives (B, 2, V) logits
    assert fido.step(torch.zeros(3, 2, dtype=torch.long), state).shape == (3, 2, 50)


def test_key_value_pooling_by_hand():
    # Given: a 4-head cross-attention (d_kv = 1, d = 2) whose key rows are [1,0], [3,0], [0,2], [0,6]
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(vocab_size=20, d_model=2, d_kv=1, d_ff=4, num_layers=1,
                                                num_decoder_layers=1, num_heads=4, dropout_rate=0.0))
    attention = model.get_decoder().block[0].layer[1].EncDecAttention
    with torch.no_grad():
        attention.k.weight.copy_(torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 6.0]]))
    # When: it is converted to G = 2 groups of 2 heads
    gqa = GroupedCrossAttention(attention, groups=2)
    # Then: each group's key projection is the mean of its heads': [2, 0] and [0, 4]
    assert gqa.k.weight.tolist() == [[2.0, 0.0], [0.0, 4.0]]


def test_grouped_attention_by_hand():
    # Given: one head, one group, identity projections (d = d_kv = 1): q = 1, keys [0, ln 3], values [10, 2]
    model = T5ForConditionalGeneration(T5Config(vocab_size=20, d_model=1, d_kv=1, d_ff=2, num_layers=1,
                                                num_decoder_layers=1, num_heads=1, dropout_rate=0.0))
    attention = model.get_decoder().block[0].layer[1].EncDecAttention
    for p in (attention.q, attention.k, attention.v, attention.o):
        torch.nn.init.ones_(p.weight)
    gqa = GroupedCrossAttention(attention, groups=1)
    k = torch.tensor([0.0, torch.log(torch.tensor(3.0))]).reshape(1, 1, 2, 1)
    v = torch.tensor([10.0, 2.0]).reshape(1, 1, 2, 1)
    # When: the decoder state x = 1 attends (no padding), then with the second key masked
    with torch.no_grad():
        out = gqa(torch.ones(1, 1, 1), k, v, torch.zeros(1, 1, 1, 2))
        masked = gqa(torch.ones(1, 1, 1), k, v, torch.tensor([0.0, torch.finfo(torch.float32).min]).reshape(1, 1, 1, 2))
    # Then: softmax([0, ln 3]) = [1/4, 3/4] (unscaled, as T5) → 10/4 + 6/4 = 4; masked → 10
    assert out.item() == pytest.approx(4.0)
    assert masked.item() == pytest.approx(10.0)


@pytest.mark.parametrize(("groups", "every", "message"), [(3, 1, "cross-kv-groups 3"), (1, 0, "cross-every 0")])
def test_bad_settings_are_user_errors(tiny, groups, every, message):
    # Given / When / Then: 3 groups for 4 heads, or K = 0, names the option
    with pytest.raises(InputError, match=message):
        FiDODecoder(tiny.model, FiDOConfig(kv_groups=groups, cross_every=every))


@pytest.mark.parametrize("extra", [[], ["--live-layers", "1"]])
def test_ask_fid_with_fido_options(tiny, tmp_path, capsys, extra):
    import json
    from pathlib import Path

    from rag.cli import main
    from rag.fid.answer import FiDAnswerer
    from rag.index import open_index

    # Given: a BM25 index of the fixture corpus, the tiny T5 on disk, and LUMEN memory for K = 1
    corpus = Path(__file__).parents[2] / "fixtures" / "corpus.jsonl"
    tiny.model.save_pretrained(tmp_path / "m")
    tiny.tokenizer.save_pretrained(tmp_path / "m")
    assert main(["index", str(corpus), "--out", str(tmp_path / "idx"), "--no-dense"]) == 0
    assert main(["cache", "lumen", "-g", str(tmp_path / "m"), "-K", "1", "-i", str(tmp_path / "idx")]) == 0
    args = ["ask", "why is the sky blue", "--index", str(tmp_path / "idx"), "--fid", "--generator", str(tmp_path / "m"),
            "--mode", "bm25", "-k", "3", "--max-new-tokens", "5", "--json", *extra]
    capsys.readouterr()
    # When: the CLI answers plainly, with G = H = 4, K = 1, and with multi-query every 2nd layer
    answers = []
    for fido in ([], ["--cross-kv-groups", "4"], ["--cross-kv-groups", "1", "--cross-every", "2"]):
        assert main(args + fido) == 0
        answers.append(json.loads(capsys.readouterr().out)["answer"])
    # Then: G = H, K = 1 answers as the plain reader; the FiDO answer is the library FiDO reader's
    assert answers[1] == answers[0]
    live = 1 if extra else None
    hits = open_index(tmp_path / "idx").retriever("bm25").search("why is the sky blue", 3)
    reader = FiDAnswerer.load(tmp_path / "m", tmp_path / "idx", FiDConfig(n_passages=3, max_new_tokens=5),
                              live_layers=live, fido=FiDOConfig(kv_groups=1, cross_every=2))
    assert answers[2] == reader.answer("why is the sky blue", hits)
    # and the options without --fid are refused
    assert main(["ask", "q?", "--index", str(tmp_path / "idx"), "--cross-every", "2"]) == 1
    assert "FiD (FiDO) options: add --fid" in capsys.readouterr().err
