"""The process's memory for large arrays: numpy's huge-page request (off where it stalls
first touches) and glibc's reuse of freed blocks during a run.

numpy asks the Linux kernel for transparent huge pages on every large array
(``madvise(MADV_HUGEPAGE)``). Where transparent huge pages are in ``madvise`` mode but
the kernel cannot find free 2 MB pages (fragmented memory, some virtual machines), each
first touch of such an array then tries memory compaction before it falls back to 4 kB
pages: measured on the benchmark machine, writing a fresh 80 MB array took 0.15-0.37 s
with the request and 0.05 s without, and a China-sized downscaling day 0.91 x the wall
time without it. A probe cannot tell in advance: small arrays got huge pages quickly
(16 MB: 3 ms with the request, 10 ms without), a 64 MB array once took 98 ms with it and
36 ms without, and a run that holds a gigabyte meets compaction on many of its first
touches. The product's arrays are written and read in sequence, where huge pages save
little (few TLB misses), so :func:`tune_huge_pages` turns numpy's request off in
``madvise`` mode (in ``always`` mode the kernel uses huge pages anyway, in ``never`` mode
the request does nothing).

``SSM_HUGE_PAGES``: ``auto`` (default: off in ``madvise`` mode), ``on`` (leave numpy's
request on), ``off`` (turn it off).

glibc serves every block above 32 MB (a day's 1 km layer) with a fresh ``mmap`` and
returns it to the kernel when freed, so each new day-sized array is faulted in page by
page again, zeroed by the kernel. A China-sized downscaling day allocates about 3.3 GB
that way for a 1.3 GB peak: 830,000 page faults and a quarter of its CPU time in the
kernel, worse where two threads of a compiled kernel fault at once (measured here: 0.58 s
to fill 240 MB of fresh arrays from two threads, 0.14 s from one). :func:`keep_freed_memory`
makes glibc keep freed blocks in the heap for the run's next arrays (``M_MMAP_MAX`` 0, no
trimming) and gives the memory back when the run ends (``malloc_trim``); between days
:func:`trim_freed` gives it back where the heap holds more free memory than is in use.
The China day: 350,000 faults and 0.85-0.93 x the wall time (three paired runs), with
2 % more peak memory.

``SSM_REUSE_MEMORY``: ``auto`` (default: on with glibc, unless the process's own malloc
settings are given by ``MALLOC_*_`` or ``GLIBC_TUNABLES``), ``on``, ``off``. The
``MALLOC_TRIM_THRESHOLD_`` that Dask's nanny sets in each worker it starts does not count
as the user's: with it, glibc maps every block above 128 kB afresh, and a 2-worker
``LocalCluster`` run of 48 days took 1.2-1.4 x the CPU time of a run that reuses freed
blocks (measured with the bench-archive scene).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

_decided: bool | None = None


def _numpy_switch():
    """numpy's ``_set_madvise_hugepage`` (numpy 1.x or 2.x), or None."""
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        try:
            m = __import__(mod, fromlist=["_set_madvise_hugepage"])
        except ImportError:
            continue
        fn = getattr(m, "_set_madvise_hugepage", None)
        if fn is not None:
            return fn
    return None


def thp_mode(path: str = "/sys/kernel/mm/transparent_hugepage/enabled") -> str | None:
    """The kernel's transparent huge page mode (``always``, ``madvise`` or ``never``;
    None where it cannot be read, e.g. not Linux)."""
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


def tune_huge_pages() -> bool | None:
    """Decide once per process whether numpy keeps asking for huge pages (see the module
    docstring); returns the decision (True: asking, False: not) or None when there is
    nothing to decide (no such numpy switch, not Linux, huge pages ``always`` or
    ``never``)."""
    global _decided
    if _decided is not None:
        return _decided
    switch = _numpy_switch()
    if switch is None:
        return None
    setting = os.environ.get("SSM_HUGE_PAGES", "auto").strip().lower()
    if setting in ("on", "off"):
        _decided = setting == "on"
        switch(_decided)
        return _decided
    if thp_mode() != "madvise":  # always: the kernel decides anyway; never: the request is a no-op
        return None
    _decided = False
    switch(False)
    log.info("numpy's request for transparent huge pages is turned off for this process (it stalls first "
             "touches of large arrays on memory compaction; SSM_HUGE_PAGES=on keeps it)")
    return _decided


#: mallopt parameters (malloc.h) and glibc's defaults, restored when the last run ends
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
GLIBC_TRIM_THRESHOLD, GLIBC_MMAP_MAX = 128 * 1024, 65536
#: the trim threshold during a run (bytes; mallopt takes an int): free memory at the top of
#: the heap beyond it is still given back
KEEP_TRIM_THRESHOLD = 2**31 - 1

_keep_lock = threading.Lock()
_keep_depth = 0
_keeping = None  # the C library while a run keeps freed blocks


