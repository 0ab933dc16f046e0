"""FiD reader: the batched (B·N, L) → (B, N·L) path equals a per-passage reference (Izacard & Grave 2021, §3)."""

from __future__ import annotations

import torch
from transformers.modeling_outputs import BaseModelOutput

from rag.fid.reader import FiDConfig, FiDReader, answer_labels


def reference_logits(model, tokenizer, question: str, passages: list[str], decoder_input_ids: torch.Tensor) -> torch.Tensor:
    """The paper's definition by hand: encode each unpadded `q ++ p` alone, concatenate, decode. → (T, V)"""
    q = tokenizer(f"question: {question} context:", add_special_tokens=False)["input_ids"]
    states = []
    for p in passages:
        ids = torch.tensor([q + tokenizer(p, add_special_tokens=False)["input_ids"] + [tokenizer.sep_token_id]])  # (1, L_n)
        states.append(model.get_encoder()(input_ids=ids).last_hidden_state[0])  # (L_n, d)
    h = torch.cat(states)[None]  # (1, Σ L_n, d): fusion in the decoder
    out = model(encoder_outputs=BaseModelOutput(last_hidden_state=h), decoder_input_ids=decoder_input_ids[None])
    return out.logits[0]


def test_fid_logits_equal_per_passage_reference(tiny):
    # Given: a tiny random T5 and a padded batch of two questions with 3 and 2 passages
    model, tokenizer = tiny.model, tiny.tokenizer
    reader = FiDReader(model, tokenizer, FiDConfig(n_passages=3, max_passage_tokens=64))
    inputs = reader.tokenize(tiny.questions, tiny.passages)
    labels = answer_labels(tokenizer, ["william shakespeare", "1927"], max_tokens=8)
    # When: the batched FiD forward runs with teacher forcing
    with torch.no_grad():
        logits = reader.forward(inputs, labels).logits  # (B, T, V)
        decoder_input_ids = model.prepare_decoder_input_ids_from_labels(labels=labels)  # (B, T)
        # Then: each question's logits equal the hand-built per-passage reference
        for b in range(2):
            ref = reference_logits(model, tokenizer, tiny.questions[b], tiny.passages[b], decoder_input_ids[b])
            T = int((labels[b] != -100).sum())
            assert torch.allclose(logits[b, :T], ref[:T], atol=1e-5), (logits[b, :T] - ref[:T]).abs().max()


def test_greedy_generate_equals_argmax_loop_over_reference(tiny):
    # Given: a tiny random T5 reader
    model, tokenizer = tiny.model, tiny.tokenizer
    reader = FiDReader(model, tokenizer, FiDConfig(n_passages=3, max_passage_tokens=64, max_new_tokens=6))
    # When: it decodes greedily
    ids = reader.generate(reader.tokenize(tiny.questions[:1], tiny.passages[:1]))[0]
    # Then: the tokens are the argmax chain of the reference logits
    seq = torch.tensor([model.config.decoder_start_token_id])
    with torch.no_grad():
        for _ in range(len(ids) - 1):
            nxt = reference_logits(model, tokenizer, tiny.questions[0], tiny.passages[0], seq)[-1].argmax()
            seq = torch.cat([seq, nxt[None]])
            if nxt == tokenizer.sep_token_id:
                break
    assert ids[: len(seq)].tolist() == seq.tolist()


def test_beam_scores_equal_reference_log_probabilities(tiny):
    # Given: a tiny random T5 reader decoding with 3 beams and no length normalisation
    model, tokenizer = tiny.model, tiny.tokenizer
    reader = FiDReader(model, tokenizer, FiDConfig(n_passages=3, max_passage_tokens=64))
    inputs = reader.tokenize(tiny.questions[1:], tiny.passages[1:])
    # When: beam search returns its best hypothesis and score
    out = reader.generate(inputs, num_beams=3, max_new_tokens=4, length_penalty=0.0,
                          return_dict_in_generate=True, output_scores=True)
    seq = out.sequences[0]
    # Then: the score is the reference's summed log-probability of that hypothesis
    with torch.no_grad():
        logp = reference_logits(model, tokenizer, tiny.questions[1], tiny.passages[1], seq[:-1]).log_softmax(-1)  # (T, V)
    ref = logp.gather(1, seq[1:, None]).sum()
    assert abs(float(out.sequences_scores[0]) - float(ref)) < 1e-4


def test_n_passages_selects_the_first_passages(tiny):
    # Given: the same model read with N = 2 and with only the first two passages given
    model, tokenizer = tiny.model, tiny.tokenizer
    labels = answer_labels(tokenizer, ["shakespeare"], max_tokens=8)
    two = FiDReader(model, tokenizer, FiDConfig(n_passages=2, max_passage_tokens=64))
    # When: both score the same answer
    with torch.no_grad():
        a = two.forward(two.tokenize(tiny.questions[:1], tiny.passages[:1]), labels).logits
        b = two.forward(two.tokenize(tiny.questions[:1], [tiny.passages[0][:2]]), labels).logits
    # Then: the third passage was not read
    assert torch.equal(a, b)
