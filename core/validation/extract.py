"""Product values at station points from a daily raster series in any CRS.

For each day only the pixels around the stations are read: the stations are grouped by
the raster block (256 x 256 pixel cells of the raster grid) they fall in, and each group's
bounding window (plus the averaging window) is read with one ``ReadAsArray`` call, so a
sparse network over a large raster touches a few small windows and a dense one reads at
most the blocks holding stations. The product value is the pixel containing the station,
or the mean of the valid pixels of an ``n x n`` window centred on it (n odd).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..errors import RasterReadError, SeriesError
from ..grid import Grid, open_raster, to_wkt, transform_points
from ..progress import CancelFn, Progress, ProgressFn
from ..series import DailySeries

gdal.UseExceptions()
log = logging.getLogger(__name__)

WGS84 = to_wkt(4326)


@dataclass
class PointSample:
    """Values of one series at ``n`` points on a daily axis.

    values : float64 ``(n, n_days)``, NaN where the day has no file, the pixel is nodata
        or the point is outside the raster.
    inside : bool ``(n,)``, the point fell inside the raster of at least one file read.
    days_read : bool ``(n_days,)``, a file of that day was read.
    """

    values: np.ndarray
    inside: np.ndarray
    days_read: np.ndarray
    folder: str = ""


@dataclass
class _Layout:
    """Where the points fall on one raster grid, and which windows to read."""

    rows: np.ndarray
    cols: np.ndarray
    inside: np.ndarray
    groups: list[tuple[int, int, int, int, np.ndarray]]  # (row0, col0, nrows, ncols, point indices)


def point_pixels(grid: Grid, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column (-1 outside) of the pixels of ``grid`` containing WGS84 points.

    On geographic grids whose longitudes run 0..360 (or beyond 180), points are also
    tried shifted by 360 degrees.
    """
    x, y = transform_points(lon, lat, WGS84, grid.crs_wkt)
    rows, cols = grid.rowcol(x, y)
    if grid.is_geographic:
        for shift in (360.0, -360.0):
            out = rows < 0
            if not out.any():
                break
            r2, c2 = grid.rowcol(x[out] + shift, y[out])
            rows[out], cols[out] = r2, c2
    return rows, cols


def _layout(grid: Grid, lon: np.ndarray, lat: np.ndarray, half: int, block: int) -> _Layout:
    rows, cols = point_pixels(grid, lon, lat)
    inside = rows >= 0
    idx = np.flatnonzero(inside)
    groups: list[tuple[int, int, int, int, np.ndarray]] = []
    if idx.size:
        key = (rows[idx] // block) * (grid.width // block + 1) + cols[idx] // block
        order = np.argsort(key, kind="stable")
        uk, starts = np.unique(key[order], return_index=True)
        bounds = list(starts[1:]) + [order.size]
        for s, e in zip(starts, bounds):
            members = idx[order[s:e]]
            r0 = max(0, int(rows[members].min()) - half)
            r1 = min(grid.height, int(rows[members].max()) + half + 1)
            c0 = max(0, int(cols[members].min()) - half)
            c1 = min(grid.width, int(cols[members].max()) + half + 1)
            groups.append((r0, c0, r1 - r0, c1 - c0, members))
    return _Layout(rows, cols, inside, groups)


@contextmanager
def _no_folder_listing() -> Iterator[None]:
    """In this thread, open files without listing their folder (GDAL's
    ``GDAL_DISABLE_READDIR_ON_OPEN=TRUE``): side-car files (``.aux.xml``, ``.ovr``) are
    still found, by probing their names, but a folder of thousands of daily files is not
    listed again for every file (1.5 ms against 0.3 ms per file for 6,205 files)."""
    key = "GDAL_DISABLE_READDIR_ON_OPEN"
    old = gdal.GetThreadLocalConfigOption(key, None)
    gdal.SetThreadLocalConfigOption(key, "TRUE")
    try:
        yield
    finally:
        gdal.SetThreadLocalConfigOption(key, old)


def _grid_key(ds: gdal.Dataset) -> tuple:
    """Geotransform and size: files sharing them are taken to share the grid and CRS (the
    CRS, slow to fetch from GeoTIFF keys, is read once per distinct key)."""
    return (tuple(ds.GetGeoTransform()), ds.RasterXSize, ds.RasterYSize)


def _read_group(
    band: gdal.Band,
    group: tuple[int, int, int, int, np.ndarray],
    layout: _Layout,
    half: int,
    nodata: float | None,
    scale: float,
    offset: float,
) -> np.ndarray:
    """Window means (or the single pixel) for the points of one group."""
    r0, c0, nr, nc, members = group
    raw = band.ReadAsArray(c0, r0, nc, nr)
    data = raw.astype(np.float64)
    if nodata is not None and np.isfinite(nodata):
        data[raw == np.asarray(nodata).astype(raw.dtype)] = np.nan
    if scale != 1.0 or offset != 0.0:
        data = data * scale + offset
    rr = layout.rows[members] - r0
    cc = layout.cols[members] - c0
    if half == 0:
        return data[rr, cc]
    d = np.arange(-half, half + 1)
    wr = rr[:, None, None] + d[None, :, None]
    wc = cc[:, None, None] + d[None, None, :]
    ok = (wr >= 0) & (wr < nr) & (wc >= 0) & (wc < nc)
    vals = np.where(ok, data[np.clip(wr, 0, nr - 1), np.clip(wc, 0, nc - 1)], np.nan)
    vals = vals.reshape(len(members), -1)
    n = np.isfinite(vals).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.nansum(vals, axis=1) / n, np.nan)


