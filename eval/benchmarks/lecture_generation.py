"""The lecture's generator-side systems, measured with SmolLM2-135M-Instruct on SQuAD held-out questions.

Three experiments over the same fixed seeded sample (:func:`eval.benchmarks.squad_split.held_out_sample`),
hybrid retrieval over all 2,067 SQuAD dev paragraphs, SmolLM2's chat template with the short-answer
prompt of :mod:`eval.benchmarks.smollm2_squad`, greedy decoding, ≤ 24 new tokens, cut at the first
newline, F1 in % with 90% CLT intervals:

- ``fusion``: concat vs RAG-Sequence (thorough decoding) vs RAG-Token at k = 3 and 5, over cached
  passage states (composite positions), ``p(z|x) = softmax(score / 1.0)``; latency = TTFT + decoding.
- ``select``: dynamic block selection of m = 1, 2, 3, 5 of k = 10 cached blocks vs all 10 (TTFT),
  with the answer recall of the selected blocks next to that of the retriever's own top m.
- ``evict``: under a KV budget of B prompt tokens, (a) the top passages that fit, over cached states,
  vs (b) a full prefill of the k = 5 prompt evicted to B by H2O or SnapKV; F1 against B (PNG).

Passage states come from the index's KV store when present and are otherwise encoded once per run
and kept in memory (nothing is written into the index). Run each (resumable; rows are appended)::

    nice -n 10 python -m eval.benchmarks.lecture_generation fusion --questions 60 --out build/lecture
    nice -n 10 python -m eval.benchmarks.lecture_generation select --questions 60 --out build/lecture
    nice -n 10 python -m eval.benchmarks.lecture_generation evict --questions 40 --out build/lecture
    python -m eval.benchmarks.lecture_generation report --out build/lecture
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from eval.benchmarks.smollm2_squad import _ci, _clean, load_generator, squad_template
from eval.benchmarks.squad_split import SQUAD_DEV, held_out_sample

INDEX = Path("/work/wt/bench/build/squad/index")
FUSIONS = ("concat", "rag-sequence", "rag-token")
SELECT_K, SELECT_M = 10, (1, 2, 3, 5)
EVICT_K, BUDGETS = 5, (256, 384, 512, 768)


class MemoStates:
    """Read-only passage states: the index's KV store where it has a passage, else encoded once, in memory."""

    def __init__(self, index_path: Path, generator, cache_config) -> None:
        from rag.generation.kv_blocks import Workspace, encode_prefix
        from rag.generation.passage_cache import open_passage_states
        from rag.generation.prompt import PromptBuilder

        self.generator, self.config = generator, cache_config
        self.builder = PromptBuilder(generator, cache_config.template)
        try:
            self.store = open_passage_states(index_path, generator, cache_config)
        except Exception:  # no fitting store: everything is encoded here
            self.store = None
        stored = self.store.prefix() if self.store else None
        self._prefix = stored or encode_prefix(generator, self.builder.prefix_ids)
        self._memo: dict = {}
        self.workspace = Workspace()

    def prefix(self):
        return self._prefix

    def ensure(self, hits) -> None:
        from rag.generation.kv_blocks import encode_block

        for h in hits:
            if h.id in self._memo:
                continue
            stored = self.store.blocks([h.id])[0] if self.store else None
            self._memo[h.id] = stored or encode_block(self.generator, self._prefix,
                                                      self.builder.block_ids(h.title, h.text), self.config.see_prefix)

    def blocks(self, ids):
        return [self._memo.get(i) for i in ids]


def _base(k: int):
    from rag.generation.kv_blocks import BlockLayout
    from rag.generation.passage_cache import CacheConfig
    from rag.generation.sampling import SamplingConfig
    from rag.pipeline import AskConfig

    return AskConfig(k=k, mode="hybrid", kv_cache=True, layout=BlockLayout("composite"),
                     cache=CacheConfig(template=squad_template()),
                     sampling=SamplingConfig(max_new_tokens=24, temperature=0.0, stop=("\n",)))


def _setup(index_path: Path, threads: int, depth: int):
    import torch

    from rag.index import open_index

    torch.set_num_threads(threads)
    index = open_index(index_path)
    generator = load_generator("smollm2")
    states = MemoStates(index_path, generator, _base(depth).cache)
    return index, generator, states


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8")] if path.exists() else []


