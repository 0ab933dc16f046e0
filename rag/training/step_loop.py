"""The hand-written optimisation loop shared by the generator trainers (FiD reader, decoder).

Both train a model of ours (not a sentence-transformers one) from batches of QA examples:
AdamW, linear warmup then cosine decay to a floor, gradient clipping, seeded epoch shuffles (a
``random.Random(cfg.seed)`` of its own; the global ``random`` state is never touched),
periodic dev evaluation, checkpoints and an optional wall-clock limit. What differs — how a
batch becomes a loss, how the dev set is scored, how a checkpoint is written — comes in as
callables, so :func:`rag.fid.train.train_reader` and
:func:`rag.generation.train.train_generator` keep only their model-specific parts.

History rows are ``{step, loss, lr, elapsed_s}`` plus the evaluation's keys (``em, f1, n``)
at evaluation steps.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import torch

from rag.training.result import TrainResult


class LoopConfig(Protocol):
    """The optimisation fields both trainers' configurations carry."""

    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    min_lr_ratio: float
    weight_decay: float
    max_grad_norm: float
    eval_every: int
    checkpoint_every: int
    time_limit_s: float | None
    seed: int


@contextlib.contextmanager
def isolated_torch_rng(seed: int, model: torch.nn.Module) -> Iterator[None]:
    """Seed torch's generators for the block, then restore them as they were.

    Dropout and LoRA's initialisation draw from torch's global generators, which take no
    generator object; this keeps a training run reproducible without changing the caller's
    random state (CPU, and the CUDA devices ``model`` lives on).
    """
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices):
        torch.random.default_generator.manual_seed(seed)
        for d in devices:
            with torch.cuda.device(d):
                torch.cuda.manual_seed(seed)
        yield


@contextlib.contextmanager
def kept_global_rng() -> Iterator[None]:
    """Put Python's, NumPy's and torch's global generator states back after the block.

    For blocks that run a dependency which seeds them itself (the transformers ``Trainer`` calls
    ``set_seed``): the run stays reproducible and the caller's random state is not changed.
    """
    import numpy as np

    py_state, np_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


@contextlib.contextmanager
def trainer_console(trainer, progress: bool) -> Iterator[None]:
    """Keep a transformers ``Trainer``'s chatter off standard output for the block.

    The Trainer prints its logged dicts (``{'loss': …}``, ``{'eval_…': …}``, ``{'train_runtime': …}``)
    on stdout (``PrinterCallback`` without progress bars, ``tqdm.write`` with them); our commands keep
    stdout for their summary and send progress to stderr. Without ``progress`` the dicts are dropped
    (the run's ``training.json`` records the curves); with it they go to stderr beside the bars.
    """
    import sys

    from transformers.trainer_callback import PrinterCallback

    if not progress:
        trainer.remove_callback(PrinterCallback)
    with contextlib.redirect_stdout(sys.stderr):
        yield


def lr_lambda(step: int, cfg: LoopConfig) -> float:
    """Multiplier of ``lr`` at ``step``: linear warmup, then cosine decay to ``min_lr_ratio``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def run_steps(params: Sequence[torch.nn.Parameter], cfg: LoopConfig, n_train: int,
              batch_loss: Callable[[list[int]], torch.Tensor], evaluate: Callable[[], dict],
              checkpoint: Callable[[Path], None], out_dir: Path,
              log: Callable[[dict], None] | None = None) -> TrainResult:
    """Optimise ``params`` for ``cfg.steps`` steps (or until ``cfg.time_limit_s``).

    ``batch_loss`` maps training-example indices (epochs of a shuffle seeded by ``cfg.seed``) to
    a scalar loss; ``evaluate`` runs at every ``eval_every`` steps, at the
    last step and when time runs out; ``checkpoint(out_dir / "checkpoint-S")`` every
    ``checkpoint_every`` steps (0: never). The caller writes the final model and history.
    """
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_lambda(s, cfg))
    rng = random.Random(cfg.seed)
    order: list[int] = []
    history: list[dict] = []
    start, step = time.perf_counter(), 0
    while step < cfg.steps:
        if len(order) < cfg.batch_size:
            order += rng.sample(range(n_train), n_train)  # epochs of a seeded shuffle
        batch = order[: cfg.batch_size]
        del order[: cfg.batch_size]
        loss = batch_loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        opt.step()
        sched.step()
        step += 1
        row = {"step": step, "loss": loss.item(), "lr": sched.get_last_lr()[0], "elapsed_s": time.perf_counter() - start}
        out_of_time = cfg.time_limit_s is not None and row["elapsed_s"] > cfg.time_limit_s
        if step % cfg.eval_every == 0 or step == cfg.steps or out_of_time:
            row |= evaluate()
        history.append(row)
        if log is not None and ("em" in row or step % 50 == 0):
            log(row)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            checkpoint(out_dir / f"checkpoint-{step}")
        if out_of_time:
            break
    return TrainResult(steps=step, seconds=time.perf_counter() - start, history=tuple(history))
