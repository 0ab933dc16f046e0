"""Block-attention LoRA fine-tuning of SmolLM2-135M-Instruct on SQuAD training-article questions.

Training data: a seeded sample of questions from the *training* articles of
:mod:`eval.benchmarks.squad_split` (never a held-out article), each with its top-3 hybrid passages
from the SQuAD dev index and its first gold answer, in the SQuAD prompt of
:mod:`eval.benchmarks.smollm2_squad`. Training is :func:`rag.generation.train.train_generator`
(what ``rag train generator --block-attention --lora`` runs): LoRA (r = 16) on the attention
projections, answer-only loss, the cached path's block mask and Block-Attention (``rerotate``)
positions. Dev: held-out questions *outside* the 200-question evaluation sample, decoded through
the cached path every ``--eval-every`` steps (loss and dev F1 → ``docs/img/smollm2_block_lora.png``).
Afterwards the quality table is measured for the fine-tuned model (its LoRA adapter folder) by
:mod:`eval.benchmarks.smollm2_squad`.

Run (``--time-limit`` stops and saves early; ~7 s per example on 2 shared cores; the attention
probabilities of a batch of 4 take ~12 GB, so use ``--batch-size 2`` on a 24 GiB machine)::

    nice -n 5 python -m eval.benchmarks.smollm2_finetune --index build/squad/index --generator smollm2 \\
        --out build/smollm2-lora --steps 60 --batch-size 2
    nice -n 5 python -m eval.benchmarks.smollm2_squad --index build/squad/index \\
        --generator build/smollm2-lora/adapter --label block-lora --questions 200 --out build/smollm2-squad
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from eval.benchmarks.smollm2_squad import load_generator, squad_template
from eval.benchmarks.squad_split import SQUAD_DEV, held_out_sample, split

CURVE = Path(__file__).resolve().parents[2] / "docs" / "img" / "smollm2_block_lora.png"


def examples(index, questions, k: int):
    """``GeneratorExample`` s: each question over its top-``k`` hybrid passages, first gold answer."""
    from rag.generation.train import GeneratorExample

    out = []
    for q in questions:
        hits = index.retriever("hybrid").search(q.question, k)
        out.append(GeneratorExample(q.question, tuple((h.title, h.text) for h in hits), q.answers[0]))
    return out


def main(argv: list[str] | None = None) -> None:
    import torch

    from eval.qa_data import load_qa
    from eval.qa_metrics import exact_match, f1_score
    from rag.fid.train import plot_curves
    from rag.generation.kv_blocks import BlockLayout
    from rag.generation.prompt import PromptBuilder
    from rag.generation.train import GeneratorTrainConfig, train_generator
    from rag.index import open_index

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("build/squad/index"))
    parser.add_argument("--generator", default="smollm2")
    parser.add_argument("--out", type=Path, default=Path("build/smollm2-lora"))
    parser.add_argument("--train-questions", type=int, default=1000)
    parser.add_argument("--dev-questions", type=int, default=30)
    parser.add_argument("--k", type=int, default=3, help="passages per training prompt")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)  # LoRA wants ~1e-3 (see GeneratorTrainConfig.lr)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--checkpoint-every", type=int, default=20, help="steps between saved adapters (0: end only)")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds; stop and save")
    parser.add_argument("--threads", type=int, default=2)
    a = parser.parse_args(argv)
    torch.set_num_threads(a.threads)

    train_q, held = split(load_qa(SQUAD_DEV))
    sample_ids = {q.id for q in held_out_sample(SQUAD_DEV, 200)}
    rng = random.Random(1)
    train_q = rng.sample(train_q, min(a.train_questions, len(train_q)))
    dev_q = rng.sample([q for q in held if q.id not in sample_ids], a.dev_questions)
    index = open_index(a.index)
    train, dev = examples(index, train_q, a.k), examples(index, dev_q, a.k)
    a.out.mkdir(parents=True, exist_ok=True)
    with (a.out / "train.jsonl").open("w", encoding="utf-8") as fh:
        for e in train:
            fh.write(json.dumps({"question": e.question, "answer": e.answer,
                                 "passages": [{"title": t, "text": x} for t, x in e.passages]}, ensure_ascii=False) + "\n")

    gen = load_generator(a.generator)
    cfg = GeneratorTrainConfig(attention="block", layout=BlockLayout("rerotate"), steps=a.steps, batch_size=a.batch_size,
                               lr=a.lr, warmup_steps=max(1, a.steps // 10), max_answer_tokens=24, eval_every=a.eval_every,
                               eval_examples=a.dev_questions, lora=True, time_limit_s=a.time_limit,
                               checkpoint_every=a.checkpoint_every)
    result = train_generator(gen, train, dev, cfg, a.out, score=lambda p, g: (exact_match(p, g), f1_score(p, g)),
                             builder=PromptBuilder(gen, squad_template()),
                             log=lambda row: print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                                                               for k, v in row.items()}), flush=True))
    CURVE.parent.mkdir(parents=True, exist_ok=True)
    plot_curves(result.history, CURVE, title="SmolLM2-135M block-attention LoRA on SQuAD (dev: held-out articles)")
    print(f"{result.steps} steps in {result.seconds:.0f} s; adapter in {a.out / 'adapter'}; curve {CURVE}")


if __name__ == "__main__":
    main()
