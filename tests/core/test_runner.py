"""Executors: results in task order, bounded tasks in flight, Dask optional."""

from __future__ import annotations

import os
import threading
import time

import pytest

from ssm_downscaling.core.errors import SsmError
from ssm_downscaling.core.runner import (
    ProcessExecutor,
    SerialExecutor,
    ThreadExecutor,
    cores,
    dask_available,
    make_executor,
    worker_numba_threads,
    worker_threads,
)


def _slow_square(x: int) -> int:
    time.sleep(0.01 * (5 - x % 5))  # later tasks finish first
    return x * x


def test_results_come_back_in_task_order():
    want = [x * x for x in range(12)]
    for ex in (SerialExecutor(), ThreadExecutor(3), ProcessExecutor(2)):
        with ex:
            assert list(ex.map(_slow_square, range(12))) == want, ex


def _threads_here(_: object) -> tuple:
    import os

    from ssm_downscaling.core.accel import HAVE_NUMBA
    from ssm_downscaling.core.grid import read_threads
    from ssm_downscaling.core.series import write_threads

    worker_numba_threads()  # as every task of a run does first
    n = None
    if HAVE_NUMBA:
        import numba

        n = numba.get_num_threads()
    return os.environ.get("SSM_WORKER_NUMBA_THREADS"), n, read_threads(), write_threads()


