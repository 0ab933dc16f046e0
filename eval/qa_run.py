"""Run a QA evaluation: answer a QA set with the ``rag`` pipeline (or read predictions), judge, report.

Extractive mode (no generator) composes the pipeline's public pieces: ``retrieve`` the top-k
passages (kept for answer recall), then ``extractive_answer`` quotes the sentences closest to the
question; the answer text is cleaned of the extractive label and ``[n]`` markers before scoring.
With a generator, ``ask`` answers and every retrieved passage is among its citations.
Latency is wall-clock milliseconds per question, retrieval included. :func:`run_qa_eval` is the
body of ``rag eval qa``: it composes this with :mod:`eval.qa_eval`, a judge and :mod:`eval.report`,
and also writes ``judge.jsonl`` and ``labels.jsonl`` so ``rag eval ppi`` reproduces the estimates.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from eval.qa_data import Prediction, QAItem
from eval.qa_eval import clean_answer
from indexes.errors import InputError


class CachingEncoder:
    """An encoder that remembers every text it encoded: the same vectors, each computed once.

    Over a QA set, the same passages' sentences are encoded for many questions (SQuAD asks ~5
    questions per paragraph); wrapping the encoder makes extractive answering encode each
    sentence once, and :meth:`warm_queries` encodes all questions in full batches up front.
    Everything else (``dim``, ``spec``, …) is the wrapped encoder's.

    Args:
        encoder: anything with ``encode_queries`` and ``encode_passages`` (an :class:`rag.encoder.Encoder`).
    """

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def __getattr__(self, name: str):
        return getattr(self.encoder, name)

    def _get(self, kind: str, texts: Sequence[str], encode) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if (kind, t) not in self._cache]
        if missing:
            for text, vector in zip(missing, encode(missing)):
                self._cache[kind, text] = vector
        return np.stack([self._cache[kind, t] for t in texts]) if texts else self.encoder.encode_queries([])

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        return self._get("query", queries, self.encoder.encode_queries)

    def encode_passages(self, passages: Sequence[str], progress: bool = False) -> np.ndarray:
        return self._get("passage", passages, self.encoder.encode_passages)

    def warm_queries(self, queries: Sequence[str]) -> None:
        """Encode ``queries`` now, in the wrapped encoder's batches."""
        self.encode_queries(list(queries))


def answer_items(items: Iterable[QAItem], index, generator=None, config=None, encoder=None) -> Iterator[Prediction]:
    """Yield one :class:`Prediction` per item, in order.

    Args:
        items: the questions.
        index: an open :class:`rag.index.Index`.
        generator: a loaded generator, or ``None`` for extractive answers.
        config: a :class:`rag.pipeline.AskConfig` (default: its defaults).
        encoder: encoder for the extractive sentence ranking (default: the index's), e.g. the
            :class:`CachingEncoder` the index was opened with.
    """
    from rag.pipeline import EXTRACTIVE_LABEL, AskConfig, ask, extractive_answer, retrieve

    config = config or AskConfig()
    if generator is None and encoder is None:
        encoder = index.dense.encoder if index.manifest.dense else _encoder()
    for item in items:
        t0 = time.perf_counter()
        if generator is None:
            hits = retrieve(item.question, index, config)
            text, _ = extractive_answer(item.question, hits, encoder, config.extractive_sentences)
            passages = tuple(h.text for h in hits)
        else:
            answer = ask(item.question, index, generator, config)
            text, passages = answer.answer, tuple(c.text for c in answer.citations)
        latency = 1e3 * (time.perf_counter() - t0)
        yield Prediction(item.id, clean_answer(text, EXTRACTIVE_LABEL), passages, latency)


def _encoder(index_dir: Path | None = None):
    """The index's query encoder (or the default one)."""
    from indexes.manifest import Manifest
    from rag.encoder import Encoder, EncoderConfig

    dense = Manifest.read(Path(index_dir)).dense if index_dir is not None else None
    return Encoder(EncoderConfig.from_spec(dense.encoder) if dense else EncoderConfig())


JUDGES = ("embedding", "embedding-gold", "f1", "llm")
CORRECTNESS = ("f1", "contains")


def _make_judge(name: str, generator, encoder=None):
    from eval.judges import EmbeddingJudge, F1ThresholdJudge, LLMJudge

    if name == "f1":
        return F1ThresholdJudge()
    if name == "llm":
        return LLMJudge(generator.complete, name="llm")
    encoder = encoder or _encoder()
    reference = "gold" if name == "embedding-gold" else "question"
    return EmbeddingJudge(encoder.encode_passages, reference=reference, name=f"embedding ({reference})")


