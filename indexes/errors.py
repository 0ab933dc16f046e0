"""User-facing error types shared by every layer; a declared contract, not a naming accident.

A :class:`RagError` carries a message meant for the person at the keyboard: it names the file,
line or field at fault and what to do. The CLI prints it on one line and exits 1; the service
answers ``{"error": {"code", "message"}}`` with the HTTP status that ``service.errors.STATUS``
assigns to the error's ``code``. Anything that is *not* a ``RagError`` is a bug.

Every subclass declares its own :attr:`RagError.code` in its class body: the code is part of the
public REST interface, so renaming a class never changes it (``tests/service/test_error_contract.py``
checks that every error class in the project declares a unique code that has a status).

This module imports nothing from the project, or anything heavy, so any layer can import it
without loading storage code.
"""

from __future__ import annotations

from typing import ClassVar


class RagError(Exception):
    """Base class of every error whose message is written for the user."""

    #: Stable machine-readable code (REST ``error.code``); each subclass declares its own.
    code: ClassVar[str] = "rag_error"


class IndexNotFoundError(RagError):
    """The index directory does not exist or holds no ``manifest.json``."""

    code = "index_not_found"


class IndexFormatError(RagError):
    """The index exists but was written by an incompatible format version or is damaged."""

    code = "index_format"


class InputError(RagError):
    """A corpus, query, qrels or label file (or a request field) is invalid."""

    code = "invalid_input"


class StorageError(RagError):
    """The file system refused a read or write: no space left, read-only, permission denied."""

    code = "storage_unavailable"
