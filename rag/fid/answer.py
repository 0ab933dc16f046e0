"""Answer a question from retrieved hits with a FiD reader, optionally reading LUMEN memory from the index.

This is the piece ``rag ask --generator T5MODEL --fid [--live-layers K]`` and the REST ``/answer``
route compose with a retriever: hits in, answer text out. With ``live_layers`` the passages'
memory comes from the index's LUMEN store (built by ``rag cache lumen`` with the same model and
``K``), so only the question and the last ``K`` encoder layers run per question (de Jong et al.
2023); without it the reader is plain FiD (Izacard & Grave 2021).

Example:
    (Not run as a doctest: needs a T5 reader folder and an index on disk.)
    >>> fid = FiDAnswerer.load("t5dir", "index", FiDConfig(n_passages=5), live_layers=2)  # doctest: +SKIP
    >>> fid.answer("who wrote Hamlet?", retriever.search("who wrote Hamlet?", k=5))         # doctest: +SKIP
    'shakespeare'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from indexes.errors import IndexFormatError
from indexes.lumen_store import LumenStore
from indexes.passage_store import PassageStore
from indexes.segmented import open_passage_store
from rag.fid.lumen import LumenEncoder
from rag.fid.fido import FiDOConfig
from rag.fid.inputs import passage_text
from rag.fid.memory import attach_memory, open_reader_memory
from rag.fid.reader import FiDConfig, FiDReader
from rag.types import Hit


class FiDAnswerer:
    """A FiD reader bound to an index; LUMEN memory is used when ``memory`` is given.

    Args:
        reader: the FiD reader (its encoder a :class:`LumenEncoder` when ``memory`` is set).
        memory: the index's LUMEN store for this model and ``K``, or None for plain FiD.
        passages: the index's passage store (maps hit ids to memory rows), needed with ``memory``.
    """

    def __init__(self, reader: FiDReader, memory: LumenStore | None = None, passages: PassageStore | None = None) -> None:
        if memory is not None and passages is None:
            raise ValueError("LUMEN memory needs the passage store to map hits to rows")
        self.reader, self.memory, self.passages = reader, memory, passages

    @classmethod
    def load(
        cls, model: str | Path, index_dir: str | Path | None = None, config: FiDConfig = FiDConfig(),
        live_layers: int | None = None, device: str = "cpu", fido: FiDOConfig | None = None,
    ) -> FiDAnswerer:
        """Load the model; with ``live_layers`` also open the index's matching LUMEN store; with
        ``fido`` decode with a :class:`rag.fid.fido.FiDODecoder` (de Jong et al. 2023).

        Raises:
            InputError: the model directory is not loadable, ``live_layers`` is out of range, or
                ``fido``'s groups do not divide the heads.
            IndexFormatError: the index has no LUMEN memory for this model and ``K``.
        """
        answerer = cls.bind(cls.load_reader(model, config, live_layers, device), model, index_dir, live_layers)
        if fido is not None:
            from rag.fid.fido import FiDODecoder, FiDOReader

            answerer.reader = FiDOReader(answerer.reader, FiDODecoder(answerer.reader.model, fido))
        return answerer

    @staticmethod
    def load_reader(model: str | Path, config: FiDConfig = FiDConfig(), live_layers: int | None = None,
                    device: str = "cpu") -> FiDReader:
        """The reader alone (its encoder a :class:`LumenEncoder` with ``live_layers``), to :meth:`bind` to indexes."""
        reader = FiDReader.from_pretrained(model, config, device=device)
        if live_layers is not None:
            reader.encoder = LumenEncoder(reader.model, live_layers)
        return reader

    @classmethod
    def bind(cls, reader: FiDReader, model: str | Path, index_dir: str | Path | None,
             live_layers: int | None = None) -> FiDAnswerer:
        """``reader`` (loaded from ``model``; a :class:`LumenEncoder` inside when ``live_layers``) bound
        to one index's LUMEN memory: one model can serve several indexes.

        Raises:
            IndexFormatError: the index has no LUMEN memory for this model and ``K``.
        """
        if live_layers is None:
            return cls(reader)
        if index_dir is None:
            raise IndexFormatError("--live-layers needs an index with LUMEN memory (`rag cache lumen`)")
        return cls(reader, open_reader_memory(index_dir, model, reader, live_layers), open_passage_store(index_dir))

    def answer(self, question: str, hits: Sequence[Hit], **decoding) -> str:
        """The answer to ``question`` read from the first ``n_passages`` hits (best first); fewer hits
        are read as they are (no empty passage rows to encode and mask)."""
        hits = list(hits)[: self.reader.config.n_passages]
        texts = [passage_text(h.title, h.text) for h in hits]
        inputs = self.reader.tokenize([question], [texts], n_passages=max(1, len(texts)))
        if self.memory is not None:
            rows = self.passages.rows_of([h.id for h in hits])
            if any(r is None for r in rows):
                raise IndexFormatError("a hit is not in this index's passage store; LUMEN memory cannot be read for it")
            inputs = attach_memory(inputs, self.memory, [rows])
        ids = self.reader.generate(inputs, **decoding)
        return self.reader.tokenizer.batch_decode(ids, skip_special_tokens=True)[0].strip()
