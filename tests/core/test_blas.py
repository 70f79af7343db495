"""BLAS on one thread inside a run (core.blas), and kriging bytes that do not depend on
the BLAS thread count the process started with."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from ssm_downscaling.core import blas
from ssm_downscaling.core.blas import blas_threads, one_blas_thread

threadpoolctl = pytest.importorskip("threadpoolctl")


def _have_threads() -> bool:
    return bool(blas_threads())


pytestmark = pytest.mark.skipif(not _have_threads(), reason="no BLAS library whose threads can be set")


def test_one_thread_inside_and_the_old_count_after():
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with one_blas_thread():
            assert set(blas_threads()) == {1}
            with one_blas_thread():  # nested: still one, and not lifted by the inner exit
                pass
            assert set(blas_threads()) == {1}
        assert blas_threads() == before


def test_without_threadpoolctl_openblas_is_set_directly(monkeypatch):
    if not blas._openblas_libraries():
        pytest.skip("no OpenBLAS loaded")
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    lib = blas._openblas_libraries()[0]
    old = int(lib.openblas_get_num_threads())
    lib.openblas_set_num_threads(2)
    try:
        with one_blas_thread():
            assert int(lib.openblas_get_num_threads()) == 1
        assert int(lib.openblas_get_num_threads()) == 2
    finally:
        lib.openblas_set_num_threads(old)


def test_threads_share_one_limit_lifted_by_the_last():
    entered, release = threading.Event(), threading.Event()
    seen = []

    def day():
        with one_blas_thread():
            entered.set()
            release.wait(10)
            seen.append(set(blas_threads()))

    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        t = threading.Thread(target=day)
        t.start()
        entered.wait(10)
        with one_blas_thread():
            pass  # this exit must not lift the other thread's limit
        release.set()
        t.join(10)
        assert seen == [{1}]
        assert blas_threads() == before


def test_kriging_bytes_do_not_depend_on_the_blas_threads():
    """A tile of ~200 source cells: OpenBLAS factorises it differently on 1 and 2 threads
    (other last bits); the kriging runs on one thread either way."""
    from ssm_downscaling.core.downscale.stfilter import Covariance, krige

    sp = 36e3
    rows = cols = 20
    r, c = np.divmod(np.arange(rows * cols), cols)
    xy = np.column_stack([c * sp, -r * sp]).astype(float)
    rng = np.random.default_rng(4)
    resid = {d: rng.normal(0, 0.03, rows * cols) for d in range(7)}
    cov = Covariance(signal_var=9e-4, noise_var=4e-4, length_m=2.5 * sp, time_days=2.0)
    out = []
    for n in (1, 2):
        with threadpoolctl.threadpool_limits(limits=n, user_api="blas"):
            res = krige(resid, xy, [3], cov, sp, grid_shape=(rows, cols))
        out.append(b"".join(a.tobytes() for a in res[3]))
    assert out[0] == out[1]
