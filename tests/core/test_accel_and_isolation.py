"""The numba switch, progress/cancel helpers, and that core never needs QGIS."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ssm_downscaling.core import accel
from ssm_downscaling.core.deps import describe_missing, missing_dependencies
from ssm_downscaling.core.errors import Cancelled
from ssm_downscaling.core.progress import Progress


@accel.njit(parallel=True)
def _row_sums_numba(a):
    out = np.empty(a.shape[0])
    for i in accel.prange(a.shape[0]):
        s = 0.0
        for j in range(a.shape[1]):
            s += a[i, j]
        out[i] = s
    return out


def _row_sums_numpy(a):
    return a.sum(axis=1)


row_sums = accel.kernel(_row_sums_numba, _row_sums_numpy)


def test_kernel_pair_agrees_and_switch_works():
    a = np.random.default_rng(0).random((50, 7))
    expected = _row_sums_numpy(a)
    assert np.allclose(row_sums(a), expected, rtol=1e-12)
    with accel.numba_disabled():
        assert not accel.numba_enabled()
        assert "numpy" in repr(row_sums)
        assert np.array_equal(row_sums(a), expected)
    if accel.HAVE_NUMBA:
        assert accel.numba_enabled() and "numba" in repr(row_sums)


def test_progress_nesting_and_cancel():
    seen: list[float] = []
    p = Progress(total=4, progress=seen.append)
    p.advance()
    child = p.sub(2, total=10)
    for _ in range(10):
        child.advance()
    p.advance()
    assert seen[0] == pytest.approx(25.0)
    assert seen[-2] == pytest.approx(75.0) and seen[-1] == pytest.approx(100.0)
    flag = {"stop": False}
    q = Progress(total=3, is_cancelled=lambda: flag["stop"])
    q.advance()
    flag["stop"] = True
    with pytest.raises(Cancelled):
        q.advance()


def _run_isolated(code: str) -> subprocess.CompletedProcess:
    blocker = textwrap.dedent(
        """
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def __init__(self, names): self.names = names
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in self.names:
                    raise ImportError(f'blocked import of {name}')
                return None
        """
    )
    return subprocess.run([sys.executable, "-c", blocker + textwrap.dedent(code)], capture_output=True, text=True)


def test_core_imports_without_qgis():
    r = _run_isolated(
        """
        sys.meta_path.insert(0, Block({'qgis', 'processing', 'PyQt5'}))
        import pkgutil, importlib
        import ssm_downscaling, ssm_downscaling.core as core
        names = [m.name for m in pkgutil.walk_packages(core.__path__, 'ssm_downscaling.core.')]
        for n in names:
            importlib.import_module(n)
        assert not any(k.split('.')[0] in ('qgis', 'PyQt5') for k in sys.modules), 'qgis leaked'
        print(len(names))
        """
    )
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) >= 6


def test_core_works_without_numba_and_reports_missing_packages():
    r = _run_isolated(
        """
        sys.meta_path.insert(0, Block({'numba', 'sklearn', 'qgis'}))
        from ssm_downscaling.core import accel
        from ssm_downscaling.core.deps import missing_dependencies, describe_missing
        assert not accel.HAVE_NUMBA and not accel.numba_enabled()
        missing = [d.package for d in missing_dependencies()]
        assert missing == ['numba', 'scikit-learn'], missing
        msg = describe_missing(missing_dependencies())
        assert 'apt install python3-numba python3-sklearn' in msg and 'pip install numba scikit-learn' in msg
        assert 'conda install -c conda-forge numba scikit-learn' in msg
        """
    )
    assert r.returncode == 0, r.stderr


def test_blas_limit_works_without_threadpoolctl_and_it_is_reported():
    r = _run_isolated(
        """
        sys.meta_path.insert(0, Block({'threadpoolctl', 'qgis'}))
        from ssm_downscaling.core.deps import missing_dependencies, describe_missing
        import numpy  # loads its BLAS
        from ssm_downscaling.core import blas
        assert 'threadpoolctl' in [d.package for d in missing_dependencies()]  # (scikit-learn needs it too)
        assert 'python3-threadpoolctl' in describe_missing(missing_dependencies())
        for lib in blas._openblas_libraries():
            lib.openblas_set_num_threads(2)
        before = blas.blas_threads()
        with blas.one_blas_thread():
            assert set(blas.blas_threads()) <= {1}
        assert blas.blas_threads() == before
        """
    )
    assert r.returncode == 0, r.stderr


def test_nothing_missing_here():
    assert missing_dependencies() == [] or all(not d.required for d in missing_dependencies())
    assert describe_missing([]) == ""
