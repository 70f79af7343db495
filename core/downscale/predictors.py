"""Inputs of a downscaling run: coarse SSM and 1 km predictors, from folders or arrays.

A *fine source* reads the raw 1 km predictors of a day in row blocks of the target grid
(``lst`` all-weather LST in K, ``ndvi``, ``albedo``, optional ``dem`` in m and ``lst_diff``
day-night LST difference in K) plus the optional LST gap-fill flags; a *coarse source*
reads the day's coarse SSM on the (cropped) coarse grid. Folder sources warp inputs on
other grids onto the target grid with GDAL (average when the input is much finer,
bilinear otherwise, nearest for flags); array sources serve tests and notebooks.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GridError, SeriesError
from ..grid import Grid
from ..series import DailySeries, LayerSource

log = logging.getLogger(__name__)

#: what each raw predictor is, for messages
LABELS = {
    "lst": "all-weather LST",
    "ndvi": "NDVI",
    "albedo": "albedo",
    "dem": "DEM",
    "lst_diff": "day-night LST difference",
    "lst_flags": "LST gap-fill flags",
    "ssm": "coarse soil moisture",
}


def resampling_for(src: Grid, dst: Grid) -> str:
    """``average`` when ``src`` pixels are much smaller than ``dst``'s (in the same CRS
    units, or roughly for different CRSs), else ``bilinear``."""
    try:
        sx = src.res[0]
        dx = dst.res[0]
        if src.is_geographic and not dst.is_geographic:
            sx *= 111_000.0
        elif dst.is_geographic and not src.is_geographic:
            dx *= 111_000.0
        return "average" if sx * 1.5 < dx else "bilinear"
    except Exception:  # pragma: no cover - exotic CRSs
        return "bilinear"


def overlap_fraction(src: Grid, dst: Grid, n: int = 33) -> float:
    """Fraction of a lattice of ``dst`` points that fall inside ``src``."""
    from ..grid import transform_points

    r, c = np.meshgrid(np.linspace(0, dst.height - 1, n), np.linspace(0, dst.width - 1, n), indexing="ij")
    x, y = dst.xy(r, c)
    x, y = transform_points(x, y, dst.crs_wkt, src.crs_wkt)
    rr, _ = src.rowcol(x, y)
    return float((rr >= 0).mean())


def check_covers(name: str, path: Path, src: Grid, fine: Grid) -> None:
    """Raise when an input does not overlap the 1 km grid; warn when it covers only part."""
    try:
        frac = overlap_fraction(src, fine)
    except GridError as exc:
        raise GridError(f"{path}: the {LABELS.get(name, name)} cannot be placed on the 1 km grid: {exc}") from exc
    if frac <= 0.0:
        raise GridError(
            f"{path}: the {LABELS.get(name, name)} does not cover the 1 km grid (its extent {src!r} "
            f"does not overlap {fine!r}); use a layer over the same area"
        )
    if frac < 0.99:
        log.warning("%s: the %s covers only %.0f %% of the 1 km grid; pixels outside get no estimate",
                    path, LABELS.get(name, name), 100 * frac)


class DayCache:
    """Whole-grid float32 arrays of the inputs in use, each decoded (and warped) once.

    An entry is one input file (a day's raster, a composite serving several days, or a
    static layer) read onto the whole target grid. Small entries stay in memory; larger
    ones (more than ``memory_layer_bytes``) go to a raw float32 file (rows in order, no
    header) in a private scratch folder under ``scratch_dir`` and blocks are read back
    with ``pread``, so they use the page cache, not the process's memory. ``release(day)``
    drops the entries only that day used; beyond ``memory_bytes`` in memory or
    ``disk_bytes`` on disk the least recently used entries are dropped too (and read
    again if asked for). Thread-safe: concurrent readers of one entry wait for one load.
    """

    def __init__(self, grid: Grid, scratch_dir: str | Path | None = None, memory_bytes: int = 256 << 20,
                 disk_bytes: int = 4 << 30, memory_layer_bytes: int = 32 << 20):
        self.grid = grid
        self.scratch_parent = Path(scratch_dir) if scratch_dir else None
        self.memory_bytes = int(memory_bytes)
        self.disk_bytes = int(disk_bytes)
        self.memory_layer_bytes = int(memory_layer_bytes)
        self._lock = threading.Lock()
        self._scratch_lock = threading.Lock()
        self._entries: dict[tuple, _Entry] = {}
        self._tick = 0
        self._scratch: Path | None = None
        self._finalizer: weakref.finalize | None = None
        #: entries loaded (decoded from their files) so far, for tests and benchmarks
        self.loads = 0

    # ------------------------------------------------------------------------------
    def block(self, key: tuple, day: dt.date | None, loader: Callable[[], np.ndarray], row0: int,
              nrows: int) -> np.ndarray:
        """Rows ``row0 : row0 + nrows`` of entry ``key`` (a new float32 array), loading the
        whole grid with ``loader()`` on first use; ``day`` None pins the entry (static)."""
        for _ in range(3):
            e = self._get(key, day, loader)
            try:
                return e.rows(row0, nrows, self.grid.width)
            except FileNotFoundError:  # dropped by another thread meanwhile: load it again
                continue
        raise RuntimeError(f"the scratch file of {key[1]} keeps disappearing")  # pragma: no cover

    def _get(self, key: tuple, day: dt.date | None, loader: Callable[[], np.ndarray]) -> _Entry:
        with self._lock:
            self._tick += 1
            e = self._entries.get(key)
            owner = e is None
            if owner:
                e = self._entries[key] = _Entry(key)
            e.days.add(day)
            e.used = serial = self._tick
        if not owner:
            e.ready.wait()
            if e.error is not None:
                raise e.error
            return e
        try:
            arr = np.asarray(loader(), dtype=np.float32)
            if arr.shape != self.grid.shape:  # pragma: no cover - loaders read onto the grid
                raise ValueError(f"{key[1]}: read as {arr.shape}, the grid is {self.grid.shape}")
            e.nbytes = arr.nbytes
            if arr.nbytes > self.memory_layer_bytes:
                try:
                    path = self._scratch_dir() / f"{serial}.f32"
                    arr.tofile(path)
                    e.path = path
                except OSError as exc:  # no scratch space: keep it in memory
                    log.warning("Cannot write the input cache under %s (%s); keeping the day's inputs in memory",
                                self.scratch_parent or tempfile.gettempdir(), exc)
                    self.memory_layer_bytes = 1 << 62
            if e.path is None:
                e.array = arr
            del arr
            with self._lock:
                self.loads += 1
                self._evict(keep=key)
        except BaseException as exc:
            with self._lock:
                self._entries.pop(key, None)
            e.error = exc
            e.ready.set()
            raise
        e.ready.set()
        return e

    def _scratch_dir(self) -> Path:
        with self._scratch_lock:
            return self._make_scratch()

    def _make_scratch(self) -> Path:
        if self._scratch is None:
            parent = self.scratch_parent
            if parent is not None:
                parent.mkdir(parents=True, exist_ok=True)
            self._scratch = Path(tempfile.mkdtemp(prefix="ssm-daycache-", dir=parent))
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._scratch), True)
        return self._scratch

    def _evict(self, keep: tuple) -> None:
        """Drop least recently used entries beyond the budgets (caller holds the lock)."""
        for on_disk, budget in ((False, self.memory_bytes), (True, self.disk_bytes)):
            ready = [e for e in self._entries.values() if e.ready.is_set() or e.key == keep]
            used = sum(e.nbytes for e in ready if (e.path is not None) == on_disk)
            for e in sorted(ready, key=lambda e: (None in e.days, e.used)):  # static entries last
                if used <= budget:
                    break
                if e.key == keep or (e.path is not None) != on_disk:
                    continue
                used -= e.nbytes
                self._drop(e)

    def _drop(self, e: _Entry) -> None:
        self._entries.pop(e.key, None)
        if e.path is not None:
            try:
                e.path.unlink()
            except FileNotFoundError:  # pragma: no cover
                pass

    def release(self, day: dt.date) -> None:
        """Forget ``day``: drop the entries no other day (and no static use) holds."""
        with self._lock:
            for e in list(self._entries.values()):
                if not e.ready.is_set():
                    continue
                e.days.discard(day)
                if not e.days:
                    self._drop(e)

    def clear(self) -> None:
        """Drop every entry and the scratch folder."""
        with self._lock:
            for e in list(self._entries.values()):
                if e.ready.is_set():
                    self._drop(e)
            if self._finalizer is not None and not self._entries:
                self._finalizer()
                self._scratch = self._finalizer = None

    @property
    def nbytes(self) -> tuple[int, int]:
        """Bytes held ``(in memory, on disk)``."""
        with self._lock:
            es = [e for e in self._entries.values() if e.ready.is_set()]
        return (sum(e.nbytes for e in es if e.path is None), sum(e.nbytes for e in es if e.path is not None))


class _Entry:
    """One cached whole-grid array (see :class:`DayCache`)."""

    __slots__ = ("key", "days", "used", "array", "path", "nbytes", "ready", "error")

    def __init__(self, key: tuple):
        self.key = key
        self.days: set[dt.date | None] = set()
        self.used = 0
        self.array: np.ndarray | None = None
        self.path: Path | None = None
        self.nbytes = 0
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def rows(self, row0: int, nrows: int, width: int) -> np.ndarray:
        if self.array is not None:
            return self.array[row0 : row0 + nrows].copy()
        return np.fromfile(self.path, dtype=np.float32, count=nrows * width,
                           offset=row0 * width * 4).reshape(nrows, width)


class FolderPredictors:
    """1 km predictors from folders (daily series, composites) or single rasters.

    Block reads of a day are served from a :class:`DayCache`: the first read of a day
    reads each of its files once for the whole grid (in tile-aligned strips, or warped
    once onto the whole grid when on another grid or CRS, so block edges get the values
    of a whole-grid warp), and later reads of any block of that day (aggregation,
    prediction, further passes) come from the cache. Call :meth:`release` after a day's
    last read to free it (static layers stay until :meth:`close`); the cache is bounded
    anyway (``memory_bytes`` in memory, ``disk_bytes`` of scratch files under
    ``scratch_dir``, default the system's temporary folder).
    """

    def __init__(
        self,
        fine: Grid,
        layers: Mapping[str, LayerSource],
        lst_flags: LayerSource | None = None,
        cache_static: bool = True,
        *,
        scratch_dir: str | Path | None = None,
        memory_bytes: int = 256 << 20,
        disk_bytes: int = 4 << 30,
    ):
        self.fine = fine
        self.layers = dict(layers)
        self.flags = lst_flags
        self.cache_static = cache_static
        self.scratch_dir = scratch_dir
        self.memory_bytes = memory_bytes
        self.disk_bytes = disk_bytes
        self._warned: set[dt.date] = set()
        self._resampling = {k: resampling_for(v.grid(), fine) for k, v in self.layers.items()}
        self.cache = self._new_cache()

    def _new_cache(self) -> DayCache:
        return DayCache(self.fine, self.scratch_dir, self.memory_bytes, self.disk_bytes)

    def __getstate__(self) -> dict:  # a worker gets the sources, not this process's cache
        st = dict(self.__dict__)
        st.pop("cache", None)
        return st

    def __setstate__(self, st: dict) -> None:
        self.__dict__.update(st)
        self.cache = self._new_cache()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.layers)

    def missing(self, day: dt.date) -> list[str]:
        """Names of the predictors without a file for ``day``."""
        return [k for k, v in self.layers.items() if not v.covers(day)]

    def _cached(self, src: LayerSource, day: dt.date, resampling: str, row0: int, nrows: int) -> np.ndarray:
        """Rows of ``src``'s file for ``day`` on the whole grid, through the day cache."""
        if src.is_static:
            path, owner = src.path, (None if self.cache_static else day)
        else:
            d = src.date_for(day)
            if d is None:
                raise SeriesError(f"{src.path}: no file within {src.max_age_days} days of {day}")
            path, owner = src.series.path(d), day
        key = (str(src.path), str(path), resampling)
        return self.cache.block(key, owner, lambda: src.read(day, self.fine, resampling), row0, nrows)

    def read(self, day: dt.date, row0: int, nrows: int) -> dict[str, np.ndarray]:
        """The raw predictors of rows ``row0 : row0 + nrows``, float32 ``(nrows, width)``."""
        return {k: self._cached(v, day, self._resampling[k], row0, nrows) for k, v in self.layers.items()}

    def read_sample(self, day: dt.date, max_pixels: int) -> dict[str, np.ndarray]:
        """All predictors on a decimated copy of the grid with at most ``max_pixels``."""
        f = max(1, math.ceil(math.sqrt(self.fine.size / max(max_pixels, 1))))
        if f == 1:
            return self.read(day, 0, self.fine.height)
        gt = self.fine.transform
        grid = Grid(self.fine.crs_wkt, (gt[0], gt[1] * f, gt[2] * f, gt[3], gt[4] * f, gt[5] * f),
                    max(1, self.fine.width // f), max(1, self.fine.height // f))
        return {k: v.read(day, grid, "nearest") for k, v in self.layers.items()}

    def lst_flags(self, day: dt.date, row0: int, nrows: int) -> np.ndarray | None:
        if self.flags is None:
            return None
        if not self.flags.covers(day):
            if day not in self._warned:
                self._warned.add(day)
                log.warning("%s: no LST gap-fill flags for %s; its SSM flags mark no pixel as LST gap-filled",
                            self.flags.path, day)
            return None
        return self._cached(self.flags, day, "nearest", row0, nrows)

    def release(self, day: dt.date) -> None:
        """Free the cached inputs of ``day`` (call after the day's last read)."""
        self.cache.release(day)

    def close(self) -> None:
        """Free every cached input, static layers included, and the scratch files."""
        self.cache.clear()


@dataclass
class ArrayPredictors:
    """1 km predictors held in memory: ``layers[name]`` is an array ``fine.shape`` (static)
    or a mapping date -> array; ``lst_flags`` likewise (optional)."""

    fine: Grid
    layers: Mapping[str, object]
    lst_flags_: object | None = None
    _sample_cache: dict = field(default_factory=dict, repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.layers)

    @staticmethod
    def _get(v: object, day: dt.date) -> np.ndarray | None:
        if isinstance(v, Mapping):
            return v.get(day)
        return v  # type: ignore[return-value]

    def missing(self, day: dt.date) -> list[str]:
        return [k for k, v in self.layers.items() if self._get(v, day) is None]

    def read(self, day: dt.date, row0: int, nrows: int) -> dict[str, np.ndarray]:
        return {k: np.asarray(self._get(v, day), dtype=np.float32)[row0 : row0 + nrows] for k, v in self.layers.items()}

    def read_sample(self, day: dt.date, max_pixels: int) -> dict[str, np.ndarray]:
        f = max(1, math.ceil(math.sqrt(self.fine.size / max(max_pixels, 1))))
        return {k: np.asarray(self._get(v, day), dtype=np.float32)[::f, ::f] for k, v in self.layers.items()}

    def release(self, day: dt.date) -> None:
        """Nothing to free (the arrays belong to the caller); for the same interface."""

    def close(self) -> None:
        """Nothing to free; for the same interface as :class:`FolderPredictors`."""

    def lst_flags(self, day: dt.date, row0: int, nrows: int) -> np.ndarray | None:
        if self.lst_flags_ is None:
            return None
        a = self._get(self.lst_flags_, day)
        return None if a is None else np.asarray(a)[row0 : row0 + nrows]


class FolderCoarse:
    """Coarse SSM from a folder of dated rasters, read on the cropped coarse grid."""

    def __init__(self, series: DailySeries, grid: Grid):
        self.series = series
        self.grid = grid

    @property
    def dates(self) -> list[dt.date]:
        return self.series.dates

    def read(self, day: dt.date) -> np.ndarray:
        return self.series.read(day, self.grid, resampling="nearest")


@dataclass
class ArrayCoarse:
    """Coarse SSM in memory: date -> array of the cropped coarse grid's shape."""

    days: Mapping[dt.date, np.ndarray]

    @property
    def dates(self) -> list[dt.date]:
        return sorted(self.days)

    def read(self, day: dt.date) -> np.ndarray:
        return np.asarray(self.days[day], dtype=np.float32)


def coarse_grid_of(series: DailySeries) -> Grid:
    """The coarse product's grid (from its first file), with errors naming the file."""
    path = series.files[series.start]
    try:
        grid = Grid.from_raster(path)
        grid.srs  # noqa: B018 - parse the CRS now
    except GridError as exc:
        raise GridError(f"{path}: the coarse soil moisture is not usable: {exc}") from exc
    return grid


def common_days(
    coarse_dates: list[dt.date],
    fine: FolderPredictors | ArrayPredictors,
    start: dt.date | None,
    end: dt.date | None,
    describe: Mapping[str, str] | None = None,
) -> tuple[list[dt.date], dict[dt.date, str]]:
    """Days in ``[start, end]`` with coarse SSM and every predictor, and the reasons the
    other days of the range were skipped. Raises :class:`SeriesError` when none is left."""
    sel = [d for d in coarse_dates if (start is None or d >= start) and (end is None or d <= end)]
    if not sel:
        span = f"{coarse_dates[0]} to {coarse_dates[-1]}" if coarse_dates else "no dates"
        where = (describe or {}).get("ssm", "the coarse soil moisture")
        raise SeriesError(f"{where}: no day between {start or '...'} and {end or '...'} (it has {span})")
    days, skipped = [], {}
    for d in sel:
        miss = fine.missing(d)
        if miss:
            skipped[d] = "no " + ", ".join(LABELS.get(m, m) for m in miss)
        else:
            days.append(d)
    if not days:
        parts = [f"coarse soil moisture {sel[0]} to {sel[-1]}"]
        if isinstance(fine, FolderPredictors):
            for k, v in fine.layers.items():
                if v.series is not None:
                    parts.append(f"{LABELS.get(k, k)} {v.series.start} to {v.series.end} ({v.path})")
        raise SeriesError("No common dates: no day has coarse soil moisture and all predictors together: " + "; ".join(parts))
    return days, skipped
