"""Where the days of a run are processed: executors that map a picklable function over
picklable tasks and hand the results back in task order.

- :class:`SerialExecutor`: one after another in this process (the reference);
- :class:`ThreadExecutor`: threads of this process, one per core (numpy, GDAL and the
  compiled kernels release the GIL); the default of the Processing tools, safe inside QGIS;
- :class:`ProcessExecutor`: local worker processes (``spawn``);
- :class:`DaskExecutor`: ``dask.distributed`` workers, a ``LocalCluster`` or a running
  scheduler (a cluster started with dask-jobqueue on Slurm/PBS, see the README).

Results come back in task order whatever finishes first, and at most ``ahead`` tasks are in
flight, so a driver that reduces them in order holds a bounded number of results. The
drivers (:mod:`.downscale.run`) make every reduction in day order over tasks whose split
does not depend on the number of workers, so every executor writes the same bytes.

Dask is optional: :func:`make_executor` says how to install it when it is missing.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .errors import SsmError

log = logging.getLogger(__name__)

DASK_INSTALL = ("Dask is not installed. Install it in the Python that runs QGIS: on Debian/Ubuntu "
                "'sudo apt install python3-dask python3-distributed'; elsewhere "
                "'python -m pip install \"dask[distributed]\"' (on Windows in the OSGeo4W shell). "
                "Or leave the Dask scheduler address empty to run in this process on all cores.")


#: seconds a local Dask cluster's workers get to start
WORKER_START_S = 120.0


def dask_available() -> bool:
    """True when ``dask.distributed`` can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


class Executor:
    """Maps ``fn`` over ``tasks``; subclasses say how (``submit``/``result``)."""

    name = "executor"

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))

    def submit(self, fn: Callable[..., Any], task: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def share(self, obj: Any) -> Any:
        """A handle on ``obj`` to put in every task (itself here; Dask sends it once)."""
        return obj

    def result(self, future: Any) -> Any:
        return future.result()

    def on_workers(self, fn: Callable[[Any], Any], arg: Any) -> None:
        """Run ``fn(arg)`` on every worker process other than this one (clean-up); nothing
        to do for workers that are threads of this process."""

    def cancel(self, future: Any) -> None:
        try:
            future.cancel()
        except Exception:  # nosec B110
            pass

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any], ahead: int | None = None) -> Iterator[Any]:
        """``fn(task)`` for every task, yielded in task order; at most ``ahead`` (default
        twice the workers) tasks are submitted and not yet yielded."""
        it = iter(tasks)
        pending: deque = deque()
        try:
            for task in it:
                pending.append(self.submit(fn, task))
                if len(pending) >= max(1, ahead or 2 * self.workers):  # a cluster may grow
                    yield self.result(pending.popleft())
            while pending:
                yield self.result(pending.popleft())
        finally:  # an error or a cancelled run: drop what has not started
            for f in pending:
                self.cancel(f)

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"


class _Done:
    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def result(self) -> Any:
        return self.value

    def cancel(self) -> None:
        pass


class SerialExecutor(Executor):
    """Runs each task when its result is asked for, in this process."""

    name = "serial"

    def __init__(self, workers: int = 1):
        super().__init__(1)

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any], ahead: int | None = None) -> Iterator[Any]:
        for task in tasks:
            yield fn(task)

    def submit(self, fn: Callable[..., Any], task: Any) -> Any:
        return _Done(fn(task))