def sample_series(
    series: DailySeries | str | Path,
    lon: np.ndarray,
    lat: np.ndarray,
    dates: Sequence[dt.date],
    window: int = 1,
    *,
    band: int = 1,
    block: int = 256,
    threads: int | None = None,
    progress: ProgressFn | Progress | None = None,
    is_cancelled: CancelFn | None = None,
) -> PointSample:
    """Read a daily series at WGS84 points ``(lon, lat)`` for each of ``dates``.

    ``window`` (odd, >= 1) is the side of the pixel window averaged around the pixel
    containing each point (NaN pixels are left out of the mean). Files may differ in grid
    from day to day (each grid is handled once). Band scale/offset are applied. Files are
    read by ``threads`` worker threads (default: up to 4, GDAL reads without the GIL).
    """
    if not isinstance(series, DailySeries):
        series = DailySeries.from_folder(series)
    window = int(window)
    if window < 1 or window % 2 == 0:
        raise SeriesError(f"The window size must be an odd number of pixels (1, 3, 5 ...), got {window}")
    half = window // 2
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    n, nd = lon.size, len(dates)
    values = np.full((n, nd), np.nan)
    inside = np.zeros(n, dtype=bool)
    days_read = np.zeros(nd, dtype=bool)
    todo = [(j, d) for j, d in enumerate(dates) if d in series]
    prog = progress if isinstance(progress, Progress) else Progress(max(len(todo), 1), progress, is_cancelled)
    layouts: dict[tuple, _Layout] = {}
    lock = threading.Lock()

    def read_day(j: int, day: dt.date) -> np.ndarray:
        path = series.path(day)
        with _no_folder_listing():
            return _read_day(j, path)

    def _read_day(j: int, path: Path) -> np.ndarray:
        ds = open_raster(path)
        try:
            if band > ds.RasterCount:
                raise RasterReadError(f"{path}: has {ds.RasterCount} band(s), band {band} was asked for")
            key = _grid_key(ds)
            with lock:
                lay = layouts.get(key)
                if lay is None:
                    lay = layouts[key] = _layout(Grid.from_raster(ds), lon, lat, half, block)
            b = ds.GetRasterBand(band)
            nodata = b.GetNoDataValue()
            scale = float(b.GetScale() or 1.0)
            offset = float(b.GetOffset() or 0.0)
            for g in lay.groups:
                values[g[4], j] = _read_group(b, g, lay, half, nodata, scale, offset)
            return lay.inside
        except RuntimeError as exc:
            raise RasterReadError(f"{path}: cannot be read ({exc})") from exc
        finally:
            ds = None

    workers = max(1, min(threads or min(4, os.cpu_count() or 1), len(todo) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = {pool.submit(read_day, j, d): j for j, d in todo[: 2 * workers]}
        queue = todo[2 * workers :]
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    j = pending.pop(f)
                    inside |= f.result()
                    days_read[j] = True
                    prog.advance()
                    if queue:
                        jj, dd = queue.pop(0)
                        pending[pool.submit(read_day, jj, dd)] = jj
        finally:
            for f in pending:
                f.cancel()
    return PointSample(values, inside, days_read, str(series.folder))
