"""Decoding configuration and a single decoding step.

Greedy decoding takes ``argmax_w p(w | x_<t)``. Sampling draws from the distribution reshaped
by a temperature ``τ`` (``softmax(z / τ)``), then truncated to the ``top_k`` most likely tokens
(Fan et al., 2018, arXiv:1805.04833) and to the smallest set whose mass reaches ``top_p``
(nucleus sampling, Holtzman et al., 2020, arXiv:1904.09751). The reshaping reuses transformers'
public logits warpers, so it behaves exactly as ``model.generate`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from indexes.errors import InputError


@dataclass(frozen=True)
class SamplingConfig:
    """How to pick each next token.

    Attributes:
        max_new_tokens: hard limit on generated tokens.
        temperature: ``0`` means greedy decoding; otherwise the softmax temperature ``τ``.
        top_p: nucleus mass ``p`` (``1.0`` disables it).
        top_k: keep the ``k`` most likely tokens (``0`` disables it).
        stop: strings that end the answer; the answer is cut before the first one.
        seed: seed of the sampling RNG, for reproducible samples (``None``: nondeterministic).
    """

    max_new_tokens: int = 256
    temperature: float = 0.0  # greedy by default: answers should be reproducible
    top_p: float = 1.0
    top_k: int = 0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise InputError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise InputError(f"top_k must be >= 0, got {self.top_k}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class TokenSampler:
    """Picks next tokens from logits according to a :class:`SamplingConfig`.

    Example:
        >>> import torch
        >>> TokenSampler(SamplingConfig()).pick(torch.tensor([0.1, 2.0, -1.0]))
        1
    """

    def __init__(self, config: SamplingConfig, device: torch.device | str = "cpu") -> None:
        from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.config = config
        self.warpers = LogitsProcessorList()
        if not config.greedy:
            self.warpers.append(TemperatureLogitsWarper(config.temperature))
            if config.top_k > 0:
                self.warpers.append(TopKLogitsWarper(config.top_k))
            if config.top_p < 1.0:
                self.warpers.append(TopPLogitsWarper(config.top_p))
        self.rng = torch.Generator(device=device)
        if config.seed is not None:
            self.rng.manual_seed(config.seed)
        else:
            self.rng.seed()

    def pick(self, logits: torch.Tensor) -> int:
        """Next token id from the logits of the last position, (V,)."""
        if self.config.greedy:
            return int(torch.argmax(logits))
        z = self.warpers(None, logits.float().reshape(1, -1))  # (1, V)
        probs = torch.softmax(z, dim=-1)  # (1, V)
        return int(torch.multinomial(probs, 1, generator=self.rng))
