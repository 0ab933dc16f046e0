"""The training loss is InfoNCE: hand-worked values, the symmetric variant, GradCache = plain."""

from __future__ import annotations

import math

import pytest
import torch

from rag.training.trainer import TrainConfig, info_nce_loss


def test_loss_equals_hand_computed_info_nce():
    """Two queries, their positives and one hard negative each, all unit vectors in 2-d.

    q1 = (1, 0), q2 = (0, 1); p1 = (1, 0), p2 = (0.6, 0.8); n1 = (0, 1), n2 = (0.8, 0.6).
    Candidates in batch order [p1, p2, n1, n2]; cosines: q1 → [1, .6, 0, .8], q2 → [0, .8, 1, .6].
    With τ = 0.05 (scale 20): L = ½ [ −log softmax(20·[1, .6, 0, .8])_0
                                      −log softmax(20·[0, .8, 1, .6])_1 ].
    """
    # Given
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # (B=2, d=2)
    p = torch.tensor([[1.0, 0.0], [0.6, 0.8]])  # (B, d)
    n = torch.tensor([[0.0, 1.0], [0.8, 0.6]])  # (B, d)
    loss = info_nce_loss(None, TrainConfig(temperature=0.05))

    # When
    value = loss.compute_loss_from_embeddings([q, p, n], None).item()

    # Then
    def nll(logits: list[float], target: int) -> float:
        return -(logits[target] - math.log(sum(math.exp(x) for x in logits)))

    expected = 0.5 * (nll([20 * c for c in (1, 0.6, 0, 0.8)], 0) + nll([20 * c for c in (0, 0.8, 1, 0.6)], 1))
    assert value == pytest.approx(expected, rel=1e-5)


def test_symmetric_loss_averages_both_directions():
    # Given: pairs only; passage→query uses the transposed similarity matrix
    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2], [0.1, 1.0], [0.7, 0.7]]), dim=1)  # (3, 2)
    p = torch.nn.functional.normalize(torch.tensor([[0.9, 0.1], [0.3, 1.0], [1.0, 0.9]]), dim=1)  # (3, 2)
    loss = info_nce_loss(None, TrainConfig(temperature=0.1, symmetric=True))

    # When
    value = loss.compute_loss_from_embeddings([q, p], None)

    # Then
    s = 10 * q @ p.T  # (3, 3)
    target = torch.arange(3)
    expected = 0.5 * (torch.nn.functional.cross_entropy(s, target) + torch.nn.functional.cross_entropy(s.T, target))
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradcache_gives_the_plain_loss_and_gradient(tiny_encoder_dir):
    """Fast path equals slow path: GradCache over mini-batches of 2 = one pass over the batch of 6."""
    from sentence_transformers import SentenceTransformer

    # Given
    texts_q = ["alpha beta", "gamma", "delta epsilon zeta", "eta", "theta iota", "kappa"]
    texts_p = ["beta alpha", "gamma gamma", "zeta", "eta eta", "iota", "kappa lambda"]
    grads, values = [], []
    for mini in (None, 2):
        model = SentenceTransformer(str(tiny_encoder_dir), device="cpu", local_files_only=True)
        model.eval()  # no dropout: both paths see the same network
        loss = info_nce_loss(model, TrainConfig(mini_batch_size=mini))
        features = [model.preprocess(texts_q), model.preprocess(texts_p)]

        # When
        value = loss(features, None)
        value.backward()  # GradCache: this replays the mini-batches with the cached embedding gradients
        values.append(value.item())
        grads.append(next(model.parameters()).grad.clone())

    # Then
    assert values[1] == pytest.approx(values[0], rel=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-7)
