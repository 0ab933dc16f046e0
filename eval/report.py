"""Write a QA evaluation as ``report.json``, ``report.md`` (+ PNGs) and a self-contained ``report.html``.

The JSON is the dictionary of :func:`eval.qa_eval.evaluate`; Markdown and HTML render the same
numbers in the same order: headline accuracy with every estimator's interval and the effective
number of human labels, judge agreement and calibration, interval width vs human labels, EM/F1
and retrieval recall by question type, per-type estimates and the worst items. The HTML embeds
its figures as base64 PNG data URIs, so the single file can be mailed or archived.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from eval import plots
from indexes.atomic import atomic_write_bytes, atomic_write_text
from rag.wording import counted


def figures(report: dict) -> dict[str, bytes]:
    """The report's PNG figures by file name."""
    est = report["estimates"]
    cal, wvn = report["calibration"], report["width_vs_n"]
    return {
        "intervals.png": plots.intervals_png(est, f"Accuracy, {1 - report['alpha']:.0%} intervals"),
        "width_vs_labels.png": plots.width_vs_n_png(wvn["n"], wvn["widths"]),
        "calibration.png": plots.calibration_png(cal["mean_score"], cal["frac_correct"], cal["count"]),
    }


def _f(x, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _tables(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, shared by Markdown and HTML."""
    k = report["config"]["k"]
    est = [[m, _f(e["estimate"]), _f(e["lower"]), _f(e["upper"]), _f(e["width"]), _f(e["effective_labels"], 0)]
           for m, e in report["estimates"].items()]
    tables = [("Accuracy estimates", ["method", "estimate", "lower", "upper", "width", "effective human labels"], est)]
    agr = report["agreement"]
    if agr:
        tables.append(("Judge agreement with human labels (judge score ≥ 0.5 means 'correct')",
                       ["", "human: correct", "human: wrong"],
                       [["judge: correct", str(agr["tp"]), str(agr["fp"])],
                        ["judge: wrong", str(agr["fn"]), str(agr["tn"])],
                        ["agreement", _f(agr["accuracy"], 3), f"Pearson r = {_f(agr['pearson'], 3)}"]]))
    gm = report["gold_metrics"]
    rows = [["all", str(gm["n"]), _f(gm["overall"]["em"]), _f(gm["overall"]["f1"]), _f(gm["overall"][f"answer_recall@{k}"])]]
    rows += [[t, str(v["n"]), _f(v["em"]), _f(v["f1"]), _f(v[f"answer_recall@{k}"])] for t, v in gm["by_type"].items()]
    tables.append(("EM / F1 / retrieval recall (gold answers, every item)",
                   ["question type", "items", "EM", "F1", f"answer recall@{k}"], rows))
    if gm["latency_ms"]:
        lat = gm["latency_ms"]
        tables.append(("Latency (ms per question)", ["mean", "p50", "p95"],
                       [[_f(lat["mean"], 1), _f(lat["p50"], 1), _f(lat["p95"], 1)]]))
    strata = [[s, m, _f(e["estimate"]), _f(e["lower"]), _f(e["upper"])]
              for s, res in report["strata"].items() for m, e in res.items() if m in ("classical", "ppi++", "bayes-chain")]
    if strata:
        tables.append(("Estimates per question type", ["stratum", "method", "estimate", "lower", "upper"], strata))
    worst = [[w["id"], w["question"], w["answer"][:160], " | ".join(w["golds"][:3]), _f(w["f1"], 2), _f(w["judge"], 2),
              _f(w["label"], 0)] for w in report["worst"]]
    tables.append(("Worst items (lowest F1; confident judge first)",
                   ["id", "question", "answer", "gold", "F1", "judge", "human label"], worst))
    return tables


def _headline(report: dict) -> str:
    lab, judge = report["labels"], report["judge"]
    best = min(report["estimates"].items(), key=lambda kv: kv[1]["width"])
    cl = report["estimates"]["classical"]
    return (f"{counted(report['n_items'], 'item')}; {counted(lab['n'], 'human label')} ({lab['source']}), "
            f"{counted(lab['N'], 'judge-only item')}; "
            f"judge: {judge['name']} ({'reads gold answers' if judge['uses_gold'] else 'reference-free'}). "
            f"Classical {cl['estimate']:.3f} [{cl['lower']:.3f}, {cl['upper']:.3f}]; narrowest: {best[0]} "
            f"{best[1]['estimate']:.3f} [{best[1]['lower']:.3f}, {best[1]['upper']:.3f}]"
            + (f", worth {counted(round(best[1]['effective_labels']), 'human label')}." if best[1]["effective_labels"] is not None else "."))


def pipeline_line(report: dict) -> str:
    """One line saying what produced the answers (``report["pipeline"]``; empty for older reports)."""
    p = report.get("pipeline")
    if not p:
        return ""
    if "predictions" in p:
        return f"Answers read from {p['predictions']}."
    f = p["fusion"]
    parts = [f"index {p['index']}", f"generator {p['generator'] or 'none (extractive)'}", f"{p['mode']}, k = {p['k']}",
             f"fusion {f['fusion']}" + (f" (temperature {f['temperature']:g}"
                                        + (f", {f['decoding']} decoding" if f["fusion"] == "rag-sequence" else "") + ")"
                                        if f["fusion"] != "concat" else "")]
    if p["kv_cache"]:
        parts.append(f"passage KV cache ({p['positions']} positions)")
    if p["select_blocks"]:
        parts.append(f"select-blocks {p['select_blocks']['m']}")
    if p["evict"]:
        parts.append(f"evict {p['evict']['policy']} to {counted(p['evict']['budget'], 'token')}")
    return "Answers by the pipeline: " + "; ".join(parts) + "."


def render_markdown(report: dict, title: str) -> str:
    """Markdown with the figures linked as sibling PNG files."""
    out = [f"# {title}", "", _headline(report), ""]
    out += [pipeline_line(report), ""] if pipeline_line(report) else []
    out += ["![intervals](intervals.png)", ""]
    for name, header, rows in _tables(report):
        out += [f"## {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        out.append("")
        if name.startswith("Judge agreement"):
            out += ["![calibration](calibration.png)", ""]
    out += ["## Interval width vs number of human labels", "", "![width vs labels](width_vs_labels.png)", ""]
    return "\n".join(out)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;
font-size:14px;vertical-align:top}th{background:#f3f3f3}.lead{font-size:17px;background:#f7f9fc;padding:0.8em;
border-left:4px solid #1f77b4}.figs img{max-width:48%;margin:0 1% 1em 0;vertical-align:top}"""


def render_html(report: dict, title: str, figs: dict[str, bytes]) -> str:
    """One self-contained HTML page (figures as data URIs, inline CSS, no scripts)."""
    def img(name: str) -> str:
        return f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(figs[name]).decode()}">'

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p class='lead'>{html.escape(_headline(report))}</p>",
             f"<p>{html.escape(pipeline_line(report))}</p>" if pipeline_line(report) else "",
             f"<div class='figs'>{img('intervals.png')}{img('width_vs_labels.png')}</div>"]
    for name, header, rows in _tables(report):
        parts.append(f"<h2>{html.escape(name)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
                     + "</tr>" + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
                     + "</table>")
        if name.startswith("Judge agreement"):
            parts.append(f"<div class='figs'>{img('calibration.png')}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out_dir: str | Path, report: dict, title: str = "QA evaluation") -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` with its PNGs, and ``report.html``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = figures(report)
    for name, png in figs.items():
        atomic_write_bytes(out / name, png)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    atomic_write_text(paths["json"], json.dumps(report, indent=2, ensure_ascii=False))
    atomic_write_text(paths["md"], render_markdown(report, title))
    atomic_write_text(paths["html"], render_html(report, title, figs))
    return paths
