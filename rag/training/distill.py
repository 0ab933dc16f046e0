"""A smaller, faster *query* encoder distilled from an index's passage encoder.

A dense query costs one forward pass of the index's encoder; on a CPU that pass is most of a
hybrid request. Passages are encoded once, so only the query side has to be fast. The student
here is the index's own encoder with fewer transformer layers (first, last and evenly spread
between: :func:`keep_layers`, so it starts close to the teacher), trained with sentence-transformers' ``MSELoss`` to put each text where the
teacher puts it, so its vectors search the index's existing passage vectors: nothing is
re-encoded. The training texts are sentences and titles of the indexed passages themselves (no
queries, no relevance labels; Reimers & Gurevych 2020 distil the same way, on parallel text).

The student folder holds ``query_encoder.json``: the teacher's spec, so that a query encoder is
only ever used with an index whose passages its teacher encoded
(:func:`rag.encoder.check_query_encoder`).

Example:
    (Not run as a doctest: needs an index with a dense part; training takes minutes.)
    >>> distill_query_encoder("build/scifact", "build/scifact-q3", DistillConfig(layers=3))  # doctest: +SKIP
    $ rag serve --index build/scifact --query-encoder build/scifact-q3
"""

from __future__ import annotations

import json
import random
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from indexes.errors import InputError
from rag.encoder import QUERY_ENCODER_RECORD

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class DistillConfig:
    """Hyper-parameters of :func:`distill_query_encoder`.

    Attributes:
        layers: transformer layers the student keeps (evenly spread over the teacher's).
        epochs: passes over the training texts.
        batch_size: texts per step.
        learning_rate: peak learning rate (linear decay after a 5% warm-up).
        max_texts: train on a random subset of at most this many texts (None: all).
        min_words: shortest sentence kept as a training text (titles are always kept).
        seed: seed of the subset, the data order and dropout.
    """

    layers: int = 3
    epochs: float = 1.0
    batch_size: int = 64
    learning_rate: float = 1e-4
    max_texts: int | None = None
    min_words: int = 4
    seed: int = 0


@dataclass
class DistillResult:
    out: Path
    texts: int
    mse_before: float  # mean squared error per dimension on held-out texts, student vs teacher
    mse_after: float
    cosine_after: float  # mean cosine to the teacher on the same held-out texts
    seconds: float


def corpus_texts(index_path: str | Path, min_words: int = 4) -> list[str]:
    """Distinct titles and sentences (``min_words`` to 60 words) of the indexed passages, sorted."""
    from indexes.segmented import open_passage_store

    store = open_passage_store(Path(index_path))
    try:
        out: set[str] = set()
        for p in store.iter_all():
            if p.title.strip():
                out.add(p.title.strip())
            out.update(s for s in _SENTENCE_END.split(p.text) if min_words <= len(s.split()) <= 60)
    finally:
        store.close()
    return sorted(out)


def keep_layers(n_teacher: int, n: int) -> list[int]:
    """Indices of the ``n`` teacher layers the student starts from: first and last, evenly between."""
    if not 1 <= n <= n_teacher:
        raise InputError(f"layers: the teacher has {n_teacher} transformer layers; choose 1 to {n_teacher}, not {n}")
    if n == 1:
        return [0]
    return sorted({round(i * (n_teacher - 1) / (n - 1)) for i in range(n)})


def _truncate(model, n: int) -> list[int]:
    """Keep ``n`` of the BERT-style encoder's layers in place; returns the kept indices."""
    from rag.compat.transformers import encoder_layers, set_encoder_layers

    auto = model[0].auto_model
    layers = encoder_layers(auto)
    if layers is None:
        raise InputError(f"query-encoder distillation needs a BERT-style encoder (encoder.layer); "
                         f"{type(auto).__name__} has none")
    keep = keep_layers(len(layers), n)
    set_encoder_layers(auto, [layers[i] for i in keep])
    return keep


def _mse_cos(student, texts: list[str], target: np.ndarray) -> tuple[float, float]:
    v = student.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=False)  # (n, d)
    return float(((v - target) ** 2).mean()), float((v * target).sum(1).mean())


