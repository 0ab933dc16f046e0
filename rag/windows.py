"""Token windows: cut a passage into pieces that each fit a bi-encoder's input, never truncating.

A transformer encoder reads at most ``max_seq_length`` word pieces (256 for all-MiniLM-L6-v2)
and silently drops the rest, while passages are cut by words (512 by default) for BM25 and for
readers. So the dense side encodes each passage as windows of at most ``max_seq_length`` pieces
(special tokens and the passage prefix included) that overlap by ``overlap`` pieces, and scores
the passage by its best window (MaxP):

    score(q, p) = max_{w ∈ windows(p)} ⟨E(q), E(w)⟩

Windows start and end on word boundaries (a word is never split across windows unless a single
word is longer than a window), and are cut from the original text by character offsets, so each
window is a verbatim substring of the passage. Every window is re-tokenised and checked to fit.

References:
    Dai, Callan. "Deeper Text Understanding for IR with Contextual Neural Language Modeling."
    SIGIR 2019 (MaxP: a document scores as its best passage).
"""

from __future__ import annotations

import numpy as np

from indexes.errors import RagError


def token_windows(word_start: np.ndarray, budget: int, overlap: int) -> list[tuple[int, int]]:
    """Token spans ``[s, e)`` covering ``n`` tokens with at most ``budget`` tokens each.

    Args:
        word_start: (n,) bool, whether token ``i`` begins a word (token 0 always does).
        budget: most tokens per window (> 0).
        overlap: tokens the next window re-reads before the previous one's end (< budget).

    Example:
        >>> token_windows(np.ones(10, bool), budget=4, overlap=1)
        [(0, 4), (3, 7), (6, 10)]
        >>> token_windows(np.array([1, 0, 0, 1, 0, 1, 1, 0], bool), budget=4, overlap=1)
        [(0, 3), (3, 6), (5, 8)]
    """
    n = int(word_start.size)
    if n <= budget:
        return [(0, n)]
    starts = np.flatnonzero(word_start)  # token positions that begin a word

    def last_start_in(lo: int, hi: int) -> int | None:  # the last word start j with lo < j <= hi
        j = int(np.searchsorted(starts, hi, side="right")) - 1
        return int(starts[j]) if j >= 0 and starts[j] > lo else None

    out: list[tuple[int, int]] = []
    s = 0
    while True:
        e = min(s + budget, n)
        if e < n:
            e = last_start_in(s, e) or e  # end before a word that would not fit whole
        out.append((s, e))
        if e >= n:
            return out
        nxt = max(e - overlap, s + 1)
        s = last_start_in(s, nxt) or e  # the next window starts on a word (without overlap if it must)


def fit_windows(tokenizer, text: str, max_seq_length: int, prefix: str = "", overlap: int = 64) -> list[str]:
    """Pieces of ``text`` that each encode within ``max_seq_length`` tokens with ``prefix`` prepended.

    Args:
        tokenizer: a Hugging Face *fast* tokenizer (offsets and word ids are needed).
        text: the passage text.
        max_seq_length: the encoder's input limit, special tokens included.
        prefix: the passage prefix the encoder prepends (``"passage: "`` for e5).
        overlap: tokens shared by consecutive windows (capped at half a window).

    Returns:
        ``[text]`` when it fits, else its windows (verbatim substrings, in order).

    Raises:
        RagError: the tokenizer is not a fast one, or the prefix leaves no room for text.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise RagError("windowing long passages needs a fast (Rust) tokenizer; this encoder's tokenizer is a slow one")
    special = tokenizer.num_special_tokens_to_add(pair=False)
    n_prefix = len(tokenizer(prefix, add_special_tokens=False)["input_ids"]) if prefix else 0
    budget = max_seq_length - special - n_prefix
    if budget < 8:
        raise RagError(f"the passage prefix {prefix!r} leaves {budget} of {max_seq_length} tokens for text")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    n = len(enc["input_ids"])
    if n <= budget and _fits(tokenizer, prefix + text, max_seq_length):
        return [text]
    offsets = enc["offset_mapping"]
    words = enc.word_ids()
    word_start = np.array([i == 0 or words[i] != words[i - 1] for i in range(n)], dtype=bool)  # (n,)
    pieces: list[str] = []
    for s, e in token_windows(word_start, budget, min(overlap, budget // 2)):
        while True:
            piece = text[offsets[s][0] : offsets[e - 1][1]]
            if e - s <= 1 or _fits(tokenizer, prefix + piece, max_seq_length):
                break
            e -= 1  # re-tokenised differently at the cut (rare): drop a token until it fits
        pieces.append(piece)
    return pieces


def _fits(tokenizer, text: str, max_seq_length: int) -> bool:
    return len(tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"]) <= max_seq_length
