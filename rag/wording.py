"""Counts in summary lines: ``1 commit``, ``2 commits``, never ``1 commits``.

Every summary the CLI prints (``rag index``, ``add``, ``delete``, ``compact``, ``check``, ``cache
build``, ...) and every report headline says its counts through :func:`counted`, so the noun
agrees with the number (English: singular for exactly one, plural otherwise, zero included).
"""

from __future__ import annotations


def counted(n: float, singular: str, plural: str | None = None, *, fmt: str = "") -> str:
    """``n`` followed by ``singular`` when ``n == 1``, else by ``plural`` (default: ``singular + "s"``).

    Args:
        n: the count.
        singular: the noun for one, e.g. ``"commit"``.
        plural: the noun for any other count (``"queries"`` for ``"query"``); default ``singular + "s"``.
        fmt: format spec of the number (``","`` for thousands separators).

    Example:
        >>> counted(1, "commit"), counted(0, "commit"), counted(2, "query", "queries")
        ('1 commit', '0 commits', '2 queries')
        >>> counted(12345, "passage", fmt=",")
        '12,345 passages'
    """
    return f"{n:{fmt}} {singular if n == 1 else (plural or singular + 's')}"
