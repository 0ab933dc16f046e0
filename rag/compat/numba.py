"""The one place that decides whether BM25 search runs compiled (numba) or in numpy.

numba is optional (``pip install 'rag-toolkit[fast]'``): with it, :class:`rag.bm25.BM25Scorer`
ranks large corpora with the compiled kernels of :mod:`rag.bm25_kernels`; without it, with the
numpy MaxScore of :mod:`rag.bm25_pruning`. Both return the same passages, order and scores.
Importing numba costs ~0.4 s, so this module imports it only when first asked.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from types import ModuleType

from rag.compat import DependencyVersionError, require

MIN_VERSION = "0.59.0"  # the oldest numba with Python 3.11 wheels; supports numpy 1.22-1.26
FEATURE = "the compiled BM25 search (rag-toolkit[fast])"


@functools.cache
def bm25_kernels() -> ModuleType | None:
    """The compiled BM25 kernels (:mod:`rag.bm25_kernels`), or ``None`` where numba is not installed.

    Raises:
        DependencyVersionError: numba is installed but older than ``MIN_VERSION``, or fails to
            import (e.g. a numba too old for the installed numpy); the message says what to install.
    """
    if importlib.util.find_spec("numba") is None:
        return None
    require("numba", MIN_VERSION, FEATURE)
    try:
        kernels = importlib.import_module("rag.bm25_kernels")
    except ImportError as e:  # numba refuses a numpy newer than it supports, at import
        raise DependencyVersionError(f"{FEATURE} could not import numba ({e}): pip install -U 'numba>={MIN_VERSION}', "
                                     "or uninstall numba to search with numpy") from None
    return kernels
