"""Training: the dense retriever (DPR-style supervised, Contriever-style unsupervised), a distilled
query encoder, and the pieces the generator trainers share.

Modules: :mod:`~rag.training.data` (training pairs and their validation),
:mod:`~rag.training.negatives` (hard negatives mined from an index),
:mod:`~rag.training.cropping` (independent random cropping), :mod:`~rag.training.dev_eval`
(nDCG@10 on a dev split during training), :mod:`~rag.training.trainer` (InfoNCE through the
sentence-transformers trainer), :mod:`~rag.training.recipes` (the supervised and unsupervised
runs end to end), :mod:`~rag.training.distill` (a fewer-layer query encoder distilled from an
index's encoder), :mod:`~rag.training.reranker` (a cross-encoder reranker with hard negatives from an
index's first stage), :mod:`~rag.training.rerank_weight` (its interpolation weight α chosen on the
dev split), :mod:`~rag.training.qa_jsonl` (QA training files for the generator trainers),
:mod:`~rag.training.step_loop` (the optimisation loop of the FiD and decoder trainers) and
:mod:`~rag.training.result` (the ``TrainResult`` every trainer returns).
Importing this package loads nothing.
"""
