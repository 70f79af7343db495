"""BLAS/LAPACK on one thread while a run computes.

OpenBLAS splits a Cholesky factorisation or a matrix product differently with each
thread count, and the rounding follows: the same kriging system factorised on a 2-core
and on a 16-core machine (or in a Dask worker, which starts with ``OPENBLAS_NUM_THREADS=1``)
gives different last bits, and so different output bytes. The matrices of a run are small
(a kriging tile holds about 180 cells), where BLAS threads cost more than they give: they
wake, split a few hundred rows and spin afterwards while the numba kernels want the cores.
Inside :func:`one_blas_thread` every BLAS library of the process runs on one thread, so a
run's bytes do not depend on the machine's cores or on where a task runs.

``threadpoolctl`` (Debian ``python3-threadpoolctl``, installed with scikit-learn) does it
for OpenBLAS, MKL and BLIS; without it, OpenBLAS's own ``openblas_set_num_threads`` is
looked up among the process's loaded libraries (Linux). The limit is process-wide: threads
of one process share it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

_lock = threading.Lock()
_depth = 0  # nesting depth of one_blas_thread in this process (threads included)
_token: tuple | None = None  # what undoes the limit when the outermost context exits


def _openblas_libraries() -> list[ctypes.CDLL]:
    """Loaded shared libraries that export ``openblas_set_num_threads`` (Linux
    ``/proc/self/maps``; empty elsewhere)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    paths = {line.split()[-1] for line in maps.splitlines() if ".so" in line and "blas" in line.lower()}
    libs = []
    for p in sorted(paths):
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        if hasattr(lib, "openblas_set_num_threads") and hasattr(lib, "openblas_get_num_threads"):
            libs.append(lib)
    return libs


def _limit() -> tuple:
    """Set every BLAS to one thread; returns what :func:`_undo` needs."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        libs = _openblas_libraries()
        before = [(lib, int(lib.openblas_get_num_threads())) for lib in libs]
        for lib, _ in before:
            lib.openblas_set_num_threads(1)
        if not libs:
            log.debug("neither threadpoolctl nor OpenBLAS found: BLAS threads left as they are")
        return ("openblas", before)
    return ("threadpoolctl", threadpool_limits(limits=1, user_api="blas"))


def _undo(token: tuple) -> None:
    kind, state = token
    if kind == "threadpoolctl":
        state.restore_original_limits()
    else:
        for lib, n in state:
            lib.openblas_set_num_threads(n)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the body with BLAS/LAPACK on one thread; nested and concurrent uses (days in
    threads of one process) share one limit, lifted when the last of them exits."""
    global _depth, _token
    with _lock:
        if _depth == 0:
            _token = _limit()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _undo(_token)
                _token = None


def blas_threads() -> list[int]:
    """The thread count of each loaded BLAS library (threadpoolctl, else OpenBLAS's own
    getter; empty when neither is available)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [int(lib.openblas_get_num_threads()) for lib in _openblas_libraries()]
    return [int(i["num_threads"]) for i in threadpool_info() if i.get("user_api") == "blas"]