def run_qa_eval(*, dataset: Path, report: Path, predictions: Path | None = None, index: Path | None = None,
                generator: str | None = None, mode: str = "hybrid", k: int = 5, sentences: int = 1,
                labels: Path | None = None, gold_labels: int = 300, judge: str = "embedding", correct: str = "f1",
                limit: int | None = None, alpha: float = 0.1, seed: int = 0) -> dict[str, Path]:
    """``rag eval qa``: predictions (given or from the pipeline) → metrics, judge, labels → report files."""
    from eval.judges import JudgeInput
    from eval.labels import read_rows, values_by_id
    from eval.qa_data import load_predictions, load_qa
    from eval.qa_eval import QAEvalConfig, evaluate, gold_labels as derive_labels, score_items
    from eval.report import write_report

    if (predictions is None) == (index is None):
        raise InputError("give exactly one of --predictions FILE (answers already computed) or --index DIR (run the pipeline)")
    if judge not in JUDGES:
        raise InputError(f"--judge must be one of {', '.join(JUDGES)}; got {judge!r}")
    if correct not in CORRECTNESS:
        raise InputError(f"--correct must be one of {', '.join(CORRECTNESS)}; got {correct!r}")
    if judge == "llm" and generator is None:
        raise InputError("--judge llm needs --generator MODEL")
    items = load_qa(dataset)[:limit]
    human = values_by_id(read_rows(labels), "label", labels) if labels is not None else None
    known = {i.id for i in items}
    missing = [i for i in human or () if i not in known]
    if missing:  # checked before any model is loaded or question answered
        raise InputError(f"{labels}: {len(missing)} labelled id(s) are not in {dataset}"
                         f"{' (first ' + str(limit) + ' questions)' if limit else ''} (first: {missing[0]!r})")
    gen, encoder = None, None
    if generator is not None:
        from rag.generation.generator import Generator, GeneratorConfig

        gen = Generator.load(GeneratorConfig(generator))
    report = Path(report)
    report.mkdir(parents=True, exist_ok=True)
    if predictions is not None:
        preds = load_predictions(predictions)
        preds = {i: p for i, p in preds.items() if i in known} if limit else preds
    else:
        from rag.index import open_index
        from rag.pipeline import AskConfig

        config = AskConfig(k=k, mode=mode, extractive_sentences=sentences)
        encoder = CachingEncoder(_encoder(index))
        encoder.warm_queries([i.question for i in items])
        answers = answer_items(items, open_index(index, encoder=encoder), gen, config, encoder)
        preds = {p.id: p for p in _progress(answers, len(items))}
        _write_jsonl(report / "predictions.jsonl", ({"id": p.id, "answer": p.answer, "passages": list(p.passages),
                                                     "latency_ms": p.latency_ms} for p in preds.values()))
    config = QAEvalConfig(alpha=alpha, k=k, correctness=correct, gold_labels=gold_labels, seed=seed)
    rows = score_items(items, preds, config)
    the_judge = _make_judge(judge, gen, encoder)
    inputs = [JudgeInput(r.id, r.question, r.answer, preds[r.id].passages, () if not the_judge.uses_gold else r.golds)
              for r in rows]
    scores = dict(zip([r.id for r in rows], the_judge.score(inputs).tolist()))
    if human is not None:
        source = str(labels)
    else:
        human, source = derive_labels(rows, gold_labels, seed), f"gold-derived ({correct}), random {gold_labels}"
    result = evaluate(rows, scores, human, the_judge.name, the_judge.uses_gold, config, source)
    _write_jsonl(report / "judge.jsonl", ({"id": i, "score": s} for i, s in scores.items()))
    _write_jsonl(report / "labels.jsonl", ({"id": i, "label": v} for i, v in human.items()))
    _write_jsonl(report / "items.jsonl", (asdict(r) | {"judge": scores[r.id]} for r in rows))
    return write_report(report, result, title=f"QA evaluation: {Path(dataset).name}")


def _write_jsonl(path: Path, rows) -> None:
    from indexes.atomic import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _progress(it, total: int):
    from tqdm import tqdm

    return tqdm(it, total=total, desc="answering", unit="q", mininterval=5, file=sys.stderr)
