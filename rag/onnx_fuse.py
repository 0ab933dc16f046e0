"""Transformer-level fusion of an exported encoder graph before int8 quantisation (ONNX Runtime).

ONNX Runtime's session optimiser fuses attention only while its MatMuls are float: once
``quantize_dynamic`` has turned them into integer products, the attention block stays ~25 small
operators per layer (Reshape, Transpose, Softmax, ...), each a kernel dispatch. The standard ONNX
Runtime recipe is to fuse first, with its transformer optimiser
(``onnxruntime.transformers.optimizer.optimize_model``, public API), and quantise the fused graph:
each layer becomes ``Attention`` (one packed Q·K·V product, scaled softmax and context),
``SkipLayerNormalization`` (residual add + LayerNorm), ``BiasGelu``; the embeddings become one
``EmbedLayerNormalization``. ``quantize_dynamic`` then emits ``QAttention`` and
``QEmbedLayerNormalization``; dynamic quantisation still scales activations once per call, so a
text encoded alone keeps a vector that depends on it only. Measured on a 2-core AMD EPYC
(docs/benchmarks.md, "Fused export and texts side by side"): MiniLM's int8 graph shrinks from 311
to 52 operators after session optimisation, but its speed moved by −6% to +12% across runs: the
time is in the int8 matrix products, which fusion does not change.

The optimiser matches operator patterns; a model whose attention differs from BERT's (a causal
mask, relative positions, ...) may be fused *wrongly*: a BERT configured as a decoder is fused
into bidirectional attention (max |Δ| 0.02 on a tiny random one). So the fused graph is accepted
only when it fused at least one attention block and its output equals the unfused graph's on a
padded probe batch (max |Δ| <= 1e-4 relative to the output's scale; MiniLM: 1.6e-7); otherwise
the unfused graph is kept, with one warning line.

The optimiser of onnxruntime 1.17-1.30 fuses no attention block in the graphs transformers 5
exports (MiniLM's export given to the optimisers of 1.17, 1.18, 1.20, 1.22, 1.23, 1.25, 1.27,
1.29 and 1.30: SkipLayerNorm and BiasGelu only); 1.31 is the first that does (1.32 too). With an older onnxruntime the unfused graph runs, as before
fusion existed, silently (its cache key names the onnxruntime version, so an upgrade re-exports).

Reference: ONNX Runtime, "Transformer Model Optimization Tool"
(onnxruntime/python/tools/transformers, ``optimizer.py``).

Example:
    >>> fuse(Path("model.onnx"), Path("fused.onnx"), auto_model.config, probe, "MiniLM")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

TOLERANCE = 1e-4  # fused vs unfused fp32, relative to max |output|: fusion only reorders float sums (~1e-7)
MIN_ONNXRUNTIME = "1.31"  # the first optimiser that fuses transformers 5's attention export (module docstring)


def available() -> bool:
    """Whether the installed onnxruntime's optimiser fuses the attention of exported encoders."""
    import onnxruntime
    from packaging.version import Version

    return Version(onnxruntime.__version__).release >= Version(MIN_ONNXRUNTIME).release


def optimizer_arguments(config) -> dict:
    """``model_type``, ``num_heads`` and ``hidden_size`` for ``optimize_model`` from a ``transformers`` config.

    BERT's fusions also match RoBERTa, XLM-R, DistilBERT and MiniLM graphs (ONNX Runtime's
    "bert" model type); 0 lets the optimiser read a size from the graph where a config lacks it.
    """
    return {"model_type": "bert", "num_heads": int(getattr(config, "num_attention_heads", 0) or 0),
            "hidden_size": int(getattr(config, "hidden_size", 0) or 0)}


def fuse(fp32: Path, out: Path, config, probe: dict[str, np.ndarray], name: str) -> bool:
    """Write the fused graph of ``fp32`` to ``out``; ``False`` when it cannot be used (one warning
    logged), or when onnxruntime is older than :data:`MIN_ONNXRUNTIME` (no warning).

    Args:
        fp32: the exported float graph (inputs as in ``probe``, output ``last_hidden_state``).
        out: where the fused graph goes.
        config: the model's ``transformers`` configuration (heads and hidden size).
        probe: int64 inputs ``{name: (B, T)}`` of a padded batch, run through both graphs.
        name: the model's name, for the warning.
    """
    if not available():
        log.debug("onnxruntime < %s: %s runs its unfused graph", MIN_ONNXRUNTIME, name)
        return False
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        fused = optimize_model(str(fp32), **optimizer_arguments(config))
        attention = fused.get_fused_operator_statistics().get("Attention", 0)
        if not attention:
            raise _Unfused("it fused no attention block")
        fused.save_model_to_file(str(out))
        delta, scale = _compare(fp32, out, probe)
        if delta > TOLERANCE * max(scale, 1.0):
            raise _Unfused(f"the fused graph's output differs by {delta:.1e} from the exported one")
    except Exception as exc:  # the optimiser raises whatever its pattern matchers hit: keep the unfused graph
        reason = str(exc) if isinstance(exc, _Unfused) else f"{type(exc).__name__}: {exc}"
        log.warning("encoder %s: ONNX Runtime's transformer optimizer cannot fuse this model (%s); "
                    "running the unfused graph (slower)", name, reason)
        return False
    return True


class _Unfused(Exception):
    """The optimiser ran, but its graph is not used (the reason is the message)."""


def _compare(a: Path, b: Path, feed: dict[str, np.ndarray]) -> tuple[float, float]:
    """(max |Δ| between the first outputs of graphs ``a`` and ``b`` on ``feed``, max |output of a|)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    # no session-level rewrites: the comparison is of the two graphs as written
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    ya, yb = (ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]).run(None, feed)[0] for p in (a, b))
    return float(np.abs(ya - yb).max()), float(np.abs(ya).max())
