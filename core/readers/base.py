"""What every product reader shares: the dated array it returns, unit checks, and reading
gridded variables (netCDF, HDF5) with their coordinates whatever the axis order.

Readers return :class:`ProductDay` objects: a float32 array of shape ``(height, width)``
on the product's native grid, row 0 at the top (north), in SI units (soil moisture
m3/m3, temperature K, NDVI and albedo unitless), NaN where missing, fill or rejected by
quality. Gridded netCDF/HDF5 variables are read with GDAL's multidimensional API, which
names each dimension; the array is transposed to (lat, lon), flipped to north-up and
rolled from 0..360 to -180..180 longitudes as its coordinates require.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..errors import RasterReadError, SsmError
from ..grid import Grid, to_wkt

gdal.UseExceptions()
log = logging.getLogger(__name__)


class ProductError(SsmError):
    """A file that is not the product asked for, unreadable, or with implausible values."""


@dataclass
class ProductDay:
    """One product layer of one day on its native grid.

    ``data``: float32 ``(height, width)``, NaN missing, in ``units`` (SI). ``time``: the
    observation time when known (UTC), e.g. the reanalysis step. ``platform``: ``terra``,
    ``aqua`` or ``""``; ``info``: what the reader did (counts of rejected pixels ...).
    """

    date: dt.date
    data: np.ndarray
    grid: Grid
    variable: str
    units: str
    source: str
    platform: str = ""
    time: dt.datetime | None = None
    info: dict = field(default_factory=dict)

    @property
    def valid_fraction(self) -> float:
        return float(np.isfinite(self.data).mean()) if self.data.size else 0.0


#: Plausible ranges of returned values per unit (checked by :func:`check_units`).
PLAUSIBLE = {
    "m3/m3": (0.0, 1.0),
    "K": (150.0, 360.0),
    "K_difference": (-80.0, 80.0),
    "1": (-1.0, 1.0),  # NDVI
    "albedo": (0.0, 1.0),
}


def check_units(data: np.ndarray, units: str, source: str, variable: str, min_share: float = 0.99) -> None:
    """Raise :class:`ProductError` unless at least ``min_share`` of the finite values lie in
    the plausible range of ``units`` (e.g. soil moisture left in percent, LST in deg C or
    NDVI still scaled by 10000). The message names the file and the variable."""
    lo, hi = PLAUSIBLE[units]
    vals = data[np.isfinite(data)]
    if vals.size == 0:
        return
    tol = 1e-3 * (hi - lo)  # packing noise around physical bounds (e.g. ERA5 swvl1 -7e-7 over sea)
    ok = float(((vals >= lo - tol) & (vals <= hi + tol)).mean())
    if ok < min_share:
        unit_name = "unitless" if units in ("1", "albedo") else units
        raise ProductError(
            f"{source}: variable {variable}: only {100 * ok:.1f} % of the values lie in the plausible range "
            f"{lo:g}..{hi:g} {unit_name} (median {float(np.median(vals)):.4g}); wrong product, units or scale factor?"
        )


def clip_plausible(data: np.ndarray, units: str) -> int:
    """Set values outside the plausible range to NaN in place; returns how many."""
    lo, hi = PLAUSIBLE[units]
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(data) & ((data < lo) | (data > hi))
    data[bad] = np.nan
    return int(bad.sum())


# ---------------------------------------------------------------------------------------
# gridded netCDF / HDF5 variables
# ---------------------------------------------------------------------------------------

_LON_NAMES = ("lon", "longitude", "x", "nlon")
_LAT_NAMES = ("lat", "latitude", "y", "nlat")


def open_multidim(path: str | Path) -> gdal.Dataset:
    """Open a netCDF/HDF5 file with GDAL's multidimensional API; clear error otherwise."""
    p = Path(str(path))
    if not p.exists():
        raise ProductError(f"{path}: no such file")
    try:
        ds = gdal.OpenEx(str(path), gdal.OF_MULTIDIM_RASTER)
    except RuntimeError as exc:
        raise ProductError(f"{path}: cannot be opened as netCDF/HDF5 (truncated or not this product?): {exc}") from exc
    if ds is None:
        raise ProductError(f"{path}: cannot be opened as netCDF/HDF5")
    _check_classic_size(p, ds)
    return ds


