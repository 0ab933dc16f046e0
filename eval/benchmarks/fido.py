"""Decoder time per answer token: FiDO (multi-query, layer-sparse cross-attention) vs plain FiD.

FiDO's premise (de Jong et al., Findings of ACL 2023, arXiv:2212.08153, §3, Fig. 2): at inference
FiD's decoder is bound by memory bandwidth, because each generated token reads the cross-attention
keys and values of all ``N·L`` encoder states in every layer. Multi-query cross-attention divides
that traffic by ``H`` and layer-sparse cross-attention (every ``K``-th layer) by ``K``.

This measures the decoder alone on a T5-base-shaped random model (12 decoder layers, d = 768,
12 heads of 64, d_ff = 3072; random weights time the same as trained ones) over random encoder
states of ``N`` passages × 250 tokens (FiD's passage length), batch 1, greedy decoding:

* ``fid-generate``: plain FiD through transformers' ``generate`` (what ``rag ask --fid`` runs);
* ``fido G=H K=1``: :class:`rag.fid.fido.FiDODecoder` with nothing pooled or dropped (the same
  function as plain FiD, our decoding loop: separates the loop's cost from FiDO's);
* ``fido G=1 K=1`` (multi-query), ``fido G=H K=6`` (LSA-6) and ``fido G=1 K=6`` (FiDO's decoder).

Per-token time is ``(t(2 + n tokens) − t(2 tokens)) / n``: the cross-key/value projection and the
first step cancel out. Methods are interleaved in every repeat so contention on the shared machine
falls on all of them alike; the ratios (to ``fid-generate`` of the same repeat) are the figure.

Run::

    HF_HUB_OFFLINE=1 .venv/bin/python -m eval.benchmarks.fido --passages 20 50 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time


def _per_token(run, n: int) -> float:
    t = time.perf_counter()
    run(2)
    t2 = time.perf_counter()
    run(2 + n)
    t3 = time.perf_counter()
    return ((t3 - t2) - (t2 - t)) / n


def main(argv: list[str] | None = None) -> dict:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration
    from transformers.modeling_outputs import BaseModelOutput

    from rag.fid.fido import FiDOConfig, FiDODecoder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, nargs="+", default=[20, 50])
    ap.add_argument("--tokens", type=int, default=250, help="encoder states per passage")
    ap.add_argument("--new-tokens", type=int, default=16, help="n: answer tokens timed")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d, H = 768, 12
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=32128, d_model=d, d_kv=64, d_ff=4 * d, num_layers=12, num_decoder_layers=12, num_heads=H,  # 12 encoder layers (unused):
        # generate sizes its cache by num_layers
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0,
    )).eval()
    variants = {"fido G=H K=1": FiDOConfig(None, 1), "fido G=1 K=1": FiDOConfig(1, 1),
                "fido G=H K=6": FiDOConfig(None, 6), "fido G=1 K=6": FiDOConfig(1, 6)}
    decoders = {name: FiDODecoder(model, c).eval() for name, c in variants.items()}

    def fido_run(dec, h, mask):
        def run(T: int) -> None:
            state = dec.start(h, mask)
            ids = torch.zeros(1, 1, dtype=torch.long)
            for _ in range(T):  # fixed length: no stopping at end-of-sequence
                ids = dec.step(ids, state)[:, -1:].argmax(-1)  # (1, 1)
        return run

    def hf_run(h, mask):
        def run(T: int) -> None:
            model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=h), attention_mask=mask.long(),
                           max_new_tokens=T, min_new_tokens=T, do_sample=False, num_beams=1)
        return run

    results = {}
    with torch.no_grad():
        for N in args.passages:
            S = N * args.tokens
            h, mask = torch.randn(1, S, d), torch.ones(1, S, dtype=torch.bool)  # (1, N·L, d)
            runs = {"fid-generate": hf_run(h, mask)} | {k: fido_run(dec, h, mask) for k, dec in decoders.items()}
            for run in runs.values():
                run(2)  # warm-up
            times = {k: [] for k in runs}
            for _ in range(args.repeats):
                for k, run in runs.items():
                    times[k].append(_per_token(run, args.new_tokens))
            ratios = {k: [t / b for t, b in zip(v, times["fid-generate"])] for k, v in times.items()}
            results[f"N={N}"] = {
                k: {"ms_per_token_median": round(1e3 * statistics.median(v), 2),
                    "ratio_to_fid_median": round(statistics.median(ratios[k]), 3),
                    "ratio_range": [round(min(ratios[k]), 3), round(max(ratios[k]), 3)],
                    "cross_kv_MB": round(_cross_kv_bytes(decoders.get(k), S, H, 12) / 1e6, 1)}
                for k, v in times.items()
            }
    out = {"setting": f"T5-base-shaped random decoder (12 layers, d={d}, {H} heads), batch 1, "
                      f"{args.tokens} encoder states per passage, {args.new_tokens} timed tokens, {args.repeats} repeats",
           "hardware": f"{platform.machine()} CPU, torch {torch.__version__}, {torch.get_num_threads()} threads",
           "results": results}
    print(json.dumps(out, indent=1))
    return out


def _cross_kv_bytes(dec, S: int, H: int, layers: int) -> float:
    """fp32 cross keys + values read per generated token."""
    if dec is None:
        return 2 * layers * H * S * 64 * 4
    return 2 * len(dec.cross_layers) * dec.groups * S * 64 * 4


if __name__ == "__main__":
    main()
