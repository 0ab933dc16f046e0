"""One-line messages for what the file system and SQLite refuse: full disk, read-only, permissions.

Every write in ``indexes/`` (and every read of an index part) goes through these helpers, so a
full disk or a read-only folder is reported as a :class:`~indexes.errors.StorageError` that
names the file and what to do, never as a traceback from ``os``, ``sqlite3`` or safetensors;
a damaged SQLite file is an :class:`~indexes.errors.IndexFormatError` that says to rebuild.

Example:
    >>> import errno
    >>> str(storage_error("out/idx", OSError(errno.ENOSPC, "No space left on device"), "write"))
    'cannot write out/idx: no space left on the device; free space there (or write somewhere else) and run again'
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
from collections.abc import Iterator

from indexes.errors import IndexFormatError, RagError, StorageError

_FULL = "no space left on the device", "free space there (or write somewhere else) and run again"
_READ_ONLY = "the file system is read-only", "choose a folder on a writable file system"
_DENIED = "permission denied", "choose a folder you may write to, or fix its permissions"

#: errno → (what happened, what to do).
_OS_REASONS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: _FULL,
    errno.EDQUOT: ("the disk quota is exceeded", "free space in your quota (or write somewhere else) and run again"),
    errno.EFBIG: ("the file is too large for this file system", "write to another file system"),
    errno.EROFS: _READ_ONLY,
    errno.EACCES: _DENIED,
    errno.EPERM: _DENIED,
}

#: SQLite primary result codes that mean "the disk", not "the data" (sqlite3.Error.sqlite_errorname).
_SQLITE_REASONS: dict[str, tuple[str, str]] = {
    "SQLITE_FULL": _FULL,
    "SQLITE_READONLY": _READ_ONLY,
    "SQLITE_CANTOPEN": ("SQLite cannot open or create the file", "check that its folder exists and is writable"),
    "SQLITE_PERM": _DENIED,
    "SQLITE_IOERR": ("a disk I/O error occurred", "check the disk and free space, then run again"),
}
_SQLITE_DAMAGE = ("SQLITE_NOTADB", "SQLITE_CORRUPT")


def storage_error(path: str | os.PathLike[str], exc: OSError, action: str = "write") -> StorageError:
    """A :class:`StorageError` naming ``path``, why ``action`` failed and what to do."""
    why, todo = _OS_REASONS.get(exc.errno or 0, (exc.strerror or str(exc), "check the path and the disk, then run again"))
    if action == "read" and exc.errno in (errno.EACCES, errno.EPERM):
        todo = "fix its permissions, or run as a user who may read it"
    return StorageError(f"cannot {action} {os.fspath(path)}: {why}; {todo}")


def sqlite_error(path: str | os.PathLike[str], exc: sqlite3.Error, action: str = "write") -> RagError:
    """The user-facing error for a SQLite failure on ``path``: storage (full, read-only) or damage."""
    name = _sqlite_name(exc)
    if name in _SQLITE_DAMAGE or (action == "read" and name not in _SQLITE_REASONS):  # e.g. "no such table"
        return IndexFormatError(f"{os.fspath(path)}: damaged SQLite file ({exc}); rebuild the index with `rag index`")
    why, todo = _SQLITE_REASONS.get(name, (str(exc), "check the file and the disk, then run again"))
    return StorageError(f"cannot {action} {os.fspath(path)}: {why} (SQLite: {exc}); {todo}")


def _sqlite_name(exc: sqlite3.Error) -> str:
    """The primary SQLite result code name (``SQLITE_FULL``), from Python ≥ 3.11 or the message."""
    name = getattr(exc, "sqlite_errorname", None)
    if name:  # extended codes (SQLITE_IOERR_WRITE, SQLITE_READONLY_DIRECTORY) → their primary code
        return next((p for p in (*_SQLITE_REASONS, *_SQLITE_DAMAGE) if name == p or name.startswith(p + "_")), name)
    text = str(exc).lower()
    for needle, code in (("disk is full", "SQLITE_FULL"), ("readonly", "SQLITE_READONLY"), ("unable to open", "SQLITE_CANTOPEN"),
                         ("not a database", "SQLITE_NOTADB"), ("malformed", "SQLITE_CORRUPT"), ("disk i/o", "SQLITE_IOERR")):
        if needle in text:
            return code
    return ""


@contextlib.contextmanager
def reporting_storage(path: str | os.PathLike[str], action: str = "write") -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into a :class:`StorageError` about ``path``."""
    try:
        yield
    except OSError as exc:
        raise storage_error(path, exc, action) from None


def save_safetensors(tensors: dict, path: str | os.PathLike[str], metadata: dict[str, str] | None = None) -> None:
    """``safetensors.torch.save_file`` that reports a full or refused disk instead of hiding it.

    safetensors' writer drops the error of its final flush (a file written to a full disk comes
    back truncated and no exception is raised), so the free space is checked first, the file is
    synced, and its header is read back: a short file is a :class:`StorageError`.

    Raises:
        StorageError: not enough free space, a refused write, or a file shorter than written.
    """
    import shutil

    from safetensors import SafetensorError, safe_open
    from safetensors.torch import save_file

    path = os.fspath(path)
    needed = sum(t.numel() * t.element_size() for t in tensors.values())
    folder = os.path.dirname(path) or "."
    with reporting_storage(path):
        free = shutil.disk_usage(folder).free
        if free < needed:
            raise StorageError(f"cannot write {path}: no space left on the device ({needed} bytes needed, {free} free); {_FULL[1]}")
        save_file(tensors, path, metadata=metadata)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # delayed-allocation errors (ENOSPC, EIO) surface here
        finally:
            os.close(fd)
    try:
        with safe_open(path, framework="pt"):
            pass
    except SafetensorError as exc:
        raise StorageError(f"cannot write {path}: the file came back incomplete ({exc}); "
                           f"{_FULL[1]}") from None


def describe_os_error(exc: OSError) -> str:
    """One line for an ``OSError`` that reached a program's top level: the file, why, what to do."""
    why, todo = _OS_REASONS.get(exc.errno or 0, (exc.strerror or str(exc), "check the path and the disk, then run again"))
    where = f"{_final_name(os.fsdecode(exc.filename))}: " if exc.filename is not None else ""
    return f"{where}{why}; {todo}"


def _final_name(path: str) -> str:
    """The file a temporary sibling ``DIR/.NAME.tmp-XXXX`` (atomic writes) stands for: ``DIR/NAME``."""
    folder, name = os.path.split(path)
    match = re.fullmatch(r"\.(.+)\.tmp-[0-9A-Za-z_-]+", name)
    return os.path.join(folder, match.group(1)) if match else path
