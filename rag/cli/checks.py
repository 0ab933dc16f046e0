"""Option checks that a Typer ``min``/``max`` cannot express, each a usage error (exit 2) before any work.

Closed ranges are declared on the options themselves (``typer.Option(min=..., max=...)``), so
``--help`` shows them; the callbacks here add what those leave out: an open end (``(0, 1)``,
``epochs > 0``) and the finiteness of a float (``nan`` compares false with every bound, so it
passes any closed range). Options that only mean something together with another one
(``--rerank-depth`` with ``--rerank``) are checked by :func:`check_rerank_options`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import typer


def interval(low: float | None, high: float | None, *, low_open: bool = False, high_open: bool = False) -> str:
    """``[0, 1]``, ``(0, 1)``, ``[1, inf)``: the interval a value must lie in, as the messages write it."""
    left = "(-inf" if low is None else f"{'(' if low_open else '['}{low:g}"
    right = "inf)" if high is None else f"{high:g}{')' if high_open else ']'}"
    return f"{left}, {right}"


def number_in(low: float | None, high: float | None, *, low_open: bool = False,
              high_open: bool = False) -> Callable[[float | None], float | None]:
    """Option callback: the value must be a finite number in the interval (``None``, an unset option, passes).

    Raises:
        typer.BadParameter: ``nan``, an infinity, or a value outside the interval (exit 2, option named).
    """

    def check(value: float | None) -> float | None:
        if value is None:
            return value
        inside = (math.isfinite(value) and (low is None or (value > low if low_open else value >= low))
                  and (high is None or (value < high if high_open else value <= high)))
        if not inside:
            raise typer.BadParameter(f"{value:g} is not a number in "
                                     f"{interval(low, high, low_open=low_open, high_open=high_open)}")
        return value

    return check


def check_rerank_options(ctx: typer.Context, rerank: str | None) -> None:
    """``--rerank-depth`` and ``--rerank-weight`` set a cross-encoder: without ``--rerank`` they are a usage error.

    Raises:
        typer.BadParameter: either given on the command line without ``--rerank`` (exit 2).
    """
    if rerank is not None:
        return
    for name, flag in (("rerank_depth", "--rerank-depth"), ("rerank_weight", "--rerank-weight")):
        source = ctx.get_parameter_source(name)
        if source is not None and source.name != "DEFAULT":
            raise typer.BadParameter("it only applies to a cross-encoder: give --rerank MODEL too", ctx=ctx,
                                     param_hint=f"'{flag}'")
