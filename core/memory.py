"""Huge pages for large arrays: numpy's request for them, off where it stalls first touches.

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
"""

from __future__ import annotations

import logging
import os

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
