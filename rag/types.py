"""The small protocol that carries results between pieces: :class:`Hit` and :class:`Retriever`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

SearchMode = Literal["bm25", "dense", "hybrid"]


@dataclass(frozen=True)
class Hit:
    """One search result. The same fields appear in ``rag search --json`` and the REST API.

    Attributes:
        id: passage id (the document id, or ``"DOCID#n"`` for the n-th window of a long document).
        doc_id: id of the document the passage came from.
        score: retriever score; comparable only within one ranking.
        title: document title.
        text: passage text.
        metadata: the document's metadata object.
    """

    id: str
    doc_id: str
    score: float
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Retriever(Protocol):
    """Anything that ranks passages for a text query."""

    def search(self, query: str, k: int = 10) -> list[Hit]: ...

    def search_batch(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]: ...
