"""A tiny training run raises recall on toy queries, and the model it writes loads offline."""

from __future__ import annotations

import json

import numpy as np

from rag.encoder import Encoder, EncoderConfig
from rag.training.trainer import TRAINING_RECORD, TrainConfig, train_retriever


def recall_at_1(model_dir, pairs, documents) -> float:
    enc = Encoder(EncoderConfig(model=str(model_dir), device="cpu"))
    ids = sorted(documents)
    d = enc.encode_passages([documents[i] for i in ids])  # (N, dim)
    q = enc.encode_queries([p.query for p in pairs])  # (Q, dim)
    top = np.argmax(q @ d.T, axis=1)  # (Q,)
    return float(np.mean([ids[t] == p.positive_id for t, p in zip(top, pairs)]))


def test_tiny_training_raises_recall_and_records_its_config(tiny_encoder_dir, fixture_pairs, documents, bm25_index,
                                                            tmp_path):
    from eval.retrieval import evaluate
    from rag.training.dev_eval import DevEvaluator, dev_pool

    # Given: a random 2-layer encoder, the 12 fixture (query, positive) pairs, a dev evaluator on them
    before = recall_at_1(tiny_encoder_dir, fixture_pairs, documents)
    config = TrainConfig(base_model=str(tiny_encoder_dir), epochs=8, batch_size=4, learning_rate=2e-3,
                         max_seq_length=64, seed=0, eval_steps=8, progress=False)
    evaluator = DevEvaluator(dev_pool(fixture_pairs, documents, bm25_index, depth=20),
                             lambda run, qrels: evaluate(run, qrels, ("ndcg@10",))[0]["ndcg@10"])

    # When
    result = train_retriever(list(fixture_pairs), tmp_path / "model", config, evaluator=evaluator, device="cpu")

    # Then: recall@1 rises, the best dev checkpoint was kept, and training.json sits beside the weights
    after = recall_at_1(result.out, fixture_pairs, documents)
    assert after > before + 0.2, (before, after)
    assert result.best_dev_ndcg10 == max(v for _, v in result.dev_history)
    assert result.losses[-1][1] < result.losses[0][1]
    record = json.loads((result.out / TRAINING_RECORD).read_text())
    assert record["config"]["base_model"] == str(tiny_encoder_dir)
    assert record["data_sha256"].startswith("sha256:") and record["pairs"] == len(fixture_pairs)


def test_resume_continues_from_the_last_checkpoint(tiny_encoder_dir, fixture_pairs, tmp_path):
    # Given: one finished epoch (3 steps of 4 pairs) with its checkpoint
    config = TrainConfig(base_model=str(tiny_encoder_dir), epochs=1, batch_size=4, max_seq_length=32,
                         logging_steps=1, progress=False)
    train_retriever(list(fixture_pairs), tmp_path / "m", config, device="cpu")

    # When: the same run asked for two epochs, resumed
    longer = TrainConfig(**{**config.__dict__, "epochs": 2})
    result = train_retriever(list(fixture_pairs), tmp_path / "m", longer, resume=True, device="cpu")

    # Then: steps 4–6 were trained on top of the checkpoint at step 3 (the curve spans both runs)
    assert [s for s, _ in result.losses] == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "m.checkpoints" / "checkpoint-6").is_dir()


def test_training_keeps_the_callers_random_state(tiny_encoder_dir, fixture_pairs, tmp_path):
    # Given the caller's global generator states (the transformers Trainer calls set_seed inside)
    import random

    import numpy as np
    import torch

    config = TrainConfig(base_model=str(tiny_encoder_dir), epochs=1, batch_size=4, max_seq_length=32, progress=False)
    random.seed(11), np.random.seed(11), torch.manual_seed(11)
    states = random.getstate(), np.random.get_state()[1].copy(), torch.random.get_rng_state()
    # When a retriever is trained
    train_retriever(list(fixture_pairs), tmp_path / "m", config, device="cpu")
    # Then Python's, NumPy's and torch's states are as they were
    assert random.getstate() == states[0] and np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.random.get_rng_state(), states[2])