def _check_classic_size(p: Path, ds: gdal.Dataset) -> None:
    """A truncated netCDF-3 file reads as fill values without an error: its size must
    hold at least every variable's data (uncompressed in the classic format)."""
    with open(p, "rb") as f:
        if f.read(3) != b"CDF":
            return
    need = 0
    root = ds.GetRootGroup()
    for name in root.GetMDArrayNames() or []:
        arr = root.OpenMDArray(name)
        n = 1
        for d in arr.GetDimensions():
            n *= d.GetSize()
        need += n * arr.GetDataType().GetSize()
    size = p.stat().st_size
    if size < need:
        raise ProductError(f"{p}: is truncated ({size} bytes; its variables need at least {need})")


def find_array(ds: gdal.Dataset, names: Sequence[str], path: str | Path) -> gdal.MDArray:
    """The first of ``names`` (a name or ``/group/name``) found in the file."""
    root = ds.GetRootGroup()
    for name in names:
        try:
            arr = root.OpenMDArrayFromFullname(name) if name.startswith("/") else root.OpenMDArray(name)
        except RuntimeError:
            arr = None
        if arr is not None:
            return arr
    avail = ", ".join(root.GetMDArrayNames() or [])
    raise ProductError(f"{path}: has none of the variables {', '.join(names)} (it has: {avail or 'no top-level variables'})")


def array_attr(arr: gdal.MDArray, name: str, default=None):
    """An attribute's value (scalars unwrapped), or ``default``."""
    try:
        a = arr.GetAttribute(name)
    except RuntimeError:
        a = None
    if a is None:
        return default
    v = a.Read()
    if isinstance(v, (list, tuple)) and len(v) == 1:
        v = v[0]
    return v


def unpack(arr: gdal.MDArray, raw: np.ndarray, fill_values: Sequence[float] = ()) -> np.ndarray:
    """float32 values of a packed array: fill -> NaN, then ``raw * scale + offset``."""
    out = raw.astype(np.float64)
    bad = np.zeros(raw.shape, dtype=bool)
    fills = list(fill_values)
    nd = arr.GetNoDataValueAsDouble() if arr.GetNoDataValueAsRaw() is not None else None
    if nd is not None:
        fills.append(nd)
    mv = array_attr(arr, "missing_value")
    if mv is not None:
        fills.append(float(mv))
    for f in fills:
        bad |= raw == f
    scale = arr.GetScale()
    offset = arr.GetOffset()
    if scale is not None or offset is not None:
        out = out * (1.0 if scale is None else scale) + (0.0 if offset is None else offset)
    out[bad] = np.nan
    return out.astype(np.float32)


@dataclass(frozen=True)
class LonLatLayout:
    """How a (.., lat, lon) or (.., lon, lat) variable maps onto a north-up grid."""

    grid: Grid
    transpose: bool  # stored (lon, lat)
    flip_lat: bool  # latitude ascending in the file
    roll: int  # columns to roll to bring -180..180 longitudes in order (0..360 input)
    lon_axis: int
    lat_axis: int

    def orient(self, a: np.ndarray) -> np.ndarray:
        """A 2-D ``a`` in the file's (lat, lon) or (lon, lat) order -> north-up (lat, lon)."""
        if self.transpose:
            a = a.T
        if self.flip_lat:
            a = a[::-1, :]
        if self.roll:
            a = np.roll(a, self.roll, axis=1)
        return np.ascontiguousarray(a)


