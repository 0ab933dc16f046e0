"""Atomic writes: build next to the target, then rename, so readers never see half a file.

A crash or Ctrl-C during a build leaves the previous version untouched and no partial output
(only a hidden ``.NAME.tmp-PID-*`` sibling, removed by the next build once PID is gone). A lock
file (``.NAME.lock``, ``flock``) makes a second concurrent build of the same target fail at once
instead of interleaving with the first. A rebuild never deletes what it did not create: a
target holding entries its writer does not own is refused, not replaced (``owned``). A full
disk, a read-only folder or a denied permission is a one-line
:class:`~indexes.errors.StorageError` naming the target (:mod:`indexes.io_errors`).

New files and folders get the process's normal permissions (``0o666``/``0o777`` less the
umask, applied by the kernel at creation); the umask is never read or changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from indexes.errors import InputError, RagError, StorageError
from indexes.io_errors import reporting_storage, storage_error


class BuildInProgressError(RagError):
    """Another process is building the same target right now."""

    code = "build_in_progress"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(target: Path) -> None:
    """Delete temporary siblings left by builds whose process is gone (a crash, a kill -9)."""
    for stale in target.parent.glob(f".{target.name}.tmp-*"):
        pid = stale.name.removeprefix(f".{target.name}.tmp-").split("-")[0]
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def foreign_entries(target: Path, owned: Callable[[str], bool]) -> list[str]:
    """Names of the entries of an existing ``target`` that ``owned`` does not claim (sorted)."""
    if not target.is_dir():
        return []
    return sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir() if not owned(p.name))


def refuse_foreign(target: Path, owned: Callable[[str], bool]) -> None:
    """Raise :class:`InputError` when ``target`` holds entries its writer did not create.

    Raises:
        InputError: names up to five such entries and what to do.
    """
    foreign = foreign_entries(target, owned)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise InputError(f"{target} holds files that are not part of what is written there ({shown}); a rebuild replaces "
                         "the whole folder and would delete them: move them out of it, or write somewhere else")


def refuse_unless_ours(target: Path, record: str) -> None:
    """Before a long job: refuse an existing, non-empty ``target`` that lacks the writer's ``record``
    file (a folder of someone else's files, which replacing it would delete).

    Raises:
        InputError: naming the folder and what to do.
    """
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / record).is_file())):
        raise InputError(f"{target} exists and was not written by this command (no {record}); writing there would replace "
                         "it and delete what it holds: choose a new or empty folder")


def _fresh_dir(parent: Path, prefix: str) -> Path:
    """A new, empty directory ``parent/prefix<random>``, created with mode 0o777 less the umask."""
    while True:
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue


@contextlib.contextmanager
def build_lock(target: str | os.PathLike[str], wait: bool = False) -> Iterator[None]:
    """Hold ``target``'s build lock (``flock`` on ``.NAME.lock`` beside it) for the block.

    Args:
        wait: block until the lock is free (short updates of a built target, e.g. its manifest);
            by default a held lock fails at once (a second build of the same target).

    Raises:
        BuildInProgressError: the lock is held and ``wait`` is False.
    """
    target = Path(target)
    with reporting_storage(target.parent, "create the lock file in"):
        lock = open(target.parent / f".{target.name}.lock", "w")  # noqa: SIM115 - closed below
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildInProgressError(f"another process is building {target} right now; wait for it or choose another output") from None
        yield


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], owned: Callable[[str], bool] | None = None) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``target`` when the block succeeds.

    The temporary directory is a sibling of ``target`` (same filesystem, so ``rename`` is
    atomic). On an exception it is deleted and ``target`` is left as it was. On success an
    existing ``target`` is moved aside, the new directory renamed into place, and the old one
    deleted; the window in which ``target`` is missing is two renames long.

    Args:
        target: the directory to create or replace.
        owned: which entry names of an existing ``target`` this writer created (besides the
            names the new build writes); when given, a ``target`` holding any other entry is
            not replaced. ``None``: the whole folder is the writer's (model folders).

    Raises:
        BuildInProgressError: another process is building ``target``.
        InputError: ``target`` holds entries that ``owned`` does not claim.
        StorageError: the file system refused a write (full, read-only, permissions).

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_directory(root / "idx") as tmp:
        ...     _ = (tmp / "a.txt").write_text("hello")
        >>> (root / "idx" / "a.txt").read_text()
        'hello'
    """
    target = Path(target)
    with reporting_storage(target.parent, "create the folder"):
        target.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(target):
        _remove_stale(target)
        with reporting_storage(target.parent, "write into"):
            tmp = _fresh_dir(target.parent, f".{target.name}.tmp-{os.getpid()}-")
        try:
            yield tmp
            if owned is not None:
                written = {p.name for p in tmp.iterdir()}
                refuse_foreign(target, lambda name: name in written or owned(name))
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise storage_error(target, exc) from None
        except StorageError as exc:  # name the file the user asked for, not its temporary twin
            shutil.rmtree(tmp, ignore_errors=True)
            raise StorageError(str(exc).replace(str(tmp), str(target))) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = None
        with reporting_storage(target):
            if target.exists():
                old = target.parent / f".{target.name}.tmp-{os.getpid()}-old"
                os.replace(target, old)
            os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and ``os.replace``.

    Raises:
        StorageError: the file system refused the write; ``path`` is left as it was.
    """
    path = Path(path)  # its folder must exist: never re-create one that vanished under a build
    tmp = path.parent / f".{path.name}.tmp-{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the kernel applies the umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise storage_error(path, exc) from None
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))
