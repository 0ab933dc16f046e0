"""Learning comparison for block-attention training: the *single fact* task, block vs full attention.

The task is :mod:`eval.benchmarks.fid_single_fact`'s (10 real SQuAD dev paragraphs per item, one
carrying ``"The access code is 4417."``; held-out items use unseen articles and unseen codes), asked
of a small decoder-only model trained from random initialisation twice from the same weights and
seed: once with the block attention mask and cached-path positions (Block-Attention, Sun et al.,
2024, arXiv:2409.15355, §3), evaluated through ``cached_prefill`` (passage states computed
separately, as a passage cache serves them); once with the plain causal mask, evaluated with a full
prefill. Issue 6's target: block attention reaches ≥ 90% of full attention's held-out exact match.

Run (writes data, models, curves and ``summary.json`` under --out; prints a JSON summary)::

    HF_HUB_OFFLINE=1 nice -n 10 .venv/bin/python -m eval.benchmarks.block_attention_single_fact \\
        --out build/block-single-fact --steps 3000 --plot docs/img/block_attention_single_fact.png

The two trainings are independent: they may run as two processes side by side (one core each),
from the same seed (so the same data and initial weights), then be compared::

    python -m eval.benchmarks.block_attention_single_fact --attention block --out build/bsf-block --threads 1
    # once build/bsf-block/decoder-init exists (the task tokenizer's training is not deterministic,
    # so the second run takes the first one's tokenizer and weights rather than making its own):
    python -m eval.benchmarks.block_attention_single_fact --attention full --out build/bsf-full --threads 1 \
        --init build/bsf-block/decoder-init
    python -m eval.benchmarks.block_attention_single_fact --combine build/bsf-block build/bsf-full \
        --out build/block-single-fact --plot docs/img/block_attention_single_fact.png

Smoke test (a few steps, no claim)::

    .venv/bin/python -m eval.benchmarks.block_attention_single_fact --out /tmp/ba --steps 3 \\
        --n-train 64 --n-dev 4 --eval-examples 4 --batch-size 4
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import time
from dataclasses import replace
from pathlib import Path

from eval.benchmarks.fid_single_fact import QUESTION, make_task

SYSTEM = "Read the documents and answer."  # short: the prefix must be non-empty, nothing more is needed


def to_generator_rows(path: Path) -> Path:
    """Rewrite ``{question, answers, passages}`` rows as ``{question, passages, answer}`` next to ``path``."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    out = path.with_name(path.stem + "-generator.jsonl")
    out.write_text("".join(json.dumps({"question": r["question"], "passages": r["passages"], "answer": r["answers"][0]}) + "\n"
                           for r in rows), encoding="utf-8")
    return out


