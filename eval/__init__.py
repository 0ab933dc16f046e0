"""Measurement: retrieval metrics, QA metrics, judges, PPI estimators and reports.

Modules:
    retrieval: queries, qrels and runs in standard formats; metrics through pytrec_eval.
    retrieval_report: a retrieval evaluation as JSON, Markdown and HTML.
    qa_data: QA datasets and prediction files; qa_metrics: SQuAD exact match, token F1, answer recall.
    qa_run: answer a QA set with the ``rag`` pipeline (or read predictions), judge, report.
    qa_eval: per-item metrics, judge scores and human labels → the report's numbers.
    qa_choices: the choices of a QA evaluation (judge, correctness rule) as enums.
    judges: cheap per-item scores that stand in for a human verdict.
    labels: human labels and judge scores on disk.
    ppi: prediction-powered inference for a mean (classical, PPI, PPI++).
    bayes_ppi: Bayesian PPI for binary labels and a discrete judge.
    estimators: one entry point over every mean estimator; stratified: per-stratum estimates.
    report: a QA evaluation as JSON, Markdown, PNG and HTML; plots: its figures.

Sub-package ``benchmarks``: the scripts behind ``docs/benchmarks.md``.
"""
