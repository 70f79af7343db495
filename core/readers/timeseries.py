"""Time-series cell files (pytesmo / QA4SM layout): ``NNNN.nc`` files with variables of
dimensions (locations, time) and ``lon``/``lat`` per location, ``time`` in CF units
(``days since 1858-11-17``), beside a ``grid.nc``. The coarse products come this way from
the QA4SM service and the TU Wien readers: ESA CCI SM (``sm``, ``flag``), SMAP L3
(``soil_moisture`` cm3/cm3, ``retrieval_qual_flag``), SMOS-IC (``Soil_Moisture``,
``Quality_Flag``), GLDAS Noah (``SoilMoi0_10cm_inst`` in kg m-2 over the 0-10 cm layer:
m3/m3 = kg m-2 / (1000 kg m-3 x 0.1 m) = value / 100).

Reading returns daily means (UTC days) per location; :func:`cells_to_days` places them on
the product's own grid (0.25 degree, or EASE-Grid 2.0 36/25/9 km - the one whose cell
centres the locations sit on), one raster per day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..grid import Grid, ease2_global, to_wkt, transform_points
from .base import ProductDay, ProductError, array_attr, check_units, find_array, open_multidim, time_values

#: variable -> (factor to m3/m3, quality variable, accepted quality test)
VARIABLES = {
    "sm": (1.0, "flag", "zero"),
    "soil_moisture": (1.0, "retrieval_qual_flag", "bit0"),
    "Soil_Moisture": (1.0, "Quality_Flag", "zero"),
    "SoilMoi0_10cm_inst": (0.01, None, None),
}


@dataclass
class Cells:
    """Daily means per location: ``values`` (locations, days) float32 m3/m3."""

    lon: np.ndarray
    lat: np.ndarray
    days: list[dt.date]
    values: np.ndarray
    variable: str
    sources: list[str]


def read_cells(files: Sequence[str | Path], quality: bool = True) -> Cells:
    """Daily-mean soil moisture (m3/m3) of every location in the cell files (not grid.nc)."""
    lons, lats, variable = [], [], None
    per_file_days: list[dict[dt.date, np.ndarray]] = []
    sources = []
    for f in files:
        f = Path(str(f))
        if f.name == "grid.nc":
            continue
        try:
            var, raw, units, q, qtest, times, lon, lat = _read_gdal(f, quality)
        except RuntimeError:  # GDAL's netCDF multidimensional reader fails on some of these files
            var, raw, units, q, qtest, times, lon, lat = _read_netcdf4(f, quality)
        if variable not in (None, var):
            raise ProductError(f"{f}: holds {var}, the other files {variable}; give one product at a time")
        variable = var
        if var == "SoilMoi0_10cm_inst" and units and units.replace(" ", "") not in ("kgm-2", "kg/m2", "kgm**-2"):
            raise ProductError(f"{f}: {var} has units {units!r}, expected kg m-2")
        vals = raw * VARIABLES[var][0]
        if q is not None:
            vals[(q != 0) if qtest == "zero" else ((q.astype(np.int64) & 1) != 0)] = np.nan
        with np.errstate(invalid="ignore"):
            vals[(vals < 0) | (vals > 1)] = np.nan
        dates = np.array([t.date().toordinal() for t in times])
        days: dict[dt.date, np.ndarray] = {}
        for o in np.unique(dates):
            sel = dates == o
            with np.errstate(invalid="ignore"), _quiet():
                days[dt.date.fromordinal(int(o))] = np.nanmean(vals[:, sel], axis=1)
        per_file_days.append(days)
        lons.append(lon)
        lats.append(lat)
        sources.append(str(f))
    if not sources:
        raise ProductError("no time-series cell file (NNNN.nc) was given")
    all_days = sorted(set().union(*[set(d) for d in per_file_days]))
    n = [len(x) for x in lons]
    values = np.full((sum(n), len(all_days)), np.nan, dtype=np.float32)
    index = {d: i for i, d in enumerate(all_days)}
    row = 0
    for k, days in enumerate(per_file_days):
        for d, v in days.items():
            values[row : row + n[k], index[d]] = v
        row += n[k]
    check_units(values, "m3/m3", ", ".join(sources), variable or "")
    return Cells(np.concatenate(lons), np.concatenate(lats), all_days, values, variable or "", sources)


def _pick(names, f) -> str:
    var = next((v for v in VARIABLES if v in names), None)
    if var is None:
        raise ProductError(f"{f}: none of the soil moisture variables {', '.join(VARIABLES)} (is it a time-series cell file?)")
    return var


def _read_gdal(f: Path, quality: bool):
    """(variable, values with fill as NaN, units, quality or None, test, times, lon, lat) by GDAL."""
    ds = open_multidim(f)
    root = ds.GetRootGroup()
    names = root.GetMDArrayNames() or []
    var = _pick(names, f)
    arr = find_array(ds, [var], f)
    dims = [d.GetName() for d in arr.GetDimensions()]
    if dims != ["locations", "time"]:
        raise ProductError(f"{f}: {var} has dimensions {dims}, expected (locations, time)")
    raw = np.asarray(arr.ReadAsArray(), dtype=np.float64)
    if arr.GetNoDataValueAsRaw() is not None:
        raw[raw == arr.GetNoDataValueAsDouble()] = np.nan
    _, qvar, qtest = VARIABLES[var]
    q = None
    if quality and qvar and qvar in names:
        qa = find_array(ds, [qvar], f)
        q = np.asarray(qa.ReadAsArray()).astype(np.float64)
        if qa.GetNoDataValueAsRaw() is not None:
            q[q == qa.GetNoDataValueAsDouble()] = 1.0
    times = time_values(find_array(ds, ["time"], f), f)
    lon = np.asarray(find_array(ds, ["lon"], f).ReadAsArray(), dtype=np.float64)
    lat = np.asarray(find_array(ds, ["lat"], f).ReadAsArray(), dtype=np.float64)
    return var, raw, str(array_attr(arr, "units", "") or ""), q, qtest, times, lon, lat


def _read_netcdf4(f: Path, quality: bool):
    """The same with the netCDF4 module (optional, imported only here)."""
    try:
        import netCDF4
    except ImportError:
        raise ProductError(f"{f}: GDAL cannot read it and the netCDF4 module is not installed") from None
    from .base import cf_times

    try:
        with netCDF4.Dataset(f) as nc:
            var = _pick(list(nc.variables), f)
            v = nc[var]
            if tuple(v.dimensions) != ("locations", "time"):
                raise ProductError(f"{f}: {var} has dimensions {v.dimensions}, expected (locations, time)")
            raw = np.ma.filled(v[...].astype(np.float64), np.nan)
            _, qvar, qtest = VARIABLES[var]
            q = None
            if quality and qvar and qvar in nc.variables:
                q = np.ma.filled(nc[qvar][...].astype(np.float64), 1.0)
            times = cf_times(np.asarray(nc["time"][...], dtype=np.float64), nc["time"].units, f)
            lon = np.asarray(nc["lon"][...], dtype=np.float64)
            lat = np.asarray(nc["lat"][...], dtype=np.float64)
            return var, raw, getattr(v, "units", ""), q, qtest, times, lon, lat
    except OSError as exc:
        raise ProductError(f"{f}: cannot be read (truncated?): {exc}") from exc


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *a):
        self._w.__exit__(*a)


def native_grid(lon: np.ndarray, lat: np.ndarray) -> Grid:
    """The product grid whose cell centres the locations sit on (to 5 % of a cell):
    0.25 degree geographic, or EASE-Grid 2.0 at 36, 25 or 9 km."""
    candidates = [Grid(to_wkt(4326), (-180.0, 0.25, 0.0, 90.0, 0.0, -0.25), 1440, 720)]
    candidates += [ease2_global(k) for k in (36, 25, 9)]
    for g in candidates:
        x, y = transform_points(lon, lat, to_wkt(4326), g.crs_wkt)
        inv_c = (x - g.transform[0]) / g.transform[1] - 0.5
        inv_r = (y - g.transform[3]) / g.transform[5] - 0.5
        if np.all(np.abs(inv_c - np.round(inv_c)) < 0.05) and np.all(np.abs(inv_r - np.round(inv_r)) < 0.05):
            return g
    raise ProductError("the locations do not sit on a 0.25 degree or EASE-Grid 2.0 (36, 25, 9 km) grid")


def cells_to_days(cells: Cells, margin: int = 1) -> list[ProductDay]:
    """One :class:`ProductDay` per day on the window of the native grid holding the cells."""
    g = native_grid(cells.lon, cells.lat)
    x, y = transform_points(cells.lon, cells.lat, to_wkt(4326), g.crs_wkt)
    r, c = g.rowcol(x, y)
    r0, r1 = max(int(r.min()) - margin, 0), min(int(r.max()) + margin + 1, g.height)
    c0, c1 = max(int(c.min()) - margin, 0), min(int(c.max()) + margin + 1, g.width)
    win = g.window(r0, c0, r1 - r0, c1 - c0)
    out = []
    for k, d in enumerate(cells.days):
        arr = np.full(win.shape, np.nan, dtype=np.float32)
        v = cells.values[:, k]
        ok = np.isfinite(v)
        arr[r[ok] - r0, c[ok] - c0] = v[ok]
        out.append(ProductDay(d, arr, win, cells.variable, "m3/m3", ";".join(cells.sources)))
    return out
