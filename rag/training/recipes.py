"""The two training recipes end to end: supervised (DPR-style) and unsupervised (Contriever-style).

Each recipe validates and prepares all data first (pairs, dev split, hard negatives or crops),
so a bad input fails before the model is loaded, then hands the pairs to
:func:`~rag.training.trainer.train_retriever`. Negatives are mined from ``index`` when one is
given, else from a BM25-only index built in a temporary directory (seconds for 5k documents).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path

from indexes.errors import InputError
from rag.models import resolve_model
from rag.training.cropping import CropConfig, cropped_pairs
from rag.training.data import Pair, split_dev, with_negatives
from rag.training.dev_eval import DevEvaluator, Metric, dev_pool
from rag.training.negatives import NegativeConfig, mine_negatives
from rag.training.result import TrainResult
from rag.training.trainer import TrainConfig, train_retriever

log = logging.getLogger(__name__)


@contextlib.contextmanager
def bm25_index(corpus: str | Path, index: str | Path | None) -> Iterator:
    """Open ``index``, or a BM25-only index of ``corpus`` built in a temporary directory."""
    from rag.index import open_index
    from rag.indexer import IndexOptions, build_index

    if index is not None:
        idx = open_index(index)
        try:
            yield idx
        finally:
            idx.close()
        return
    with tempfile.TemporaryDirectory(prefix="rag-train-bm25-") as tmp:
        build_index(corpus, Path(tmp) / "bm25", IndexOptions(encoder=None, progress=False))
        idx = open_index(Path(tmp) / "bm25")
        try:
            yield idx
        finally:
            idx.close()


def train_supervised(pairs: list[Pair], documents: Mapping[str, str], out: str | Path, *, corpus: str | Path | None,
                     config: TrainConfig = TrainConfig(), negatives: NegativeConfig = NegativeConfig(),
                     dev_fraction: float = 0.1, metric: Metric | None = None, index: str | Path | None = None,
                     dev_depth: int = 10, **train_kwargs) -> TrainResult:
    """DPR-style: hold out dev queries, mine hard negatives for the rest, train with InfoNCE.

    Args:
        pairs: (query, positive) pairs whose ``positive_id`` are ids of ``documents``.
        documents: ``{doc id: text}`` of ``corpus``.
        out: the model directory to write.
        corpus: the corpus file (for the temporary BM25 index).
        config: training hyper-parameters.
        negatives: mining settings (``count=0``: in-batch negatives only).
        dev_fraction: share of the queries held out for dev nDCG@10 (0: no dev evaluation).
        metric: ``(run, qrels) -> nDCG@10``; required when ``dev_fraction > 0``.
        index: an index of ``corpus`` to mine from (default: a temporary BM25 one).
        dev_depth: BM25 candidates per dev query in the dev pool.
        **train_kwargs: passed to :func:`train_retriever` (checkpoints, resume, device).
    """
    resolve_model(config.base_model, "base model")  # a missing base model fails before any work
    train, dev = split_dev(pairs, dev_fraction, config.seed)
    if dev and metric is None:
        raise InputError("a dev split needs a metric; pass metric= or dev_fraction=0")
    needs_index = negatives.count > 0 or dev
    if needs_index and corpus is None and index is None:
        raise InputError("mining negatives and dev evaluation need --corpus (or --index)")
    with (bm25_index(corpus, index) if needs_index else contextlib.nullcontext()) as idx:
        if negatives.count > 0:  # else keep the pairs' own negatives (e.g. from a triples file)
            mined = mine_negatives(train, idx, documents, negatives)
            train = with_negatives(train, [[documents[d] for d in ds] for ds in mined])
        evaluator = DevEvaluator(dev_pool(dev, documents, idx, dev_depth), metric) if dev else None
    log.info("training on %d pairs (%d negatives each), %d dev queries", len(train), negatives.count,
             len({p.query_id for p in dev}))
    record = {"mode": "supervised", "negatives": asdict(negatives), "dev_fraction": dev_fraction,
              "dev_queries": sorted({p.query_id for p in dev}), "corpus": str(corpus)}
    return train_retriever(train, out, config, evaluator=evaluator, extra_record=record, **train_kwargs)


def train_unsupervised(documents: Mapping[str, str], out: str | Path, *, config: TrainConfig = TrainConfig(),
                       crop: CropConfig = CropConfig(), max_documents: int | None = None,
                       **train_kwargs) -> TrainResult:
    """Contriever-style: independent random crops of each document, in-batch negatives only.

    Fresh crops are drawn for every epoch: the pairs of ``ceil(epochs)`` views are concatenated
    and trained on once (so ``config.epochs`` counts passes over the *documents*).

    Args:
        documents: ``{doc id: text}``.
        out: the model directory to write.
        config: training hyper-parameters.
        crop: span ratios and token deletion.
        max_documents: train on a seeded random subset of this many documents (CPU budgets).
        **train_kwargs: passed to :func:`train_retriever`.
    """
    import math
    import random

    resolve_model(config.base_model, "base model")
    ids = sorted(documents)
    if max_documents is not None and max_documents < len(ids):
        ids = sorted(random.Random(config.seed).sample(ids, max_documents))
    views = math.ceil(config.epochs)
    pairs = cropped_pairs({d: documents[d] for d in ids}, crop, views=views, seed=config.seed)
    pairs = pairs[: round(len(pairs) * config.epochs / views)]
    one_pass = TrainConfig(**{**asdict(config), "epochs": 1})
    record = {"mode": "unsupervised", "crop": asdict(crop), "documents": len(ids), "epochs": config.epochs}
    return train_retriever(pairs, out, one_pass, extra_record=record, **train_kwargs)
