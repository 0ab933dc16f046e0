"""Contrastive training of the dense retriever: DPR-style supervised, Contriever-style unsupervised.

Modules: :mod:`~rag.training.data` (training pairs and their validation),
:mod:`~rag.training.negatives` (hard negatives mined from an index),
:mod:`~rag.training.cropping` (independent random cropping), :mod:`~rag.training.dev_eval`
(nDCG@10 on a dev split during training), :mod:`~rag.training.trainer` (InfoNCE through the
sentence-transformers trainer) and :mod:`~rag.training.recipes` (the supervised and unsupervised
runs end to end). Importing this package loads nothing.
"""
