"""Serial and parallel numba builds of one kernel, picked by the amount of work.

Starting and synchronising the thread pool costs more than small arrays take (much more
when other processes compete for the cores), so small and medium calls (tests, the
default scene, whose files are compressed by writer threads meanwhile) run the serial
build and large ones (China-sized blocks) the parallel build.
"""

from __future__ import annotations

import types
from collections.abc import Callable

from ..accel import njit

#: work units (pixels x inner iterations) above which the parallel build is used
PARALLEL_MIN_WORK = 10_000_000


def jit_pair(fn: Callable) -> Callable | None:
    """A callable ``(work, *args)`` running the serial or parallel compiled ``fn``
    (``None`` without numba). ``fn`` may use ``prange``."""
    serial = njit()(fn)
    # a distinct function object (own name) so numba's on-disk cache keeps both builds
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_parallel", fn.__defaults__, fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + "_parallel"
    parallel = njit(parallel=True)(twin)
    if serial is None or parallel is None:
        return None

    def run(work: float, *args):
        return (parallel if work >= PARALLEL_MIN_WORK else serial)(*args)

    run.__name__ = getattr(fn, "__name__", "kernel")
    return run
