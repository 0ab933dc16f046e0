"""RAG-Sequence and RAG-Token (Lewis et al. 2020) on the tiny random models.

Hand-worked: the prior and the per-step mixture on numbers worked in the docstrings; RAG-Token's
decoding against a two-passage mixture computed here, one passage at a time, from plain cached
prefills (no batching, no padding). Exactness: with one passage both fusions are plain generation.
"""

from __future__ import annotations

import math

import pytest
import torch

from indexes.errors import InputError
from rag.generation.passage_batch import PassageBatch
from rag.generation.prefill import cached_prefill, full_prefill
from rag.generation.prompt import PromptBuilder
from rag.generation.rag_fusion import (FusionConfig, mixture_logprobs, passage_prior, rag_sequence_decode,
                                       rag_token_tokens, score_candidate)
from rag.generation.sampling import SamplingConfig
from rag.pipeline import AskConfig, ask
from tests.rag.kv_tiny import tiny_generator, tiny_index

QUESTION = "why is the sky blue?"
PASSAGES = [("Rayleigh scattering", "The sky is blue because air scatters short wavelengths more than long ones."),
            ("Honey bees", "Bees dance.")]  # different lengths: the batch is padded
GREEDY = SamplingConfig(max_new_tokens=8)


def _prefills(gen, passages=PASSAGES):
    builder = PromptBuilder(gen)
    return [cached_prefill(gen, builder.segments(QUESTION, [p])) for p in passages]


def test_prior_is_the_softmax_of_scores_over_the_temperature():
    # Given scores 2 and 1 at τ = 0.5: p = (e⁴, e²) / (e⁴ + e²) = (0.8808, 0.1192)
    # When
    p = passage_prior([2.0, 1.0], temperature=0.5).exp()
    # Then
    assert p.tolist() == pytest.approx([math.exp(4) / (math.exp(4) + math.exp(2)), math.exp(2) / (math.exp(4) + math.exp(2))])
    assert passage_prior([2.0, 1.0], temperature=100.0).exp().tolist() == pytest.approx([0.5, 0.5], abs=3e-3)


def test_mixture_is_the_prior_weighted_sum_of_next_token_distributions():
    # Given p(w|z1) = (.5, .3, .2), p(w|z2) = (.1, .1, .8) as logits, and p(z) = (.75, .25)
    logits = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]).log() + torch.tensor([[3.0], [-1.0]])  # shifts cancel
    log_prior = torch.tensor([0.75, 0.25]).log()
    # When
    mix = mixture_logprobs(logits, log_prior).exp()
    # Then .75·(.5, .3, .2) + .25·(.1, .1, .8) = (.4, .25, .35)
    assert mix.tolist() == pytest.approx([0.4, 0.25, 0.35])


def test_rag_token_decodes_the_hand_computed_two_passage_mixture():
    # Given two passages with prior (0.8808, 0.1192), each prefilled on its own
    gen = tiny_generator("llama")
    prior = [0.8808, 0.1192]
    reference = _prefills(gen)
    logits = [p.logits.double() for p in reference]
    caches, positions = [p.cache for p in reference], [p.next_position for p in reference]
    expected = []
    # When the mixture Σ_z p(z) softmax(logits_z) is decoded greedily by hand, one passage at a time
    for _ in range(6):
        mix = sum(w * torch.softmax(lg, dim=-1) for w, lg in zip(prior, logits))  # (V,)
        token = int(torch.argmax(mix))
        expected.append(token)
        for z in range(2):
            out, caches[z] = gen.forward([token], torch.tensor([positions[z]]), caches[z])
            logits[z], positions[z] = out[-1].double(), positions[z] + 1
    # Then RAG-Token over the padded batch yields the same tokens
    batch = PassageBatch(gen, _prefills(gen))
    got = list(rag_token_tokens(gen, batch, torch.tensor(prior).log(), SamplingConfig(max_new_tokens=6)))
    assert got == expected[: len(got)] and len(got) >= 3


