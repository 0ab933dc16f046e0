"""A decoder-only generator: any Hugging Face causal LM (local folder, GGUF file, named model), streamed.

The generator owns the model and its tokenizer and one decoding loop. Prompts reach it either as
a chat (rendered with the tokenizer's chat template when it has one) or as a ready
:class:`~rag.generation.prefill.Prefill` — the logits of the last prompt token plus the KV cache —
which the cached-passage path assembles without running the prompt through the model. The loop
then feeds one token at a time with explicit position ids, so it works after both prefills
(Block-Attention positions are contiguous; TurboRAG's composite positions are not).

Example:
    >>> gen = Generator.load(GeneratorConfig("smollm2"))  # doctest: +SKIP
    >>> print(gen.complete("Name a prime number.", SamplingConfig(max_new_tokens=8)))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch

from rag.generation.sampling import SamplingConfig, TokenSampler

DType = Literal["float32", "float16", "bfloat16"]


@dataclass(frozen=True)
class GeneratorConfig:
    """Which causal LM to load and how.

    Attributes:
        model: a model name as :func:`rag.models.resolve_model` takes it: a local folder (or LoRA
            adapter folder), a ``.gguf`` file, a named model such as ``smollm2``, or an id already
            in the local Hugging Face cache.
        dtype: weights and activations dtype; float32 on CPU (half precision is slow there).
        device: torch device string.
    """

    model: str
    dtype: DType = "float32"
    device: str = "cpu"


class Generator:
    """A loaded causal LM and tokenizer with a streaming decoding loop.

    Args:
        model: a ``transformers`` causal LM in eval mode.
        tokenizer: its tokenizer.
        name: the model id or path the user gave (recorded in caches and answers).
        revision: a content id of the weights (snapshot commit or sha256), when known.
    """

    def __init__(self, model, tokenizer, name: str, revision: str | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.revision = revision
        eos = getattr(model.generation_config, "eos_token_id", None) if model.generation_config else None
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        if tokenizer.eos_token_id is not None:
            eos.append(tokenizer.eos_token_id)
        self.eos_ids = frozenset(eos)

    @classmethod
    def load(cls, config: GeneratorConfig) -> Generator:
        """Load model and tokenizer through :func:`rag.models.load_causal_lm` (never from the network).

        Raises:
            ModelLoadError: the name does not resolve to a causal LM with a tokenizer.
        """
        from rag.models import load_causal_lm

        model, tokenizer, resolved = load_causal_lm(config.model, dtype=config.dtype, device=config.device)
        return cls(model, tokenizer, name=config.model, revision=resolved.revision)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without added special tokens (templates place those)."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def chat_text(self, user: str, system: str | None = None) -> str:
        """``user`` (and ``system``) rendered as one prompt: the chat template when present."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        bos = tok.bos_token or ""
        return bos + (f"{system}\n\n" if system else "") + user

    @torch.inference_mode()
    def forward(self, ids: list[int], positions: torch.Tensor | None = None, cache=None, last_only: bool = False):
        """One forward pass over ``ids``; returns ``(logits (L, V), cache)``.

        ``last_only`` computes the output projection for the last token only, (1, V): a prefill
        needs nothing else, and over a 30k vocabulary the projection of every prompt token costs
        as much as a quarter of a small model's forward pass.
        """
        x = torch.tensor([ids], device=self.device)  # (1, L)
        pos = None if positions is None else positions.reshape(1, -1).to(self.device)  # (1, L)
        from rag.compat.transformers import causal_lm_forward

        logits, cache = causal_lm_forward(self.model, x, pos, cache, logits_to_keep=1 if last_only else 0)
        return logits[0], cache  # (L, V) or (1, V)

    @torch.inference_mode()
    def iter_tokens(self, prefill, config: SamplingConfig) -> Iterator[int]:
        """Token ids decoded after ``prefill``; the first is yielded before any further forward pass.

        Stops at an end-of-sequence token (not yielded) or after ``config.max_new_tokens``.
        """
        sampler = TokenSampler(config, device="cpu")
        logits, cache, pos = prefill.logits, prefill.cache, prefill.next_position
        for step in range(config.max_new_tokens):
            token = sampler.pick(logits.float().cpu())
            if token in self.eos_ids:
                return
            yield token
            if step + 1 == config.max_new_tokens:
                return
            out, cache = self.forward([token], torch.tensor([pos]), cache)
            logits, pos = out[-1], pos + 1

    def stream_text(self, tokens: Iterator[int], stop: tuple[str, ...] = ()) -> Iterator[str]:
        """Text pieces of a token stream, cut before the first stop string.

        Up to ``max(len(s) for s in stop) - 1`` characters are held back until they cannot start
        a stop string, so no piece of a stop string is ever emitted.
        """
        ids: list[int] = []
        emitted = ""
        hold = max((len(s) for s in stop), default=1) - 1
        for token in tokens:
            ids.append(token)
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
            if cut >= 0:
                if cut > len(emitted):
                    yield text[len(emitted) : cut]
                return
            safe = text[: len(text) - hold] if hold else text
            if len(safe) > len(emitted) and not safe.endswith("\ufffd"):  # wait for whole characters
                yield safe[len(emitted) :]
                emitted = safe
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        if len(text) > len(emitted):
            yield text[len(emitted) :]

    def complete(self, user: str, config: SamplingConfig = SamplingConfig(), system: str | None = None) -> str:
        """Full text of one answer to a chat prompt (full prefill, no passage cache)."""
        from rag.generation.prefill import Prefill

        ids = self.encode(self.chat_text(user, system))
        logits, cache = self.forward(ids, last_only=True)
        prefill = Prefill(logits=logits[-1], cache=cache, next_position=len(ids), prompt_tokens=len(ids))
        return "".join(self.stream_text(self.iter_tokens(prefill, config), config.stop))

    @torch.inference_mode()
    def sample_texts(self, user: str, n: int, config: SamplingConfig) -> list[str]:
        """``n`` independent samples for one prompt (HyDE's hypothetical documents), decoded as one batch.

        The ``n`` rows share the prompt, so they need no padding: one forward pass per step serves
        all of them (on a CPU, 8 rows cost about 2× one row, not 8×). Row ``i`` has its own
        sampler with seed ``seed + i`` (when ``config.seed`` is set) and stops at its own
        end-of-sequence token, so each sample is the one :meth:`complete` would write with that
        seed (up to the float rounding of a batched matmul).

        Returns:
            ``n`` texts, each cut before its first stop string.
        """
        from dataclasses import replace

        from rag.compat.transformers import causal_lm_forward

        if n < 1:
            return []
        seeds = [None if config.seed is None else config.seed + i for i in range(n)]
        if config.greedy:  # every sample is the same text
            return [self.complete(user, config)] * n
        ids = self.encode(self.chat_text(user))
        logits, cache = causal_lm_forward(self.model, torch.tensor([ids] * n, device=self.device), None, None,
                                          logits_to_keep=1)  # (n, 1, V)
        samplers = [TokenSampler(replace(config, seed=s), device="cpu") for s in seeds]
        rows: list[list[int]] = [[] for _ in range(n)]
        live = [True] * n
        for step in range(config.max_new_tokens):
            feed = []
            for i in range(n):
                if live[i]:
                    token = samplers[i].pick(logits[i, -1].float().cpu())
                    if token in self.eos_ids:
                        live[i] = False
                    else:
                        rows[i].append(token)
                feed.append(rows[i][-1] if rows[i] else ids[-1])  # finished rows keep stepping; ignored
            if not any(live) or step + 1 == config.max_new_tokens:
                break
            x = torch.tensor(feed, device=self.device).reshape(n, 1)
            pos = torch.full((n, 1), len(ids) + step, device=self.device)
            logits, cache = causal_lm_forward(self.model, x, pos, cache, logits_to_keep=1)
        return ["".join(self.stream_text(iter(r), config.stop)) for r in rows]