def make_decoder(out: Path, train_path: Path, d_model: int, layers: int, seed: int) -> Path:
    """A random-init Llama (RoPE, as the cache requires) with the task tokenizer, saved as an HF dir."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from rag.fid.task_tokenizer import train_task_tokenizer

    texts = [p for line in train_path.read_text().splitlines() for p in json.loads(line)["passages"]]
    tok = train_task_tokenizer(texts + [SYSTEM, f"Question (documents 1-10 above): {QUESTION}\nAnswer:"], vocab_size=4000)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=d_model, intermediate_size=4 * d_model, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048, pad_token_id=0,
                         eos_token_id=1, bos_token_id=None, tie_word_embeddings=True)
    path = out / "decoder-init"
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def run_one(init: Path, attention: str, train_path: Path, dev_path: Path, args) -> dict:
    from eval.qa_metrics import exact_match, f1_score
    from rag.fid.train import plot_curves
    from rag.generation.generator import Generator, GeneratorConfig
    from rag.generation.prompt import PromptBuilder, PromptTemplate
    from rag.generation.train import GeneratorTrainConfig, load_generator_jsonl, train_generator

    gen = Generator.load(GeneratorConfig(str(init), device=args.device))
    builder = PromptBuilder(gen, PromptTemplate(system=SYSTEM, passage="{text}\n", max_passage_tokens=4 * args.max_words))
    cfg = GeneratorTrainConfig(attention=attention, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                               warmup_steps=args.warmup, max_answer_tokens=8, eval_every=args.eval_every,
                               eval_examples=args.eval_examples, seed=args.seed, time_limit_s=args.time_limit)
    out = args.out / attention
    train, dev = load_generator_jsonl(train_path), load_generator_jsonl(dev_path)
    score = lambda p, g: (exact_match(p, g), f1_score(p, g))  # noqa: E731
    # curriculum: first the planted passage among fewer distractors (held-out items always have 10)
    rng, stages, used = random.Random(args.seed), [], 0
    for n, (n_passages, n_steps) in enumerate(args.curriculum, 1):
        easier = [replace(e, passages=fewer_passages(e.passages, n_passages, rng)) for e in train]
        stages.append((easier, replace(cfg, steps=n_steps), out / f"stage{n}-{n_passages}-passages"))
        used += n_steps
    stages.append((train, replace(cfg, steps=args.steps - used), out))
    history: list[dict] = []
    steps, wall = 0, 0.0
    for n, (data, stage_cfg, stage_out) in enumerate(stages, 1):
        if stage_cfg.time_limit_s is not None:
            stage_cfg = replace(stage_cfg, time_limit_s=max(1.0, stage_cfg.time_limit_s - wall))
        res = train_generator(gen, data, dev, stage_cfg, stage_out, score=score, builder=builder,
                              log=lambda r, n=n: print(json.dumps({"attention": attention, "stage": n} | {k: round(v, 4) for k, v in r.items()}), flush=True))
        history += [r | {"step": r["step"] + steps, "elapsed_s": r["elapsed_s"] + wall, "stage": n} for r in res.history]
        steps, wall = steps + res.steps, wall + res.seconds
        if stage_cfg.time_limit_s is not None and res.steps < stage_cfg.steps:
            break  # out of time
    plot_curves(history, out / "curves.png", title=f"decoder single fact ({attention} attention)")
    result = {"steps": steps, "wall_s": wall, "history": history}
    (out / "run.json").write_text(json.dumps(result) + "\n")
    return result


def parse_curriculum(text: str) -> list[tuple[int, int]]:
    """``"1:800,3:1200"`` → ``[(1, 800), (3, 1200)]`` (passages per item, steps)."""
    try:
        stages = [tuple(int(x) for x in part.split(":")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected PASSAGES:STEPS[,...], got {text!r}") from None
    if any(len(st) != 2 or min(st) < 1 for st in stages):
        raise argparse.ArgumentTypeError(f"expected positive PASSAGES:STEPS pairs, got {text!r}")
    return stages


def fewer_passages(passages: tuple, n: int, rng: random.Random) -> tuple:
    """The passage with the planted fact and ``n - 1`` others drawn at random, in their original order."""
    planted = [i for i, (_, text) in enumerate(passages) if "access code" in text.lower()]
    others = [i for i in range(len(passages)) if i not in planted]
    keep = set(planted[:1] + rng.sample(others, min(len(others), n - 1)))
    return tuple(p for i, p in enumerate(passages) if i in keep)


def plot_comparison(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, r in results.items():
        h = r["history"]
        ax1.plot([x["step"] for x in h], [x["loss"] for x in h], lw=0.8, label=name)
        ev = [x for x in h if "em" in x]
        ax2.plot([x["step"] for x in ev], [100 * x["em"] for x in ev], "o-", label=name)
    ax1.set(xlabel="step", ylabel="answer NLL / token", yscale="log", title="training loss")
    ax2.set(xlabel="step", ylabel="held-out EM %", ylim=(-2, 102), title="held-out exact match")
    ax1.legend()
    ax2.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarize(results: dict) -> dict:
    """Per run: steps, wall time, final and best held-out EM; and block's final EM over full's."""
    summary = {}
    for k, r in results.items():
        evals = [x for x in r["history"] if "em" in x]
        summary[k] = {"steps": r["steps"], "wall_s": round(r["wall_s"], 1), "final_heldout_em": evals[-1]["em"],
                      "best_heldout_em": max(x["em"] for x in evals)}
    if {"block", "full"} <= summary.keys() and summary["full"]["final_heldout_em"] > 0:
        summary["block_over_full"] = summary["block"]["final_heldout_em"] / summary["full"]["final_heldout_em"]
    return summary


def combine(block_dir: Path, full_dir: Path) -> dict:
    """The runs' ``history.json`` files, written by two ``--attention block|full`` processes."""
    results = {}
    for kind, d in (("block", block_dir), ("full", full_dir)):
        meta = json.loads((d / kind / "run.json").read_text())
        results[kind] = {"steps": meta["steps"], "wall_s": meta["wall_s"], "history": meta["history"]}
    for name in ("model.safetensors", "tokenizer.json"):
        if len({(d / "decoder-init" / name).read_bytes() for d in (block_dir, full_dir)}) != 1:
            raise SystemExit(f"the two runs did not start from the same decoder-init/{name}: start the second with --init")
    return results


def main(argv: list[str] | None = None) -> dict:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("build/block-single-fact"))
    ap.add_argument("--attention", choices=["both", "block", "full"], default="both")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--max-words", type=int, default=30, help="words kept per paragraph (the planted sentence adds 5)")
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--n-dev", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-examples", type=int, default=200)
    ap.add_argument("--time-limit", type=float, default=None, help="per run, seconds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--curriculum", type=parse_curriculum, default=[], metavar="P:S,...",
                    help="first train S steps on items cut to P passages, for each P:S in turn (counted in --steps)")
    ap.add_argument("--init", type=Path, default=None, help="start from this decoder-init folder (another run's)")
    ap.add_argument("--combine", nargs=2, type=Path, metavar=("BLOCK_OUT", "FULL_OUT"),
                    help="compare two finished runs (their --out folders) instead of training")
    args = ap.parse_args(argv)
    if args.combine:
        results = combine(*args.combine)
        summary = summarize(results) | {"runs": [str(d) for d in args.combine]}
        if args.plot:
            plot_comparison(results, args.plot)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(json.dumps(summary))
        return summary
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    train_qa, dev_qa = make_task(args.out, args.max_words, n_train=args.n_train, n_dev=args.n_dev, seed=args.seed)
    train_path, dev_path = to_generator_rows(train_qa), to_generator_rows(dev_qa)
    if args.init:  # the other run's tokenizer and initial weights, copied so that --combine can check them
        init = args.out / "decoder-init"
        shutil.rmtree(init, ignore_errors=True)
        shutil.copytree(args.init, init)
    else:
        init = make_decoder(args.out, train_qa, args.d_model, args.layers, args.seed)
    kinds = ["block", "full"] if args.attention == "both" else [args.attention]
    results = {k: run_one(init, k, train_path, dev_path, args) for k in kinds}
    summary = summarize(results) | {"wall_s": round(time.perf_counter() - t0, 1), "args": {k: str(v) for k, v in vars(args).items()},
                "hardware": f"{platform.processor() or platform.machine()}, device={args.device}, torch threads={torch.get_num_threads()}"}
    if args.plot:
        plot_comparison(results, args.plot)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
