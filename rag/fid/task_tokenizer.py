"""A small task tokenizer trained on the fly, with every digit its own token.

Training a reader from random initialisation is much easier with a vocabulary of a few thousand
word pieces than with a 30k one (a smaller softmax, more updates per embedding), and with digits
split one per token a 4-digit code is 4 tokens the decoder can copy one at a time, whatever the
value (held-out codes are then made of seen tokens). Digits are word-piece continuations
(``4417`` → ``4 ##4 ##1 ##7``), so decoding gives back ``"4417"``. This is the WordPiece model of BERT (Wu et al.
2016, arXiv:1609.08144) trained with Hugging Face ``tokenizers``, with T5's special-token ids
(``<pad>`` = 0, ``</s>`` = 1, ``<unk>`` = 2) so the T5 config defaults apply.

Example:
    >>> tok = train_task_tokenizer(["The access code is 4417."] * 10, vocab_size=200)
    >>> tok.convert_ids_to_tokens(tok("code 4417", add_special_tokens=False)["input_ids"])
    ['code', '4', '##4', '##1', '##7']
"""

from __future__ import annotations

from collections.abc import Iterable

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")


def train_task_tokenizer(texts: Iterable[str], vocab_size: int = 4000):
    """Train a lower-cased WordPiece tokenizer on ``texts``; returns a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS))
    tok.train_from_iterator(texts, trainer)
    # Keep pieces without digits, then add the 20 single-digit pieces: numbers split per digit.
    learned = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    pieces = [t for t, _ in learned if not any(c.isdigit() for c in t)]
    pieces += [d for d in "0123456789"] + [f"##{d}" for d in "0123456789"]
    tok.model = models.WordPiece(vocab={t: i for i, t in enumerate(pieces)}, unk_token="<unk>")
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