@functools.cache
def _glibc():
    """The C library's ``mallopt`` and ``malloc_trim`` when it is glibc on Linux, else None
    (looked up once per process)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not all(hasattr(libc, f) for f in ("gnu_get_libc_version", "mallopt", "malloc_trim")):
        return None  # e.g. musl
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    return libc


#: glibc's own settings of what :func:`keep_freed_memory` changes (environment, tunables)
_MALLOC_ENV = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_MALLOC_TUNABLES = ("glibc.malloc.mmap_max", "glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold",
                    "glibc.malloc.top_pad")


def _dask_worker_environ() -> dict[str, str]:
    """The malloc variables Dask's nanny puts into the environment of the worker processes
    it starts (``MALLOC_TRIM_THRESHOLD_`` 65536 by default), when this process has
    ``distributed`` loaded; else ``{}``."""
    if "distributed" not in sys.modules:
        return {}
    from .runner import nanny_environ

    return {k: v for k, v in nanny_environ().items() if k in _MALLOC_ENV}


def _malloc_tuned_by_user(env) -> bool:
    """Whether ``env`` sets glibc's malloc thresholds, other than exactly as Dask's nanny
    does for every worker it starts (that setting is not the user's choice; it also fixes
    glibc's mmap threshold at 128 kB, so every array of a task would be faulted in
    afresh)."""
    tunables = env.get("GLIBC_TUNABLES", "")
    if any(t in tunables for t in _MALLOC_TUNABLES):
        return True
    given = {k: env[k] for k in _MALLOC_ENV if k in env}
    if not given:
        return False
    dask_env = _dask_worker_environ()
    return not (dask_env and all(dask_env.get(k) == v for k, v in given.items()))


def reuse_wanted(env: dict[str, str] | None = None) -> bool:
    """Whether runs keep freed blocks for reuse, by ``SSM_REUSE_MEMORY`` (see the module
    docstring)."""
    env = os.environ if env is None else env
    setting = env.get("SSM_REUSE_MEMORY", "auto").strip().lower()
    if setting == "off":
        return False
    return setting == "on" or not _malloc_tuned_by_user(env)


@contextlib.contextmanager
def keep_freed_memory() -> Iterator[bool]:
    """Inside (a run; nested and concurrent uses count as one): glibc keeps freed blocks
    in the heap for the next allocations instead of unmapping them (see the module
    docstring). On leaving the outermost use, the trim threshold and mmap count go back to
    what the process's environment sets (as Dask's nanny does) or else glibc's defaults,
    and the free memory is given back to the kernel. Yields whether the allocator was
    tuned (False: not glibc, or ``SSM_REUSE_MEMORY`` says no). Also usable as a
    decorator."""
    global _keep_depth, _keeping
    libc = _glibc() if reuse_wanted() else None
    if libc is None:
        yield False
        return
    with _keep_lock:
        _keep_depth += 1
        if _keep_depth == 1:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD)
            _keeping = libc
    try:
        yield True
    finally:
        with _keep_lock:
            _keep_depth -= 1
            if _keep_depth == 0:
                _keeping = None
                libc.mallopt(M_TRIM_THRESHOLD, _env_int("MALLOC_TRIM_THRESHOLD_", GLIBC_TRIM_THRESHOLD))
                libc.mallopt(M_MMAP_MAX, _env_int("MALLOC_MMAP_MAX_", GLIBC_MMAP_MAX))
                libc.malloc_trim(0)


def _env_int(name: str, default: int) -> int:
    """The process's own (Dask's) glibc setting ``name`` to restore, else glibc's default."""
    try:
        return max(0, min(int(os.environ[name]), 2**31 - 1))
    except (KeyError, ValueError):
        return default


#: the fields of glibc's ``struct mallinfo2`` (all ``size_t``), in order
_MALLINFO2_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                     "keepcost")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in _MALLINFO2_FIELDS]


def heap_bytes(libc=None) -> tuple[int, int] | None:
    """``(in use, free)`` bytes of glibc's allocations (``mallinfo2``, glibc 2.33 or later;
    all arenas): in use in the heaps plus the blocks mapped on their own, free in the heaps;
    None where it cannot be asked."""
    libc = libc if libc is not None else _glibc()
    fn = getattr(libc, "mallinfo2", None) if libc is not None else None
    if fn is None:
        return None
    fn.argtypes = []
    fn.restype = _MallInfo2
    m = fn()
    return int(m.uordblks) + int(m.hblkhd), int(m.fordblks)


def trim_freed() -> bool:
    """After each day of a run that keeps freed blocks (:func:`keep_freed_memory`): where
    the heaps hold more free memory than memory in use, give their free pages back to the
    kernel (``malloc_trim``). A run of many days then never holds more than twice what it
    uses (the heap's holes cannot add up over the days), and a day's freed blocks stay
    ready for the next day otherwise. Returns whether it trimmed."""
    libc = _keeping
    if libc is None:
        return False
    use = heap_bytes(libc)
    if use is not None and use[1] <= use[0]:
        return False
    libc.malloc_trim(0)
    return True
