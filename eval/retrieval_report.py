"""A retrieval evaluation as ``report.json``, ``report.md`` (+ PNG) and a self-contained ``report.html``.

Same style as the QA report (:mod:`eval.report`): every mean comes with a (1 − α) confidence
interval, so two runs can be compared honestly; a histogram of per-query nDCG@10 shows where the
mean comes from, and the worst queries with their relevant documents (and the rank each got) and
top hits show what to look at first.

Intervals respect the metric's range [0, 1]. A per-query metric is bounded and often piled up at
0 or 1 (Recall@100 near 1 on SciFact), where the normal (CLT) interval ``mean ± z·σ̂/√n`` spills
over the bound (``[0.9912, 1.0021]``). So the interval is the percentile bootstrap of the mean
(Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, §13; B = 10,000 seeded
resamples): its ends are means of resampled queries, hence inside [min, max] of the data, with
no normality assumption. When every query has the same value, 0 or 1, resampling has nothing to
vary, and the data are binary: the exact Clopper–Pearson interval is used
(:func:`eval.ppi.classical_mean_ci`), which keeps a width for finite n.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from eval.plots import _figure, _png
from eval.ppi import classical_mean_ci
from indexes.atomic import atomic_write_bytes, atomic_write_text
from rag.wording import counted

BOOTSTRAP_RESAMPLES = 10_000  # Monte Carlo error of a 5% quantile well below the 4th decimal for n ≥ 100


def bootstrap_mean_ci(Y: np.ndarray, alpha: float = 0.1, resamples: int = BOOTSTRAP_RESAMPLES,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap (1 − α) interval of the mean of ``Y`` (n,) values in [0, 1].

    Constant 0/1 data get the exact binomial interval (see the module docstring).

    Example:
        >>> lo, hi = bootstrap_mean_ci(np.r_[np.ones(95), np.zeros(5)], alpha=0.1)
        >>> bool(0.9 < lo < 0.95 < hi <= 1.0)
        True
    """
    Y = np.asarray(Y, dtype=float)
    if np.all(Y == Y[0]) and Y[0] in (0.0, 1.0):
        return classical_mean_ci(Y, alpha)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, 1000):  # (1000, n) index blocks bound the memory
        idx = rng.integers(0, Y.shape[0], size=(min(1000, resamples - start), Y.shape[0]))
        means[start : start + idx.shape[0]] = Y[idx].mean(axis=1)
    lower, upper = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lower), float(upper)


def build_report(per_query: Mapping[str, Mapping[str, float]], run: Mapping[str, Mapping[str, float]],
                 queries: Mapping[str, str], config: Mapping[str, object], alpha: float = 0.1, worst: int = 10,
                 qrels: Mapping[str, Mapping[str, int]] | None = None) -> dict:
    """The report dictionary: means with intervals, per-query values, and the worst queries.

    Args:
        per_query: ``{qid: {metric: value}}`` from :func:`eval.retrieval.evaluate`.
        run: ``{qid: {doc id: score}}``, each query's documents best first.
        queries: query texts by id.
        config: what was evaluated (index, mode, qrels), printed at the top.
        alpha: intervals cover 1 − α.
        worst: rows of the worst-queries table.
        qrels: relevance judgments; the worst queries then list their relevant documents and the
            rank the run gave each (``None`` when not retrieved).
    """
    from eval.retrieval import ranking

    qids = sorted(per_query)
    metrics = list(next(iter(per_query.values())))
    summary = {}
    for m in metrics:
        Y = np.array([per_query[q][m] for q in qids])  # (n,)
        lower, upper = bootstrap_mean_ci(Y, alpha) if len(Y) > 1 else (float("nan"), float("nan"))
        summary[m] = {"mean": float(Y.mean()), "lower": lower, "upper": upper}
    first = metrics[0]
    worst_rows = []
    for q in sorted(qids, key=lambda q: (per_query[q][first], q))[:worst]:
        ranked = ranking(run.get(q, {}))
        row = {"id": q, "query": queries.get(q, ""), first: per_query[q][first], "top": ranked[:3]}
        if qrels is not None:
            rank_of = {d: i for i, d in enumerate(ranked, start=1)}
            row["relevant"] = [{"id": d, "grade": g, "rank": rank_of.get(d)}
                               for d, g in sorted(qrels.get(q, {}).items(), key=lambda kv: (-kv[1], kv[0])) if g > 0]
        worst_rows.append(row)
    return {"config": dict(config), "alpha": alpha, "interval": "percentile bootstrap (exact binomial for constant 0/1)",
            "queries": len(qids), "metrics": summary, "per_query": {q: dict(per_query[q]) for q in qids},
            "worst": worst_rows}


def histogram_png(values: list[float], metric: str) -> bytes:
    fig, ax = _figure()
    ax.hist(values, bins=np.linspace(0, 1, 21), color="#4c72b0", edgecolor="white")
    ax.set_xlabel(f"per-query {metric}")
    ax.set_ylabel("queries")
    ax.set_title(f"{metric} over {counted(len(values), 'query', 'queries')} (mean {np.mean(values):.3f})")
    return _png(fig)


def _tables(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    level = f"{1 - report['alpha']:.0%}"
    rows = [[m, f"{s['mean']:.4f}", f"[{s['lower']:.4f}, {s['upper']:.4f}]"] for m, s in report["metrics"].items()]
    first = next(iter(report["metrics"]))
    def relevant(w: dict) -> str:
        return ", ".join(f"{r['id']} (rank {r['rank'] if r['rank'] is not None else 'not retrieved'})"
                         for r in w.get("relevant", []))

    worst = [[w["id"], w["query"][:100], f"{w[first]:.3f}", relevant(w), ", ".join(w["top"])] for w in report["worst"]]
    return [(f"Metrics ({counted(report['queries'], 'query', 'queries')})", ["metric", "mean", f"{level} interval"], rows),
            (f"Worst queries by {first}", ["query id", "query", first, "relevant documents", "top documents"], worst)]


def render_markdown(report: dict, title: str) -> str:
    c = report["config"]
    lines = [f"# {title}", "", ", ".join(f"{k}: `{v}`" for k, v in c.items()), ""]
    for name, header, rows in _tables(report):
        lines += [f"## {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows] + [""]
    lines += ["![per-query histogram](histogram.png)", ""]
    return "\n".join(lines)


def render_html(report: dict, title: str, png: bytes) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>{html.escape(', '.join(f'{k}: {v}' for k, v in report['config'].items()))}</p>"]
    for name, header, rows in _tables(report):
        parts.append(f"<h2>{html.escape(name)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
                     + "</tr>" + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
                     + "</table>")
    parts.append(f"<img alt='histogram' src='data:image/png;base64,{base64.b64encode(png).decode()}'></body></html>")
    return "\n".join(parts)


def write_retrieval_report(out_dir: str | Path, report: dict, title: str = "Retrieval evaluation") -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` + ``histogram.png`` and ``report.html``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = next(iter(report["metrics"]))
    png = histogram_png([v[first] for v in report["per_query"].values()], first)
    atomic_write_bytes(out / "histogram.png", png)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    atomic_write_text(paths["json"], json.dumps(report, indent=2, ensure_ascii=False))
    atomic_write_text(paths["md"], render_markdown(report, title))
    atomic_write_text(paths["html"], render_html(report, title, png))
    return paths
