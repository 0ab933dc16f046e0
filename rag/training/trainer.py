"""InfoNCE training of a bi-encoder through the sentence-transformers trainer.

For a batch of B queries q_i with positives p_i and hard negatives, the loss (InfoNCE, van den
Oord et al. 2018, arXiv:1807.03748 §2.3; DPR's in-batch negatives, Karpukhin et al. 2020 §3.2)
is the cross-entropy of picking p_i among every passage of the batch::

    L = -(1/B) Σ_i log( exp(s(q_i, p_i)/τ) / Σ_{p ∈ P_batch} exp(s(q_i, p)/τ) )

with s the cosine similarity and τ the temperature (sentence-transformers' ``scale`` = 1/τ).
``symmetric`` adds the passage→query direction and averages the two (Günther et al. 2023).
With ``mini_batch_size`` set, the loss is computed by GradCache (Gao et al. 2021,
arXiv:2101.06983): embeddings are computed without graph, the loss gradient w.r.t. them is cached,
then mini-batches are re-encoded with graph and back-propagated, so a batch of any size needs the
memory of one mini-batch and gives exactly the same gradient.

The trainer is sentence-transformers' own (seeded, warmup, checkpoints every epoch, resume,
progress bars); with a dev evaluator it selects the best checkpoint by dev nDCG@10. The model
is written atomically to ``out`` with ``training.json`` (the configuration, the data hash, the
dev metric history and the loss curve) next to the weights; it loads offline like any local
model (``rag index --encoder out``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from indexes.errors import InputError
from rag.models import EMBEDDED_MODEL, load_sentence_transformer
from rag.training.result import TrainResult
from rag.training.data import Pair, data_sha256

TRAINING_RECORD = "training.json"


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (defaults: SciFact-sized domains on a 2-core CPU).

    Attributes:
        base_model: the encoder to start from (embedded name, local path or cached HF id).
        epochs: passes over the pairs; two (52 steps on SciFact, ~10 CPU-minutes each) with the best
            dev checkpoint kept: one epoch left SciFact test dense nDCG@10 at 0.692.
        batch_size: pairs per step; every other passage of the batch is a negative.
        learning_rate: AdamW peak rate, linearly decayed after warmup.
        warmup_ratio: fraction of the steps with a linearly rising rate (avoids wrecking the
            pre-trained geometry with the first, noisy, large updates).
        temperature: τ; 0.05 (scale 20) is what MiniLM was pre-trained with.
        symmetric: also train passage→query (Günther et al. 2023, jina-embeddings).
        mini_batch_size: GradCache mini-batch; ``None`` computes the loss in one pass.
        max_seq_length: tokens per text *during training*; MiniLM was itself trained at 128, which
            halves the cost per step against 256. The saved model keeps the base model's
            inference length, so indexing still reads up to 256 tokens of each passage.
        seed: seeds model init, data order and dropout.
        eval_steps: evaluate (and checkpoint) every this many steps; ``None``: every epoch.
        save_total_limit: checkpoints kept on disk (the best one is always kept).
        logging_steps: steps between loss log lines.
        progress: show progress bars.
    """

    base_model: str = EMBEDDED_MODEL
    epochs: float = 2
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    temperature: float = 0.05
    symmetric: bool = False
    mini_batch_size: int | None = None
    max_seq_length: int = 128
    seed: int = 13
    eval_steps: int | None = None
    save_total_limit: int = 2
    logging_steps: int = 5
    progress: bool = True

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise InputError(f"temperature must be positive, got {self.temperature}")
        if self.batch_size < 2:
            raise InputError(f"batch size must be at least 2 (in-batch negatives), got {self.batch_size}")
        if self.epochs <= 0 or self.learning_rate <= 0:
            raise InputError("epochs and learning rate must be positive")


def load_base_model(config: TrainConfig, device: str | None = None):
    """The base SentenceTransformer, from local files only.

    Raises:
        ModelLoadError: the base model is not available locally or does not load.
    """
    return load_sentence_transformer(config.base_model, "base model", device)[0]


def info_nce_loss(model, config: TrainConfig):
    """InfoNCE over in-batch (+ hard) negatives: (Cached)MultipleNegativesRankingLoss, scale = 1/τ."""
    from rag.compat.sentence_transformers import info_nce_loss as st_info_nce

    return st_info_nce(model, scale=1.0 / config.temperature, symmetric=config.symmetric,
                       mini_batch_size=config.mini_batch_size)


