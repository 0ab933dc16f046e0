"""Run a QA evaluation: answer a QA set with the ``rag`` pipeline (or read predictions), judge, report.

Answers come from :func:`rag.pipeline.answer_questions`, the batch entry point that ``rag ask
--questions`` and the service also use (models loaded once, each sentence encoded once); every
retrieved passage is kept for answer recall, and the answer text is cleaned of ``[n]`` markers
before scoring (a ``no_answer`` answer scores as the empty string). Latency is wall-clock
milliseconds per question, retrieval included. :func:`run_qa_eval` is the body of ``rag eval qa``:
it composes this with :mod:`eval.qa_eval`, a judge and :mod:`eval.report`, and also writes
``judge.jsonl`` and ``labels.jsonl`` so ``rag eval ppi`` reproduces the estimates.

Gold-derived correctness follows the answer's kind (:class:`~eval.qa_choices.Correctness`
``auto``): whole quoted sentences are right when a SQuAD-normalised gold answer occurs in them
("contains"); short generated answers when their token F1 reaches 0.5. Token F1 against a short
gold span marks almost every correct sentence wrong (0.07 vs 0.76 "contains" on SQuAD dev,
docs/benchmarks.md), so asking for it on extractive answers gets a note.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from eval.qa_choices import Correctness, JudgeName
from eval.qa_data import Prediction, QAItem
from eval.qa_eval import clean_answer
from indexes.errors import InputError
from rag.pipeline import AnswerKind, AskConfig


@dataclass(frozen=True)
class QARunConfig:
    """Settings of ``rag eval qa``.

    Attributes:
        dataset: QA set (SQuAD JSON or JSONL ``{id, question, answers}``).
        report: output directory.
        predictions: answers already computed (JSONL); exclusive with ``index``.
        index: index to answer from with the pipeline; exclusive with ``predictions``.
        generator: causal LM for generated answers and the ``llm`` judge; ``None``: extractive.
        ask: retrieval and extraction settings of the pipeline (``k`` is also the recall depth).
        labels: human labels ``{id, label}``; ``None``: gold-derived labels of a random subset.
        gold_labels: size of that subset; 300 is a realistic labelling budget.
        judge: the automatic judge.
        correct: the gold-derived correctness rule.
        limit: evaluate only the first ``limit`` questions.
        alpha: error level of every interval.
        seed: seed of the label subset and of subsampling.
    """

    dataset: Path
    report: Path
    predictions: Path | None = None
    index: Path | None = None
    generator: str | None = None
    ask: AskConfig = field(default_factory=AskConfig)
    labels: Path | None = None
    gold_labels: int = 300
    judge: JudgeName = JudgeName.EMBEDDING
    correct: Correctness = Correctness.AUTO
    limit: int | None = None
    alpha: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.predictions is None) == (self.index is None):
            raise InputError("give exactly one of --predictions FILE (answers already computed) or --index DIR "
                             "(run the pipeline)")
        if self.judge == JudgeName.LLM and self.generator is None:
            raise InputError("--judge llm needs --generator MODEL")
        if not 0.0 < self.alpha < 1.0:
            raise InputError(f"--alpha must be in (0, 1), e.g. 0.1 for 90% intervals; got {self.alpha}")


def answer_items(items: Iterable[QAItem], index, generator=None, config: AskConfig = AskConfig()) -> Iterator[Prediction]:
    """One :class:`Prediction` per item, in order, from :func:`rag.pipeline.answer_questions`.

    Args:
        items: the questions.
        index: an open :class:`rag.index.Index` (:func:`rag.pipeline.open_batch_index` shares the
            question vectors between retrieval and extraction).
        generator: a loaded generator, or ``None`` for extractive answers.
        config: retrieval and extraction settings.
    """
    from rag.pipeline import Question, answer_questions

    for r in answer_questions([Question(i.id, i.question) for i in items], index, generator, config):
        text = "" if r.answer.kind == AnswerKind.NO_ANSWER else clean_answer(r.answer.answer)
        yield Prediction(r.id, text, tuple(h.text for h in r.hits), r.latency_ms, AnswerKind(r.answer.kind).value)


def pipeline_record(config: QARunConfig) -> dict:
    """What produced the answers, as ``report.json``'s ``pipeline``: the predictions file, or the
    index, generator and every setting of the generation path (fusion, block selection, eviction).

    Example:
        >>> pipeline_record(QARunConfig(dataset=Path("d.jsonl"), report=Path("r"), predictions=Path("p.jsonl")))
        {'predictions': 'p.jsonl'}
    """
    if config.predictions is not None:
        return {"predictions": str(config.predictions)}
    a = config.ask
    return {"index": str(config.index), "generator": config.generator, "mode": a.mode, "k": a.k,
            "kv_cache": a.kv_cache, "positions": a.layout.positions, "fusion": asdict(a.fusion),
            "select_blocks": None if a.select is None else asdict(a.select),
            "evict": None if a.eviction is None else asdict(a.eviction), "max_new_tokens": a.sampling.max_new_tokens}


def resolve_correctness(requested: Correctness, predictions: dict[str, Prediction], golds: dict[str, tuple[str, ...]],
                        note: Callable[[str], None] = lambda _: None) -> str:
    """The rule to apply (``"f1"`` or ``"contains"``) for ``requested`` and the answers' kinds.

    ``auto`` reads each prediction's ``kind``: all extractive (or no-answer) → contains, all
    generated → f1. Without kinds (a predictions file from elsewhere) it is f1, with a note when
    the answers are much longer than the gold answers, where F1 cannot reach 0.5.

    Raises:
        InputError: ``auto`` over predictions of both kinds.
    """
    kinds = {p.kind for p in predictions.values()}
    extractive = {AnswerKind.EXTRACTIVE.value, AnswerKind.NO_ANSWER.value}
    long_answers = _long_answers(predictions, golds)
    if requested == Correctness.AUTO:
        if kinds <= extractive:
            return Correctness.CONTAINS.value
        if kinds == {AnswerKind.GENERATED.value}:
            return Correctness.F1.value
        if kinds == {None}:
            if long_answers:
                note(f"{long_answers}; the default --correct f1 (token F1 >= 0.5) marks most such answers wrong: "
                     "pass --correct contains for sentence answers")
            return Correctness.F1.value
        raise InputError(f"predictions mix answer kinds ({', '.join(sorted(str(k) for k in kinds))}): pass "
                         "--correct contains (sentence answers) or --correct f1 (short answers)")
    if requested == Correctness.F1 and (kinds & extractive or long_answers):
        note(f"--correct f1 on {'extractive sentence answers' if kinds & extractive else long_answers}: token "
             "F1 >= 0.5 against short gold spans marks most correct sentences wrong; --correct contains fits them")
    return requested.value


def _long_answers(predictions: dict[str, Prediction], golds: dict[str, tuple[str, ...]]) -> str | None:
    """A description when the median answer is over 3x (and 10 tokens) longer than the median gold answer."""
    answer_len = statistics.median([len(p.answer.split()) for p in predictions.values()] or [0])
    gold_len = statistics.median([len(g.split()) for i in predictions if golds.get(i) for g in golds[i]] or [0])
    if answer_len > max(10, 3 * gold_len):
        return f"answers are {answer_len:g} words long on median, gold answers {gold_len:g}"
    return None


def _make_judge(name: JudgeName, generator, encoder=None):
    from eval.judges import EmbeddingJudge, F1ThresholdJudge, LLMJudge

    if name == JudgeName.F1:
        return F1ThresholdJudge()
    if name == JudgeName.LLM:
        return LLMJudge(generator.complete, name="llm")
    if encoder is None:
        from rag.encoder import Encoder

        encoder = Encoder()
    reference = "gold" if name == JudgeName.EMBEDDING_GOLD else "question"
    return EmbeddingJudge(encoder.encode_passages, reference=reference, name=f"embedding ({reference})")


def run_qa_eval(config: QARunConfig, note: Callable[[str], None] = lambda _: None) -> dict[str, Path]:
    """``rag eval qa``: predictions (given or from the pipeline) → metrics, judge, labels → report files.

    Args:
        config: what to evaluate and how.
        note: receives one-line remarks for the user (e.g. a correctness rule that does not fit).
    """
    from eval.judges import JudgeInput
    from eval.labels import read_rows, values_by_id
    from eval.qa_data import load_predictions, load_qa
    from eval.qa_eval import QAEvalConfig, evaluate, gold_labels as derive_labels, score_items
    from eval.report import write_report

    c = config
    items = load_qa(c.dataset)[: c.limit]
    human = values_by_id(read_rows(c.labels), "label", c.labels) if c.labels is not None else None
    known = {i.id for i in items}
    missing = [i for i in human or () if i not in known]
    if missing:  # checked before any model is loaded or question answered
        raise InputError(f"{c.labels}: {len(missing)} labelled id(s) are not in {c.dataset}"
                         f"{' (first ' + str(c.limit) + ' questions)' if c.limit else ''} (first: {missing[0]!r})")
    _check_label_budget(c, len(items), None if human is None else len(human))
    gen, encoder = None, None
    if c.generator is not None:
        from rag.generation.generator import Generator, GeneratorConfig

        gen = Generator.load(GeneratorConfig(c.generator))
    report = Path(c.report)
    report.mkdir(parents=True, exist_ok=True)
    if c.predictions is not None:
        preds = load_predictions(c.predictions)
        preds = {i: p for i, p in preds.items() if i in known} if c.limit else preds
    else:
        from rag.pipeline import open_batch_index, sentence_encoder

        index = open_batch_index(c.index)
        encoder = sentence_encoder(index) if index.manifest.dense else None
        preds = {p.id: p for p in _progress(answer_items(items, index, gen, c.ask), len(items))}
        _write_jsonl(report / "predictions.jsonl", ({"id": p.id, "answer": p.answer, "kind": p.kind,
                                                     "passages": list(p.passages), "latency_ms": p.latency_ms}
                                                    for p in preds.values()))
    correct = resolve_correctness(c.correct, preds, {i.id: i.answers for i in items}, note)
    qa_config = QAEvalConfig(alpha=c.alpha, k=c.ask.k, correctness=correct, gold_labels=c.gold_labels, seed=c.seed)
    rows = score_items(items, preds, qa_config)
    the_judge = _make_judge(c.judge, gen, encoder)
    inputs = [JudgeInput(r.id, r.question, r.answer, preds[r.id].passages, () if not the_judge.uses_gold else r.golds)
              for r in rows]
    scores = dict(zip([r.id for r in rows], the_judge.score(inputs).tolist()))
    if human is not None:
        source = str(c.labels)
    else:
        human, source = derive_labels(rows, c.gold_labels, c.seed), f"gold-derived ({correct}), random {c.gold_labels}"
    result = evaluate(rows, scores, human, the_judge.name, the_judge.uses_gold, qa_config, source)
    result["pipeline"] = pipeline_record(c)
    _write_jsonl(report / "judge.jsonl", ({"id": i, "score": s} for i, s in scores.items()))
    _write_jsonl(report / "labels.jsonl", ({"id": i, "label": v} for i, v in human.items()))
    _write_jsonl(report / "items.jsonl", (asdict(r) | {"judge": scores[r.id]} for r in rows))
    return write_report(report, result, title=f"QA evaluation: {Path(c.dataset).name}")


def _check_label_budget(c: QARunConfig, n_items: int, n_human: int | None) -> None:
    """Refuse, before any question is answered, a run whose report cannot be computed: fewer than
    :data:`eval.labels.MIN_LABELS` labelled items, or no unlabelled item left for the judge.

    Raises:
        InputError: naming the counts and the options that change them.
    """
    from eval.labels import MIN_LABELS

    n_labels = n_human if n_human is not None else min(c.gold_labels, n_items)
    source = f"{c.labels} holds" if n_human is not None else f"--gold-labels {c.gold_labels} gives"
    if n_labels < MIN_LABELS:
        raise InputError(f"{c.dataset}: {n_items} question(s){' (--limit)' if c.limit else ''} and {source} {n_labels} "
                         f"label(s), but an interval needs at least {MIN_LABELS}: evaluate more questions")
    if n_labels >= n_items:
        raise InputError(f"{c.dataset}: {source} a label for all {n_items} question(s), leaving none for the judge to "
                         "add (prediction-powered inference needs unlabelled items): use fewer labels than questions "
                         f"(e.g. --gold-labels {max(MIN_LABELS, n_items // 4)} with at least {MIN_LABELS + 1} questions)")


def _write_jsonl(path: Path, rows) -> None:
    from indexes.atomic import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _progress(it, total: int):
    from tqdm import tqdm

    return tqdm(it, total=total, desc="answering", unit="q", mininterval=5, file=sys.stderr)
