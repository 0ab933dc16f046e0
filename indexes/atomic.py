"""Atomic writes: build next to the target, then rename, so readers never see half a file.

A crash or Ctrl-C during a build leaves the previous version untouched and no partial output
(only a hidden ``.NAME.tmp-PID-*`` sibling, removed by the next build once PID is gone). A lock
file (``.NAME.lock``, ``flock``) makes a second concurrent build of the same target fail at once
instead of interleaving with the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from indexes.errors import RagError


class BuildInProgressError(RagError):
    """Another process is building the same target right now."""

    http_status = 409


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
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildInProgressError(f"another process is building {target} right now; wait for it or choose another output") from None
        yield


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``target`` when the block succeeds.

    The temporary directory is a sibling of ``target`` (same filesystem, so ``rename`` is
    atomic). On an exception it is deleted and ``target`` is left as it was. On success an
    existing ``target`` is moved aside, the new directory renamed into place, and the old one
    deleted; the window in which ``target`` is missing is two renames long.

    Example:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_directory(root / "idx") as tmp:
        ...     _ = (tmp / "a.txt").write_text("hello")
        >>> (root / "idx" / "a.txt").read_text()
        'hello'
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(target):
        _remove_stale(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.tmp-{os.getpid()}-old"
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and ``os.replace``."""
    path = Path(path)  # its folder must exist: never re-create one that vanished under a build
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))
