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
from collections.abc import Mapping
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


class FolderPredictors:
    """1 km predictors from folders (daily series, composites) or single rasters."""

    def __init__(
        self,
        fine: Grid,
        layers: Mapping[str, LayerSource],
        lst_flags: LayerSource | None = None,
        cache_static: bool = True,
    ):
        self.fine = fine
        self.layers = dict(layers)
        self.flags = lst_flags
        self.cache_static = cache_static
        self._cache: dict[tuple[str, int, int], np.ndarray] = {}
        self._warned: set[dt.date] = set()
        self._resampling = {k: resampling_for(v.grid(), fine) for k, v in self.layers.items()}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.layers)

    def missing(self, day: dt.date) -> list[str]:
        """Names of the predictors without a file for ``day``."""
        return [k for k, v in self.layers.items() if not v.covers(day)]

    def _read(self, name: str, day: dt.date, grid: Grid, key: tuple[int, int] | None, resampling: str | None = None):
        src = self.layers[name]
        if src.is_static and key is not None and self.cache_static:
            ck = (name, *key)
            if ck not in self._cache:
                self._cache[ck] = src.read(None, grid, resampling or self._resampling[name])
            return self._cache[ck]
        return src.read(day, grid, resampling or self._resampling[name])

    def read(self, day: dt.date, row0: int, nrows: int) -> dict[str, np.ndarray]:
        grid = self.fine.window(row0, 0, nrows, self.fine.width)
        return {k: self._read(k, day, grid, (row0, nrows)) for k in self.layers}

    def read_sample(self, day: dt.date, max_pixels: int) -> dict[str, np.ndarray]:
        """All predictors on a decimated copy of the grid with at most ``max_pixels``."""
        f = max(1, math.ceil(math.sqrt(self.fine.size / max(max_pixels, 1))))
        if f == 1:
            return self.read(day, 0, self.fine.height)
        gt = self.fine.transform
        grid = Grid(self.fine.crs_wkt, (gt[0], gt[1] * f, gt[2] * f, gt[3], gt[4] * f, gt[5] * f),
                    max(1, self.fine.width // f), max(1, self.fine.height // f))
        return {k: self._read(k, day, grid, None, "nearest") for k in self.layers}

    def lst_flags(self, day: dt.date, row0: int, nrows: int) -> np.ndarray | None:
        if self.flags is None:
            return None
        if not self.flags.covers(day):
            if day not in self._warned:
                self._warned.add(day)
                log.warning("%s: no LST gap-fill flags for %s; its SSM flags mark no pixel as LST gap-filled",
                            self.flags.path, day)
            return None
        grid = self.fine.window(row0, 0, nrows, self.fine.width)
        return self.flags.read(day, grid, "nearest")


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
