"""Time-series cells (netCDF, locations x time) to a daily raster series.

Coarse products are often distributed as time series per grid point (the "cell" files of
TU Wien / QA4SM: ``soil_moisture(locations, time)`` with ``lon(locations)``,
``lat(locations)``, ``time`` in CF units). :func:`read_ts_cells` reads them through GDAL's
netCDF driver; :func:`cells_to_series` writes one raster per day on the product's own
grid (e.g. EASE-Grid 2.0 36 km for SMAP), a value in the cell containing each location,
so that the validation reads them like any other daily series.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..errors import RasterReadError, SsmError
from ..grid import Grid, to_wkt, transform_points
from ..progress import CancelFn, Progress, ProgressFn
from ..series import daterange, write_day

gdal.UseExceptions()
log = logging.getLogger(__name__)

_UNITS = re.compile(r"^\s*(days?|hours?|minutes?|seconds?)\s+since\s+(\d{1,4})-(\d{1,2})-(\d{1,2})"
                    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?)?", re.IGNORECASE)
_SECONDS = {"day": 86400.0, "hour": 3600.0, "minute": 60.0, "second": 1.0}


@dataclass
class TsCells:
    """Time series at ``n`` locations: values ``(n, n_times)`` float64 (NaN missing)."""

    lon: np.ndarray
    lat: np.ndarray
    location_id: np.ndarray
    days: np.ndarray  # datetime64[D] per time step
    values: np.ndarray
    variable: str


def cf_days(values: np.ndarray, units: str) -> np.ndarray:
    """CF time values (``<unit> since <date>``) to datetime64[D] (the UTC calendar day)."""
    m = _UNITS.match(units or "")
    if not m:
        raise SsmError(f"Cannot interpret the time units {units!r} (expected '<days|hours|...> since YYYY-MM-DD')")
    unit = m.group(1).lower().rstrip("s")
    epoch = dt.datetime(int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5) or 0),
                        int(m.group(6) or 0), int(float(m.group(7) or 0)))
    secs = np.asarray(values, dtype=np.float64) * _SECONDS[unit]
    base = np.datetime64(epoch, "s")
    return (base + np.floor(secs).astype("timedelta64[s]")).astype("datetime64[D]")


def _read_var(path: Path, name: str) -> tuple[np.ndarray, dict[str, str], float | None]:
    # rows are locations, in file order: GDAL must not flip them as if they were latitudes
    old = gdal.GetConfigOption("GDAL_NETCDF_BOTTOMUP")
    gdal.SetConfigOption("GDAL_NETCDF_BOTTOMUP", "NO")
    try:
        ds = gdal.Open(f'NETCDF:"{path}":{name}')
    except RuntimeError as exc:
        raise RasterReadError(f"{path}: has no readable variable {name!r} ({exc})") from exc
    finally:
        gdal.SetConfigOption("GDAL_NETCDF_BOTTOMUP", old)
    band = ds.GetRasterBand(1)
    arr = ds.ReadAsArray()
    md = ds.GetMetadata() or {}
    nodata = band.GetNoDataValue()
    ds = None
    return np.asarray(arr), md, nodata


def read_ts_cells(paths: Sequence[str | Path], variable: str = "soil_moisture") -> TsCells:
    """Read ``variable(locations, time)`` and the location coordinates from cell files."""
    lons, lats, ids, vals, days_all = [], [], [], [], []
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise RasterReadError(f"{p}: no such file")
        raw, md, nodata = _read_var(p, variable)
        raw = np.atleast_2d(raw)
        v = raw.astype(np.float64)
        if nodata is not None:
            v[raw == np.asarray(nodata).astype(raw.dtype)] = np.nan
        # CF valid range, compared in the variable's own type (0.02 as float32 is valid)
        lo, hi = md.get(f"{variable}#valid_min"), md.get(f"{variable}#valid_max")
        with np.errstate(invalid="ignore"):
            if lo is not None:
                v[raw < np.asarray(float(lo)).astype(raw.dtype)] = np.nan
            if hi is not None:
                v[raw > np.asarray(float(hi)).astype(raw.dtype)] = np.nan
        t, tmd, _ = _read_var(p, "time")
        days = cf_days(t.ravel(), tmd.get("time#units", ""))
        lon = _read_var(p, "lon")[0].ravel().astype(np.float64)
        lat = _read_var(p, "lat")[0].ravel().astype(np.float64)
        try:
            lid = _read_var(p, "location_id")[0].ravel()
        except RasterReadError:
            lid = np.arange(lon.size)
        if v.shape != (lon.size, days.size):
            raise RasterReadError(f"{p}: {variable} has shape {v.shape}, expected (locations, time) = "
                                  f"({lon.size}, {days.size})")
        lons.append(lon)
        lats.append(lat)
        ids.append(lid)
        vals.append(v)
        days_all.append(days)
    # every file on one time axis
    axis = np.unique(np.concatenate(days_all))
    out = np.full((sum(x.size for x in lons), axis.size), np.nan)
    row = 0
    for v, days in zip(vals, days_all):
        col = np.searchsorted(axis, days)
        for k in range(v.shape[0]):  # per location: average several values of one day
            s = np.bincount(col, weights=np.nan_to_num(v[k]), minlength=axis.size)
            c = np.bincount(col, weights=np.isfinite(v[k]).astype(float), minlength=axis.size)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[row + k] = np.where(c > 0, s / c, np.nan)
        row += v.shape[0]
    return TsCells(np.concatenate(lons), np.concatenate(lats), np.concatenate(ids), axis, out, variable)


def grid_around(cells: TsCells, base: Grid, margin: int = 1) -> Grid:
    """The window of ``base`` (e.g. EASE-Grid 2.0 36 km) holding every location (+ margin)."""
    x, y = transform_points(cells.lon, cells.lat, to_wkt(4326), base.crs_wkt)
    r, c = base.rowcol(x, y)
    if (r < 0).any():
        raise SsmError("Some locations lie outside the grid they should be written on")
    r0, c0 = max(0, int(r.min()) - margin), max(0, int(c.min()) - margin)
    r1, c1 = min(base.height, int(r.max()) + margin + 1), min(base.width, int(c.max()) + margin + 1)
    return base.window(r0, c0, r1 - r0, c1 - c0)


def cells_to_series(
    cells: TsCells,
    grid: Grid,
    out_folder: str | Path,
    prefix: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    progress: ProgressFn | None = None,
    is_cancelled: CancelFn | None = None,
) -> list[Path]:
    """Write ``<prefix>_YYYY-MM-DD.tif`` for every day with a value in ``start..end``.

    Each location's value goes to the grid cell containing it (NaN elsewhere); two
    locations in one cell are an error (the grid is too coarse for these cells)."""
    x, y = transform_points(cells.lon, cells.lat, to_wkt(4326), grid.crs_wkt)
    r, c = grid.rowcol(x, y)
    ok = r >= 0
    flat = r[ok] * grid.width + c[ok]
    if np.unique(flat).size != flat.size:
        raise SsmError("Several locations fall in one grid cell: choose the product's own (finer) grid")
    days = cells.days.astype(dt.date)
    a = start or days[0]
    b = end or days[-1]
    col = {d: j for j, d in enumerate(days)}
    wanted = [d for d in daterange(a, b) if d in col and np.isfinite(cells.values[ok, col[d]]).any()]
    prog = Progress(max(len(wanted), 1), progress, is_cancelled)
    written = []
    for d in wanted:
        arr = np.full(grid.shape, np.nan, dtype=np.float32)
        arr[r[ok], c[ok]] = cells.values[ok, col[d]]
        written.append(write_day(out_folder, prefix, d, arr, grid))
        prog.advance()
    log.info("Wrote %d daily rasters of %s to %s", len(written), cells.variable, out_folder)
    return written