def test_local_workers_share_the_cores(monkeypatch):
    for k in ("NUMBA_NUM_THREADS", "SSM_READ_THREADS", "SSM_WRITE_THREADS"):
        monkeypatch.delenv(k, raising=False)
    share = str(max(1, cores() // 2))
    assert worker_threads(2) == dict.fromkeys(("NUMBA_NUM_THREADS", "SSM_READ_THREADS", "SSM_WRITE_THREADS",
                                               "SSM_WORKER_NUMBA_THREADS"), share)
    assert worker_threads(10 * cores())["NUMBA_NUM_THREADS"] == "1"
    monkeypatch.setenv("SSM_WRITE_THREADS", "ALL_CPUS")  # a user's own setting is passed on
    assert worker_threads(2)["SSM_WRITE_THREADS"] == "ALL_CPUS"
    monkeypatch.delenv("SSM_WRITE_THREADS")
    executors = [ProcessExecutor(2)]
    if dask_available():
        from ssm_downscaling.core.runner import DaskExecutor

        executors.append(DaskExecutor(None, 2))
    before = dict(os.environ)
    for ex in executors:
        with ex:
            assert dict(os.environ) == before, ex  # the nanny's variables are not left in this process
            got = list(ex.map(_threads_here, range(2)))
        for env, numba_threads, read, write in got:
            assert env == share and read == share and write == share, ex
            assert numba_threads in (None, int(share)), ex


_LATE_ENV = """
import os, sys
import numba, numpy as np

@numba.njit(parallel=True, cache=False)
def first(a):
    for i in numba.prange(a.size):
        a[i] += 1.0

first(np.zeros(64))  # the pool is launched with every core, as before a Dask nanny's environment
os.environ.update({"NUMBA_NUM_THREADS": "1", "SSM_WORKER_NUMBA_THREADS": "1"})  # what the nanny sets then
sys.path.insert(0, sys.argv[1])
from ssm_downscaling.core.runner import worker_numba_threads

worker_numba_threads()

@numba.njit(cache=False)
def later(a):  # a kernel compiled now: numba re-reads its environment
    return a.sum()

print(later(np.ones(3)), numba.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
"""


def test_a_worker_whose_numba_started_before_its_environment_can_still_compile(tmp_path):
    """A Dask worker may import numba (a pool sized to every core) before the nanny sets
    NUMBA_NUM_THREADS; a kernel compiled after the pool was launched (a cold cache) then
    failed with "Cannot set NUMBA_NUM_THREADS ... once the threads have been launched"."""
    pytest.importorskip("numba")
    import subprocess
    import sys
    from pathlib import Path

    import ssm_downscaling

    plugins = str(Path(ssm_downscaling.__file__).resolve().parent.parent)
    r = subprocess.run([sys.executable, "-c", _LATE_ENV, plugins], capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-2000:]
    total, used, pool = r.stdout.split()
    assert float(total) == 3.0 and int(used) == 1 and int(pool) == cores()


def test_at_most_ahead_tasks_in_flight():
    running = {"now": 0, "max": 0}
    lock = threading.Lock()

    def task(x: int) -> int:
        with lock:
            running["now"] += 1
            running["max"] = max(running["max"], running["now"])
        time.sleep(0.005)
        with lock:
            running["now"] -= 1
        return x

    pulled = []

    def tasks():
        for i in range(20):
            pulled.append(i)
            yield i

    with ThreadExecutor(4) as ex:
        it = ex.map(task, tasks(), ahead=3)
        assert next(it) == 0
        assert len(pulled) <= 3  # the generator is not drained ahead of the consumer
        assert list(it) == list(range(1, 20))
    assert running["max"] <= 3


def test_make_executor_choices():
    assert isinstance(make_executor(None, 1), SerialExecutor)
    ex = make_executor("", 2)
    assert isinstance(ex, ThreadExecutor) and ex.workers == 2
    ex.close()
    with pytest.raises(SsmError, match="scheduler address"):
        make_executor("my cluster")


def test_threads_only_with_a_thread_safe_kernel_layer(monkeypatch):
    import ssm_downscaling.core.runner as runner

    monkeypatch.setattr(runner, "threads_safe_for_kernels", lambda: False)
    assert isinstance(make_executor("", 2), SerialExecutor)
    monkeypatch.setattr(runner, "threads_safe_for_kernels", lambda: True)
    ex = make_executor("", 2)
    assert isinstance(ex, ThreadExecutor)
    ex.close()


def test_missing_dask_says_how_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_dask(name, *a, **k):
        if name.split(".")[0] in ("distributed", "dask"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    assert not dask_available()
    with pytest.raises(SsmError, match="python3-dask python3-distributed"):
        make_executor("local:2")


def test_workers_run_this_installations_python(monkeypatch):
    """Inside QGIS ``sys.executable`` is the QGIS program: the workers get the interpreter
    under ``sys.exec_prefix``, not the first python on the PATH (another installation)."""
    import os
    import sys

    from ssm_downscaling.core import runner

    assert os.path.realpath(runner.python_for_workers()) == os.path.realpath(sys.executable)
    for other in ("/usr/bin/qgis_process.bin", "/root/.pyenv/shims/python3"):  # what QGIS reports
        monkeypatch.setattr(sys, "executable", other)
        assert runner.python_for_workers() != other
    monkeypatch.setattr(sys, "executable", "/usr/bin/qgis_process.bin")
    monkeypatch.setenv("PATH", "/nonexistent")
    exe = runner.python_for_workers()
    assert exe is not None and (exe.startswith(sys.exec_prefix) or exe.startswith(sys.base_exec_prefix))
    assert os.path.basename(exe).startswith("python") and os.access(exe, os.X_OK)


@pytest.mark.skipif(not dask_available(), reason="dask.distributed is not installed (optional)")
def test_local_cluster_workers_that_do_not_start_are_a_clear_error(monkeypatch):
    """A local cluster whose workers never connect (as when they run another Python that
    cannot import this one's packages) gives a message naming the interpreter, not an
    error about files later. The cluster is a stand-in: real workers that die can leave
    distributed's LocalCluster waiting forever, which a test must not risk."""
    import distributed

    from ssm_downscaling.core import runner

    closed = []

    class Cluster:
        def __init__(self, **kw):
            self.kw = kw

        def close(self):
            closed.append("cluster")

    class Client:
        def __init__(self, cluster):
            self.cluster = cluster

        def wait_for_workers(self, n, timeout=None):
            raise TimeoutError(f"Only 0/{n} workers arrived after {timeout}")

        def close(self):
            closed.append("client")

    monkeypatch.setattr(distributed, "LocalCluster", Cluster)
    monkeypatch.setattr(distributed, "Client", Client)
    monkeypatch.setattr(runner, "python_for_workers", lambda: "/opt/other/python3")
    monkeypatch.setattr(runner, "_python_for_workers", lambda: None)
    with pytest.raises(SsmError, match="did not all start within 120 s.*/opt/other/python3.*Leave the Dask scheduler"):
        runner.DaskExecutor(None, 2)
    assert closed == ["client", "cluster"]  # nothing left running
