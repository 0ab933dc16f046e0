"""Fine-tune a decoder-only generator with block attention, so training matches cached inference.

Block-Attention (Sun et al., 2024, arXiv:2409.15355, §3.3) reaches full-attention quality only
after fine-tuning with the mask it is served with. Each training sequence is the RAG prompt of
:class:`~rag.generation.prompt.PromptBuilder` followed by the answer,

    x = prefix ‖ b_1 ‖ … ‖ b_k ‖ q ‖ a ‖ eos

attended with :func:`~rag.generation.kv_blocks.block_attention_mask` at
:func:`~rag.generation.kv_blocks.layout_positions` — the functions the one-pass reference
:func:`~rag.generation.kv_blocks.block_mask_logits` uses; the answer continues the question
segment (it sees everything before it, at the positions decoding gives it). The loss is the
answer's negative log-likelihood only,

    loss = − (1/|a|) Σ_{t ∈ a} log p(x_t | x_<t)

With ``composite`` positions or ``see_prefix=False`` this forward *is* the cached path (tested to
1e-4); with the default ``rerotate`` + ``see_prefix`` it is the forward Block-Attention trains, of
which the cached path is the paper's approximation (blocks saw the prefix from distance ``p``).
``attention="full"`` trains the same tokens with the plain causal mask at positions ``0..T-1``,
the baseline of the comparison. Dev exact match decodes greedily through the inference path
itself: :func:`~rag.generation.prefill.cached_prefill` (block) or ``full_prefill`` (full), then
:meth:`Generator.iter_tokens <rag.generation.generator.Generator.iter_tokens>`. ``lora`` trains
low-rank adapters (Hu et al., 2022, arXiv:2106.09685) through peft; ``final/`` is then merged.

Input lines: ``{"question": str, "passages": [str | {"title", "text"}, ...], "answer": str}``.

Example:
    (Not run as a doctest: needs a causal LM folder and QA files; training takes minutes.)
    >>> train_generator(gen, load_generator_jsonl("train.jsonl"), load_generator_jsonl("dev.jsonl"),  # doctest: +SKIP
    ...                 GeneratorTrainConfig(steps=1000), "runs/block", score=em_f1)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import torch

from indexes.atomic import atomic_directory, atomic_write_text
from indexes.errors import InputError
from rag.fid.train import Scorer
from rag.generation.kv_blocks import BlockLayout, block_attention_mask, layout_positions
from rag.generation.prefill import cached_prefill, full_prefill
from rag.generation.prompt import PromptBuilder
from rag.generation.sampling import SamplingConfig
from rag.training.qa_jsonl import qa_rows
from rag.training.result import TrainResult
from rag.training.step_loop import isolated_torch_rng, run_steps

Attention = Literal["block", "full"]
IGNORE = -100  # cross_entropy's ignore_index: no loss on prompt or padding tokens


@dataclass(frozen=True)
class GeneratorExample:
    question: str
    passages: tuple[tuple[str, str], ...]  # (title, text)
    answer: str


@dataclass(frozen=True)
class GeneratorTrainConfig:
    """Optimisation and masking settings (``layout`` must match the one the cache is built with)."""

    attention: Attention = "block"
    layout: BlockLayout = BlockLayout()
    steps: int = 1000
    batch_size: int = 8
    lr: float = 1e-4  # full fine-tuning of a pretrained LM; LoRA and from-scratch models want ~1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine floor, as in the reader trainer
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_answer_tokens: int = 32
    eval_every: int = 250
    eval_examples: int = 100
    checkpoint_every: int = 0  # 0: only the final model
    lora: bool = False
    lora_rank: int = 16
    lora_alpha: int = 32
    seed: int = 0
    time_limit_s: float | None = None


@dataclass(frozen=True)
class TrainingSequence:
    """One tokenised example: ids, positions, labels (T,) and the allowed-attention mask (T, T)."""

    ids: torch.Tensor
    positions: torch.Tensor
    labels: torch.Tensor
    allowed: torch.Tensor


def load_generator_jsonl(path: str | Path) -> list[GeneratorExample]:
    """Read generator QA JSONL; a bad line raises :class:`InputError` naming the file, line and field."""
    out = []
    for where, row in qa_rows(path, (("question", str), ("passages", list), ("answer", str))):
        if not row["passages"] or not row["answer"].strip():
            raise InputError(f"{where}: 'passages' and 'answer' must not be empty")
        ps = []
        for p in row["passages"]:
            if not isinstance(p, (str, dict)):
                raise InputError(f"{where}: each passage must be a string or {{title, text}}")
            ps.append(("", p) if isinstance(p, str) else (str(p.get("title", "")), str(p.get("text", ""))))
        out.append(GeneratorExample(row["question"], tuple(ps), row["answer"]))
    if not out:
        raise InputError(f"{path}: no QA examples")
    return out


def answer_ids(generator, answer: str, max_tokens: int) -> list[int]:
    """Answer tokens as decoding produces them: a leading space after a plain ``Answer:`` prompt
    (none after a chat template's assistant header), cut to ``max_tokens``, then end-of-sequence."""
    text = answer if getattr(generator.tokenizer, "chat_template", None) else " " + answer
    eos = generator.tokenizer.eos_token_id
    eos = eos if eos is not None else min(generator.eos_ids, default=None)
    return generator.encode(text)[:max_tokens] + ([] if eos is None else [eos])


def training_sequence(builder: PromptBuilder, example: GeneratorExample, cfg: GeneratorTrainConfig) -> TrainingSequence:
    """``prefix ‖ blocks ‖ question ‖ answer`` with the block (or causal) mask and positions."""
    seg = builder.segments(example.question, example.passages)
    ans = answer_ids(builder.generator, example.answer, cfg.max_answer_tokens)
    ids = seg.flat() + ans
    T, p, lengths, n_tail = len(ids), len(seg.prefix), [len(b) for b in seg.blocks], len(seg.question) + len(ans)
    if cfg.attention == "block":  # the answer extends the question segment: it sees everything before it
        positions = layout_positions(p, lengths, n_tail, cfg.layout.positions)  # (T,)
        allowed = block_attention_mask(p, lengths, n_tail, cfg.layout.see_prefix)  # (T, T)
    else:
        positions, allowed = torch.arange(T), torch.ones(T, T, dtype=torch.bool).tril()  # (T,), (T, T)
    labels = torch.full((T,), IGNORE)
    labels[T - len(ans) :] = torch.tensor(ans)  # (T,) loss on answer tokens only
    return TrainingSequence(torch.tensor(ids), positions, labels, allowed)


def collate(seqs: Sequence[TrainingSequence], pad_id: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Right-pad to a batch: ids, positions, labels (B, T) and an additive mask (B, 1, T, T).

    Padding rows attend to themselves only (a row with no allowed key would be all ``-inf``)."""
    B, T = len(seqs), max(len(s.ids) for s in seqs)
    ids = torch.full((B, T), pad_id)  # (B, T)
    pos = torch.zeros(B, T, dtype=torch.long)  # (B, T)
    labels = torch.full((B, T), IGNORE)  # (B, T)
    allowed = torch.eye(T, dtype=torch.bool).repeat(B, 1, 1)  # (B, T, T)
    for i, s in enumerate(seqs):
        n = len(s.ids)
        ids[i, :n], pos[i, :n], labels[i, :n] = s.ids, s.positions, s.labels
        allowed[i, :n, :n] = s.allowed
    mask = torch.zeros(B, 1, T, T, dtype=dtype).masked_fill(~allowed[:, None], torch.finfo(dtype).min)  # (B, 1, T, T)
    return {"input_ids": ids, "position_ids": pos, "labels": labels, "attention_mask": mask}


def sequence_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits (B, T, V) of one forward pass through the model's public API with the 4D mask and
    explicit position ids, exactly as :func:`~rag.generation.kv_blocks.block_mask_logits` calls it."""
    device = next(model.parameters()).device
    out = model(input_ids=batch["input_ids"].to(device), position_ids=batch["position_ids"].to(device),
                attention_mask=batch["attention_mask"].to(device), use_cache=False)
    return out.logits


def batch_answer_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """:func:`answer_loss` of :func:`sequence_logits`, with the LM head applied only at the positions
    that predict a labelled token in some row (``logits_to_keep``): the vocabulary projection of every
    prompt position is most of a small model's training compute and none of its loss."""
    labels = batch["labels"]  # (B, T)
    keep = (labels[:, 1:] != IGNORE).any(0).nonzero().squeeze(1)  # (K,) t such that some row labels t+1
    device = next(model.parameters()).device
    out = model(input_ids=batch["input_ids"].to(device), position_ids=batch["position_ids"].to(device),
                attention_mask=batch["attention_mask"].to(device), use_cache=False, logits_to_keep=keep.to(device))
    V = out.logits.shape[-1]  # out.logits: (B, K, V)
    return torch.nn.functional.cross_entropy(out.logits.reshape(-1, V).float(), labels[:, keep + 1].reshape(-1).to(device),
                                             ignore_index=IGNORE)


def answer_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean NLL of the labelled tokens: logits at ``t`` predict the token at ``t+1``."""
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V).float(),
                                             labels[:, 1:].reshape(-1).to(logits.device), ignore_index=IGNORE)


@torch.no_grad()
def generate_answer(generator, builder: PromptBuilder, example: GeneratorExample, cfg: GeneratorTrainConfig) -> str:
    """Greedy answer through the inference path (cached prefill for block attention)."""
    seg = builder.segments(example.question, example.passages)
    prefill = cached_prefill(generator, seg, cfg.layout) if cfg.attention == "block" else full_prefill(generator, seg)
    tokens = generator.iter_tokens(prefill, SamplingConfig(max_new_tokens=cfg.max_answer_tokens + 1))
    return "".join(generator.stream_text(tokens)).strip()


def evaluate_generator(generator, builder: PromptBuilder, examples: Sequence[GeneratorExample], cfg: GeneratorTrainConfig,
                       score: Scorer) -> dict:
    """Greedy-decode ``examples`` and average ``score`` → ``{"em": .., "f1": .., "n": ..}``."""
    was_training = generator.model.training
    generator.model.eval()
    scores = [score(generate_answer(generator, builder, e, cfg), (e.answer,)) for e in examples]
    generator.model.train(was_training)
    n = max(1, len(examples))
    return {"em": sum(s[0] for s in scores) / n, "f1": sum(s[1] for s in scores) / n, "n": len(examples)}


def _save(model, tokenizer, path: Path) -> None:
    # A peft adapter never changes the embeddings here; peft's default ("auto") would look the base
    # model's config up on the Hugging Face Hub to check, and this program never reaches the network.
    kwargs = {"save_embedding_layers": False} if hasattr(model, "peft_config") else {}
    with atomic_directory(path) as tmp:
        model.save_pretrained(tmp, **kwargs)
        tokenizer.save_pretrained(tmp)


def _base_name(name: str) -> str:
    """The base model name an adapter records: a local path made absolute, any other name as given."""
    local = Path(name).expanduser()
    return str(local.resolve()) if local.exists() else name


def train_generator(generator, train: Sequence[GeneratorExample], dev: Sequence[GeneratorExample], cfg: GeneratorTrainConfig,
                    out_dir: str | Path, score: Scorer, builder: PromptBuilder | None = None,
                    log: Callable[[dict], None] | None = None) -> TrainResult:
    """Train ``generator.model`` in place; writes ``out_dir/{final,checkpoint-S}/`` and ``history.json``.

    ``final/`` is a plain HF model directory (LoRA merged), loadable by ``Generator.load``. With
    LoRA, ``adapter/`` (and every ``checkpoint-S/``) is a peft adapter folder that names its base
    model as the user gave it (``smollm2``, a cached id, or an absolute path): a few MB that
    ``rag ask --generator out/adapter`` and ``rag cache build`` load through :mod:`rag.models`.
    """
    with isolated_torch_rng(cfg.seed, generator.model):  # reproducible, and the caller's RNG state is kept
        return _train_generator(generator, train, dev, cfg, out_dir, score, builder, log)


def _train_generator(generator, train: Sequence[GeneratorExample], dev: Sequence[GeneratorExample], cfg: GeneratorTrainConfig,
                    out_dir: str | Path, score: Scorer, builder: PromptBuilder | None = None,
                    log: Callable[[dict], None] | None = None) -> TrainResult:
    out_dir = Path(out_dir)
    builder = builder or PromptBuilder(generator)
    trained = generator.model
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        # LoRA layers are injected into generator.model in place, so the inference path uses them too
        trained = get_peft_model(generator.model, LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
        trained.peft_config["default"].base_model_name_or_path = _base_name(generator.name)
    generator.model.train()
    pad = generator.tokenizer.pad_token_id if generator.tokenizer.pad_token_id is not None else 0
    dtype = next(generator.model.parameters()).dtype

    def batch_loss(indices: list[int]) -> torch.Tensor:
        return batch_answer_loss(generator.model, collate([training_sequence(builder, train[i], cfg) for i in indices], pad, dtype))

    result = run_steps([p for p in generator.model.parameters() if p.requires_grad], cfg, len(train), batch_loss,
                       evaluate=lambda: evaluate_generator(generator, builder, dev[: cfg.eval_examples], cfg, score),
                       checkpoint=lambda path: _save(trained, generator.tokenizer, path), out_dir=out_dir, log=log)
    if cfg.lora:
        _save(trained, generator.tokenizer, out_dir / "adapter")
        generator.model = trained.merge_and_unload()
    generator.model.eval()
    _save(generator.model, generator.tokenizer, out_dir / "final")
    meta = {"config": asdict(cfg), "steps": result.steps, "wall_s": result.seconds, "history": result.history}
    atomic_write_text(out_dir / "history.json", json.dumps(meta, indent=1) + "\n")
    return replace(result, out=out_dir / "final")
