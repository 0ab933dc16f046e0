"""LUMEN: precomputed passage memory from the first encoder layers, live layers at question time.

LUMEN (de Jong et al., "Pre-computed memory or on-the-fly encoding? A hybrid approach to
retrieval augmentation makes the most of your compute", ICML 2023, arXiv:2301.10448, §3) splits
the FiD encoder's ``N_layers`` layers into a *memory* encoder (the first ``N_layers − K``) and a
*live* encoder (the last ``K``):

    M_n = MemEnc(p_n)                        # (Lp, d) per passage, question-agnostic: precomputed offline
    H_q = MemEnc(q)                          # (Lq, d) the question through the same memory layers
    G_n = LiveEnc([H_q ; M_n])               # (Lq + Lp, d) conditioned on the question, at query time
    y   = Dec([G_1 ; ... ; G_N])             # fusion in the decoder, as in FiD

so question-time encoder cost falls from ``N_layers`` to about ``K`` layers per passage token. The
paper's question encoder is a separately fine-tuned copy of the memory layers; here the question
goes through the memory layers themselves, which keeps one set of weights.
With ``K = N_layers`` the memory is the token embeddings and LUMEN equals FiD exactly; the tests
check that to 1e-4.

The layers are the model's own ``T5Block`` modules called through their public ``forward`` with
the relative position bias from the first block's ``compute_bias`` and the mask from
``transformers.masking_utils.create_bidirectional_mask``, exactly the arguments ``T5Stack.forward``
passes them (:func:`rag.compat.transformers.run_t5_blocks`, the one place that knows the stack); ``[H_q ; M_n]`` is joined without a gap (:func:`rag.fid.inputs.join_question_passages`),
so relative positions match FiD's ``q ++ p`` rows.

Example:
    (Not run as a doctest: needs a loaded T5-family model.)
    >>> enc = LumenEncoder(model, live_layers=2)          # doctest: +SKIP
    >>> reader = FiDReader(model, tokenizer, encoder=enc) # doctest: +SKIP
"""

from __future__ import annotations

import torch

from indexes.errors import InputError
from rag.compat.transformers import run_t5_blocks, t5_blocks
from rag.fid.inputs import FiDInputs, join_question_passages


class LumenEncoder:
    """Question-time LUMEN encoder over a T5-family model's encoder stack.

    Args:
        model: the encoder-decoder; its ``get_encoder()`` must expose ``embed_tokens``, ``block``,
            ``final_layer_norm`` and ``dropout`` (every T5-family stack does).
        live_layers: ``K``, the number of last encoder layers run at question time (1..N_layers).

    Raises:
        InputError: ``live_layers`` is outside ``1..N_layers``.
    """

    def __init__(self, model, live_layers: int) -> None:
        self.model = model
        self.stack = model.get_encoder()
        self.blocks = t5_blocks(self.stack)
        self.n_layers = len(self.blocks)
        if not 1 <= live_layers <= self.n_layers:
            raise InputError(f"--live-layers {live_layers}: must be between 1 and the encoder's {self.n_layers} layers")
        self.live_layers = live_layers
        self.memory_layers = self.n_layers - live_layers

    def _run(self, h: torch.Tensor, mask: torch.Tensor, blocks) -> torch.Tensor:
        """Run ``blocks`` over ``h`` ``(R, T, d)`` with padding ``mask`` ``(R, T)``, as ``T5Stack.forward`` does."""
        return run_t5_blocks(self.stack, h, mask, blocks)  # (R, T, d)

    def memory(self, passage_ids: torch.Tensor, passage_mask: torch.Tensor) -> torch.Tensor:
        """Memory states of passages encoded alone: ``(P, Lp)`` ids → ``(P, Lp, d)``.

        These are what :mod:`indexes.lumen_store` keeps; they depend on the model, ``K`` and the
        passage tokenization only, never on a question.
        """
        ids = passage_ids.to(self.model.device)
        h = self.stack.dropout(self.stack.embed_tokens(ids))  # (P, Lp, d)
        return self._run(h, passage_mask.to(h.device), self.blocks[: self.memory_layers])

    def encode(
        self, question_ids: torch.Tensor, question_mask: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Live encoding of ``[H_q ; M_n]`` for every passage.

        Args:
            question_ids: ``(B, Lq)`` question ids; question_mask: ``(B, Lq)`` bool.
            memory: ``(B, N, Lp, d)`` passage memory; memory_mask: ``(B, N, Lp)`` bool.

        Returns:
            ``(B, N·L, d)`` encoder states and their ``(B, N, L)`` mask, ``L = Lq + Lp``.
        """
        B, N, Lp, d = memory.shape
        device = self.model.device
        q_mask = question_mask.to(device)
        hq = self.stack.dropout(self.stack.embed_tokens(question_ids.to(device)))  # (B, Lq, d)
        hq = self._run(hq, q_mask, self.blocks[: self.memory_layers])  # (B, Lq, d)
        memory = memory.to(device=device, dtype=hq.dtype)
        x, m = join_question_passages(hq, q_mask, memory, memory_mask.to(device))  # (B, N, L, d), (B, N, L)
        L = x.shape[2]
        h = self._run(x.reshape(B * N, L, d), m.reshape(B * N, L), self.blocks[self.memory_layers :])
        h = self.stack.dropout(self.stack.final_layer_norm(h))  # (B·N, L, d)
        return h.reshape(B, N * L, d), m  # (B, N·L, d), (B, N, L)

    def __call__(self, inputs: FiDInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """The :class:`rag.fid.reader.PassageEncoder` interface: uses ``inputs.memory`` or computes it."""
        memory = inputs.memory
        if memory is None:
            B, N, Lp = inputs.passage_ids.shape
            memory = self.memory(inputs.passage_ids.reshape(B * N, Lp), inputs.passage_mask.reshape(B * N, Lp))
            memory = memory.reshape(B, N, Lp, -1)  # (B, N, Lp, d)
        h, m = self.encode(inputs.question_ids, inputs.question_mask, memory, inputs.passage_mask)
        return h, inputs.decoder_mask(m)  # (B, N·L, d), (B, N·L)

    def freeze_memory_layers(self) -> list[torch.nn.Parameter]:
        """Stop gradients into what the stored memory depends on: the memory layers and the embeddings.

        T5 ties the token embeddings to the decoder's input and output embeddings, so those are
        frozen too; the live layers, the final layer norm and the rest of the decoder stay trainable.
        Returns the parameters that were frozen.
        """
        frozen = [p for b in self.blocks[: self.memory_layers] for p in b.parameters()]
        frozen += list(self.stack.embed_tokens.parameters())  # block 0 (if memory) holds the shared position bias
        for p in frozen:
            p.requires_grad_(False)
        return frozen
