"""What one change of a live index did (:mod:`rag.live`): the CLI's one-line summary and the REST response."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.corpus import skipped_note
from rag.wording import counted


@dataclass
class UpdateReport:
    """What one operation changed, for the CLI summary and the REST response."""

    generation: int = 0  # the commit published (the current one when nothing changed)
    added: int = 0  # documents new to the index
    replaced: int = 0  # documents that existed and were replaced whole
    deleted: int = 0  # documents deleted
    not_found: list[str] = field(default_factory=list)  # ids asked to delete that the index does not hold
    passages_added: int = 0
    passages_deleted: int = 0
    segments: int = 0  # segments of the published commit
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # caches that could not follow the change whole
    skipped: int = 0  # bad records skipped (``--skip-bad-lines``)
    first_skipped: str | None = None  # the first of them: "file:line: why"
    unchanged: int = 0  # documents upserted identical to the stored ones (id, title, text, metadata): not rewritten
    committed: bool = False  # a new commit was published; False: nothing to change, no commit written
    no_change: str = ""  # why nothing changed (``committed`` False): "INDEX: nothing to compact (...)"
    segments_merged: int = 0  # compaction: segments of the commit it merged into one (0: not a compaction)
    passages_purged: int = 0  # compaction: deleted passages (tombstones) it dropped
    vectors_purged: int = 0  # compaction: vector rows of those passages it dropped
    bytes_before: int = 0  # compaction: bytes of the index folder before and after (old files a reader
    bytes_after: int = 0  # still holds stay until it lets go, see :func:`indexes.commits.collect_garbage`)

    def summary(self, action: str) -> str:
        """The one-line result: what ``action`` changed and the commit it published; when it
        published none, why, and the commit the index is still at."""
        missing = f", {counted(len(self.not_found), 'id')} not found" if self.not_found else ""
        same = f", {self.unchanged} unchanged" if self.unchanged else ""
        if not self.committed:
            return (f"{self.no_change}{missing}; "
                    f"no new commit, the index is still at commit {self.generation}")
        if self.segments_merged:
            vectors = f" ({counted(self.vectors_purged, 'vector row')})" if self.vectors_purged else ""
            return (f"{action}: merged {counted(self.segments_merged, 'segment')} into 1, purged "
                    f"{counted(self.passages_purged, 'deleted passage')}{vectors}, folder {_size(self.bytes_before)} -> "
                    f"{_size(self.bytes_after)}; commit {self.generation}, {counted(self.segments, 'segment')}, {self.seconds:.1f}s")
        return (f"{action}: {self.added} added, {self.replaced} replaced, {self.deleted} deleted documents{same} "
                f"(+{self.passages_added}/-{self.passages_deleted} passages){missing}; commit {self.generation}, "
                f"{counted(self.segments, 'segment')}, {self.seconds:.1f}s{skipped_note(self.skipped, self.first_skipped)}")


def _size(n: int) -> str:
    """``n`` bytes for a summary: ``812 B``, ``12.3 kB``, ``4.1 MB`` (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
