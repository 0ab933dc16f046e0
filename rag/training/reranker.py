"""Training a cross-encoder reranker on judged queries with hard negatives from our own retriever.

monoBERT (Nogueira & Cho 2019, arXiv:1901.04085 §2) reads ``[CLS] q [SEP] p [SEP]`` and is
trained as a binary classifier of relevance with the binary cross-entropy of its one logit s::

    L = -(1/B) Σ_i [ w·y_i log σ(s_i) + (1 - y_i) log(1 - σ(s_i)) ]

over (query, passage, y) rows: every judged positive (y = 1) and, per query, ``negatives``
passages (y = 0) drawn at random, seeded, from the first stage's top ``negative_depth`` minus
every judged positive (the negatives a reranker must learn to push down are those its own
first stage ranks high; Gao et al. 2021, "Rethink Training of BERT Rerankers", arXiv:2101.08751
§3). w = ``negatives`` balances the classes (sentence-transformers' ``pos_weight``).

``loss="lce"`` trains instead with that paper's *localized contrastive estimation* (Gao, Dai &
Callan, ECIR 2021, §3.2): one group per judged positive p⁺, with ``negatives`` hard negatives
p⁻₁..p⁻ₙ drawn (seeded, per group) from the same first-stage pool, and a softmax cross-entropy
over the group's n + 1 logits::

    L = -(1/B) Σ_i log( exp s(q_i, p⁺_i) / (exp s(q_i, p⁺_i) + Σ_j exp s(q_i, p⁻_ij)) )

(sentence-transformers' cross-encoder ``MultipleNegativesRankingLoss`` with no in-batch
negatives, scale 1 and raw logits). A query whose pool holds fewer than n negatives is left out
of LCE (its groups would have a different size).

A dev split of the *training* queries (``dev_fraction``) is held out before mining; it is
reranked from its first-stage top ``dev_depth`` at every evaluation and the checkpoint with the
best dev nDCG@10 is kept (``CrossEncoderRerankingEvaluator``, positives counted only when the
first stage found them, i.e. the realistic setting). The interpolation weight α of the best
checkpoint's score with the first stage's is then chosen on the same dev split
(:mod:`rag.training.rerank_weight`) and written beside it as ``rerank.json``. Training runs
through sentence-transformers' ``CrossEncoderTrainer`` (seeded data order, warmup, checkpoints,
progress bars); the model is written atomically with ``training.json`` (configuration, data
hash, dev queries, curves). An existing cross-encoder as ``base_model`` keeps its head: training
continues it (e.g. LCE after BCE).

Example:
    (Not run as a doctest: needs an index and training pairs.)
    >>> result = train_reranker(pairs, documents, index, "build/reranker", RerankerTrainConfig(epochs=1))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from indexes.errors import InputError
from rag.models import EMBEDDED_MODEL
from rag.training.data import Pair, split_dev
from rag.training.rerank_weight import dev_weight, first_stage_documents
from rag.training.result import TrainResult

log = logging.getLogger(__name__)
TRAINING_RECORD = "training.json"


@dataclass(frozen=True)
class RerankerTrainConfig:
    """Hyper-parameters of one reranker training run (defaults sized for SciFact on a 2-core CPU).

    Attributes:
        base_model: encoder to start from (its relevance head is created, seeded); any local
            BERT-family folder, the embedded MiniLM, or an existing cross-encoder.
        epochs: passes over the rows.
        batch_size: rows per optimisation step.
        learning_rate: AdamW peak rate, linearly decayed after warmup.
        warmup_ratio: fraction of steps with a rising rate.
        loss: ``bce`` (pointwise, monoBERT) or ``lce`` (listwise over one positive and its
            ``negatives``, Gao et al. 2021).
        negatives: hard negatives per query (BCE, also the positive class weight) or per
            positive (LCE).
        negative_depth: first-stage candidates they are drawn from.
        mode: the first stage mined and reranked at dev time (bm25, dense or hybrid).
        max_length: tokens per (query, passage) pair, in training and in the saved model.
        dev_fraction: share of the training queries held out for checkpoint selection.
        dev_depth: first-stage passages reranked per dev query.
        eval_steps: evaluate and checkpoint every this many steps (``None``: every epoch).
        seed: seeds the head, the dev split, the negatives, data order and dropout.
        progress: progress bars.
    """

    base_model: str = EMBEDDED_MODEL
    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float = 7e-5  # monoBERT-small scale; a new head on a 6-layer model tolerates more than 2e-5
    warmup_ratio: float = 0.1
    loss: Literal["bce", "lce"] = "bce"
    negatives: int = 4
    negative_depth: int = 30  # as rag.training.negatives: hard, without being mostly unjudged positives
    mode: str = "hybrid"
    max_length: int = 256  # MiniLM's own limit; SciFact abstracts average ~300 tokens
    dev_fraction: float = 0.1
    dev_depth: int = 20
    eval_steps: int | None = None
    seed: int = 13
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.learning_rate <= 0 or self.batch_size < 1:
            raise InputError("epochs, learning rate and batch size must be positive")
        if self.negatives < 1 or self.negative_depth <= self.negatives:
            raise InputError(f"need 1 ≤ negatives < negative depth, got {self.negatives} and {self.negative_depth}")
        if self.loss not in ("bce", "lce"):
            raise InputError(f"loss must be bce or lce, got {self.loss!r}")
        if not 0 < self.dev_fraction < 1:
            raise InputError(f"dev fraction must be in (0, 1): checkpoints are selected on it, got {self.dev_fraction}")


def training_rows(pairs: Sequence[Pair], candidates: Mapping[str, Sequence[str]], documents: Mapping[str, str],
                  negatives: int, seed: int) -> list[tuple[str, str, float]]:
    """(query, passage, label) rows: every positive, then ``negatives`` sampled candidates per query.

    Candidates that are judged positive for the query are never negatives; a query whose
    candidates run short gets fewer negatives (never a random easy one: those teach nothing here).
    """
    rng = random.Random(seed)
    positives: dict[str, set[str]] = defaultdict(set)
    text: dict[str, str] = {}
    for p in pairs:
        positives[p.query_id].add(p.positive_id)
        text[p.query_id] = p.query
    rows = [(p.query, p.positive, 1.0) for p in pairs]
    for qid in sorted(positives):
        pool = [d for d in candidates.get(qid, ()) if d not in positives[qid]]
        rows += [(text[qid], documents[d], 0.0) for d in rng.sample(pool, min(negatives, len(pool)))]
    return rows


def lce_groups(pairs: Sequence[Pair], candidates: Mapping[str, Sequence[str]], documents: Mapping[str, str],
               negatives: int, seed: int) -> list[tuple[str, ...]]:
    """(query, positive, negative_1, …, negative_n) groups for LCE, one per judged pair, seeded.

    Negatives come from the query's candidates minus its judged positives; a query with fewer
    than ``negatives`` of them contributes no group.
    """
    rng = random.Random(seed)
    positives: dict[str, set[str]] = defaultdict(set)
    for p in pairs:
        positives[p.query_id].add(p.positive_id)
    groups = []
    for p in pairs:
        pool = [d for d in candidates.get(p.query_id, ()) if d not in positives[p.query_id]]
        if len(pool) >= negatives:
            groups.append((p.query, p.positive, *(documents[d] for d in rng.sample(pool, negatives))))
    return groups


def dev_samples(dev: Sequence[Pair], candidates: Mapping[str, Sequence[str]], documents: Mapping[str, str]) -> list[dict]:
    """``CrossEncoderRerankingEvaluator`` samples: each dev query's positives and ranked candidates."""
    by_query: dict[str, list[Pair]] = defaultdict(list)
    for p in dev:
        by_query[p.query_id].append(p)
    return [{"query": ps[0].query, "positive": [p.positive for p in ps],
             "documents": [documents[d] for d in candidates[qid]]} for qid, ps in sorted(by_query.items())]


