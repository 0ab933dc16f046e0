"""ONNX Runtime execution of a sentence-transformers bi-encoder (query-time speed on CPU).

A MiniLM query is ~20 tokens: in PyTorch eager mode on a CPU core, operator dispatch costs as much
as the arithmetic, and micro-batches of queries waste work on padding. ONNX Runtime runs the same
graph with fused kernels and little per-call overhead, one query at a time. ``onnx-int8`` adds
dynamic int8 quantisation of the linear layers (per output channel; activations quantised on the
fly), about 1.6× faster again at a small cost in fidelity: see ``docs/benchmarks.md`` (retrieval
quality per query backend). Dynamic quantisation computes one activation scale per call over
the whole input tensor, so a text in a padded batch would get a vector that depends on its
neighbours (cosine 0.99 to its own, measured on the fixture corpus); ``onnx-int8`` therefore
runs every text alone, unpadded, which was no slower on SciFact passages (17.6-18.6 against
14.4-15.9 windows/s batched), and a text's vector is a function of the text only.

The graph is exported from the already-loaded PyTorch model (``torch.onnx.export``, eager
attention) the first time a model is used (MiniLM int8: ~12 s and ~1.7 GB peak for the whole process on a
2-core CPU, docs/benchmarks.md; nothing downloaded), fused by ONNX
Runtime's transformer optimiser (Attention, SkipLayerNorm, BiasGelu, EmbedLayerNorm:
:mod:`rag.onnx_fuse`) before any quantisation, and kept in an on-disk cache keyed by
the weights and library versions (:mod:`rag.onnx_cache`), so later loads read it in
milliseconds; :mod:`rag.onnx_fast` then finds it from the model folder alone, without torch
(:meth:`OnnxEncoderModel.from_graph`). Pooling/normalisation are done here, reading the model's own
sentence-transformers ``Pooling`` configuration. Supported pipelines: ``Transformer → Pooling
(mean | cls | max) [→ Normalize]``; anything else is refused with a clear error.

Example:
    (Not run as a doctest: needs a SentenceTransformer folder; the ONNX export takes seconds.)
    >>> model = OnnxEncoderModel(SentenceTransformer(path), quantize=True)   # doctest: +SKIP
    >>> model.encode(["what is BM25?"]).shape                               # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import copy
import logging
import tempfile
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from indexes.errors import RagError
from rag import onnx_cache
from rag.onnx_fuse import fuse as fuse_graph

_POOLING = ("mean", "cls", "max")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_PROBE = ("a probe sentence that is longer than the other one", "short")  # fused vs unfused check (rag.onnx_fuse)
OPSET = 17
_CHUNK = 256  # groups tokenised at a time (bounds the token arrays held while threads run)
_LOCK = threading.Lock()

log = logging.getLogger(__name__)


class OnnxBackendError(RagError):
    """The model cannot run on the ONNX backend (missing package or unsupported pipeline)."""

    code = "onnx_backend"


def _pipeline(st_model) -> tuple[object, str]:
    """The transformer module and pooling mode of ``st_model``, or an error naming what is unsupported."""
    names = [type(m).__name__ for m in st_model]
    if len(names) < 2 or names[0] != "Transformer" or names[1] != "Pooling" or any(n != "Normalize" for n in names[2:]):
        raise OnnxBackendError(f"the ONNX backend runs Transformer → Pooling [→ Normalize] encoders; this one is {' → '.join(names)}: "
                               "use --encoder-backend torch")
    pooling = st_model[1]
    mode = pooling.get_config_dict().get("pooling_mode")
    if mode not in _POOLING or not pooling.get_config_dict().get("include_prompt", True):
        raise OnnxBackendError(f"the ONNX backend supports {', '.join(_POOLING)} pooling over all tokens; this encoder uses "
                               f"{mode!r}: use --encoder-backend torch")
    return st_model[0], mode


class OnnxEncoderModel:
    """``encode(texts) → (B, d)`` unit vectors, equal to the PyTorch encoder's (fp32: to ~1e-6).

    The object pickles without its session (the serialized graph, tokenizer and pooling travel),
    so worker processes can rebuild it without torch: :class:`PassagePool`.

    Args:
        st_model: a loaded ``SentenceTransformer`` (its weights, tokenizer and pooling are used).
        quantize: dynamic int8 quantisation of the linear layers (``onnx-int8``); texts then
            always run one per call (see the module docstring).
        threads: intra-op threads per call; 1 lets several encoder threads use one core each.
        fuse: fuse the transformer graph before quantising (:mod:`rag.onnx_fuse`); ``False``
            exports the plain graph (the pre-fusion export, kept for A/B measurements).
    """

    def __init__(self, st_model, quantize: bool = False, threads: int = 1, fuse: bool = True) -> None:
        _import_ort()
        transformer, self.pooling = _pipeline(st_model)
        self.tokenizer = st_model.tokenizer
        self.max_length = int(st_model.max_seq_length)
        self.input_names = [k for k in _INPUTS if k in self.tokenizer("a b")]
        self.threads = threads
        self.quantized = quantize
        self.key = key = onnx_cache.graph_key(onnx_cache.model_digest(transformer.auto_model), quantize=quantize,
                                              inputs=tuple(self.input_names), opset=OPSET, fused=fuse)
        cached = onnx_cache.read_graph(key)
        if cached is not None:
            try:
                self.graph, self.session = cached, _session(cached, threads)
                return
            except Exception as exc:  # a damaged file (ONNX Runtime raises its own types): export again
                log.debug("cached ONNX graph %s unusable (%s); exporting again", key, exc)
        with tempfile.TemporaryDirectory(prefix="rag-onnx-") as tmp:
            path = self._export(transformer.auto_model, Path(tmp) / "model.onnx")
            if fuse and self._fuse(transformer.auto_model, path, Path(tmp) / "model-fused.onnx"):
                path = Path(tmp) / "model-fused.onnx"
            if quantize:
                path = _quantize(path, Path(tmp) / "model-int8.onnx")
            self.graph = path.read_bytes()  # the serialized model (MiniLM: ~90 MB fp32, ~23 MB int8)
        self.session = _session(self.graph, threads)
        onnx_cache.write_graph(key, self.graph)

    @classmethod
    def from_graph(cls, graph: bytes, tokenizer, *, pooling: str, inputs: Sequence[str], max_length: int,
                   quantize: bool, threads: int, key: str) -> OnnxEncoderModel:
        """An encoder from a serialized graph and a tokenizer, without torch (:mod:`rag.onnx_fast`)."""
        self = cls.__new__(cls)
        self.tokenizer, self.pooling, self.max_length = tokenizer, pooling, int(max_length)
        self.input_names, self.threads, self.quantized, self.key = list(inputs), threads, quantize, key
        self.graph, self.session = graph, _session(graph, threads)
        return self

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("session", "_single")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.session = _session(self.graph, self.threads)

    def _export(self, auto_model, path: Path) -> Path:
        import torch

        names = self.input_names

        class LastHidden(torch.nn.Module):  # the model's public forward, returning a plain tensor
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, *inputs):
                return self.model(**dict(zip(names, inputs))).last_hidden_state  # (B, T, d)

        sample = self.tokenizer(["a short query", "a b"], padding=True, return_tensors="pt")
        axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]}
        model = _eager_copy(auto_model)
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
                torch.onnx.export(LastHidden(model), tuple(sample[n] for n in names), str(path), input_names=names,
                                  output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        except Exception as exc:
            raise OnnxBackendError(f"cannot export the encoder to ONNX ({type(exc).__name__}: {exc}): use --encoder-backend torch") from None
        return path

    def _fuse(self, auto_model, path: Path, out: Path) -> bool:
        """Fuse the exported ``path`` into ``out`` (:func:`rag.onnx_fuse.fuse`); ``False``: keep ``path``."""
        enc = self.tokenizer(list(_PROBE), padding=True, return_tensors="np")
        probe = {n: enc[n].astype(np.int64) for n in self.input_names}  # (2, T), padded: masking is compared too
        name = auto_model.config.name_or_path or type(auto_model).__name__
        return fuse_graph(path, out, auto_model.config, probe, name)

    def encode(self, texts: Sequence[str], batch_size: int = 1) -> np.ndarray:
        """(B, d) float32 unit vectors; length-sorted groups of ``batch_size`` (1: no padding at all).

        A quantised model runs one text per call whatever ``batch_size`` says, so that a vector
        never depends on the texts beside it (its activation scales are per call). With
        ``threads`` > 1 and several groups, ``threads`` groups run at once, each on one intra-op
        thread (a second session): one text's small matrices do not keep two cores busy, two texts
        do (SciFact windows, int8: 20.6-22.4 against 12.9-14.1 windows/s on 2 cores). A group's
        vectors are those of the same group run alone (measured: the same bits).
        """
        batch_size = 1 if self.quantized else batch_size
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        groups = [order[start : start + batch_size] for start in range(0, len(texts), batch_size)]
        if not groups:
            return np.zeros((0, 0), np.float32)
        out: np.ndarray | None = None
        pool = ThreadPoolExecutor(self.threads) if self.threads > 1 and len(groups) > 1 else None
        try:
            for chunk in range(0, len(groups), _CHUNK):
                rows = groups[chunk : chunk + _CHUNK]
                # tokenised here, in the calling thread: a tokenizer's padding/truncation state is not thread-safe
                feeds = [self._tokenize([texts[i] for i in idx]) for idx in rows]
                if pool is None:
                    results = [self._forward(feed, self.session) for feed in feeds]
                else:
                    session = self._single_session()
                    results = list(pool.map(lambda feed: self._forward(feed, session), feeds))
                for idx, vectors in zip(rows, results):
                    out = np.zeros((len(texts), vectors.shape[1]), np.float32) if out is None else out
                    out[idx] = vectors  # (b, d)
        finally:
            if pool is not None:
                pool.shutdown()
        return out

    def _single_session(self):
        """A session of the same graph on one intra-op thread, for groups run side by side (built once)."""
        with _LOCK:
            if self.__dict__.get("_single") is None:
                self._single = _session(self.graph, 1)
        return self._single

    def _tokenize(self, texts: list[str]):
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")

    def _forward(self, enc, session) -> np.ndarray:
        """(B, d) pooled unit vectors of tokenised texts ``enc`` through ``session``."""
        hidden = session.run(None, {n: enc[n].astype(np.int64) for n in self.input_names})[0]  # (B, T, d)
        mask = enc["attention_mask"][..., None].astype(np.float32)  # (B, T, 1)
        if self.pooling == "mean":
            pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)  # (B, d)
        elif self.pooling == "cls":
            pooled = hidden[:, 0]  # (B, d)
        else:
            pooled = np.where(mask > 0, hidden, -1e9).max(1)  # (B, d)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _eager_copy(auto_model):
    """An eval-mode copy of ``auto_model`` with the plain ("eager") attention, for the export.

    PyTorch's fused ``scaled_dot_product_attention`` (transformers' default) is exported as an
    operator sequence ONNX Runtime's optimiser does not recognise as attention; the eager
    implementation is the textbook pattern it fuses (:mod:`rag.onnx_fuse`). Same function, same
    weights: the caller's model is left as it was. A model without an eager implementation is
    exported as it is.
    """
    model = copy.deepcopy(auto_model).eval()
    try:
        model.set_attn_implementation("eager")
    except (AttributeError, ValueError, NotImplementedError) as exc:
        log.debug("exporting %s with its own attention (%s)", type(model).__name__, exc)
    return model


def _import_ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise OnnxBackendError("the ONNX backend needs onnxruntime and onnx, dependencies of rag-toolkit: reinstall it "
                               "(pip install 'onnxruntime>=1.17' 'onnx>=1.16' 'ml_dtypes>=0.5'), or use --encoder-backend torch") from None
    return ort


def _session(graph: bytes, threads: int):
    ort = _import_ort()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _quantize(fp32: Path, out: Path) -> Path:
    """Dynamic int8 weights, one scale per output channel (per-tensor scales lost ~4% cosine on MiniLM)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.quant_utils import add_pre_process_metadata

    # quantize_dynamic warns through the root logger unless the model is tagged as pre-processed.
    # For this graph, pre-processing without optimisation is only the ONNX shape inference that
    # quantize_dynamic runs itself: running it gave the same int8 outputs, 6 s later. So the
    # export is tagged; no logger level is changed here.
    model = onnx.load(str(fp32))
    add_pre_process_metadata(model)
    onnx.save(model, str(fp32))
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        # DefaultTensorType: the outputs of fused contrib operators (Attention, SkipLayerNormalization)
        # have no type after ONNX shape inference; they are float (onnxruntime 1.17 neither needs nor reads the option).
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:  # its module-level logging.info() calls logging.basicConfig() on an unconfigured root: undo that
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
    return out
