"""Answer quality of SmolLM2-135M-Instruct on SQuAD v1.1 dev: full prefill vs cached passage KV.

Setup: all 2,067 SQuAD dev paragraphs are the corpus (``rag index``, hybrid BM25 + MiniLM
retrieval); the questions are a fixed seeded sample of *held-out* articles
(:mod:`eval.benchmarks.squad_split`). For each question and k ∈ {3, 5} the ``rag ask`` pipeline
(:func:`rag.pipeline.ask`) answers it four ways over the same retrieved passages:

- ``extractive``: the three sentences closest to the question (no generator);
- ``full``: SmolLM2, one causal prefill of ``prefix ‖ passages ‖ question``;
- ``cached-rerotate``: SmolLM2 over stored passage states, Block-Attention positions;
- ``cached-composite``: the same states with TurboRAG's composite positions.

Generation is greedy, at most 24 new tokens, cut at the first newline, with a SQuAD-style prompt
asking for a short answer (:data:`SQUAD_TEMPLATE`) in SmolLM2's chat template. Scores: SQuAD EM and
token F1, and *contained* (the normalised gold answer occurs in the normalised answer), means with
90% intervals (CLT, exact binomial for 0/1 scores near the boundary; paired gaps CLT); citation markers ``[n]`` are removed before scoring. Answer recall@k of the
retrieved passages is the ceiling. The passage states the sample needs are encoded once and stored in
the index's KV store (:class:`GrowingStates`; the same store ``rag cache build`` writes).

Run (resumable: answers are appended to ``answers-<label>.jsonl`` as they are produced)::

    python -m eval.benchmarks.squad_corpus ../shared/data/squad-dev/dev-v1.1.json build/squad/corpus.jsonl
    rag index build/squad/corpus.jsonl --out build/squad/index
    nice -n 5 python -m eval.benchmarks.smollm2_squad --index build/squad/index --generator smollm2 \\
        --label base --questions 200 --out build/smollm2-squad
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from eval.benchmarks.squad_split import SQUAD_DEV, held_out_sample

SYSTEM = ("Answer the question with a short phrase copied from the documents: a name, a number, a date or "
          "a few words. Do not write a full sentence.")
CITATION = re.compile(r"\[\d+\]")
KS = (3, 5)
TUNED = "block-lora"  # the label of the block-attention fine-tuned model's table
ROWS = ("extractive", "full", "cached-rerotate", "cached-composite")


def squad_template():
    from rag.generation.prompt import PromptTemplate

    return PromptTemplate(system=SYSTEM, passage="Document: {title}\n{text}\n\n",
                          question="Question: {question}\nShort answer:", max_passage_tokens=512)


def _configs(k: int):
    from rag.generation.kv_blocks import BlockLayout
    from rag.generation.passage_cache import CacheConfig
    from rag.generation.sampling import SamplingConfig
    from rag.pipeline import AskConfig

    base = AskConfig(k=k, mode="hybrid", cache=CacheConfig(template=squad_template()),
                     sampling=SamplingConfig(max_new_tokens=24, temperature=0.0, stop=("\n",)))
    return {"extractive": base, "full": base,
            "cached-rerotate": replace(base, kv_cache=True, layout=BlockLayout("rerotate")),
            "cached-composite": replace(base, kv_cache=True, layout=BlockLayout("composite"))}


class GrowingStates:
    """The index's KV store, filled as questions need passages (the store ``rag cache build`` writes).

    Every passage a question retrieves is encoded once (after the shared prefix, as
    :func:`rag.generation.cache_build.build_passage_cache` does) and appended to the store; until
    its shard is written, the same fp16 states are served from memory. Only the passages the sample
    retrieves are encoded, not the whole corpus.
    """

    def __init__(self, index_path: Path, generator, cache_config, persist: bool = True) -> None:
        import torch

        from indexes.kv_store import KVStore, KVStoreWriter
        from rag.generation.kv_blocks import KVBlock, Workspace, encode_prefix
        from rag.generation.passage_cache import record_in_manifest, store_dir, store_spec
        from rag.generation.prompt import PromptBuilder

        self.index_path, self.generator, self.config = index_path, generator, cache_config
        self._KVBlock, self._record = KVBlock, record_in_manifest
        spec = store_spec(generator, cache_config)
        self.directory = store_dir(index_path, spec.key)
        self.builder = PromptBuilder(generator, cache_config.template)
        prefix = encode_prefix(generator, self.builder.prefix_ids)
        self.writer = self.store = None
        if persist:  # one writer per store: shards running side by side keep their states in memory
            self.writer = KVStoreWriter(self.directory, spec, shard_size=cache_config.shard_size)
            if not self.writer.has_prefix():
                self.writer.put_prefix(prefix.keys, prefix.values)
            self.store = KVStore(self.directory, self.writer.spec)
            self._prefix = KVBlock(*self.store.prefix())
        else:
            dtype = getattr(torch, cache_config.dtype)  # as stored
            self._prefix = KVBlock(prefix.keys.to(dtype), prefix.values.to(dtype))
        self._new: dict[str, object] = {}
        self.workspace = Workspace()
        self.encoded, self.tokens, self.seconds = 0, 0, 0.0

    def prefix(self):
        return self._prefix

    def ensure(self, hits) -> None:
        """Encode and store the passages of ``hits`` that are not stored yet."""
        import torch

        from rag.generation.kv_blocks import encode_block

        for h in hits:
            if h.id in self._new or (self.writer is not None and h.id in self.writer.done):
                continue
            t = time.perf_counter()
            ids = self.builder.block_ids(h.title, h.text)
            block = encode_block(self.generator, self._prefix, ids, self.config.see_prefix)
            self.seconds += time.perf_counter() - t
            self.encoded, self.tokens = self.encoded + 1, self.tokens + len(ids)
            if self.writer is not None:
                self.writer.add(h.id, block.keys, block.values)
            dtype = getattr(torch, self.config.dtype)
            self._new[h.id] = self._KVBlock(block.keys.to(dtype), block.values.to(dtype))

    def blocks(self, passage_ids):
        out = []
        for pid in passage_ids:
            kv = self._new.get(pid) or (self._KVBlock(*self.store.get(pid)) if self.store and pid in self.store else None)
            out.append(kv)
        return out

    def close(self) -> dict:
        if self.writer is None:
            return {"encoded": self.encoded, "tokens": self.tokens, "seconds": round(self.seconds, 2)}
        self.writer.flush()
        self._record(self.index_path, self.writer.spec, self.directory)
        return {"encoded": self.encoded, "tokens": self.tokens, "seconds": round(self.seconds, 2),
                "bytes_per_token": self.writer.spec.bytes_per_token, "stored_passages": self.writer.spec.passages}


def answer_all(index_path: Path, generator_name: str, label: str, n: int, out: Path, threads: int,
               ways: tuple[str, ...] = (), shard: tuple[int, int] = (0, 1)) -> None:
    """Answer the sample every way, or only ``ways`` (e.g. ``cached-rerotate@5``); resumes after the last question."""
    import torch

    from rag.index import open_index
    from rag.pipeline import ask, retrieve

    torch.set_num_threads(threads)
    questions = held_out_sample(SQUAD_DEV, n)[shard[0] :: shard[1]]  # shard i of n: every n-th question
    path = out / f"answers-{label}.jsonl"
    done = {json.loads(line)["id"] for line in path.open(encoding="utf-8")} if path.exists() else set()
    index = open_index(index_path)
    generator = load_generator(generator_name)
    configs = {k: _configs(k) for k in KS}
    states = GrowingStates(index_path, generator, configs[KS[0]]["full"].cache, persist=shard[1] == 1)
    try:
        with path.open("a", encoding="utf-8") as fh:
            for i, q in enumerate(questions):
                if q.id in done:
                    continue
                states.ensure(retrieve(q.question, index, configs[max(KS)]["full"]))
                row = {"id": q.id, "question": q.question, "answers": list(q.answers), "title": q.stratum}
                for k in KS:
                    for name, cfg in configs[k].items():
                        if ways and f"{name}@{k}" not in ways:
                            continue
                        a = ask(q.question, index, None if name == "extractive" else generator, cfg,
                                states=states if cfg.kv_cache else None)
                        row[f"{name}@{k}"] = {"answer": a.answer, "ttft_ms": round(a.timings.get("ttft_ms", a.timings.get("extract_ms", float("nan"))), 1),
                                              "passages": [c.text for c in a.citations] if name != "extractive" else None}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                fh.flush()
                last = next(v for v in reversed(row.values()) if isinstance(v, dict))
                print(f"[{i + 1}/{len(questions)}] {q.question[:60]!r} -> {last['answer'][:60]!r}", flush=True)
    finally:
        build = states.close()
        with (out / f"cache-{label}.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(build) + "\n")


def load_generator(name: str):
    """The project's generator loader (``--generator`` names such as ``smollm2``, a folder or a GGUF)."""
    from rag.generation.generator import Generator, GeneratorConfig

    return Generator.load(GeneratorConfig(name))


