"""Which entries of an index directory belong to the index (and may be replaced by a rebuild).

An index directory holds the files the stores write, the generator-state caches that
``rag cache`` adds (``kv/``, ``lumen-<key>/``, each recorded in ``manifest.json``), SQLite's
side files and the hidden temporaries of interrupted atomic writes. Anything else (a user's
``notes.txt``, a sub-folder) is not the index's: :func:`indexes.atomic.atomic_directory`
refuses to replace a folder holding such entries instead of deleting them.

A new kind of index file must be added to :data:`INDEX_FILES` (a rebuild that writes it owns it
anyway; listing it lets a rebuild that no longer writes it replace it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from indexes.bm25_store import POSTINGS_NAME, VOCAB_NAME
from indexes.dense_store import FAISS_NAME, PASSAGES_NAME, VECTORS_NAME
from indexes.manifest import MANIFEST_NAME
from indexes.passage_store import STORE_NAME

#: Files the index stores write at the top of an index directory (format 1), and the folders of
#: commits, segments and tombstones (format 2, :mod:`indexes.commits`).
INDEX_FILES = frozenset({MANIFEST_NAME, STORE_NAME, POSTINGS_NAME, VOCAB_NAME, VECTORS_NAME, PASSAGES_NAME, FAISS_NAME,
                         "commits", "segments", "deletes"})
#: SQLite's journal / write-ahead side files of the passage store.
_SQLITE_SIDE = tuple(f"{STORE_NAME}-{s}" for s in ("journal", "wal", "shm"))
#: Cache folders: ``rag cache build`` (kv/<key>), ``rag cache lumen`` (lumen-<key>, lumen_store.lumen_dir_name).
CACHE_DIR = "kv"
CACHE_PREFIX = "lumen-"


def index_owner(directory: str | Path) -> Callable[[str], bool]:
    """A predicate telling whether an entry name of ``directory`` belongs to the index there.

    Besides the fixed names, the top-level folders of the caches its ``manifest.json`` records
    are the index's (when the manifest is readable).
    """
    recorded: set[str] = set()
    try:
        caches = json.loads((Path(directory) / MANIFEST_NAME).read_text(encoding="utf-8")).get("caches", [])
        recorded = {Path(c["path"]).parts[0] for c in caches if isinstance(c, dict) and c.get("path")}
    except (OSError, ValueError, AttributeError, TypeError, IndexError):
        pass

    def owns(name: str) -> bool:
        return (name in INDEX_FILES or name in _SQLITE_SIDE or name == CACHE_DIR or name.startswith(CACHE_PREFIX)
                or name in recorded or (name.startswith(".") and ".tmp-" in name))

    return owns
