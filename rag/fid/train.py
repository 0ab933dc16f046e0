"""Train a Fusion-in-Decoder reader (or its LUMEN variant) on question/answers/passages JSONL.

FiD is trained by teacher forcing (Izacard & Grave, EACL 2021, §3–4): minimise the answer's
negative log-likelihood given all ``N`` passages,

    loss = − Σ_t log p(a_t | a_<t, Enc(q ++ p_1), ..., Enc(q ++ p_N))

with AdamW and a learning rate that rises linearly for ``warmup_steps`` and then follows a cosine
down to ``min_lr_ratio · lr`` (warmup matters for transformers trained from scratch; without it the
issue's naive run never left 0% EM). LUMEN training (de Jong et al. 2023, §3) freezes the memory
layers, so stored memory stays valid. Every ``eval_every`` steps the reader decodes the dev split
greedily and the injected ``score`` function (SQuAD EM/F1 from ``eval.qa_metrics`` in the CLI)
grades it; checkpoints are HF model directories (weights + tokenizer), written atomically.

The loop is written out instead of configuring transformers' ``Trainer`` because the batch is a
``(B, N, L)`` FiD layout with generative EM/F1 evaluation and a wall-clock budget; it is ~80 lines.

Input lines: ``{"question": str, "answers": [str, ...], "passages": [str | {"title", "text"}, ...]}``;
``passages`` may be left out when they are retrieved from an index (:func:`retrieve_passages`).

Example:
    >>> train_reader(reader, load_qa_jsonl("train.jsonl"), load_qa_jsonl("dev.jsonl"),   # doctest: +SKIP
    ...              ReaderTrainConfig(steps=2000), out_dir="runs/fid", score=em_f1)
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from indexes.atomic import atomic_directory, atomic_write_text
from indexes.errors import InputError
from rag.fid.inputs import passage_text
from rag.fid.lumen import LumenEncoder
from rag.fid.reader import FiDReader, answer_labels
from rag.training.qa_jsonl import qa_rows
from rag.training.result import TrainResult
from rag.training.step_loop import run_steps

#: (prediction, gold answers) -> (exact match, F1), both in [0, 1].
Scorer = Callable[[str, Sequence[str]], tuple[float, float]]


@dataclass(frozen=True)
class QAExample:
    question: str
    answers: tuple[str, ...]
    passages: tuple[str, ...]


@dataclass(frozen=True)
class ReaderTrainConfig:
    """Optimisation settings; the reader's own :class:`~rag.fid.reader.FiDConfig` sets N and lengths."""

    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3  # from-scratch tiny models; fine-tuning pretrained T5 wants ~1e-4
    warmup_steps: int = 200
    min_lr_ratio: float = 0.1  # cosine floor, so late steps still learn
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # FiD's clip value
    max_answer_tokens: int = 16
    eval_every: int = 250
    eval_examples: int = 200  # dev examples decoded per evaluation
    checkpoint_every: int = 0  # 0: only the final checkpoint
    live_layers: int | None = None  # LUMEN: train with K live layers, memory layers frozen
    seed: int = 0
    time_limit_s: float | None = None  # stop (and save) after this much wall time


def load_qa_jsonl(path: str | Path, need_passages: bool = True) -> list[QAExample]:
    """Read QA JSONL; a bad line raises :class:`InputError` naming the file, line and field.

    Args:
        path: the JSONL file.
        need_passages: every line must carry non-empty ``passages``; when ``False`` a line without
            them gets ``passages=()``, to be filled by :func:`retrieve_passages`.
    """
    out = []
    fields = (("question", str), ("answers", list), ("passages", list))
    for where, row in qa_rows(path, fields, defaults=None if need_passages else {"passages": []},
                              hints={"passages": " (or give --index to retrieve passages)"}):
        ps = [p if isinstance(p, str) else passage_text(str(p.get("title", "")), str(p.get("text", ""))) for p in row["passages"]]
        if not row["answers"] or (need_passages and not ps):
            raise InputError(f"{where}: 'answers' and 'passages' must not be empty")
        out.append(QAExample(row["question"], tuple(map(str, row["answers"])), tuple(ps)))
    if not out:
        raise InputError(f"{path}: no QA examples")
    return out


