"""Index and cache builds as Ray Data pipelines: the same commands on one machine or a cluster.

``rag index ... --ray [ADDRESS]`` and ``rag cache build ... --ray [ADDRESS]`` keep every step of
a normal build but the model passes, which run as a Ray Data pipeline::

    passages (read and split here, in document-id order)
      → ray.data.from_items({"row", "text"})
      → map_batches(actor pool of encoders, one model per actor)   # the only heavy step
      → streamed back in any order, put in row order here
      → written into the normal index folder (segment, or KV store shards)

so the index is the one a single-process build writes: vectors equal to float rounding (the
batches differ, see :meth:`rag.encoder.Encoder._encode`), KV blocks bit-equal (each block is one
forward pass in both paths). ``ADDRESS`` is what :func:`ray.init` takes: ``local`` starts a
runtime on this machine (``num_cpus`` CPUs, stopped afterwards), ``auto`` joins the cluster this
machine belongs to, ``ray://HOST:10001`` connects to a remote head. Every actor loads the model
by the same name, so on a cluster the model must be present on every node (the embedded MiniLM is
a pip package; others a shared path or a warmed local HF cache).

Ray is an optional dependency (``pip install 'rag-toolkit[scale]'``), imported only here and
only when a pipeline runs.

Example:
    >>> with ray_runtime(RayConfig()):                                              # doctest: +SKIP
    ...     vectors, owner = RayEncoder(encoder, RayConfig()).encode_passage_windows(texts, overlap=64)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from indexes.errors import InputError, RagError

LOCAL = "local"  # ray.init's address that starts a new runtime on this machine


@dataclass(frozen=True)
class RayConfig:
    """Where and how wide a pipeline runs.

    Attributes:
        address: ``local`` (start a runtime here), ``auto`` (the running cluster) or ``ray://HOST:PORT``.
        workers: encoder actors, one CPU each (each loads the model once).
        num_cpus: CPUs of a ``local`` runtime (2: this project's CI machines).
        batch_size: passages per ``map_batches`` call; small enough to balance the actors,
            large enough to amortise a call (~0.1 s of MiniLM work at 64).
        progress: Ray Data's progress bars on stderr.
    """

    address: str = LOCAL
    workers: int = 2
    num_cpus: int = 2
    batch_size: int = 64
    progress: bool = True


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is a separate extra of ray
    except ImportError:
        raise InputError("--ray needs Ray Data: pip install 'rag-toolkit[scale]' (or 'ray[data]')") from None
    return ray


@contextlib.contextmanager
def ray_runtime(config: RayConfig) -> Iterator[None]:
    """Connect to (or start) the Ray runtime of ``config.address`` for the body; disconnect after.

    A runtime already initialised in this process (a test, a notebook) is used as it is and left running.

    Raises:
        InputError: Ray is not installed.
        RagError: the runtime cannot be started or the address cannot be reached.
    """
    ray = _ray()
    if ray.is_initialized():
        yield
        return
    kwargs = {"num_cpus": config.num_cpus} if config.address == LOCAL else {}
    try:
        ray.init(address=config.address, include_dashboard=False, log_to_driver=False, **kwargs)
    except Exception as exc:  # noqa: BLE001 - ray.init raises bare Exception (e.g. a raylet that missed its 30 s start-up)
        raise RagError(f"--ray {config.address}: cannot start or reach a Ray runtime ({str(exc).splitlines()[0]}); "
                       "give 'local', 'auto' or ray://HOST:PORT, and on a busy machine try again") from None
    try:
        ray.data.DataContext.get_current().enable_progress_bars = config.progress
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _reporting_actor_errors() -> Iterator[None]:
    """An error inside an actor (a model that does not load on a node, ...) as one line, not Ray's traceback."""
    ray = _ray()
    try:
        yield
    except ray.exceptions.RayError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        cause = next((line for line in reversed(lines) if "Error" in line or "error" in line), lines[-1] if lines else "")
        raise RagError(f"the Ray pipeline failed in an actor: {cause}") from None


def _blocks(n: int, batch_size: int, workers: int) -> int:
    """Input blocks: one per batch, and at least one per actor so that every actor gets work."""
    return max(1, min(n, max(workers, -(-n // batch_size))))


def _collect(dataset, n_rows: int) -> dict[str, np.ndarray]:
    """Every output row of ``dataset``, sorted by its ``row`` column (stable: windows keep their order)."""
    parts: dict[str, list[np.ndarray]] = {}
    with _reporting_actor_errors():
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for name, column in batch.items():
                parts.setdefault(name, []).append(column)
    if not parts:
        return {}
    out = {name: np.concatenate(cols) for name, cols in parts.items()}
    order = np.argsort(out["row"], kind="stable")
    out = {name: col[order] for name, col in out.items()}
    if n_rows and (out["row"].size == 0 or np.unique(out["row"]).size != n_rows):
        raise RuntimeError(f"the Ray pipeline returned {np.unique(out['row']).size} of {n_rows} passages")
    return out


class _WindowEncoderActor:
    """One encoder per Ray actor: a batch of passages → the vectors of their windows."""

    def __init__(self, config, overlap: int) -> None:
        from rag.encoder import Encoder

        self.encoder = Encoder(config)
        self.overlap = overlap

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors, owner = self.encoder.encode_passage_windows([str(t) for t in batch["text"]], self.overlap)  # (R, d), (R,)
        return {"row": np.asarray(batch["row"])[owner], "vector": vectors}


class RayEncoder:
    """An :class:`~rag.encoder.Encoder` whose bulk passage encoding runs on a Ray actor pool.

    Everything but :meth:`encode_passage_windows` (the spec, queries, windows) is the local
    encoder's, so ``build_index(..., encoder=RayEncoder(...))`` writes the usual index.

    Args:
        encoder: the encoder loaded here (its configuration is what every actor loads).
        config: the pipeline's width and batches (run inside :func:`ray_runtime`).
    """

    def __init__(self, encoder, config: RayConfig) -> None:
        self.local = encoder
        # each actor is one CPU: one ONNX thread, no worker processes inside an actor
        self.config = replace(encoder.config, workers=1, onnx_threads=1)
        self.ray_config = config

    def __getattr__(self, name: str):
        return getattr(self.local, name)

    def encode_passage_windows(self, passages: Sequence[str], overlap: int,
                               progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors (R, d), passage_of_row (R,))`` as :meth:`rag.encoder.Encoder.encode_passage_windows`."""
        ray = _ray()
        cfg = self.ray_config
        items = [{"row": i, "text": t} for i, t in enumerate(passages)]
        dataset = ray.data.from_items(items, override_num_blocks=_blocks(len(items), cfg.batch_size, cfg.workers)).map_batches(
            _WindowEncoderActor, fn_constructor_kwargs={"config": self.config, "overlap": overlap},
            batch_size=cfg.batch_size, compute=ray.data.ActorPoolStrategy(size=cfg.workers), num_cpus=1)
        out = _collect(dataset, len(items))
        if not out:
            return np.zeros((0, self.local.dim), dtype=np.float32), np.zeros(0, dtype=np.int64)
        return np.ascontiguousarray(out["vector"], dtype=np.float32), out["row"].astype(np.int64)


class _KVBlockActor:
    """One generator per Ray actor: a batch of passages → their KV blocks as safetensors bytes."""

    def __init__(self, generator_config, cache_config) -> None:
        from rag.generation.generator import Generator
        from rag.generation.kv_blocks import encode_prefix
        from rag.generation.prompt import PromptBuilder

        self.generator = Generator.load(generator_config)
        self.builder = PromptBuilder(self.generator, cache_config.template)
        self.prefix = encode_prefix(self.generator, self.builder.prefix_ids)
        self.cache_config = cache_config

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch
        from safetensors.torch import save

        from rag.generation.kv_blocks import encode_block

        dtype = getattr(torch, self.cache_config.dtype)
        blobs = []
        for title, text in zip(batch["title"], batch["text"]):
            block = encode_block(self.generator, self.prefix, self.builder.block_ids(str(title), str(text)),
                                 self.cache_config.see_prefix)
            blobs.append(save({"k": block.keys.to(dtype).contiguous(), "v": block.values.to(dtype).contiguous()}))
        return {"row": np.asarray(batch["row"]), "kv": np.array(blobs, dtype=object)}


def ray_kv_blocks(passages: Sequence, generator_config, cache_config, config: RayConfig) -> Iterator[tuple[int, object, object]]:
    """``(i, keys, values)`` of each passage ``passages[i]`` encoded by an actor pool, in completion order.

    Args:
        passages: :class:`~indexes.passage_store.Passage` s to encode.
        generator_config: the :class:`~rag.generation.generator.GeneratorConfig` every actor loads.
        cache_config: the :class:`~rag.generation.passage_cache.CacheConfig` (template, layout, dtype).
        config: the pipeline (run inside :func:`ray_runtime`).
    """
    from safetensors.torch import load

    ray = _ray()
    items = [{"row": i, "title": p.title or "", "text": p.text} for i, p in enumerate(passages)]
    if not items:
        return
    size = max(1, min(config.batch_size, 8))  # a KV batch is seconds of work: small batches keep actors balanced
    dataset = ray.data.from_items(items, override_num_blocks=_blocks(len(items), size, config.workers)).map_batches(
        _KVBlockActor, fn_constructor_kwargs={"generator_config": generator_config, "cache_config": cache_config},
        batch_size=size, compute=ray.data.ActorPoolStrategy(size=config.workers), num_cpus=1)
    with _reporting_actor_errors():
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for row, blob in zip(batch["row"], batch["kv"]):
                tensors = load(bytes(blob))
                yield int(row), tensors["k"], tensors["v"]

