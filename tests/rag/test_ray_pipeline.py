"""``--ray`` builds: the Ray Data pipeline writes the index a single-process build writes.

One test starts a local Ray runtime (the CLI's own ``--ray`` path: 40-66 s measured on the shared
2-core VM at load 10-18, most of it Ray's start and two actors importing torch);
the KV-state pipeline is ``slow``. The option parsing and the error without Ray run without it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from indexes.errors import InputError
from indexes.manifest import Manifest
from rag.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures"


def corpus_with_a_long_document(path: Path) -> Path:
    """The fixture corpus plus one document longer than MiniLM's 256 pieces (several windows)."""
    rows = [json.loads(line) for line in (FIXTURES / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    rows.append({"_id": "long", "title": "All of it", "text": " ".join(r["text"] for r in rows)})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def segment_files(index: Path) -> dict[str, str]:
    (segment,) = Manifest.read(index).segments
    return dict(segment.files)


def test_ray_index_equals_the_single_process_build(tmp_path, encoder):
    pytest.importorskip("ray.data", reason="--ray needs the scale extra (pip install 'rag-toolkit[scale]')")
    from indexes.dense_store import read_passage_map, read_vectors
    from rag.indexer import IndexOptions, build_index

    # Given a corpus with a multi-window document, indexed in this process
    corpus = corpus_with_a_long_document(tmp_path / "corpus.jsonl")
    single = tmp_path / "single"
    build_index(corpus, single, IndexOptions(progress=False), encoder=encoder)
    # When `rag index --ray` builds it on a local runtime it starts itself, two encoder actors, batches of 4,
    # with the fixture encoder's backend (torch; the default, auto, would be onnx-int8 on this CPU)
    ray_out = tmp_path / "ray"
    assert main(["index", str(corpus), "--out", str(ray_out), "--batch-size", "4", "--ray", "--ray-workers", "2",
                 "--encoder-backend", "torch"]) == 0
    # Then the same windows in the same rows, the same vectors to 1e-5, and every other file byte-equal
    seg = lambda root: root / Manifest.read(root).segments[0].name  # noqa: E731
    owner, ray_owner = (read_passage_map(seg(root) / "vector_passages.npy") for root in (single, ray_out))
    assert owner.size > 21 and np.array_equal(ray_owner, owner)
    vectors, ray_vectors = (read_vectors(seg(root) / "vectors.npy") for root in (single, ray_out))
    assert ray_vectors.shape == vectors.shape and np.abs(ray_vectors - vectors).max() <= 1e-5
    a, b = segment_files(single), segment_files(ray_out)
    assert a.keys() == b.keys() and {k for k in a if a[k] != b[k]} <= {"vectors.npy"}
    assert Manifest.read(ray_out).dense.encoder == Manifest.read(single).dense.encoder


@pytest.mark.slow
def test_ray_kv_blocks_are_the_local_blocks(tmp_path):
    pytest.importorskip("ray.data", reason="--ray needs the scale extra (pip install 'rag-toolkit[scale]')")
    from indexes.kv_store import KVStore
    from tests.rag.kv_tiny import build_tiny_index, save_tiny_generator

    # Given a tiny generator saved to a folder and two copies of one index
    model = save_tiny_generator(tmp_path / "gen")
    local, ray_index = build_tiny_index(tmp_path / "local"), build_tiny_index(tmp_path / "rayidx")
    # When the KV states are built in this process, and by `rag cache build --ray` with two actors
    assert main(["cache", "build", "--index", str(local), "--generator", str(model), "--device", "cpu"]) == 0
    assert main(["cache", "build", "--index", str(ray_index), "--generator", str(model), "--device", "cpu",
                 "--ray", "--ray-workers", "2"]) == 0
    # Then both stores hold every passage with bit-equal keys and values (one forward pass per block in both)
    stores = [KVStore(next((root / "kv").iterdir())) for root in (local, ray_index)]
    assert len(stores[0]) == len(stores[1]) == 4
    for pid in stores[0].ids():
        (k1, v1), (k2, v2) = stores[0].get(pid), stores[1].get(pid)
        assert k1.equal(k2) and v1.equal(v2)


def test_ray_alone_before_an_option_or_the_corpus_means_local_and_an_address_is_kept(tmp_path):
    from rag.cli.options import optional_value

    # Given a corpus file that exists
    corpus = str(corpus_with_a_long_document(tmp_path / "c.jsonl"))
    # When / Then a bare --ray (last, before an option, before an existing path) means `local`; an address is kept
    assert optional_value(["index", "c", "--ray"], "--ray", "local") == ["index", "c", "--ray", "local"]
    assert optional_value(["--ray", "-k", "3"], "--ray", "local") == ["--ray", "local", "-k", "3"]
    assert optional_value(["index", "--ray", corpus], "--ray", "local") == ["index", "--ray", "local", corpus]
    assert optional_value(["--ray", "ray://head:10001", "c"], "--ray", "local") == ["--ray", "ray://head:10001", "c"]
    assert optional_value(["--ray", "auto"], "--ray", "local") == ["--ray", "auto"]


def test_ray_without_ray_installed_names_the_extra(tmp_path, monkeypatch):
    from rag.ray_pipeline import RayConfig, ray_runtime

    # Given a Python where `import ray` fails
    monkeypatch.setitem(sys.modules, "ray", None)
    # When / Then the pipeline refuses with the install command
    with pytest.raises(InputError, match=r"rag-toolkit\[scale\]"):
        with ray_runtime(RayConfig()):
            pass


def test_a_runtime_that_fails_to_start_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    ray = pytest.importorskip("ray", reason="--ray needs the scale extra (pip install 'rag-toolkit[scale]')")
    pytest.importorskip("ray.data", reason="--ray needs the scale extra")

    # Given a Ray whose start-up fails as it does on a starved machine (a bare Exception from ray.init)
    def fail(*args, **kwargs):
        raise Exception("The current node timed out during startup. This could happen because ...")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fail)
    # When `rag index --ray` runs
    rc = main(["index", str(corpus_with_a_long_document(tmp_path / "c.jsonl")), "--out", str(tmp_path / "x"), "--ray"])
    # Then one line names the address and the cause, and nothing is built
    err = capsys.readouterr().err
    assert rc == 1 and "--ray local: cannot start or reach a Ray runtime (The current node timed out" in err
    assert "Traceback" not in err and not (tmp_path / "x").exists()


def test_an_error_inside_an_actor_is_one_line_naming_its_cause():
    ray = pytest.importorskip("ray", reason="--ray needs the scale extra (pip install 'rag-toolkit[scale]')")
    from indexes.errors import RagError
    from rag.ray_pipeline import _reporting_actor_errors

    # Given an actor error as Ray reports it (its traceback, then the cause)
    error = ray.exceptions.RayError("ray::MapBatches(_WindowEncoderActor)\n  File \"x.py\", line 3\n"
                                    "rag.models.ModelLoadError: no model at /models/e5 on this node")
    # When / Then it surfaces as one line with the cause
    with pytest.raises(RagError, match=r"^the Ray pipeline failed in an actor: rag\.models\.ModelLoadError: no model at"):
        with _reporting_actor_errors():
            raise error
