"""Learning proof for the FiD reader: the *single fact* task on real SQuAD dev paragraphs.

Each item has 10 real SQuAD v1.1 dev paragraphs; one carries a planted sentence
``"The access code is 4417."`` at a random sentence boundary, and the question is
``"What is the access code?"``. Training and held-out items use disjoint SQuAD articles *and*
disjoint code values, so a held-out answer has never been a training target: the reader must find
the planted passage and copy the digits. A small T5 trained from random initialisation with a
task tokenizer (digits one per token), warmup + cosine learning rate, and short passages should
reach ≥ 90% exact match; a first, naive setup (30k WordPiece vocabulary, constant LR, 80-token
passages) stayed at 0% after 1,000 steps.

Run (writes data, model and curves under --out, prints a JSON summary)::

    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python -m eval.benchmarks.fid_single_fact \\
        --out build/fid-single-fact --steps 1500 --time-limit 2400 --plot docs/img/fid_single_fact.png
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
from pathlib import Path

SQUAD_DEV = Path("/work/shared/data/squad-dev/dev-v1.1.json")
QUESTION = "What is the access code?"
FACT = "The access code is {code}."


def _paragraphs(squad_path: Path) -> list[list[str]]:
    data = json.loads(Path(squad_path).read_text(encoding="utf-8"))["data"]
    return [[p["context"] for p in article["paragraphs"]] for article in data]


def _plant(paragraph: str, fact: str, max_words: int, rng: random.Random) -> str:
    """Truncate to ``max_words`` words (whole sentences first) and insert ``fact`` at a sentence boundary."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", paragraph) if s]
    kept: list[str] = []
    for s in sentences:
        if sum(len(k.split()) for k in kept) + len(s.split()) > max_words and kept:
            break
        kept.append(" ".join(s.split()[:max_words]))
    if fact:
        kept.insert(rng.randrange(len(kept) + 1), fact)
    return " ".join(kept)


def build_items(articles: list[list[str]], codes: list[int], n_items: int, max_words: int, seed: int) -> list[dict]:
    """``n_items`` QA rows ``{question, answers, passages}`` from these articles' paragraphs and codes."""
    rng = random.Random(seed)
    pool = [p for a in articles for p in a]
    items = []
    for _ in range(n_items):
        code = str(rng.choice(codes))
        paras = rng.sample(pool, 10)
        gold = rng.randrange(10)
        passages = [_plant(p, FACT.format(code=code) if i == gold else "", max_words, rng) for i, p in enumerate(paras)]
        items.append({"question": QUESTION, "answers": [code], "passages": passages, "gold": gold})
    return items


def make_task(out: Path, max_words: int, n_train: int, n_dev: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``train.jsonl`` (38 articles, 90% of codes) and ``heldout.jsonl`` (10 other articles, other codes)."""
    articles = _paragraphs(SQUAD_DEV)
    codes = list(range(1000, 10000))
    random.Random(seed).shuffle(codes)
    held_codes, train_codes = codes[:900], codes[900:]
    out.mkdir(parents=True, exist_ok=True)
    paths = out / "train.jsonl", out / "heldout.jsonl"
    for path, arts, cs, n, s in ((paths[0], articles[:38], train_codes, n_train, seed), (paths[1], articles[38:], held_codes, n_dev, seed + 1)):
        path.write_text("".join(json.dumps(r) + "\n" for r in build_items(arts, cs, n, max_words, s)), encoding="utf-8")
    return paths


def make_model(out: Path, train_path: Path, d_model: int, layers: int, seed: int) -> Path:
    """A random-init T5 (``layers`` encoder + ``layers`` decoder) with a task tokenizer, saved as an HF dir."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from rag.fid.task_tokenizer import train_task_tokenizer

    texts = [p for line in train_path.read_text().splitlines() for p in json.loads(line)["passages"]]
    tok = train_task_tokenizer(texts + [f"question: {QUESTION} context:"], vocab_size=4000)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tok), d_model=d_model, d_kv=d_model // 4, d_ff=4 * d_model, num_layers=layers,
        num_decoder_layers=layers, num_heads=4, dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=0, tie_word_embeddings=True,
    )
    path = out / "init"
    T5ForConditionalGeneration(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def main(argv: list[str] | None = None) -> dict:
    import time

    import torch

    from eval.qa_metrics import exact_match, f1_score
    from rag.fid.reader import FiDConfig, FiDReader
    from rag.fid.train import ReaderTrainConfig, load_qa_jsonl, plot_curves, train_reader

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("build/fid-single-fact"))
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--max-words", type=int, default=30, help="words kept per paragraph (the planted sentence adds 5)")
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    train_path, dev_path = make_task(args.out, args.max_words, n_train=20000, n_dev=300, seed=args.seed)
    init = make_model(args.out, train_path, args.d_model, args.layers, args.seed)
    reader = FiDReader.from_pretrained(init, FiDConfig(n_passages=10, max_question_tokens=16, max_passage_tokens=4 * args.max_words))
    cfg = ReaderTrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.warmup,
                            eval_every=args.eval_every, eval_examples=300, seed=args.seed, time_limit_s=args.time_limit)
    score = lambda p, golds: (exact_match(p, golds), f1_score(p, golds))  # noqa: E731
    t0 = time.perf_counter()
    res = train_reader(reader, load_qa_jsonl(train_path), load_qa_jsonl(dev_path), cfg, args.out, score,
                       log=lambda r: print(json.dumps({k: round(v, 4) for k, v in r.items()}), flush=True))
    evals = [r for r in res.history if "em" in r]
    summary = {"steps": res.steps, "wall_s": round(time.perf_counter() - t0, 1), "final_heldout_em": evals[-1]["em"],
               "final_heldout_f1": evals[-1]["f1"], "best_heldout_em": max(r["em"] for r in evals),
               "hardware": f"{platform.processor() or platform.machine()}, torch threads={torch.get_num_threads()}",
               "params": sum(p.numel() for p in reader.model.parameters()), "args": {k: str(v) for k, v in vars(args).items()}}
    if args.plot:
        plot_curves(res.history, args.plot, title=f"FiD single fact (d={args.d_model}, {args.layers}+{args.layers} layers)")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