def train_reranker(pairs: Sequence[Pair], documents: Mapping[str, str], index, out: str | Path,
                   config: RerankerTrainConfig = RerankerTrainConfig(), *, device: str | None = None,
                   extra_record: dict | None = None, overwrite: bool = False,
                   keep_checkpoints: bool = False) -> TrainResult:
    """Split dev queries, mine negatives from ``index``, train, keep the best dev checkpoint in ``out``.

    Args:
        pairs: judged (query, positive document) pairs of the *training* split; ids of ``documents``.
        documents: ``{doc id: passage text}`` of the indexed corpus (title, then body).
        index: an open :class:`rag.index.Index` of that corpus (the first stage to mine from).
        out: model folder to write (``rag search --rerank OUT``).
        config: hyper-parameters.
        device: torch device (``None``: CUDA when available).
        extra_record: more fields for ``training.json``.
        overwrite: replace a reranker this function trained earlier in ``out`` (else refused).
        keep_checkpoints: keep the Trainer's ``<out>.checkpoints`` folder beside ``out`` (by
            default it is deleted once the best checkpoint is saved as ``out``).

    Raises:
        InputError: bad settings, an earlier model in ``out`` without ``overwrite``, or a
            positive document missing from ``documents``.
    """
    import torch
    from datasets import Dataset

    from indexes.atomic import atomic_directory, refuse_unless_ours
    from rag.compat.sentence_transformers import (
        BinaryCrossEntropyLoss,
        CrossEncoderRerankingEvaluator,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
        lce_loss,
        warmup_arguments,
    )
    from rag.models import load_cross_encoder
    from rag.rerank_interpolation import write_weight
    from rag.training.step_loop import kept_global_rng, trainer_console

    out = Path(out)
    refuse_unless_ours(out, TRAINING_RECORD)
    if (out / TRAINING_RECORD).is_file() and not overwrite:
        raise InputError(f"{out} already holds a trained reranker ({TRAINING_RECORD}); pass --overwrite to replace it, "
                         "or choose another --out")
    missing = sorted({p.positive_id for p in pairs if p.positive_id not in documents})[:1]
    if missing:
        raise InputError(f"positive document {missing[0]!r} is not in the corpus: pass the corpus these qrels judge")
    train, dev = split_dev(list(pairs), config.dev_fraction, config.seed)
    if not dev:
        raise InputError("the dev split is empty: give more training queries or a larger --dev-fraction")
    queries = {p.query_id: p.query for p in pairs}
    scored = first_stage_documents(index, queries, config.mode, max(config.negative_depth, config.dev_depth))
    candidates = {q: [d for d, _ in c] for q, c in scored.items()}
    mine = {q: c[: config.negative_depth] for q, c in candidates.items()}
    if config.loss == "lce":
        rows = lce_groups(train, mine, documents, config.negatives, config.seed)
        if not rows:
            raise InputError(f"no training query has {config.negatives} negatives in its first-stage top "
                             f"{config.negative_depth}: lower --negatives or raise --negative-depth")
    else:
        rows = training_rows(train, mine, documents, config.negatives, config.seed)
    samples = dev_samples(dev, {q: c[: config.dev_depth] for q, c in candidates.items()}, documents)
    log.info("training on %d %s from %d queries; %d dev queries", len(rows), "groups" if config.loss == "lce" else "rows",
             len({p.query_id for p in train}), len(samples))
    model, resolved = load_cross_encoder(config.base_model, device=device, max_length=config.max_length,
                                         new_head=True, seed=config.seed)
    evaluator = CrossEncoderRerankingEvaluator(samples, at_k=10, always_rerank_positives=False, name="dev",
                                               batch_size=32, write_csv=False)
    metric = "eval_dev_ndcg@10"
    ckpt = out.parent / f"{out.name}.checkpoints"
    strategy = "steps" if config.eval_steps else "epoch"
    args = CrossEncoderTrainingArguments(
        output_dir=str(ckpt), num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate, **warmup_arguments(config.warmup_ratio), seed=config.seed,
        data_seed=config.seed, eval_strategy=strategy, save_strategy=strategy, eval_steps=config.eval_steps,
        save_steps=config.eval_steps, save_total_limit=2, load_best_model_at_end=True, metric_for_best_model=metric,
        greater_is_better=True, logging_steps=10, report_to="none", disable_tqdm=not config.progress,
        use_cpu=device == "cpu")
    if config.loss == "lce":
        columns = ["query", "positive", *(f"negative_{j}" for j in range(1, config.negatives + 1))]
        dataset = Dataset.from_dict({c: [r[i] for r in rows] for i, c in enumerate(columns)})
        loss = lce_loss(model)
    else:
        dataset = Dataset.from_dict({"query": [r[0] for r in rows], "passage": [r[1] for r in rows],
                                     "label": [r[2] for r in rows]})
        loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(float(config.negatives)))
    with kept_global_rng():  # the transformers Trainer seeds the global generators
        trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss, evaluator=evaluator)
        start = time.perf_counter()
        with trainer_console(trainer, config.progress):
            trainer.train()
        seconds = time.perf_counter() - start
    history = trainer.state.log_history
    losses = [(h["step"], h["loss"]) for h in history if "loss" in h]
    dev_curve = [(h["step"], h[metric]) for h in history if metric in h]
    best = trainer.state.best_metric
    alpha, weight_record = dev_weight(model, dev, documents, scored, config.dev_depth)
    record = {"config": asdict(config), "base_revision": resolved.revision, "rows": len(rows),
              "train_queries": len({p.query_id for p in train}), "dev_queries": sorted({p.query_id for p in dev}),
              "train_seconds": round(seconds, 1), "best_dev_ndcg@10": best,
              "best_checkpoint": trainer.state.best_model_checkpoint if keep_checkpoints else None, "dev_history": dev_curve, "loss_history": losses,
              **(extra_record or {})}
    with atomic_directory(out) as tmp:
        model.save_pretrained(str(tmp))
        (tmp / TRAINING_RECORD).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        write_weight(tmp, alpha, {**weight_record, "mode": config.mode})
    if not keep_checkpoints:  # the best one is `out` now; the rest is hundreds of MB of optimizer state
        shutil.rmtree(ckpt, ignore_errors=True)
    curve = [{"step": s, "loss": v} for s, v in losses] + [{"step": s, "ndcg@10": v} for s, v in dev_curve]
    return TrainResult(steps=trainer.state.global_step, seconds=seconds, history=tuple(sorted(curve, key=lambda r: r["step"])),
                       out=out, dev_metric="ndcg@10", best_dev=best, rerank_weight=alpha)


