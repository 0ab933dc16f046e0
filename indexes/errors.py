"""User-facing error types shared by every layer.

A :class:`RagError` carries a message meant for the person at the keyboard: it names the file,
line or field at fault and what to do. The CLI prints it on one line and exits non-zero; the
service maps it to a 4xx JSON body. Anything that is *not* a ``RagError`` is a bug.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class of every error whose message is written for the user."""

    #: Suggested HTTP status when this error crosses the service boundary.
    http_status: int = 400


class IndexNotFoundError(RagError):
    """The index directory does not exist or holds no ``manifest.json``."""

    http_status = 404


class IndexFormatError(RagError):
    """The index exists but was written by an incompatible format version or is damaged."""

    http_status = 409


class InputError(RagError):
    """A corpus, query, qrels or label file (or a request field) is invalid."""

    http_status = 422
