"""What the service loads once and shares between requests: indexes, encoders, the generator.

Loading has two steps. :meth:`ServiceState.open` reads every configured manifest (fast; a wrong
path or a damaged index stops the server before it binds its port). :meth:`ServiceState.load`
then loads the models, one :class:`~rag.encoder.Encoder` per distinct encoder spec however many
indexes use it, each behind a :class:`~service.batching.MicroBatchEncoder`, builds the retrievers
and runs a warm-up query; it runs in a background thread, so ``/healthz`` answers at once while
``/readyz`` says 503 until everything is ready (what a load balancer's probes expect).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from indexes.errors import IndexNotFoundError, InputError, RagError
from indexes.manifest import MANIFEST_NAME, Manifest
from rag.models import is_encoder_decoder
from rag.types import SearchMode
from service.batching import MicroBatchEncoder
from service.errors import field_error
from service.passages import CachedPassageStore
from service.settings import Settings

log = logging.getLogger("rag.service")


class NotReadyError(RagError):
    """The service is still loading (or failed to load) its indexes and models."""

    code = "not_ready"


class AnswerUnavailableError(RagError):
    """``/answer`` cannot run for this index in this configuration."""

    code = "answer_unavailable"


@dataclass
class LoadedIndex:
    """An open index and its retrievers, one per supported mode."""

    name: str
    manifest: Manifest
    index: object = None  # rag.index.Index once loaded
    retrievers: dict[str, object] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)  # generation: one answer at a time
    reader: object = None  # rag.fid.answer.FiDAnswerer bound to this index, when the generator is FiD
    signature: tuple[int, int] = (0, 0)  # (inode, mtime) of the manifest.json this entry was opened at
    # Passage KV states of this commit, opened once per (generator, cache config) on first use
    # (rag.generation.passage_cache.PassageStates); a new commit is a new entry with its own.
    _states: dict[tuple, object] = field(default_factory=dict, init=False, repr=False)
    _states_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def modes(self) -> list[SearchMode]:
        m = self.manifest
        return [mode for mode, ok in (("bm25", m.bm25), ("dense", m.dense), ("hybrid", m.bm25 and m.dense)) if ok]

    def passage_states(self, generator, cache):
        """The passage KV states of this entry's commit for ``generator`` and ``cache`` (a
        :class:`rag.generation.passage_cache.CacheConfig`), opened on the first call and shared by
        every later request (thread-safe: concurrent first calls open them once).

        Raises:
            InputError: the commit has no KV store for this generator and template (422; nothing is kept).
        """
        from rag.generation.passage_cache import open_passage_states

        key = (generator.name, generator.revision, cache)
        with self._states_lock:
            if key not in self._states:
                self._states[key] = open_passage_states(self.index.path, generator, cache, manifest=self.index.manifest)
            return self._states[key]

    def drop_states(self) -> None:
        """Forget the opened passage states (requests holding them finish on them; then they are freed)."""
        with self._states_lock:
            self._states.clear()

    def retriever(self, mode: SearchMode, rerank: bool | None = None, rerank_depth: int | None = None,
                  rerank_weight: float | None = None):
        """The retriever for ``mode``, reranked by the index's reranker unless ``rerank`` is false.

        Args:
            mode: bm25, dense or hybrid.
            rerank: ``None``: rerank when the service has a reranker; ``True``: require one.
            rerank_depth: passages reranked (``None``: the service's ``rerank_depth``).
            rerank_weight: α of the cross-encoder's score against the first stage's (``None``: the service's).

        Raises:
            InputError: this index has no part for ``mode``; reranking, a ``rerank_depth`` or a ``rerank_weight``
                was asked of a service without a reranker, or a depth or weight together with ``rerank=False``.
        """
        if mode not in self.retrievers:
            raise field_error(["mode"], f"mode: index {self.name!r} supports {', '.join(self.modes)}, not {mode}")
        reranker = getattr(self.index, "reranker", None)
        knobs = [name for name, value in (("rerank_depth", rerank_depth), ("rerank_weight", rerank_weight))
                 if value is not None]
        if reranker is None and (rerank or knobs):
            asked = ["rerank"] * bool(rerank) + knobs
            raise field_error(asked, f"{', '.join(asked)}: this service has no reranker; start it with --rerank "
                                     "MODEL (RAG_RERANK), or leave these fields out")
        if rerank is False and knobs:
            raise field_error(knobs, f"{', '.join(knobs)}: {'has' if len(knobs) == 1 else 'have'} no effect with "
                                     "\"rerank\": false; leave them out, or drop \"rerank\": false")
        if reranker is None or rerank is False:
            return self.retrievers[mode]
        from rag.rerank import RerankingRetriever

        return RerankingRetriever(self.retrievers[mode], reranker.with_depth(rerank_depth).with_weight(rerank_weight))


class ServiceState:
    """The indexes and models of one service process.

    Args:
        settings: the service settings.
        on_batch: metrics hook, called with the size of every encoder batch.
    """

    def __init__(self, settings: Settings, on_batch: Callable[[int], None] | None = None) -> None:
        self.settings = settings
        self.status: Literal["loading", "ready", "failed", "stopped"] = "loading"
        self.error: str | None = None
        self.indexes: dict[str, LoadedIndex] = {}
        self.generator = None
        self.reranker = None  # rag.rerank.CrossEncoderReranker when settings.rerank
        self._batchers: dict[object, MicroBatchEncoder] = {}
        self._on_batch = on_batch
        self._reload_lock = threading.RLock()
        self._write_locks: dict[str, threading.Lock] = {}

    def open(self) -> None:
        """Read every configured manifest.

        Raises:
            RagError: an index directory is missing or unreadable (names the index and path).
        """
        for name, path in self.settings.indexes.items():
            try:
                self.indexes[name] = LoadedIndex(name, Manifest.read(path))
            except RagError as exc:
                raise type(exc)(f"index {name!r}: {exc}") from None

    def load(self) -> None:
        """Load encoders, retrievers and the generator; set :attr:`status` (never raises)."""
        try:
            self._load()
        except Exception as exc:  # a load failure is reported by /readyz, not a crashed server
            self.status, self.error = "failed", self.public_error(exc)
            log.error("loading failed: %s: %s", type(exc).__name__, exc, exc_info=not isinstance(exc, (RagError, OSError)))
            return
        if self.status == "loading":
            # Everything loaded so far lives as long as the process: keep it out of the cyclic
            # garbage collector's full passes, which otherwise walk every model and index object
            # (pauses of a few hundred ms under load: docs/benchmarks.md, service).
            gc.freeze()
            self.status = "ready"
            log.info("ready: %s", ", ".join(self.indexes))

    def public_error(self, exc: BaseException) -> str:
        """What ``/readyz`` and 503 bodies say about a load failure: the user-facing message (file
        and what to do, index folders named by index name), or the class of an unexpected error."""
        from indexes.io_errors import describe_os_error
        from service.errors import public_message

        if isinstance(exc, RagError):
            return public_message(str(exc), self.settings.indexes)
        if isinstance(exc, OSError):
            return public_message(describe_os_error(exc), self.settings.indexes)
        return f"{type(exc).__name__} (unexpected; the server log has the details)"

    def _load(self) -> None:
        s = self.settings
        if s.torch_threads:
            import torch

            torch.set_num_threads(s.torch_threads)
        if s.rerank:  # before the indexes: each Index holds it (the /answer pipeline reranks through it)
            from rag.rerank import CrossEncoderReranker, RerankConfig

            self.reranker = CrossEncoderReranker.load(RerankConfig(s.rerank, depth=s.rerank_depth, weight=s.rerank_weight), device=s.device)
        for name, entry in self.indexes.items():
            self._open_entry(name, entry)
        if s.generator:
            self._load_generator()

    def _open_entry(self, name: str, entry: LoadedIndex) -> None:
        """Open ``entry``'s index at its current commit and build (and warm) its retrievers."""
        from rag.index import Index

        s = self.settings
        batcher = self._batcher(name, entry.manifest) if entry.manifest.dense else None
        entry.index = idx = Index(Path(s.indexes[name]), encoder=batcher, device=s.device, reranker=self.reranker)
        entry.manifest = idx.manifest
        if s.passage_cache:  # before the retrievers are built: they keep the store they get
            idx.store = CachedPassageStore(idx.store, s.passage_cache)
        for mode in entry.modes:  # first stages; LoadedIndex.retriever adds the reranker per request
            entry.retrievers[mode] = idx.retriever(mode, rerank=False)  # builds BM25 weights / FAISS now
        # First calls of torch and FAISS allocate; pay that before ready, with a query made
        # of indexed words (the first passage's own text).
        probe = " ".join(idx.store.get([0])[0].text.split()[:16]) if len(idx.store) else ""
        for retriever in entry.retrievers.values() if probe.strip() else ():
            retriever.search(probe, 1)
        entry.signature = self._signature(name)

    def _signature(self, name: str) -> tuple[int, int]:
        st = os.stat(Path(self.settings.indexes[name]) / MANIFEST_NAME)
        return st.st_ino, st.st_mtime_ns

    def _current(self, key: str) -> LoadedIndex:
        """The entry of ``key`` at the latest commit: a commit published since it was opened (by
        this or any process) is opened now, as a new entry; requests holding the old one finish on
        it, and its files stay until its last user lets it go (:mod:`indexes.commits`)."""
        entry = self.indexes[key]
        try:
            changed = self._signature(key) != entry.signature
        except OSError:
            return entry  # mid-replacement or gone: keep serving the commit we hold
        if not changed:
            return entry
        with self._reload_lock:
            entry = self.indexes[key]
            if self._signature(key) == entry.signature:
                return entry
            fresh = LoadedIndex(key, Manifest.read(self.settings.indexes[key]), reader=self._rebind(key, entry.reader))
            self._open_entry(key, fresh)
            self.indexes[key] = fresh
            entry.drop_states()  # the old commit's KV states: new requests read the new commit's
            log.info("index %s: opened commit %d", key, fresh.manifest.generation)
            return fresh

    def _rebind(self, key: str, reader):
        """A FiD reader with LUMEN memory read from the latest commit (its rows follow the commit's
        passages, see :mod:`rag.live_caches`); the one given when it has no memory or none is left."""
        if reader is None or getattr(reader, "memory", None) is None:
            return reader
        from rag.fid.answer import FiDAnswerer

        try:
            return FiDAnswerer.bind(reader.reader, self.settings.generator, self.settings.indexes[key], self.settings.fid_live_layers)
        except RagError as exc:
            log.warning("index %s: LUMEN memory not in the new commit (%s); answers keep the previous commit's", key, exc)
            return reader

    def write_lock(self, name: str) -> threading.Lock:
        """The lock serialising this process's writes to index ``name``."""
        with self._reload_lock:
            return self._write_locks.setdefault(name, threading.Lock())

    def _load_generator(self) -> None:
        """A causal LM (:attr:`generator`) or a FiD reader bound to each index (``LoadedIndex.reader``)."""
        s = self.settings
        kind = s.generator_kind
        if kind == "auto":
            kind = "fid" if is_encoder_decoder(s.generator) else "decoder"
        if kind == "decoder":
            from rag.generation.generator import Generator, GeneratorConfig

            if s.fid_live_layers is not None:
                raise InputError("fid_live_layers (LUMEN) needs a FiD generator (a T5-family encoder-decoder)")
            self.generator = Generator.load(GeneratorConfig(s.generator, device=s.generator_device))
            return
        from rag.fid.answer import FiDAnswerer
        from rag.fid.reader import FiDConfig

        reader = FiDAnswerer.load_reader(s.generator, FiDConfig(n_passages=s.fid_passages, max_new_tokens=s.answer_max_new_tokens),
                                         s.fid_live_layers, s.generator_device)
        for name, entry in self.indexes.items():  # one model; each index has its own LUMEN memory
            try:
                entry.reader = FiDAnswerer.bind(reader, s.generator, s.indexes[name], s.fid_live_layers)
            except RagError as exc:
                raise type(exc)(f"index {name!r}: {exc}") from None

    def _batcher(self, name: str, manifest: Manifest) -> MicroBatchEncoder:
        from dataclasses import replace

        from rag.encoder import Encoder, EncoderConfig, resolve_backend

        s = self.settings
        config = EncoderConfig.from_dense(manifest.dense, query_encoder=s.query_encoder, index_name=f"index {name!r}",
                                          device=s.device, backend=s.encoder_backend)
        on_torch = resolve_backend(config) == "torch"  # what `auto` picks for this index (before any load)
        config = replace(config, batch_size=s.encoder_batch_size or (8 if on_torch else 1))
        if config not in self._batchers:
            encoder = Encoder(config)
            # the backend that really runs (auto falls back to torch, warned, where ONNX cannot run the model)
            max_batch = s.microbatch_max or (64 if encoder.config.backend == "torch" else 1)
            self._batchers[config] = MicroBatchEncoder(encoder, s.microbatch_wait_ms, max_batch, self._on_batch,
                                                       threads=s.encoder_threads or os.cpu_count() or 1,
                                                       shared_passes=s.shared_passes)
        return self._batchers[config]

    def get(self, name: str | None) -> LoadedIndex:
        """The ready index called ``name`` (default index when ``None``).

        Raises:
            IndexNotFoundError: no index of that name is configured (404).
            NotReadyError: the service is not ready (503).
        """
        key = self.settings.default_index if name is None else name
        if key is None or key not in self.indexes:
            raise IndexNotFoundError(f"index {name!r} is not served here; GET /indexes lists the names")
        self.check_ready()
        return self._current(key)

    def check_ready(self) -> None:
        """Raises :class:`NotReadyError` unless everything is loaded."""
        if self.status != "ready":
            detail = f": {self.error}" if self.error else "; retry shortly"
            raise NotReadyError(f"the service is {self.status}{detail}")

    @property
    def encoder_count(self) -> int:
        return len(self._batchers)

    def close(self) -> None:
        """Stop the encoder threads and close the passage stores."""
        self.status = "stopped"
        for batcher in self._batchers.values():
            batcher.close()
        for entry in self.indexes.values():
            if entry.index is not None:
                entry.index.close()