def _run(name: str, out: Path, n: int, threads: int, depth: int, answer_fn) -> None:
    from rag.pipeline import retrieve

    path = out / f"{name}.jsonl"
    done = {r["id"] for r in _rows(path)}
    index, generator, states = _setup(INDEX, threads, depth)
    with path.open("a", encoding="utf-8") as fh:
        for i, q in enumerate(held_out_sample(SQUAD_DEV, n)):
            if q.id in done:
                continue
            hits = retrieve(q.question, index, _base(depth))
            states.ensure(hits)
            row = {"id": q.id, "answers": list(q.answers), "passages": [h.text for h in hits]}
            row.update(answer_fn(q.question, hits, index, generator, states))
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
            print(f"[{name} {i + 1}/{n}] {q.question[:50]!r}", flush=True)


def _ask(question, index, generator, states, config) -> dict:
    from rag.pipeline import ask

    a = ask(question, index, generator, config, states=states)
    return {"answer": a.answer, "ttft_ms": round(a.timings["ttft_ms"], 1), "decode_ms": round(a.timings["decode_ms"], 1),
            "used": [c.text for c in a.citations]}


def fusion_answers(question, hits, index, generator, states) -> dict:
    from rag.generation.rag_fusion import FusionConfig

    return {f"{f}@{k}": _ask(question, index, generator, states, replace(_base(k), fusion=FusionConfig(f)))
            for k in (3, 5) for f in FUSIONS}


def select_answers(question, hits, index, generator, states) -> dict:
    from rag.generation.block_select import BlockSelectConfig

    base = _base(SELECT_K)
    row = {"all@10": _ask(question, index, generator, states, base)}
    for m in SELECT_M:
        row[f"select{m}@10"] = _ask(question, index, generator, states, replace(base, select=BlockSelectConfig(m)))
    return row


def evict_answers(question, hits, index, generator, states) -> dict:
    """Every budget and method for one question: one full prefill, its scores reused across budgets."""
    from rag.generation.kv_evict import (EvictionConfig, blocks_within_budget, evict, eviction_scores,
                                         prefill_for_eviction)
    from rag.generation.prefill import Prefill, cached_prefill

    hits = hits[:EVICT_K]
    base = _base(EVICT_K)
    sampling = base.sampling
    builder = states.builder
    segments = builder.segments(question, [(h.title, h.text) for h in hits])
    ids = segments.flat()

    def decode(prefill) -> str:
        return "".join(generator.stream_text(generator.iter_tokens(prefill, sampling), sampling.stop)).strip()

    t = time.perf_counter()
    logits, cache, hidden = prefill_for_eviction(generator, ids)
    row = {"T": len(ids), "full_prefill_ms": round(1e3 * (time.perf_counter() - t), 1)}
    scores = {}
    for policy in ("h2o", "snapkv"):
        t = time.perf_counter()
        scores[policy] = eviction_scores(generator, cache, hidden, EvictionConfig(policy, 1))
        row[f"{policy}_score_ms"] = round(1e3 * (time.perf_counter() - t), 1)
    for B in BUDGETS:
        for policy in ("h2o", "snapkv"):
            kept, _ = evict(cache, scores[policy], EvictionConfig(policy, B))
            row[f"{policy}@{B}"] = decode(Prefill(logits, kept, len(ids), len(ids)))
        n = blocks_within_budget(len(segments.prefix), [len(b) for b in segments.blocks],
                                 len(builder.question_ids(question, 1)), B)
        sub = builder.segments(question, [(h.title, h.text) for h in hits[:n]])
        prefill = cached_prefill(generator, sub, base.layout, states.prefix(), states.blocks([h.id for h in hits[:n]]),
                                 reserve=sampling.max_new_tokens)
        row[f"retrieve@{B}"] = decode(prefill)
        row[f"retrieve_blocks@{B}"] = n
    row["full"] = decode(Prefill(logits, cache, len(ids), len(ids)))  # last: decoding extends `cache`
    return row


def _f1(rows: list[dict], get) -> np.ndarray:
    from eval.qa_metrics import f1_score

    return np.array([f1_score(_clean(get(r)), r["answers"]) for r in rows])


def _fmt(x: np.ndarray) -> str:
    m, lo, hi = (100 * v for v in _ci(x))
    return f"{m:.1f} [{lo:.1f}, {hi:.1f}]"


