"""Extractive answers on SQuAD dev: the score threshold, the correctness rule, the segmenter.

Each sampled question gets its *gold* paragraph as the only passage (retrieval is taken out, so
the figures are about extraction), and a paragraph of another article as an off-topic control.
Printed as Markdown:

1. the best sentence's cosine (MiniLM) for on-topic and off-topic paragraphs (percentiles), and
   for thresholds t, the share of on-topic questions still answered and of off-topic refused;
2. for 1 and 3 quoted sentences, gold-derived accuracy under "contains" (a SQuAD-normalised gold
   answer occurs in the answer) and under "token F1 >= 0.5", with the pre-syntok regex splitter
   beside syntok.

Usage::

    python -m eval.benchmarks.extractive ../shared/data/squad-dev/dev-v1.1.json --n 300
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import numpy as np

_OLD_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")  # the splitter syntok replaced


def _sample(path: Path, n: int, seed: int) -> list[tuple[str, tuple[str, ...], str, str]]:
    """``n`` seeded (question, golds, gold paragraph, paragraph of another article) tuples."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    rng = random.Random(seed)
    rows = [(a_i, p["context"], qa) for a_i, a in enumerate(data) for p in a["paragraphs"] for qa in p["qas"]]
    out = []
    for a_i, context, qa in rng.sample(rows, n):
        other = rng.choice([a for j, a in enumerate(data) if j != a_i])
        out.append((qa["question"], tuple(x["text"] for x in qa["answers"]), context,
                    rng.choice(other["paragraphs"])["context"]))
    return out


def main(argv: list[str] | None = None) -> None:
    from eval.qa_metrics import answer_recall, f1_score
    from rag.encoder import Encoder
    from rag.encoder_cache import CachingEncoder
    from rag.extractive import ExtractiveConfig, extract, split_sentences
    from rag.types import Hit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("squad", type=Path)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = _sample(args.squad, args.n, args.seed)
    enc = CachingEncoder(Encoder())

    def best(question: str, text: str, split) -> tuple[float, list[str]]:
        sents = [s.strip() for s in split(text) if s.strip()]
        scores = enc.encode_passages(sents) @ enc.encode_queries([question])[0]
        order = np.argsort(-scores, kind="stable")
        return float(scores[order[0]]), [sents[j] for j in order]

    on = np.array([best(q, ctx, split_sentences)[0] for q, _, ctx, _ in rows])
    off = np.array([best(q, other, split_sentences)[0] for q, _, _, other in rows])
    pct = (5, 25, 50, 75, 95)
    print(f"n = {len(rows)} SQuAD dev questions (seed {args.seed}); best-sentence cosine, MiniLM\n")
    print("| paragraph | " + " | ".join(f"p{p}" for p in pct) + " |\n|---|" + "---|" * len(pct))
    for name, x in (("gold (on-topic)", on), ("other article (off-topic)", off)):
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in np.percentile(x, pct)) + " |")
    print("\n| min_score | on-topic answered | off-topic refused |\n|---|---|---|")
    for t in (0.1, 0.15, 0.2, 0.25, 0.3):
        print(f"| {t:.2f} | {np.mean(on >= t):.3f} | {np.mean(off < t):.3f} |")
    print("\n| segmenter | sentences | contains | token F1 >= 0.5 | mean F1 |\n|---|---|---|---|---|")
    for seg_name, split in (("regex (old)", _OLD_SPLIT.split), ("syntok", split_sentences)):
        ranked = [(golds, best(q, ctx, split)[1]) for q, golds, ctx, _ in rows]
        for n_sent in (1, 3):
            answers = [(golds, " ".join(s[:n_sent])) for golds, s in ranked]
            contains = np.mean([answer_recall([a], g) for g, a in answers])
            f1 = np.array([f1_score(a, g) for g, a in answers])
            print(f"| {seg_name} | {n_sent} | {contains:.3f} | {np.mean(f1 >= 0.5):.3f} | {f1.mean():.3f} |")
    # the pipeline's own function agrees with the table's syntok rows
    hits = [Hit(id="p#0", doc_id="p", score=1.0, title="", text=rows[0][2])]
    assert extract(rows[0][0], hits, enc, ExtractiveConfig(sentences=1, min_score=-1.0)).text.startswith(
        best(rows[0][0], rows[0][2], split_sentences)[1][0])


if __name__ == "__main__":
    main()
