"""Adapters over dependencies' internals: the only modules that touch them.

The toolkit reuses a few pieces of transformers and sentence-transformers that are not part of a
stable contract (cache layers, T5 stack blocks, rotary modules, loss options added in a minor
release). Each dependency gets one adapter module here, so a change upstream breaks one small file
with a clear message instead of many call sites with an ``AttributeError`` deep inside a library:

- :mod:`rag.compat.transformers`: KV cache classes and the causal-LM forward with a cache, the T5
  encoder stack's blocks and mask, a model's rotary-embedding module, BERT-style encoder layers.
- :mod:`rag.compat.sentence_transformers`: the evaluator base class, InfoNCE/MSE losses, the
  no-duplicates batch sampler, trainer arguments.
- :mod:`rag.compat.numba`: whether the optional numba is there for the compiled BM25 top-k
  (:mod:`rag.bm25_kernels`), imported only when a corpus is large enough to prune.

Each adapter checks the installed version against the lower bound declared in ``pyproject.toml``
(CI runs the test suite at those lower bounds) and raises :class:`DependencyVersionError` naming
the package, the version found and the ``pip install`` that fixes it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version


class DependencyVersionError(ImportError):
    """An installed dependency is older than the oldest version this toolkit supports."""


def require(package: str, minimum: str, feature: str) -> str:
    """Check that ``package`` is installed at ``minimum`` or later; return the installed version.

    Args:
        package: the distribution name, as in ``pip install``.
        minimum: the lower bound declared in ``pyproject.toml``.
        feature: what needs it, for the message.

    Raises:
        DependencyVersionError: the package is missing or older than ``minimum``.

    Example:
        >>> require("numpy", "1.0", "arrays") >= "1"
        True
        >>> require("numpy", "999.0", "arrays")
        Traceback (most recent call last):
        ...
        rag.compat.DependencyVersionError: arrays needs numpy>=999.0, found ...
    """
    try:
        found = version(package)
    except PackageNotFoundError:
        raise DependencyVersionError(f"{feature} needs {package}>={minimum}, which is not installed: "
                                     f"pip install '{package}>={minimum}'") from None
    if Version(found) < Version(minimum):
        raise DependencyVersionError(f"{feature} needs {package}>={minimum}, found {found}: "
                                     f"pip install -U '{package}>={minimum}'")
    return found