def report(out: Path) -> str:
    """Markdown rows of the three experiments (and ``evict.png``)."""
    from eval.qa_metrics import answer_recall

    lines = []
    rows = _rows(out / "fusion.jsonl")
    for k in (3, 5):
        for f in FUSIONS if rows else ():
            key = f"{f}@{k}"
            lat = np.median([r[key]["ttft_ms"] + r[key]["decode_ms"] for r in rows])
            ttft = np.median([r[key]["ttft_ms"] for r in rows])
            lines.append(f"| 18.1 | `--fusion {f}` | k = {k}, cached | F1 {_fmt(_f1(rows, lambda r: r[key]['answer']))} "
                         f"| {lat:.0f} ms (TTFT {ttft:.0f}) | {len(rows)} q |")
    rows = _rows(out / "select.jsonl")
    for key in (["all@10"] + [f"select{m}@10" for m in SELECT_M]) if rows else ():
        ttft = np.median([r[key]["ttft_ms"] for r in rows])
        if key == "all@10":
            setting, rec = "all 10 of k = 10", ""
        else:
            m = int(key[6:-3])
            chosen = np.array([answer_recall(r[key]["used"], r["answers"]) for r in rows])
            top = np.array([answer_recall(r["passages"][:m], r["answers"]) for r in rows])
            setting = f"m = {m} of k = 10"
            rec = f"; recall of the m blocks {_fmt(chosen)} vs retriever top-{m} {_fmt(top)}"
        opt = "`--kv-cache`" if key == "all@10" else f"`--select-blocks {setting.split()[2]}`"
        lines.append(f"| 18.4 | {opt} | {setting} | F1 {_fmt(_f1(rows, lambda r: r[key]['answer']))}{rec} "
                     f"| TTFT {ttft:.0f} ms | {len(rows)} q |")
    rows = _rows(out / "evict.jsonl")
    if rows:
        T = np.median([r["T"] for r in rows])
        lines.append(f"| 18.5 | full prefill, no eviction | k = 5 (median T = {T:.0f} tokens) | "
                     f"F1 {_fmt(_f1(rows, lambda r: r['full']))} | prefill {np.median([r['full_prefill_ms'] for r in rows]):.0f} ms | {len(rows)} q |")
        for B in BUDGETS:
            for method in ("retrieve", "h2o", "snapkv"):
                name = {"retrieve": "top blocks that fit, cached", "h2o": "`--evict h2o`", "snapkv": "`--evict snapkv`"}[method]
                extra = (f" (mean {np.mean([r[f'retrieve_blocks@{B}'] for r in rows]):.1f} blocks)" if method == "retrieve" else "")
                cost = (f"scores {np.median([r[f'{method}_score_ms'] for r in rows]):.0f} ms + full prefill"
                        if method != "retrieve" else "no full prefill")
                lines.append(f"| 18.5 | {name} | budget {B} tokens{extra} | "
                             f"F1 {_fmt(_f1(rows, lambda r: r[f'{method}@{B}']))} | {cost} | {len(rows)} q |")
        _plot(rows, out / "evict.png", T)
    return "\n".join(lines)


def _plot(rows: list[dict], path: Path, T: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, label in (("retrieve", "retrieval: top blocks that fit (cached)"), ("h2o", "H2O eviction"),
                          ("snapkv", "SnapKV eviction")):
        stats = [[100 * v for v in _ci(_f1(rows, lambda r: r[f"{method}@{B}"]))] for B in BUDGETS]
        m = np.array([s[0] for s in stats])
        ax.errorbar(BUDGETS, m, yerr=[m - np.array([s[1] for s in stats]), np.array([s[2] for s in stats]) - m],
                    marker="o", capsize=3, label=label)
    full = 100 * _f1(rows, lambda r: r["full"]).mean()
    ax.axhline(full, color="grey", linestyle="--", label=f"full prefill, no eviction (T ≈ {T:.0f})")
    ax.set_xlabel("KV budget (prompt tokens kept per head)")
    ax.set_ylabel("SQuAD F1 (%)")
    ax.set_title(f"SmolLM2-135M, SQuAD held-out, k = 5, n = {len(rows)}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=["fusion", "select", "evict", "report"])
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("build/lecture"))
    parser.add_argument("--threads", type=int, default=2)
    a = parser.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    runs = {"fusion": (fusion_answers, 5), "select": (select_answers, SELECT_K), "evict": (evict_answers, EVICT_K)}
    if a.experiment == "report":
        print(report(a.out))
        return
    fn, depth = runs[a.experiment]
    _run(a.experiment, a.out, a.questions, a.threads, depth, fn)


if __name__ == "__main__":
    main()