def pairs_dataset(pairs: list[Pair]):
    """A ``datasets.Dataset`` with columns anchor, positive, negative_1..negative_n (loss order)."""
    from datasets import Dataset

    n_neg = {len(p.negatives) for p in pairs}
    if len(n_neg) != 1:
        raise InputError(f"pairs carry different numbers of negatives {sorted(n_neg)}")
    columns: dict[str, list[str]] = {"anchor": [p.query for p in pairs], "positive": [p.positive for p in pairs]}
    for j in range(n_neg.pop()):
        columns[f"negative_{j + 1}"] = [p.negatives[j] for p in pairs]
    return Dataset.from_dict(columns)


def train_retriever(pairs: list[Pair], out: str | Path, config: TrainConfig = TrainConfig(), *, evaluator=None,
                    checkpoints: str | Path | None = None, resume: bool = False, device: str | None = None,
                    extra_record: dict[str, Any] | None = None) -> TrainResult:
    """Train on ``pairs`` and write the (best) model to ``out``.

    Args:
        pairs: training examples, all with the same number of negatives.
        out: the model directory to write (replaced atomically when training succeeds).
        config: hyper-parameters.
        evaluator: a :class:`~rag.training.dev_eval.DevEvaluator`; enables best-checkpoint selection.
        checkpoints: checkpoint directory (default: ``<out>.checkpoints`` beside ``out``).
        resume: continue from the last checkpoint there.
        device: ``cpu``/``cuda``; ``None`` picks CUDA when available.
        extra_record: more fields for ``training.json`` (e.g. the input files and mining settings).
    """
    from indexes.atomic import atomic_directory, refuse_unless_ours
    from rag.compat.sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        no_duplicates_sampler,
        warmup_arguments,
    )
    from rag.training.step_loop import kept_global_rng, trainer_console

    if not pairs:
        raise InputError("no training pairs")
    out = Path(out)
    refuse_unless_ours(out, TRAINING_RECORD)  # before training: a retrain replaces only a model it wrote
    ckpt = Path(checkpoints) if checkpoints else out.parent / f"{out.name}.checkpoints"
    if resume and not any(ckpt.glob("checkpoint-*")):
        raise InputError(f"--resume: no checkpoint in {ckpt}")
    model = load_base_model(config, device)
    inference_length = model.max_seq_length  # restored before saving
    model.max_seq_length = min(config.max_seq_length, inference_length)
    strategy = "steps" if config.eval_steps else "epoch"
    args = SentenceTransformerTrainingArguments(
        output_dir=str(ckpt), num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate, **warmup_arguments(config.warmup_ratio), seed=config.seed,
        data_seed=config.seed, batch_sampler=no_duplicates_sampler(),  # a duplicate is a false negative
        eval_strategy=strategy if evaluator else "no", save_strategy=strategy,
        eval_steps=config.eval_steps, save_steps=config.eval_steps, save_total_limit=config.save_total_limit,
        load_best_model_at_end=evaluator is not None,
        metric_for_best_model=f"eval_{evaluator.name}_ndcg@10" if evaluator else None, greater_is_better=True,
        logging_steps=config.logging_steps, report_to="none", disable_tqdm=not config.progress,
        use_cpu=device == "cpu")
    with kept_global_rng():  # the transformers Trainer seeds the global generators (set_seed)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs_dataset(pairs),
                                            loss=info_nce_loss(model, config), evaluator=evaluator)
        start = time.perf_counter()
        with trainer_console(trainer, config.progress):
            trainer.train(resume_from_checkpoint=True if resume else None)
        seconds = time.perf_counter() - start
    history = trainer.state.log_history
    losses = [(h["step"], h["loss"]) for h in history if "loss" in h]
    key = f"eval_{evaluator.name}_ndcg@10" if evaluator else None
    dev = [(h["step"], h[key]) for h in history if key and key in h]
    best = trainer.state.best_metric if evaluator else None
    record = {"config": asdict(config), "data_sha256": data_sha256(pairs), "pairs": len(pairs),
              "negatives_per_pair": len(pairs[0].negatives), "train_seconds": round(seconds, 1),
              "best_dev_ndcg@10": best, "best_checkpoint": trainer.state.best_model_checkpoint,
              "dev_history": dev, "loss_history": losses, **(extra_record or {})}
    model.max_seq_length = inference_length
    with atomic_directory(out) as tmp:
        model.save(str(tmp))
        (tmp / TRAINING_RECORD).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    rows = [{"step": s, "loss": v} for s, v in losses] + [{"step": s, "ndcg@10": v} for s, v in dev]
    return TrainResult(steps=trainer.state.global_step, seconds=seconds, history=tuple(sorted(rows, key=lambda r: r["step"])),
                       out=out, dev_metric="ndcg@10" if evaluator else None, best_dev=best)
