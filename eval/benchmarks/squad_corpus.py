"""Write the distinct paragraphs of a SQuAD file as a ``rag index`` corpus (JSONL ``{_id, title, text}``).

Usage::

    python -m eval.benchmarks.squad_corpus ../shared/data/squad-dev/dev-v1.1.json build/squad/corpus.jsonl

Ids are ``"<article title>/p<paragraph number>"`` (:mod:`rag.squad`); titles have SQuAD's underscores replaced by
spaces. ``rag index FILE.json`` reads the same documents from the SQuAD file directly.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eval.qa_data import load_squad_paragraphs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("squad", type=Path, help="SQuAD v1.1/v2.0 JSON file")
    parser.add_argument("out", type=Path, help="corpus JSONL to write")
    args = parser.parse_args(argv)
    rows = load_squad_paragraphs(args.squad)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} paragraphs to {args.out}")


if __name__ == "__main__":
    main()
