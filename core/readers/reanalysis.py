"""Reanalysis backgrounds: ERA5 / ERA5-Land / ERA-Interim (netCDF and GRIB) and GLDAS Noah.

A reanalysis file holds several time steps; the background for a MODIS day is the step
nearest the satellite's overpass, which depends on longitude: local solar time =
UTC + longitude / 15 h, so the UTC time of a 10:30 (Terra) or 13:30 (Aqua) overpass is
``day 00:00 + overpass - longitude/15 h``, chosen per grid column (or interpolated
linearly in time between the two steps around it).

Formats:

- ERA5 / ERA5-Land / ERA-Interim netCDF (as written by ECMWF's ``grib_to_netcdf`` and the
  CDS): variables (time, latitude, longitude), packed int16 with ``scale_factor`` /
  ``add_offset`` and ``_FillValue``/``missing_value`` -32767, ``time`` in ``hours since
  1900-01-01``, longitude 0..359.x (global files are rolled to -180..180), latitude
  descending. Variables: ``skt`` (skin temperature, K), ``t2m`` (2 m air temperature,
  K), ``swvl1`` (m3/m3). Newer CDS files name the time ``valid_time``; both work. Files
  mixing final ERA5 and preliminary ERA5T carry an ``expver`` dimension: per step, the
  first version with a value is taken.
- GRIB 1/2 through GDAL's GRIB driver: one band per (variable, step), identified by
  the band metadata ``GRIB_ELEMENT`` (``SKT``, ``2T``, ``SWVL1``) and ``GRIB_VALID_TIME``
  (seconds since 1970).
- GLDAS Noah 0.25 degree 3-hourly netCDF4 (``GLDAS_NOAH025_3H.AYYYYMMDD.HHMM.021.nc4``):
  ``AvgSurfT_inst`` (K, time, lat, lon), latitude ascending, fill -9999; one step per
  file (the step's time from ``time`` or the name).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..grid import Grid
from .base import (
    ProductDay,
    ProductError,
    check_units,
    find_array,
    lonlat_layout,
    open_multidim,
    read_slice,
    time_values,
    unpack,
)

#: variable aliases: netCDF names, GRIB elements, units
VARIABLES = {
    "skt": (("skt", "SKT"), ("SKT",), "K"),
    "t2m": (("t2m", "T2M", "2t"), ("2T", "T2M"), "K"),
    "AvgSurfT_inst": (("AvgSurfT_inst", "AvgSurfT"), (), "K"),
    "swvl1": (("swvl1", "SWVL1"), ("SWVL1",), "m3/m3"),
}

#: overpass local solar times (hours): MODIS Terra 10:30, Aqua 13:30
OVERPASS = {"terra": 10.5, "aqua": 13.5, "terra_night": 22.5, "aqua_night": 1.5}


class Step:
    """One time step of a reanalysis variable (UTC), north-up on its grid.

    ``data`` is read on first use (a year of hourly steps never sits in memory at once);
    :meth:`release` forgets it again.
    """

    def __init__(self, time: dt.datetime, grid: Grid, units: str, source: str,
                 data: np.ndarray | None = None, loader: Callable[[], np.ndarray] | None = None, variable: str = ""):
        self.time = time
        self.grid = grid
        self.units = units
        self.source = source
        self.variable = variable
        self._data = data
        self._loader = loader

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            if self._loader is None:
                raise ProductError(f"{self.source}: step {self.time} has no data")
            self._data = self._loader()
            check_units(self._data, self.units, self.source, f"{self.variable} at {self.time:%Y-%m-%d %H:%M}")
        return self._data

    def release(self) -> None:
        if self._loader is not None:
            self._data = None


def _is_grib(path: Path) -> bool:
    if path.suffix.lower() in (".grb", ".grib", ".grb2", ".grib2", ".grib1"):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"GRIB"
    except OSError:
        return False


def read_steps(path: str | Path, variable: str = "skt", lazy: bool = False) -> list[Step]:
    """Every time step of ``variable`` (``skt``, ``t2m``, ``AvgSurfT_inst``, ``swvl1``) in a
    file, sorted by time; ``lazy``: the values are read when first used."""
    p = Path(str(path))
    if variable not in VARIABLES:
        raise ProductError(f"unknown reanalysis variable {variable!r}; choose one of {', '.join(VARIABLES)}")
    if not p.is_file():
        raise ProductError(f"{path}: no such file")
    steps = _read_grib(p, variable) if _is_grib(p) else _read_netcdf(p, variable)
    if not lazy:
        for s in steps:
            _ = s.data  # read and check now
    return sorted(steps, key=lambda s: s.time)


def _read_netcdf(path: Path, variable: str) -> list[Step]:
    names, _, units = VARIABLES[variable]
    ds = open_multidim(path)
    arr = find_array(ds, list(names), path)
    layout = lonlat_layout(arr, ds, path)
    tdims = [d for i, d in enumerate(arr.GetDimensions()) if i not in (layout.lon_axis, layout.lat_axis)]
    expver = [d for d in tdims if d.GetName().lower() == "expver"]  # ERA5 final (1) + preliminary ERA5T (5)
    tdims = [d for d in tdims if d.GetName().lower() != "expver"]
    if len(tdims) > 1:
        extra = ", ".join(d.GetName() for d in tdims)
        raise ProductError(f"{path}: {variable} has more than one non-spatial dimension ({extra}); select one level first")
    if tdims:
        tvar = tdims[0].GetIndexingVariable()
        if tvar is None:
            tvar = find_array(ds, [tdims[0].GetName(), "time", "valid_time"], path)
        times = time_values(tvar, path)
        tname = tdims[0].GetName()
    else:
        times, tname = [_time_from_name(path)], None
    raw_units = (arr.GetUnit() or "").strip()
    if units == "K" and raw_units and raw_units not in ("K", "k", "kelvin", "Kelvin"):
        raise ProductError(f"{path}: {variable} has units {raw_units!r}, expected K")
    grid = layout.grid
    xname = expver[0].GetName() if expver else None
    nexp = expver[0].GetSize() if expver else 1

    def loader(k: int) -> Callable[[], np.ndarray]:
        def load() -> np.ndarray:
            mds = open_multidim(path)  # kept alive while the array is read
            a = find_array(mds, list(names), path)
            index = {tname: k} if tname else {}
            data = None
            for e in range(nexp):
                if xname:
                    index[xname] = e
                part = layout.orient(unpack(a, read_slice(a, layout, index, path)))
                data = part if data is None else np.where(np.isfinite(data), data, part)
            del mds
            return data.astype(np.float32)

        return load

    return [Step(t, grid, units, str(path), loader=loader(k), variable=variable) for k, t in enumerate(times)]


def _time_from_name(path: Path) -> dt.datetime:
    import re

    m = re.search(r"A(\d{8})\.(\d{4})", path.name)  # GLDAS
    if m:
        return dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M")
    raise ProductError(f"{path}: no time dimension and no time in the file name")


def _read_grib(path: Path, variable: str) -> list[Step]:
    _, elements, units = VARIABLES[variable]
    try:
        ds = gdal.Open(str(path))
    except RuntimeError as exc:
        raise ProductError(f"{path}: cannot be opened as GRIB (truncated?): {exc}") from exc
    try:
        grid = Grid.from_raster(ds)
    except Exception as exc:
        raise ProductError(f"{path}: {exc}") from exc
    steps = []
    for i in range(1, ds.RasterCount + 1):
        b = ds.GetRasterBand(i)
        md = b.GetMetadata()
        if md.get("GRIB_ELEMENT", "").upper() not in elements:
            continue
        vt = md.get("GRIB_VALID_TIME", "").split()[0] if md.get("GRIB_VALID_TIME") else ""
        if not vt:
            raise ProductError(f"{path}: band {i} has no GRIB_VALID_TIME")
        t = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(vt))
        steps.append(Step(t, grid, units, str(path), loader=_band_loader(path, i), variable=variable))
    if not steps:
        found = sorted({ds.GetRasterBand(i).GetMetadataItem("GRIB_ELEMENT") or "?" for i in range(1, ds.RasterCount + 1)})
        raise ProductError(f"{path}: no GRIB band of {variable} ({'/'.join(elements)}); it has {', '.join(found)}")
    steps.sort(key=lambda s: s.time)
    return steps


def _band_loader(path: Path, i: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        try:
            ds = gdal.Open(str(path))  # keep the dataset alive while its band is read
            b = ds.GetRasterBand(i)
            raw = b.ReadAsArray().astype(np.float64)
        except RuntimeError as exc:
            raise ProductError(f"{path}: band {i} cannot be read (truncated?): {exc}") from exc
        nd = b.GetNoDataValue()
        ds = None
        if nd is not None:
            raw[raw == nd] = np.nan
        return raw.astype(np.float32)

    return load


def overpass_utc(day: dt.date, lon: np.ndarray, local_hours: float) -> np.ndarray:
    """UTC times (hours since ``day`` 00:00 UTC) of a local-solar-time overpass at ``lon`` (deg)."""
    lon = ((np.asarray(lon, dtype=np.float64) + 180.0) % 360.0) - 180.0
    return local_hours - lon / 15.0


def at_overpass(
    steps: Sequence[Step],
    day: dt.date,
    local_hours: float = 10.5,
    method: str = "nearest",
    max_gap_hours: float = 6.0,
) -> ProductDay:
    """The field at the local overpass time of ``day``, chosen per grid column.

    ``method``: ``nearest`` (the step nearest the overpass) or ``linear`` (linear in time
    between the steps around it). Columns whose nearest step is more than
    ``max_gap_hours`` from the overpass are NaN. Steps must share one grid.
    """
    if not steps:
        raise ProductError(f"no reanalysis step for {day}")
    grid = steps[0].grid
    for s in steps[1:]:
        if s.grid != grid:
            raise ProductError(f"{s.source}: its grid differs from {steps[0].source}'s")
    steps = sorted(steps, key=lambda s: s.time)
    t0 = dt.datetime(day.year, day.month, day.day)
    hours = np.array([(s.time - t0).total_seconds() / 3600.0 for s in steps])
    lon, _ = grid.lonlat(0, 1)
    target = overpass_utc(day, lon[0], local_hours)  # (width,)
    out = np.full(grid.shape, np.nan, dtype=np.float32)
    diff = np.abs(hours[:, None] - target[None, :])  # (steps, width)
    near = np.argmin(diff, axis=0)
    gap = diff[near, np.arange(grid.width)]
    used: set[int] = set()
    if method == "nearest":
        for k in np.unique(near):
            cols = (near == k) & (gap <= max_gap_hours)
            out[:, cols] = steps[int(k)].data[:, cols]
            if cols.any():
                used.add(int(k))
    elif method == "linear":
        hi = np.searchsorted(hours, target, side="left")
        for c in range(grid.width):
            if gap[c] > max_gap_hours:
                continue
            j = hi[c]
            if j <= 0 or j >= len(steps) or hours[j] == target[c]:
                k = int(near[c])
                out[:, c] = steps[k].data[:, c]
                used.add(k)
                continue
            w = (target[c] - hours[j - 1]) / (hours[j] - hours[j - 1])
            out[:, c] = (1 - w) * steps[j - 1].data[:, c] + w * steps[j].data[:, c]
            used.update((j - 1, j))
    else:
        raise ProductError(f"unknown time selection {method!r}; choose nearest or linear")
    info = {"steps_used": [steps[k].time.isoformat() for k in sorted(used)], "overpass_local_hours": local_hours,
            "max_gap_hours": float(np.nanmax(np.where(gap <= max_gap_hours, gap, np.nan))) if (gap <= max_gap_hours).any() else None}
    src = ";".join(sorted({s.source for s in steps}))
    return ProductDay(day, out, grid, "", steps[0].units, src, info=info)


def days_covered(steps: Sequence[Step]) -> list[dt.date]:
    """The UTC dates of the steps."""
    return sorted({s.time.date() for s in steps})
