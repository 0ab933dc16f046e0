"""What every trainer returns: :class:`TrainResult` (retriever, FiD reader, generator, query encoder).

The history has one row per logged step, ``{"step": s, "loss": ...}``, with dev metrics in the
rows where they were measured (``"ndcg@10"`` for retrievers, ``"em"``/``"f1"`` for readers and
generators); :attr:`TrainResult.losses` and :meth:`TrainResult.metric_history` are views of it.

Example:
    >>> r = TrainResult(steps=2, seconds=1.5, history=({"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0, "ndcg@10": 0.5}),
    ...                 dev_metric="ndcg@10", best_dev=0.5)
    >>> r.losses, r.dev_history, r.best_dev_ndcg10
    ([(1, 2.0), (2, 1.0)], [(2, 0.5)], 0.5)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TrainResult:
    """A finished training run.

    Attributes:
        steps: optimisation steps taken.
        seconds: wall time of the training loop.
        history: logged rows, in step order.
        out: the trained model's folder (``None`` until the caller saves it).
        dev_metric: the history key that selects the best checkpoint, when one does.
        best_dev: that metric's best value.
        rerank_weight: a reranker's interpolation weight α chosen on dev (``rag.rerank_interpolation``).
    """

    steps: int
    seconds: float
    history: tuple[dict, ...] = ()
    out: Path | None = None
    dev_metric: str | None = None
    best_dev: float | None = None
    rerank_weight: float | None = None

    @property
    def losses(self) -> list[tuple[int, float]]:
        """``(step, training loss)`` of every row that has one."""
        return [(r["step"], r["loss"]) for r in self.history if "loss" in r]

    def metric_history(self, name: str) -> list[tuple[int, float]]:
        """``(step, value)`` of every row where dev metric ``name`` was measured."""
        return [(r["step"], r[name]) for r in self.history if name in r]

    @property
    def dev_history(self) -> list[tuple[int, float]]:
        """:meth:`metric_history` of :attr:`dev_metric` (empty without one)."""
        return self.metric_history(self.dev_metric) if self.dev_metric else []

    @property
    def best_dev_ndcg10(self) -> float | None:
        """The best dev nDCG@10 of a retriever run (``None`` for other runs or without a dev set)."""
        return self.best_dev if self.dev_metric == "ndcg@10" else None
