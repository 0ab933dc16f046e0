"""A retrieval evaluation as ``report.json``, ``report.md`` (+ PNG) and a self-contained ``report.html``.

Same style as the QA report (:mod:`eval.report`): every mean comes with a confidence interval —
the classical CLT interval over per-query values, ``mean ± z_{1−α/2}·σ̂/√n``
(:func:`eval.ppi.classical_mean_ci`) — so two runs can be compared honestly; a histogram of
per-query nDCG@10 shows where the mean comes from, and the worst queries with their top hits
show what to look at first.
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


def build_report(per_query: Mapping[str, Mapping[str, float]], run: Mapping[str, Mapping[str, float]],
                 queries: Mapping[str, str], config: Mapping[str, object], alpha: float = 0.1, worst: int = 10) -> dict:
    """The report dictionary: means with intervals, per-query values, and the worst queries."""
    qids = sorted(per_query)
    metrics = list(next(iter(per_query.values())))
    summary = {}
    for m in metrics:
        Y = np.array([per_query[q][m] for q in qids])  # (n,)
        lower, upper = classical_mean_ci(Y, alpha) if len(Y) > 1 else (float("nan"), float("nan"))
        summary[m] = {"mean": float(Y.mean()), "lower": lower, "upper": upper}
    first = metrics[0]
    worst_rows = []
    for q in sorted(qids, key=lambda q: (per_query[q][first], q))[:worst]:
        top = sorted(run.get(q, {}).items(), key=lambda kv: -kv[1])[:3]
        worst_rows.append({"id": q, "query": queries.get(q, ""), first: per_query[q][first], "top": [d for d, _ in top]})
    return {"config": dict(config), "alpha": alpha, "queries": len(qids), "metrics": summary,
            "per_query": {q: dict(per_query[q]) for q in qids}, "worst": worst_rows}


def histogram_png(values: list[float], metric: str) -> bytes:
    fig, ax = _figure()
    ax.hist(values, bins=np.linspace(0, 1, 21), color="#4c72b0", edgecolor="white")
    ax.set_xlabel(f"per-query {metric}")
    ax.set_ylabel("queries")
    ax.set_title(f"{metric} over {len(values)} queries (mean {np.mean(values):.3f})")
    return _png(fig)


def _tables(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    level = f"{1 - report['alpha']:.0%}"
    rows = [[m, f"{s['mean']:.4f}", f"[{s['lower']:.4f}, {s['upper']:.4f}]"] for m, s in report["metrics"].items()]
    first = next(iter(report["metrics"]))
    worst = [[w["id"], w["query"][:100], f"{w[first]:.3f}", ", ".join(w["top"])] for w in report["worst"]]
    return [(f"Metrics ({report['queries']} queries)", ["metric", "mean", f"{level} interval"], rows),
            (f"Worst queries by {first}", ["query id", "query", first, "top documents"], worst)]


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