def retrieve_passages(examples: Sequence[QAExample], retriever, k: int) -> list[QAExample]:
    """Fill the examples without passages with the top ``k`` hits of ``retriever.search(question, k)``,
    as the ask path shows hits to the reader (:func:`rag.fid.inputs.passage_text`)."""
    out = []
    for e in examples:
        if not e.passages:
            hits = retriever.search(e.question, k)
            if not hits:
                raise InputError(f"no passage retrieved for question {e.question!r}")
            e = QAExample(e.question, e.answers, tuple(passage_text(h.title, h.text) for h in hits))
        out.append(e)
    return out


@torch.no_grad()
def evaluate_reader(reader: FiDReader, examples: Sequence[QAExample], score: Scorer, batch_size: int = 32) -> dict:
    """Greedy-decode ``examples`` and average ``score`` → ``{"em": .., "f1": .., "n": ..}``."""
    was_training = reader.model.training
    reader.model.eval()
    em = f1 = 0.0
    for i in range(0, len(examples), batch_size):
        chunk = examples[i : i + batch_size]
        preds = reader.answer([e.question for e in chunk], [e.passages for e in chunk], num_beams=1)
        for p, e in zip(preds, chunk):
            a, b = score(p, e.answers)
            em, f1 = em + a, f1 + b
    reader.model.train(was_training)
    return {"em": em / max(1, len(examples)), "f1": f1 / max(1, len(examples)), "n": len(examples)}


def save_checkpoint(reader: FiDReader, path: str | Path) -> None:
    """An HF model directory (safetensors weights, config, tokenizer), written atomically."""
    with atomic_directory(path) as tmp:
        reader.model.save_pretrained(tmp)
        reader.tokenizer.save_pretrained(tmp)


def train_reader(
    reader: FiDReader, train: Sequence[QAExample], dev: Sequence[QAExample], cfg: ReaderTrainConfig,
    out_dir: str | Path, score: Scorer, log: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Train ``reader`` in place; writes ``out_dir/{final,checkpoint-S}/`` and ``history.json``.

    Returns:
        Steps done, wall time and the history rows (``step, loss, lr, elapsed_s`` and, at
        evaluations, ``em, f1``).
    """
    out_dir = Path(out_dir)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = reader.model.train()
    if cfg.live_layers is not None:
        reader.encoder = LumenEncoder(model, cfg.live_layers)
        reader.encoder.freeze_memory_layers()

    def batch_loss(indices: list[int]) -> torch.Tensor:
        batch = [train[i] for i in indices]
        inputs = reader.tokenize([e.question for e in batch], [e.passages for e in batch])
        labels = answer_labels(reader.tokenizer, [e.answers[0] for e in batch], cfg.max_answer_tokens)
        return reader.forward(inputs, labels).loss

    result = run_steps([p for p in model.parameters() if p.requires_grad], cfg, len(train), batch_loss,
                       evaluate=lambda: evaluate_reader(reader, dev[: cfg.eval_examples], score),
                       checkpoint=lambda path: save_checkpoint(reader, path), out_dir=out_dir, log=log)
    save_checkpoint(reader, out_dir / "final")
    meta = {"config": asdict(cfg), "reader": asdict(reader.config), "steps": result.steps, "wall_s": result.seconds,
            "history": result.history}
    atomic_write_text(out_dir / "history.json", json.dumps(meta, indent=1) + "\n")
    return replace(result, out=out_dir / "final")


def plot_curves(history: Sequence[dict], path: str | Path, title: str = "FiD reader training") -> None:
    """Save training loss and dev EM/F1 against steps as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot([r["step"] for r in history], [r["loss"] for r in history], lw=0.8)
    ax1.set(xlabel="step", ylabel="training loss (NLL / token)", yscale="log", title=title)
    evals = [r for r in history if "em" in r]
    ax2.plot([r["step"] for r in evals], [100 * r["em"] for r in evals], "o-", label="EM")
    ax2.plot([r["step"] for r in evals], [100 * r["f1"] for r in evals], "s--", label="F1")
    ax2.set(xlabel="step", ylabel="held-out %", ylim=(-2, 102), title="held-out exact match / F1")
    ax2.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