def lonlat_layout(
    arr: gdal.MDArray, ds: gdal.Dataset, path: str | Path, lon: np.ndarray | None = None, lat: np.ndarray | None = None
) -> LonLatLayout:
    """The layout of a gridded variable from its dimensions' names and coordinate values.

    ``lon``/``lat`` 1-D coordinates (degrees) may be given; otherwise they are read from
    the dimensions' indexing variables. Regular spacing is required (to 1 % of a cell).
    """
    dims = arr.GetDimensions()
    names = [d.GetName().lower() for d in dims]
    types = [(d.GetType() or "").upper() for d in dims]
    lon_axis = lat_axis = None
    for i, (n, t) in enumerate(zip(names, types)):
        if t == "HORIZONTAL_X" or n in _LON_NAMES or n.startswith("lon"):
            lon_axis = i
        elif t == "HORIZONTAL_Y" or n in _LAT_NAMES or n.startswith("lat"):
            lat_axis = i
    if lon_axis is None or lat_axis is None:
        raise ProductError(f"{path}: variable {arr.GetName()} has no latitude/longitude dimensions ({', '.join(names)})")
    if lon is None:
        lon = _coord(dims[lon_axis], ds, path)
    if lat is None:
        lat = _coord(dims[lat_axis], ds, path)
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    dlon = _step(lon, path, "longitude")
    dlat = _step(lat, path, "latitude")
    flip = dlat > 0
    lat_top = lat.max() + abs(dlat) / 2
    roll = 0
    west = lon.min() - abs(dlon) / 2
    if lon.max() > 180.0 + abs(dlon) / 2:  # 0..360: roll the eastern half to the west
        n = lon.size
        if abs(n * abs(dlon) - 360.0) < abs(dlon) / 2:  # global: a proper roll
            roll = int(np.sum(lon >= 180.0 - 1e-9))
            west = lon[(n - roll) % n] - 360.0 - abs(dlon) / 2
        # a regional 0..360 window: keep as is, the CRS accepts longitudes beyond 180
    transpose = lon_axis < lat_axis
    grid = Grid(to_wkt(4326), (float(west), abs(dlon), 0.0, float(lat_top), 0.0, -abs(dlat)), lon.size, lat.size)
    return LonLatLayout(grid, transpose, bool(flip), roll, lon_axis, lat_axis)


def _coord(dim: gdal.Dimension, ds: gdal.Dataset, path) -> np.ndarray:
    var = dim.GetIndexingVariable()
    if var is None:
        try:
            var = ds.GetRootGroup().OpenMDArray(dim.GetName())
        except RuntimeError:
            var = None
    if var is None:
        raise ProductError(f"{path}: dimension {dim.GetName()} has no coordinate variable")
    return np.asarray(var.ReadAsArray(), dtype=np.float64)


def _step(c: np.ndarray, path, what: str) -> float:
    if c.size < 2:
        raise ProductError(f"{path}: the {what} axis has fewer than 2 values")
    d = np.diff(c)
    step = float(np.median(d))
    if step == 0 or np.abs(d - step).max() > 0.01 * abs(step):
        raise ProductError(f"{path}: the {what} axis is not regularly spaced; not a gridded product")
    return step


def read_lonlat_variable(
    path: str | Path,
    names: Sequence[str],
    index: dict[str, int] | None = None,
    fill_values: Sequence[float] = (),
) -> tuple[np.ndarray, Grid, str, gdal.MDArray]:
    """A 2-D slice of a (time, lat, lon)-like variable, unpacked, north-up, on its grid.

    ``index`` picks positions along extra dimensions by name (default: 0). Returns
    ``(array float32, grid, units, mdarray)``.
    """
    ds = open_multidim(path)
    arr = find_array(ds, names, path)
    layout = lonlat_layout(arr, ds, path)
    raw = read_slice(arr, layout, index or {}, path)
    data = layout.orient(unpack(arr, raw, fill_values))
    units = arr.GetUnit() or str(array_attr(arr, "units", "") or "")
    return data, layout.grid, units, arr


def read_slice(arr: gdal.MDArray, layout: LonLatLayout, index: dict[str, int], path) -> np.ndarray:
    """The 2-D (lon/lat) slice of ``arr`` at ``index`` along its other dimensions (raw values)."""
    dims = arr.GetDimensions()
    start, count = [], []
    for i, d in enumerate(dims):
        if i in (layout.lon_axis, layout.lat_axis):
            start.append(0)
            count.append(d.GetSize())
        else:
            k = int(index.get(d.GetName(), 0))
            if not 0 <= k < d.GetSize():
                raise ProductError(f"{path}: index {k} outside dimension {d.GetName()} of size {d.GetSize()}")
            start.append(k)
            count.append(1)
    try:
        raw = arr.ReadAsArray(array_start_idx=start, count=count)
    except RuntimeError as exc:
        raise ProductError(f"{path}: variable {arr.GetName()} cannot be read (truncated file?): {exc}") from exc
    keep = [i for i in range(len(dims)) if i in (layout.lon_axis, layout.lat_axis)]
    return raw.reshape([count[i] for i in keep])