def _clean(answer: str) -> str:
    from rag.pipeline import EXTRACTIVE_LABEL

    return CITATION.sub(" ", answer.removeprefix(EXTRACTIVE_LABEL)).strip()


def _ci(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and 90% CLT interval (``eval.ppi.classical_mean_ci``) of per-question scores."""
    from eval.ppi import classical_mean_ci

    lo, hi = classical_mean_ci(x, alpha=0.1) if len(x) > 1 else (float("nan"), float("nan"))
    return float(x.mean()), lo, hi


def paired_ci(d: np.ndarray) -> tuple[float, float, float]:
    """Mean and 90% CLT interval of paired differences ``d`` (n,) (never a binomial interval); also used by HyDE."""
    from scipy.stats import norm

    half = norm.ppf(0.95) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def score(rows: list[dict]) -> dict:
    """Per (way, k): EM, F1, contained (means and 90% intervals, in %), mean TTFT; recall@k; paired gaps."""
    from eval.qa_metrics import answer_recall, exact_match, f1_score, normalize_answer

    out: dict = {"n": len(rows), "recall": {}, "ways": {}, "gaps": {}}
    per: dict[str, dict[str, np.ndarray]] = {}
    for k in KS:
        rec = np.array([answer_recall(r[f"full@{k}"]["passages"], r["answers"], k) for r in rows])
        out["recall"][str(k)] = [100 * v for v in _ci(rec)]
        for way in ROWS:
            key = f"{way}@{k}"
            preds = [_clean(r[key]["answer"]) for r in rows]
            em = np.array([exact_match(p, r["answers"]) for p, r in zip(preds, rows)])
            f1 = np.array([f1_score(p, r["answers"]) for p, r in zip(preds, rows)])
            cont = np.array([float(any(normalize_answer(g) and f" {normalize_answer(g)} " in f" {normalize_answer(p)} "
                                       for g in r["answers"])) for p, r in zip(preds, rows)])
            per[key] = {"em": em, "f1": f1, "contained": cont}
            out["ways"][key] = {m: [100 * v for v in _ci(x)] for m, x in per[key].items()}
            out["ways"][key]["ttft_ms"] = float(np.median([r[key]["ttft_ms"] for r in rows]))
        for way in ("cached-rerotate", "cached-composite"):
            out["gaps"][f"{way}@{k}"] = {m: [100 * v for v in paired_ci(per[f"{way}@{k}"][m] - per[f"full@{k}"][m])]
                                         for m in ("em", "f1", "contained")}
    return out


def target(base_rows: list[dict], tuned_rows: list[dict]) -> dict:
    """The fine-tuning target, paired over the questions both models answered (F1 points, 90% intervals).

    ``tuned cached − base full`` must be ≥ 0 and ``tuned cached − tuned full`` ≥ −1.5 (Block-Attention's
    parity after fine-tuning), per k and cached layout.
    """
    from eval.qa_metrics import f1_score

    base = {r["id"]: r for r in base_rows}
    rows = [(base[r["id"]], r) for r in tuned_rows if r["id"] in base]

    def f1(r: dict, key: str) -> float:
        return f1_score(_clean(r[key]["answer"]), r["answers"])

    out: dict = {"n": len(rows)}
    for k in KS:
        for way in ("cached-rerotate", "cached-composite"):
            tuned = np.array([f1(t, f"{way}@{k}") for _, t in rows])
            out[f"{way}@{k}"] = {
                "vs_base_full": [100 * v for v in paired_ci(tuned - np.array([f1(b, f"full@{k}") for b, _ in rows]))],
                "vs_tuned_full": [100 * v for v in paired_ci(tuned - np.array([f1(t, f"full@{k}") for _, t in rows]))]}
    return out


def _fmt(v: list[float]) -> str:
    return f"{v[0]:.1f} [{v[1]:.1f}, {v[2]:.1f}]"


def markdown(results: dict[str, dict], command: str, machine: str, date: str) -> str:
    """The ``smollm2-squad`` section of docs/benchmarks.md (one table per model label)."""
    lines = ["## SmolLM2-135M-Instruct on SQuAD v1.1 dev: generated answers, full prefill vs cached KV", "",
             f"Machine: {machine} (a 2-core CPU VM, no GPU, shared with other jobs). Date: {date}.", "",
             "Corpus: all 2,067 SQuAD v1.1 dev paragraphs, hybrid retrieval (BM25 + all-MiniLM-L6-v2). Questions: a "
             "fixed sample (seed 0) of questions from *held-out* articles (`sha256(title)[0] < 128`; never used for "
             "training). Greedy decoding, ≤ 24 new tokens, cut at the first newline, SmolLM2's chat template, a "
             "prompt asking for a short phrase. EM / F1 / contained: SQuAD-normalised, in %, mean with a 90% CLT "
             "interval; *contained* = the gold answer occurs in the answer. Recall@k = a gold answer occurs in "
             "the k passages (the ceiling). TTFT: median ms per question on the shared machine.", "",
             "```bash", command, "```", ""]
    for label, res in results.items():
        if label.startswith("_"):
            continue
        lines += [f"### Model: `{label}` (n = {res['n']} questions)", "",
                  "| k | way | EM | F1 | contained | TTFT ms |", "|---|---|---|---|---|---|"]
        for k in KS:
            for way in ROWS:
                w = res["ways"][f"{way}@{k}"]
                lines.append(f"| {k} | {way} | {_fmt(w['em'])} | {_fmt(w['f1'])} | {_fmt(w['contained'])} | "
                             f"{w['ttft_ms']:.0f} |")
            lines.append(f"| {k} | *recall@{k} (ceiling)* | | | {_fmt(res['recall'][str(k)])} | |")
        lines += ["", "Gap cached − full (paired, same questions and passages; points, 90% interval):", "",
                  "| k | way | ΔEM | ΔF1 | Δcontained |", "|---|---|---|---|---|"]
        for key, g in res["gaps"].items():
            way, k = key.split("@")
            lines.append(f"| {k} | {way} | {_fmt(g['em'])} | {_fmt(g['f1'])} | {_fmt(g['contained'])} |")
        lines.append("")
    if "target" in results.get("_target", {}):
        t = results["_target"]["target"]
        lines += [f"### Block-attention fine-tuning target (paired over the {t['n']} questions both tables share)", "",
                  "ΔF1 in points, 90% interval. Target: tuned cached − base full ≥ 0, and tuned cached − tuned full ≥ −1.5.",
                  "", "| k | way | tuned cached − base full | tuned cached − tuned full |", "|---|---|---|---|"]
        for key, g in t.items():
            if key != "n":
                way, k = key.split("@")
                lines.append(f"| {k} | {way} | {_fmt(g['vs_base_full'])} | {_fmt(g['vs_tuned_full'])} |")
        lines.append("")
    return "\n".join(lines)


def report(out: Path) -> dict[str, dict]:
    """Score every ``answers-<label>.jsonl`` under ``out``; write ``results.json`` and the docs section."""
    import datetime

    from eval.benchmarks.report import machine, write_section

    results: dict = {}
    tables: dict[str, list[dict]] = {}
    for path in sorted(out.glob("answers-*.jsonl")):
        rows = [json.loads(line) for line in path.open(encoding="utf-8")]
        if rows and all(f"{w}@{k}" in rows[0] for w in ROWS for k in KS):  # a full table, not a --ways run
            tables[path.stem.removeprefix("answers-")] = rows
            results[path.stem.removeprefix("answers-")] = score(rows)
    if "base" in tables and TUNED in tables:
        results["_target"] = {"target": target(tables["base"], tables[TUNED])}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    command = (f"nice -n 5 python -m eval.benchmarks.smollm2_squad --index build/squad/index --generator smollm2 "
               f"--label base --questions 200 --out {out}\n"
               f"nice -n 5 python -m eval.benchmarks.smollm2_finetune --index build/squad/index --generator smollm2 "
               f"--out build/smollm2-lora --steps 60 --batch-size 2 --train-questions 400 --dev-questions 30 "
               f"--eval-every 20 --time-limit 1800   # stopped by the time limit after 41 steps (82 examples)\n"
               f"nice -n 5 python -m eval.benchmarks.smollm2_squad --index build/squad/index "
               f"--generator build/smollm2-lora/adapter --label {TUNED} --questions 200 --out {out}"
               f"   # run here as --shard 0/2 and 1/2 side by side, files concatenated")
    write_section("smollm2-squad", markdown(results, command, machine(), datetime.date.today().isoformat()))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=Path("build/squad/index"))
    parser.add_argument("--generator", default="smollm2", help="model name, folder or GGUF (as rag ask --generator)")
    parser.add_argument("--label", default="base", help="name of this model's table")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("build/smollm2-squad"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report-only", action="store_true", help="score the answers already written")
    parser.add_argument("--shard", default="0/1", help="I/N: answer every N-th question from the I-th (processes "
                        "side by side, each with its own --out; concatenate the files; states stay in memory)")
    parser.add_argument("--ways", nargs="*", default=[], help="only these ways, e.g. cached-rerotate@5 (answers for "
                        "the PPI report; such labels are not scored into the table)")
    a = parser.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.report_only:
        shard = tuple(int(x) for x in a.shard.split("/"))
        answer_all(a.index, a.generator, a.label, a.questions, a.out, a.threads, tuple(a.ways), (shard[0], shard[1]))
        if shard[1] > 1:
            return
    print(json.dumps(report(a.out), indent=2))


if __name__ == "__main__":
    main()