def test_batched_logits_equal_each_passage_alone():
    # Given passages of different lengths in one left-padded batch
    gen = tiny_generator("qwen2")
    batch = PassageBatch(gen, _prefills(gen))
    assert batch.mask is not None and not bool(batch.mask.all())  # really padded
    # When both rows get the same three tokens
    ids = torch.tensor([[5, 17, 9]] * 2)
    stepped = batch.step(ids)  # (2, 3, V)
    # Then each row equals that passage's prompt continued alone
    for z, p in enumerate(_prefills(gen)):
        alone, _ = gen.forward([5, 17, 9], torch.arange(p.next_position, p.next_position + 3), p.cache)
        assert (stepped[z] - alone.float()).abs().max().item() < 1e-4


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_one_passage_rag_token_and_rag_sequence_equal_plain_generation(arch):
    # Given one passage
    gen = tiny_generator(arch)
    plain = list(gen.iter_tokens(_prefills(gen, PASSAGES[:1])[0], GREEDY))
    # When RAG-Token and RAG-Sequence decode over it (prior 1)
    token = list(rag_token_tokens(gen, PassageBatch(gen, _prefills(gen, PASSAGES[:1])), torch.zeros(1), GREEDY))
    ranked = rag_sequence_decode(gen, PassageBatch(gen, _prefills(gen, PASSAGES[:1])), torch.zeros(1), GREEDY)
    # Then both are the plain greedy answer, token for token
    assert token == plain and len(plain) > 0
    assert [t for t in ranked[0].tokens if t not in gen.eos_ids] == plain and len(ranked) == 1


def test_rag_sequence_score_is_the_prior_weighted_sum_of_sequence_probabilities():
    # Given two passages and their candidates
    gen = tiny_generator("llama")
    log_prior = passage_prior([1.0, 0.2])
    ranked = rag_sequence_decode(gen, PassageBatch(gen, _prefills(gen)), log_prior, GREEDY, "thorough")
    for cand in ranked:
        # When each candidate is scored by teacher forcing after each passage's prompt, one passage at a time
        logp = []
        for p in _prefills(gen):
            out, _ = gen.forward(list(cand.tokens[:-1]), torch.arange(p.next_position, p.next_position + len(cand.tokens) - 1),
                                 p.cache)
            steps = torch.cat([p.logits[None], out]).double().log_softmax(-1)  # (n, V)
            logp.append(float(steps[torch.arange(len(cand.tokens)), torch.tensor(cand.tokens)].sum()))
        # Then its score is log Σ_z p(z|x) p(y|x,z), and the candidates are ranked by it
        expected = float(torch.logsumexp(log_prior + torch.tensor(logp, dtype=torch.float64), 0))
        assert cand.score == pytest.approx(expected, abs=1e-4)
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)


def test_fast_decoding_scores_each_candidate_only_under_the_passages_that_proposed_it():
    # Given each passage's own greedy answer
    gen = tiny_generator("llama")
    own = [tuple(gen.iter_tokens(p, GREEDY)) for p in _prefills(gen)]
    batch = PassageBatch(gen, _prefills(gen))
    start = batch.length
    # When RAG-Sequence decodes fast
    ranked = rag_sequence_decode(gen, batch, passage_prior([1.0, 0.2]), GREEDY, "fast")
    # Then log p(y|x,z) is finite exactly where passage z proposed y, and the batch is back at its prompts
    for c in ranked:
        y = tuple(t for t in c.tokens if t not in gen.eos_ids)
        assert [not math.isinf(v) for v in c.log_p] == [y == o for o in own]
    assert batch.length == start and score_candidate(batch, ranked[0].tokens).shape == (2,)


@pytest.mark.parametrize("fusion", ["rag-token", "rag-sequence"])
def test_ask_with_one_passage_equals_concat(fusion):
    # Given the tiny index, k = 1, full prefills
    index, gen = tiny_index(), tiny_generator("llama")
    base = AskConfig(k=1, sampling=GREEDY)
    # When
    plain = ask(QUESTION, index, gen, base)
    fused = ask(QUESTION, index, gen, AskConfig(k=1, sampling=GREEDY, fusion=FusionConfig(fusion)))
    # Then
    assert fused.answer == plain.answer and [c.id for c in fused.citations] == [c.id for c in plain.citations]


def test_full_prefill_fusion_cites_every_passage():
    # Given
    gen = tiny_generator("qwen2")
    builder = PromptBuilder(gen)
    prefills = [full_prefill(gen, builder.segments(QUESTION, [p])) for p in PASSAGES]
    # When
    got = list(rag_token_tokens(gen, PassageBatch(gen, prefills), passage_prior([0.0, 0.0]), SamplingConfig(max_new_tokens=4)))
    answer = ask(QUESTION, tiny_index(), gen, AskConfig(k=2, sampling=SamplingConfig(max_new_tokens=4),
                                                        fusion=FusionConfig("rag-token")))
    # Then
    assert 1 <= len(got) <= 4 and len(answer.citations) == 2


@pytest.mark.parametrize("bad", [{"fusion": "rag-doc"}, {"temperature": 0.0}, {"decoding": "beam"}])
def test_bad_fusion_settings_are_input_errors(bad):
    with pytest.raises(InputError):
        FusionConfig(**bad)