class ThreadExecutor(Executor):
    """Threads of this process (shares the run's grids and caches between workers)."""

    name = "threads"

    def __init__(self, workers: int | None = None):
        super().__init__(workers or cores())
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ssm-day")

    def submit(self, fn: Callable[..., Any], task: Any) -> Any:
        return self._pool.submit(fn, task)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class ProcessExecutor(Executor):
    """Local worker processes started with ``spawn`` (no state inherited by forking)."""

    name = "processes"

    def __init__(self, workers: int | None = None):
        super().__init__(workers or cores())
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        _python_for_workers()
        self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"), initializer=_start_worker,
                                         initargs=(worker_threads(self.workers),))

    def submit(self, fn: Callable[..., Any], task: Any) -> Any:
        return self._pool.submit(fn, task)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    """``dask.distributed``: a ``LocalCluster`` of ``workers`` single-threaded worker
    processes (default), or the scheduler at ``address`` (``tcp://host:8786``)."""

    name = "dask"

    def __init__(self, address: str | None = None, workers: int | None = None, *,
                 memory_limit: str | float | None = "auto", client: Any = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise SsmError(DASK_INSTALL) from exc
        self._cluster = None
        if client is not None:
            self.client = client
            self._own_client = False
        elif address:
            try:
                self.client = Client(address, timeout="30s")
            except OSError as exc:
                raise SsmError(f"Cannot reach the Dask scheduler at {address!r}: {exc}. Start it (e.g. "
                               "'dask scheduler', or a dask-jobqueue cluster) or leave the address empty") from exc
            self._own_client = True
        else:
            n = workers or cores()
            _python_for_workers()
            # the nanny sets its pre-spawn variables (OMP_NUM_THREADS=1, MALLOC_TRIM_THRESHOLD_
            # ...) in this process's environment to start each worker: given back below
            self._saved_env = {k: os.environ.get(k) for k in nanny_environ(pre_spawn_only=True)}
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                         memory_limit=memory_limit, dashboard_address=None, env=worker_threads(n))
            self.client = Client(self._cluster)
            self._own_client = True
            try:  # a worker that cannot start (another Python, a missing package) is an error here
                self.client.wait_for_workers(n, timeout=WORKER_START_S)
            except Exception as exc:
                self.close()
                raise SsmError(f"The local Dask cluster's {n} worker process(es) did not all start within "
                               f"{WORKER_START_S:g} s ({type(exc).__name__}: {exc}); they run "
                               f"{python_for_workers() or 'the Python on the PATH'}, which must import the "
                               "same packages as this one. Leave the Dask scheduler address empty to run in "
                               "this process") from exc
            finally:
                self._restore_environ()
        self._expected = max(1, int(workers or 1))
        log.info("Dask: %d worker(s) at %s", self.workers, self.client.scheduler.address)

    @property  # type: ignore[override]
    def workers(self) -> int:
        """The workers connected now (a dask-jobqueue cluster grows as its jobs start)."""
        try:
            return max(1, len(self.client.scheduler_info().get("workers", {})))
        except Exception:  # the scheduler is busy: the number asked for
            return self._expected

    @workers.setter
    def workers(self, value: int) -> None:
        self._expected = max(1, int(value))

    def share(self, obj: Any) -> Any:
        return self.client.scatter(obj, broadcast=True, hash=False)

    def on_workers(self, fn: Callable[[Any], Any], arg: Any) -> None:
        try:
            self.client.run(fn, arg)
        except Exception as exc:  # a worker gone: its memory went with it
            log.debug("clean-up on the Dask workers failed: %s", exc)

    def submit(self, fn: Callable[..., Any], task: Any) -> Any:
        return self.client.submit(fn, task, pure=False)

    def result(self, future: Any) -> Any:
        r = future.result()
        future.release()
        return r

    def close(self) -> None:
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._restore_environ()

    def _restore_environ(self) -> None:
        """This process's environment as before the local cluster started (the QGIS
        process's own threads and allocator are not the workers')."""
        for k, v in getattr(self, "_saved_env", {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def nanny_environ(pre_spawn_only: bool = False) -> dict[str, str]:
    """The variables Dask's nanny puts into the environment of the worker processes it
    starts (``distributed.nanny.pre-spawn-environ``, which it also sets in the process that
    starts them, and unless ``pre_spawn_only`` ``distributed.nanny.environ``), as strings;
    ``{}`` without dask or where the keys are unknown."""
    try:
        import dask.config

        got: dict[str, str] = {}
        keys = ("pre-spawn-environ",) if pre_spawn_only else ("pre-spawn-environ", "environ")
        for key in keys:
            got.update({k: str(v) for k, v in (dask.config.get(f"distributed.nanny.{key}", default=None) or {}).items()
                        if v is not None})
        return got
    except Exception:  # an older or unusual dask: nothing is known to be set that way
        return {}


def python_for_workers() -> str | None:
    """The Python interpreter of this process's Python installation, for worker processes:
    the one under ``sys.exec_prefix`` (``bin/pythonX.Y``, ``bin/python3``; ``python.exe``
    on Windows), else ``sys.executable`` when it is a Python, else the first ``pythonX.Y``
    on the PATH. Inside QGIS ``sys.executable`` is the QGIS program, or whatever
    ``python3`` comes first on the PATH (e.g. a pyenv shim: another installation, whose
    workers cannot import this one's packages). None when none is found."""
    import shutil
    import sys

    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    for prefix in dict.fromkeys((sys.exec_prefix, sys.base_exec_prefix)):
        for rel in (f"bin/python{ver}", "bin/python3", "python.exe", "python3.exe"):
            cand = os.path.join(prefix, rel)
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                return cand
    if os.path.basename(sys.executable).lower().startswith("python"):
        return sys.executable
    return shutil.which(f"python{ver}") or shutil.which("python3")


def _python_for_workers() -> None:
    """Worker processes are started with ``sys.executable``; inside QGIS that is not this
    installation's Python (see :func:`python_for_workers`): point multiprocessing at it."""
    import multiprocessing as mp
    import sys

    exe = python_for_workers()
    if exe and os.path.realpath(exe) != os.path.realpath(sys.executable):
        mp.set_executable(exe)


def cores() -> int:
    """The cores this process may use (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


#: the environment variables through which a local worker process gets its share of the cores
WORKER_THREAD_VARS = ("NUMBA_NUM_THREADS", "SSM_READ_THREADS", "SSM_WRITE_THREADS")
#: a local worker's share of the cores for the compiled kernels, as given when it was
#: started (``NUMBA_NUM_THREADS`` may have to be changed, see :func:`worker_numba_threads`)
WORKER_NUMBA_VAR = "SSM_WORKER_NUMBA_THREADS"


def worker_threads(workers: int) -> dict[str, str]:
    """The environment of one of ``workers`` local worker processes: its share of this
    process's cores (at least 1) for the numba kernels and GDAL's decoding, warping and
    compression threads. Each worker using every core makes them wait on each other: 10
    China-sized days on ``processes:2`` of 2 cores took 97-110 s with one thread per worker
    against 128-130 s (the same bytes). A variable set in this process is passed on as it is."""
    share = str(max(1, cores() // max(1, int(workers))))
    env = {k: os.environ.get(k, share) for k in WORKER_THREAD_VARS}
    env[WORKER_NUMBA_VAR] = env["NUMBA_NUM_THREADS"]
    return env


def _start_worker(env: dict[str, str]) -> None:
    """Initializer of a local worker process: :func:`worker_threads`'s environment, set
    before numba is imported (and applied to numba if it already is)."""
    os.environ.update(env)
    worker_numba_threads()


def worker_numba_threads() -> None:
    """In a local worker process (one started with :func:`worker_threads`'s environment),
    before a task: the compiled kernels of the calling thread use the worker's share of
    the cores. Elsewhere: nothing.

    Dask's nanny sets a worker's environment after the process has started, and numba
    may already be imported by then with a thread pool sized to every core. Such a
    pool, once launched, cannot change size, and numba re-reads ``NUMBA_NUM_THREADS`` at
    each compilation (a kernel not yet in the cache): a different value there is an
    error ("Cannot set NUMBA_NUM_THREADS ... once the threads have been launched"). So a
    pool not launched yet takes the environment's size, a launched one keeps its size
    (and the environment is made to say so) and the calling thread is limited to the
    share (``numba.set_num_threads`` holds per thread: Dask runs tasks in its own
    threads)."""
    want = os.environ.get(WORKER_NUMBA_VAR)
    numba = sys.modules.get("numba")
    if not want or numba is None:  # not a worker, or numba is imported later and reads the environment
        return
    try:
        share = max(1, int(want))
        from numba.np.ufunc import parallel

        if not parallel._is_initialized:
            numba.core.config.reload_config()  # the pool is sized by the environment when launched
        if os.environ.get("NUMBA_NUM_THREADS") != str(numba.config.NUMBA_NUM_THREADS):
            os.environ["NUMBA_NUM_THREADS"] = str(numba.config.NUMBA_NUM_THREADS)
        numba.set_num_threads(min(share, numba.config.NUMBA_NUM_THREADS))
    except (ValueError, AttributeError, ImportError, RuntimeError) as exc:  # pragma: no cover - odd values or numba
        log.debug("could not limit this worker's numba threads: %s", exc)


def threads_safe_for_kernels() -> bool:
    """True when compiled kernels may run in several threads at once: numba absent (numpy
    fallbacks) or with a thread-safe threading layer (TBB or OpenMP; numba's own
    ``workqueue`` layer aborts the process on concurrent parallel calls)."""
    try:
        import numba
    except ImportError:
        return True
    if str(getattr(numba.config, "THREADING_LAYER", "default")).lower() == "workqueue":
        return False
    import importlib

    for mod in ("numba.np.ufunc.tbbpool", "numba.np.ufunc.omppool"):
        try:
            importlib.import_module(mod)
            return True
        except ImportError:
            continue
    return False


def make_executor(scheduler: str | None = None, workers: int | None = None) -> Executor:
    """The executor for a scheduler setting: empty/None = this process on ``workers`` cores
    (default all; 1 = serial); ``"local"`` or ``"local:N"`` = a Dask ``LocalCluster`` of N
    worker processes; ``"processes"``/``"processes:N"`` = local processes without Dask;
    any other text = the address of a Dask scheduler (``tcp://host:8786``)."""
    s = (scheduler or "").strip()
    if not s:
        n = workers or cores()
        if n > 1 and not threads_safe_for_kernels():
            log.info("numba has no thread-safe threading layer here (install TBB: 'pip install tbb'): the days run "
                     "one after another; give 'local' as the Dask scheduler address to use every core")
            n = 1
        return SerialExecutor() if n <= 1 else ThreadExecutor(n)
    kind, _, count = s.partition(":")
    if kind in ("local", "processes") and (not count or count.isdigit()):
        n = int(count) if count else workers
        return DaskExecutor(None, n) if kind == "local" else ProcessExecutor(n)
    if "://" not in s and ":" not in s:
        raise SsmError(f"{s!r} is not a Dask scheduler address: give one such as tcp://host:8786, 'local' for a "
                       "local Dask cluster, or leave it empty")
    return DaskExecutor(s if "://" in s else f"tcp://{s}", workers)