def distill_query_encoder(index_path: str | Path, out: str | Path, config: DistillConfig = DistillConfig(), *,
                          device: str | None = None, progress: bool = False) -> DistillResult:
    """Train a ``config.layers``-layer query encoder for the dense index at ``index_path``.

    Args:
        index_path: an index with a dense part (its encoder is the teacher, its passages the data).
        out: the model directory to write (replaced atomically when training succeeds).
        config: hyper-parameters.
        device: ``cpu``/``cuda``; ``None`` picks CUDA when available.
        progress: show progress bars.

    Raises:
        InputError: the index has no dense part, too few texts, or an unsupported encoder.
    """
    from datasets import Dataset
    from indexes.atomic import atomic_directory, refuse_unless_ours
    from rag.compat.sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        mse_loss,
        warmup_arguments,
    )
    from indexes.manifest import Manifest
    from rag.models import load_sentence_transformer
    from rag.training.step_loop import kept_global_rng, trainer_console

    refuse_unless_ours(Path(out), QUERY_ENCODER_RECORD)  # before the work: replace only a student it wrote
    manifest = Manifest.read(Path(index_path))
    if manifest.dense is None:
        raise InputError(f"{index_path} has no dense index: a query encoder is distilled from the index's encoder")
    spec = manifest.dense.encoder
    texts = corpus_texts(index_path, config.min_words)
    random.Random(config.seed).shuffle(texts)
    n_held = min(200, len(texts) // 10)  # held out to report the fit, never trained on
    held_out, texts = texts[:n_held], texts[n_held:]
    if config.max_texts is not None:
        texts = texts[: config.max_texts]
    if not held_out or len(texts) < config.batch_size:
        raise InputError(f"{index_path}: {len(texts)} training sentences after holding out {len(held_out)}; "
                         f"need at least --batch-size ({config.batch_size}) and 10 sentences")
    teacher = load_sentence_transformer(spec.model, "encoder", device)[0]
    if spec.query_prefix:  # the student is trained on what it will see: prefixed queries
        texts, held_out = [spec.query_prefix + t for t in texts], [spec.query_prefix + t for t in held_out]
    # Targets are the unit vectors the index stores; the student learns to output them directly.
    target = teacher.encode(texts, batch_size=128, convert_to_numpy=True, normalize_embeddings=True,
                            show_progress_bar=progress)  # (n, d)
    held_target = teacher.encode(held_out, batch_size=128, convert_to_numpy=True, normalize_embeddings=True)  # (h, d)
    student = load_sentence_transformer(spec.model, "encoder", device)[0]
    kept = _truncate(student, config.layers)
    mse_before, _ = _mse_cos(student, held_out, held_target)
    data = Dataset.from_dict({"text": texts, "label": list(target)})
    with tempfile.TemporaryDirectory(prefix="rag-distill-") as scratch:  # no checkpoints: nothing to keep
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=config.epochs, per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate, **warmup_arguments(0.05), seed=config.seed, data_seed=config.seed,
            save_strategy="no", logging_steps=10, report_to="none", disable_tqdm=not progress, use_cpu=device == "cpu")
        with kept_global_rng():  # the transformers Trainer seeds the global generators (set_seed)
            trainer = SentenceTransformerTrainer(model=student, args=args, train_dataset=data, loss=mse_loss(student))
            start = time.perf_counter()
            with trainer_console(trainer, progress):
                trainer.train()
            seconds = time.perf_counter() - start
    mse_after, cos_after = _mse_cos(student, held_out, held_target)
    record = {"teacher": spec.model_dump(), "kept_layers": kept, "config": asdict(config), "texts": len(texts),
              "held_out": len(held_out), "mse_before": mse_before, "mse_after": mse_after,
              "cosine_after": cos_after, "train_seconds": round(seconds, 1),
              "losses": [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]}
    with atomic_directory(Path(out)) as tmp:
        student.save(str(tmp))
        (tmp / QUERY_ENCODER_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return DistillResult(Path(out), len(texts), mse_before, mse_after, cos_after, seconds)
