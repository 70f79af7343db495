"""The numba switch: compiled kernels with pure-numpy fallbacks.

Every per-pixel kernel in ``core`` comes as a pair, a numba implementation and a
numpy implementation that give the same numbers. :func:`kernel` binds the pair to one
callable that picks the compiled one when numba is importable and enabled.

Set the environment variable ``SSM_DISABLE_NUMBA=1`` (before import) or use
:func:`numba_disabled` to force the numpy path, e.g. to compare the two in tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger(__name__)

try:  # numba is optional: the plugin must load and give the same numbers without it
    if os.environ.get("SSM_DISABLE_NUMBA", "").strip() not in ("", "0"):
        raise ImportError("disabled by SSM_DISABLE_NUMBA")
    import numba as _numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - depends on the machine
    _numba = None
    HAVE_NUMBA = False

_enabled = HAVE_NUMBA


def numba_enabled() -> bool:
    """True when compiled kernels are used."""
    return _enabled


@contextlib.contextmanager
def numba_disabled() -> Iterator[None]:
    """Context manager that routes every :func:`kernel` call to its numpy fallback."""
    global _enabled
    old = _enabled
    _enabled = False
    try:
        yield
    finally:
        _enabled = old


def njit(parallel: bool = False, fastmath: bool = False, inline: bool = False) -> Callable[[Callable], Callable | None]:
    """Decorator compiling a function with numba (cached); ``None`` without numba.
    ``inline``: compiled into each compiled caller (numba's ``inline="always"``), so that
    a small helper called in a loop does not stop that loop from being vectorised."""

    def wrap(fn: Callable) -> Callable | None:
        if not HAVE_NUMBA:
            return None
        extra = {"inline": "always"} if inline else {}
        return _numba.njit(cache=True, parallel=parallel, fastmath=fastmath, nogil=True, **extra)(fn)

    return wrap


#: ``numba.prange`` for parallel loops in compiled kernels (``range`` without numba).
prange = _numba.prange if HAVE_NUMBA else range


class Kernel:
    """A numba implementation and a numpy fallback behind one callable."""

    def __init__(self, name: str, numba_impl: Callable | None, numpy_impl: Callable):
        self.name = name
        self.numba = numba_impl
        self.numpy = numpy_impl

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _enabled and self.numba is not None:
            return self.numba(*args, **kwargs)
        return self.numpy(*args, **kwargs)

    def __repr__(self) -> str:
        which = "numba" if (_enabled and self.numba is not None) else "numpy"
        return f"<Kernel {self.name} ({which})>"


def kernel(numba_impl: Callable | None, numpy_impl: Callable, name: str | None = None) -> Kernel:
    """Bind a compiled implementation (may be ``None``) and its numpy fallback."""
    return Kernel(name or numpy_impl.__name__, numba_impl, numpy_impl)