def select_weight_only(model_dir: str | Path, pairs: Sequence[Pair], documents: Mapping[str, str], index, *,
                       given: Mapping[str, object] | None = None, device: str | None = None) -> dict:
    """Choose α for an already trained reranker on its own dev split and write ``rerank.json`` beside it.

    The dev queries, first-stage mode and dev depth are those its ``training.json`` records (the
    ones its checkpoint was selected on); a fresh split could hold training queries, so a model
    without that record is refused.

    Args:
        given: settings the caller gave explicitly (``mode``, ``dev_depth``, ``dev_fraction``,
            ``seed``); one that differs from the record is refused rather than silently ignored.

    Returns:
        the written record (``weight``, ``mode``, dev curve, …).

    Raises:
        InputError: ``model_dir`` has no cross-encoder or no dev split in ``training.json``, a
            given setting contradicts the record, or its dev queries are not in ``pairs``.
    """
    from rag.models import load_cross_encoder
    from rag.rerank_interpolation import write_weight

    model_dir = Path(model_dir)
    record_path = model_dir / TRAINING_RECORD
    trained = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
    recorded = trained.get("config", {})
    if "dev_queries" not in trained or not {"mode", "dev_depth"} <= recorded.keys():
        raise InputError(f"--select-weight-only: {record_path} does not record the dev split the model was selected on; "
                         "a new split could hold its training queries, so the weight cannot be chosen honestly")
    for name, value in (given or {}).items():
        if name in recorded and recorded[name] != value:
            raise InputError(f"--select-weight-only: --{name.replace('_', '-')} {value} contradicts {record_path} "
                             f"({recorded[name]}); the weight is chosen on the recorded setting: drop the option")
    model, _ = load_cross_encoder(str(model_dir), device=device)  # its own saved max length, as --rerank loads it
    dev_ids = set(trained["dev_queries"])
    dev = [p for p in pairs if p.query_id in dev_ids]
    if {p.query_id for p in dev} != dev_ids:
        raise InputError(f"{record_path}: its dev queries are not all in --qrels; pass the training qrels it was trained on")
    depth, mode = recorded["dev_depth"], recorded["mode"]
    scored = first_stage_documents(index, {p.query_id: p.query for p in dev}, mode, depth)
    alpha, record = dev_weight(model, dev, documents, scored, depth)
    write_weight(model_dir, alpha, {**record, "mode": mode})
    return {"weight": alpha, "mode": mode, **record}