def time_values(arr: gdal.MDArray, path) -> list[dt.datetime]:
    """The CF times (``<unit> since <epoch>``) of a 1-D time variable as UTC datetimes."""
    units = (arr.GetUnit() or str(array_attr(arr, "units", "") or "")).strip()
    vals = np.atleast_1d(np.asarray(arr.ReadAsArray(), dtype=np.float64))
    return cf_times(vals, units, path)


def cf_times(vals: np.ndarray, units: str, path) -> list[dt.datetime]:
    try:
        unit, since = units.split(" since ", 1)
    except ValueError:
        raise ProductError(f"{path}: time units {units!r} are not '<unit> since <date>'") from None
    since = since.strip().replace("T", " ").replace("UTC", "").replace("Z", "").strip()
    date_part, _, time_part = since.partition(" ")
    y, m, d = (int(v) for v in date_part.split("-"))
    hh = mm = 0
    ss = 0.0
    if time_part:
        bits = time_part.split(":")
        hh = int(bits[0])
        mm = int(bits[1]) if len(bits) > 1 else 0
        ss = float(bits[2]) if len(bits) > 2 else 0.0
    epoch = dt.datetime(y, m, d, hh, mm) + dt.timedelta(seconds=ss)
    per = {"days": 86400.0, "day": 86400.0, "hours": 3600.0, "hour": 3600.0, "minutes": 60.0, "minute": 60.0,
           "seconds": 1.0, "second": 1.0}.get(unit.strip().lower())
    if per is None:
        raise ProductError(f"{path}: unknown time unit {unit!r}")
    return [epoch + dt.timedelta(seconds=float(v) * per) for v in vals]


def subdatasets(path: str | Path) -> list[str]:
    """GDAL sub-dataset names of a container file (HDF4-EOS, netCDF, HDF5)."""
    p = Path(str(path))
    if not p.exists():
        raise ProductError(f"{path}: no such file")
    try:
        ds = gdal.Open(str(path))
    except RuntimeError as exc:
        raise ProductError(f"{path}: cannot be opened (truncated or not this product?): {exc}") from exc
    return [name for name, _ in ds.GetSubDatasets()]


def find_subdataset(path: str | Path, field_name: str, product: str) -> str:
    """The GDAL name of the sub-dataset whose last name part is ``field_name``
    (case-insensitive, quotes ignored), in HDF4-EOS, netCDF or HDF5 containers."""
    want = field_name.lower()
    names = subdatasets(path)
    for name in names:
        last = name.rsplit(":", 1)[-1].strip('"').split("/")[-1].lower()
        if last == want:
            return name
    raise ProductError(f"{path}: has no {field_name} field (is it a {product} file?)")


def read_band(name: str, path) -> tuple[np.ndarray, Grid, gdal.Band, gdal.Dataset]:
    """Band 1 of a GDAL (sub-)dataset as raw values, with its grid."""
    try:
        ds = gdal.Open(name)
    except RuntimeError as exc:
        raise ProductError(f"{path}: {name.rsplit(':', 1)[-1]} cannot be opened: {exc}") from exc
    try:
        grid = Grid.from_raster(ds)
    except SsmError as exc:
        raise ProductError(f"{path}: {exc}") from exc
    b = ds.GetRasterBand(1)
    try:
        raw = b.ReadAsArray()
    except RuntimeError as exc:
        raise ProductError(f"{path}: cannot be read (truncated file?): {exc}") from exc
    return raw, grid, b, ds


def require_file(path: str | Path) -> Path:
    p = Path(str(path))
    if not p.is_file():
        raise RasterReadError(f"{path}: no such file")
    return p
