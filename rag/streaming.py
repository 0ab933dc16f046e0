"""An answer as a stream: text pieces as the generator decodes them, then the whole :class:`Answer`.

This is the one iterator behind ``POST /answer`` with ``"stream": true`` (and usable by any other
front end). The iteration is pull-based: a piece is decoded only when the consumer asks for the
next one, so a consumer that stops iterating and calls ``close()`` (a client went away) stops
generation at once; nothing runs on in the background.

- causal LM (:class:`~rag.pipeline.AnswerStream`): one piece per decoded token (fewer when a
  token ends inside a multi-byte character or could start a stop string);
- Fusion-in-Decoder reader: the whole answer as one piece (the decoder's beam search returns
  the text at once);
- extractive: the quoted sentences as one piece.

The last item is always the :class:`~rag.pipeline.Answer`, equal to what
:func:`rag.pipeline.ask` (or :func:`~rag.pipeline.ask_fid`) returns for the same inputs.

Example:
    >>> for item in answer_events("why is the sky blue", index, AskConfig(k=3), generator=gen):  # doctest: +SKIP
    ...     print(item if isinstance(item, str) else item.citations, end="")
"""

from __future__ import annotations

from collections.abc import Iterator

from rag.pipeline import Answer, AnswerStream, AskConfig, ask_fid


def answer_events(question: str, index, config: AskConfig = AskConfig(), generator=None, reader=None,
                  states=None) -> Iterator[str | Answer]:
    """Text pieces of the answer to ``question``, then the :class:`Answer` itself.

    Args:
        question: the question text.
        index: an open :class:`rag.index.Index`.
        config: retrieval and decoding settings.
        generator: a causal LM (:class:`~rag.generation.generator.Generator`), or ``None``.
        reader: a FiD answerer (:class:`rag.fid.answer.FiDAnswerer`); takes precedence over
            ``generator``. With neither, the answer is extractive.
        states: opened passage states for ``config.kv_cache`` (see :func:`rag.pipeline.ask`).

    Yields:
        ``str`` pieces whose concatenation is the answer text (before surrounding whitespace is
        stripped), then one :class:`Answer`.

    Raises:
        InputError: an empty question, or an option the model cannot serve (see ``ask``).
    """
    if reader is not None:
        answer = ask_fid(question, index, reader, config)
        yield answer.answer
        yield answer
        return
    stream = AnswerStream(question, index, generator, config, states)
    yield from stream  # close() is passed on to the decoding loop, which then stops
    assert stream.answer is not None
    yield stream.answer
