"""Per-day state of a downscaling run (:class:`DayStore`): on a scratch folder that every
worker sees, or in memory when every task runs in the driver's process."""

from __future__ import annotations

import datetime as dt
import logging
import os
import pickle  # nosec B403 - the run's own state, written and read by this package
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


#: bytes of per-day state a run whose tasks all run in this process keeps in memory
#: instead of on its scratch folder (``SSM_STORE_MB`` overrides it; 0: always the folder).
#: At China size a day's kept prediction is 180 MB: 256 MB hold one, and a run of many
#: China-sized days stays within 2 GB (1.94 GB for 4 days; 2.06 GB with 512 MB)
STORE_MEMORY_BYTES = 256 * 1024**2


def store_memory_budget() -> int:
    """The in-memory budget of :class:`DayStore` (bytes), from ``SSM_STORE_MB``."""
    env = os.environ.get("SSM_STORE_MB", "").strip()
    try:
        return max(0, int(float(env) * 1024**2)) if env else STORE_MEMORY_BYTES
    except ValueError:
        log.warning("SSM_STORE_MB=%r is not a number of megabytes; using %d", env, STORE_MEMORY_BYTES // 1024**2)
        return STORE_MEMORY_BYTES


class _MemoryLayer:
    """Per-day state held in this process, per scratch folder: pickled bytes (each
    :meth:`DayStore.get` unpickles a fresh copy, as from the folder) and arrays (taken
    once by :meth:`DayStore.pop_array`), up to a byte budget shared by the runs."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, int], bytes | np.ndarray] = {}
        self.bytes = 0
        self.lock = threading.Lock()

    def put(self, key: tuple[str, str, int], value: bytes | np.ndarray, budget: int) -> bool:
        size = len(value) if isinstance(value, bytes) else int(value.nbytes)
        with self.lock:
            old = self.items.pop(key, None)
            if old is not None:
                self.bytes -= len(old) if isinstance(old, bytes) else int(old.nbytes)
            if self.bytes + size > budget:
                return False
            self.items[key] = value
            self.bytes += size
            return True

    def free(self, budget: int) -> int:
        """Bytes left under ``budget``."""
        with self.lock:
            return budget - self.bytes

    def take(self, key: tuple[str, str, int], remove: bool) -> bytes | np.ndarray | None:
        with self.lock:
            value = self.items.pop(key, None) if remove else self.items.get(key)
            if value is not None and remove:
                self.bytes -= len(value) if isinstance(value, bytes) else int(value.nbytes)
            return value

    def forget(self, folder: str) -> None:
        with self.lock:
            for key in [k for k in self.items if k[0] == folder]:
                value = self.items.pop(key)
                self.bytes -= len(value) if isinstance(value, bytes) else int(value.nbytes)


_MEMORY = _MemoryLayer()


def array_bytes(obj: object, depth: int = 3) -> int:
    """Bytes of the numpy arrays in ``obj`` and in the dicts, lists and tuples it holds
    (``depth`` levels down): a lower bound of its pickled size, known without pickling."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if depth <= 0:
        return 0
    if isinstance(obj, dict):
        obj = obj.values()
    elif not isinstance(obj, (list, tuple)):
        return 0
    return sum(array_bytes(v, depth - 1) for v in obj)


class DayStore:
    """Per-day state of a run on a scratch folder (pickles, written atomically): what a
    day's later stages need (its coarse data, fitted estimator, residuals, filtered
    residual), so that nothing accumulates in memory over the run and any worker can pick
    a day up. The folder must be visible to every worker (on a cluster: a shared disk).

    ``local=True`` (every task of the run runs in this process: serial or thread
    executors) keeps the state in memory instead, up to :func:`store_memory_budget`
    bytes, and spills the rest to the folder: a one-day China-sized run then writes and
    reads nothing but its inputs and outputs."""

    def __init__(self, folder: str | Path, local: bool = False):
        self.folder = Path(folder)
        self.local = local
        self.budget = store_memory_budget() if local else 0
        self._tag = str(self.folder)

    def _path(self, kind: str, day: dt.date) -> Path:
        return self.folder / f"{kind}_{day.toordinal()}.pkl"

    def _key(self, kind: str, day: dt.date) -> tuple[str, str, int]:
        return (self._tag, kind, day.toordinal())

    def put(self, kind: str, day: dt.date, obj: object) -> None:
        # a day's prediction (180 MB at China size) is not pickled in memory only to be
        # thrown away when it cannot fit
        if self.budget and array_bytes(obj) <= _MEMORY.free(self.budget):
            blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
            if _MEMORY.put(self._key(kind, day), blob, self.budget):
                self._path(kind, day).unlink(missing_ok=True)
                return
        elif self.budget:  # an older value of this key must not shadow the file
            _MEMORY.take(self._key(kind, day), remove=True)
        path = self._path(kind, day)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)

    def get(self, kind: str, day: dt.date) -> object:
        if self.budget:
            blob = _MEMORY.take(self._key(kind, day), remove=False)
            if blob is not None:
                return pickle.loads(blob)  # nosec B301 - our own state
        with open(self._path(kind, day), "rb") as fh:
            return pickle.load(fh)  # nosec B301

    def has(self, kind: str, day: dt.date) -> bool:
        if self.budget and _MEMORY.take(self._key(kind, day), remove=False) is not None:
            return True
        return self._path(kind, day).exists()

    def drop(self, kind: str, day: dt.date) -> None:
        if self.budget:
            _MEMORY.take(self._key(kind, day), remove=True)
        self._path(kind, day).unlink(missing_ok=True)

    def put_array(self, kind: str, day: dt.date, arr: np.ndarray) -> None:
        """Store ``arr`` (the caller does not change it afterwards) for one :meth:`pop_array`."""
        if self.budget and _MEMORY.put(self._key("array-" + kind, day), arr, self.budget):
            return
        path = self.folder / f"{kind}_{day.toordinal()}.npy"
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.npy")
        np.save(tmp, arr)
        os.replace(tmp, path)

    def pop_array(self, kind: str, day: dt.date) -> np.ndarray:
        if self.budget:
            arr = _MEMORY.take(self._key("array-" + kind, day), remove=True)
            if arr is not None:
                return arr
        path = self.folder / f"{kind}_{day.toordinal()}.npy"
        arr = np.load(path)
        path.unlink()
        return arr

    def close(self) -> None:
        """Forget this folder's in-memory state (the end of a run)."""
        _MEMORY.forget(self._tag)
