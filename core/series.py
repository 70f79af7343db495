"""Daily raster series on disk: finding dated files, reading a day onto a grid, writing.

A series is a folder of single-band rasters, one per day, with the date in the file name
as ``YYYY-MM-DD``, ``YYYYMMDD`` (optionally followed by ``hhmmss``) or ``YYYYDDD``
(day of year, e.g. MODIS ``A2019305``). Writers name files ``<prefix>_YYYY-MM-DD.tif``,
store the date in the GDAL metadata item ``DATE`` and write atomically (a hidden
temporary name in the same folder, renamed when complete).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal

from .errors import RasterReadError, SeriesError
from .grid import Grid, open_raster, read_threads, warp_to_grid

gdal.UseExceptions()
log = logging.getLogger(__name__)

#: nodata written for float rasters
NODATA = -9999.0
#: nodata written for uint8 flag rasters
FLAG_NODATA = 255
#: GDAL metadata item holding the ISO date of a daily raster
DATE_ITEM = "DATE"
#: file endings searched for in a series folder
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".hdf", ".h5", ".nc", ".nc4", ".jp2")

_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_YMD_HMS = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(\d{6})(?!\d)")
_YMD = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)")
_YDOY = re.compile(r"(?<!\d)(\d{4})(\d{3})(?!\d)")


def date_from_name(name: str) -> dt.date | None:
    """The date in a file name (ISO, ``YYYYMMDD[hhmmss]`` or ``YYYYDDD``), else None.

    >>> date_from_name("MOD11A1.A2019305.h14v09.006.hdf")
    datetime.date(2019, 11, 1)
    """
    stem = Path(name).name
    for rx in (_ISO, _YMD_HMS, _YMD):
        for m in rx.finditer(stem):
            try:
                return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                continue
    for m in _YDOY.finditer(stem):
        year, doy = int(m.group(1)), int(m.group(2))
        if 1900 <= year <= 2200 and 1 <= doy <= (366 if _leap(year) else 365):
            return dt.date(year, 1, 1) + dt.timedelta(days=doy - 1)
    return None


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def as_date(value: dt.date | dt.datetime | str) -> dt.date:
    """A ``date`` from a date, datetime or ISO string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def day_filename(prefix: str, day: dt.date) -> str:
    """``<prefix>_YYYY-MM-DD.tif``."""
    return f"{prefix}_{day.isoformat()}.tif"


@dataclass(frozen=True)
class DailySeries:
    """The dated rasters of one folder, keyed by date."""

    folder: Path
    files: Mapping[dt.date, Path]

    @classmethod
    def from_folder(cls, folder: str | Path, suffixes: Iterable[str] = RASTER_SUFFIXES) -> DailySeries:
        """Scan ``folder`` (not recursive) for rasters with a date in the name."""
        folder = Path(folder)
        if not folder.is_dir():
            raise SeriesError(f"{folder}: is not a folder")
        suffixes = tuple(s.lower() for s in suffixes)
        files: dict[dt.date, Path] = {}
        for p in sorted(folder.iterdir()):
            if p.name.startswith(".") or not p.is_file() or p.suffix.lower() not in suffixes:
                continue
            d = date_from_name(p.name)
            if d is None:
                continue
            if d in files:
                raise SeriesError(f"{folder}: two files for {d}: {files[d].name} and {p.name}")
            files[d] = p
        if not files:
            raise SeriesError(
                f"{folder}: no raster with a date in its name (YYYY-MM-DD, YYYYMMDD or YYYYDDD) was found"
            )
        return cls(folder, dict(sorted(files.items())))

    # ------------------------------------------------------------------------------
    @property
    def dates(self) -> list[dt.date]:
        return list(self.files)

    @property
    def start(self) -> dt.date:
        return next(iter(self.files))

    @property
    def end(self) -> dt.date:
        return next(reversed(list(self.files)))

    def __len__(self) -> int:
        return len(self.files)

    def __contains__(self, day: object) -> bool:
        return day in self.files

    def path(self, day: dt.date) -> Path:
        try:
            return self.files[day]
        except KeyError:
            raise SeriesError(f"{self.folder}: has no file for {day}") from None

    def between(self, start: dt.date | None = None, end: dt.date | None = None) -> DailySeries:
        """The files with ``start <= date <= end`` (open ends when None)."""
        sel = {d: p for d, p in self.files.items() if (start is None or d >= start) and (end is None or d <= end)}
        if not sel:
            raise SeriesError(f"{self.folder}: no file between {start or '...'} and {end or '...'}")
        return DailySeries(self.folder, sel)

    def nearest(self, day: dt.date, max_days: int, before_only: bool = False) -> dt.date | None:
        """The date nearest to ``day`` within ``max_days`` (ties go to the earlier one)."""
        best, best_gap = None, None
        for d in self.files:
            gap = (day - d).days
            if before_only and gap < 0:
                continue
            if abs(gap) <= max_days and (best_gap is None or abs(gap) < best_gap):
                best, best_gap = d, abs(gap)
        return best

    def grid(self) -> Grid:
        """The grid of the first file (series are expected to share it)."""
        return Grid.from_raster(self.files[self.start])

    def read(self, day: dt.date, grid: Grid | None = None, resampling: str = "bilinear") -> np.ndarray:
        """The raster of ``day`` as float32 (NaN missing), warped onto ``grid`` if given."""
        return read_raster(self.path(day), grid, resampling)


@dataclass(frozen=True)
class LayerSource:
    """A predictor given either as a daily/composite series (folder) or one static raster.

    ``max_age_days`` lets composites (e.g. 16-day NDVI) serve the days after their date:
    the nearest earlier file within that many days is used, else the nearest later one.
    """

    path: Path
    series: DailySeries | None
    max_age_days: int = 0

    @classmethod
    def open(cls, path: str | Path, max_age_days: int = 0) -> LayerSource:
        p = Path(path)
        if p.is_dir():
            return cls(p, DailySeries.from_folder(p), max_age_days)
        if not p.exists() and not str(path).upper().startswith(("HDF", "NETCDF", "/VSI")):
            raise RasterReadError(f"{path}: no such file or folder")
        open_raster(path)  # fail early and clearly
        return cls(p, None, max_age_days)

    @property
    def is_static(self) -> bool:
        return self.series is None

    def date_for(self, day: dt.date) -> dt.date | None:
        """The file date used for ``day`` (None when the series has nothing close enough)."""
        if self.series is None:
            return day
        if day in self.series:
            return day
        if self.max_age_days <= 0:
            return None
        d = self.series.nearest(day, self.max_age_days, before_only=True)
        return d if d is not None else self.series.nearest(day, self.max_age_days)

    def covers(self, day: dt.date) -> bool:
        return self.date_for(day) is not None

    def grid(self) -> Grid:
        return self.series.grid() if self.series is not None else Grid.from_raster(self.path)

    def read(self, day: dt.date | None, grid: Grid | None = None, resampling: str = "bilinear") -> np.ndarray:
        if self.series is None:
            return read_raster(self.path, grid, resampling)
        d = self.date_for(day) if day is not None else self.series.start
        if d is None:
            raise SeriesError(f"{self.path}: no file within {self.max_age_days} days of {day}")
        return self.series.read(d, grid, resampling)


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------


def read_raster(
    path: str | Path, grid: Grid | None = None, resampling: str = "bilinear", band: int = 1
) -> np.ndarray:
    """Band ``band`` of a raster as float32 with NaN for nodata, optionally onto ``grid``
    (GeoTIFF tiles decoded in :func:`read_threads` threads)."""
    ds = open_raster(path, threads=read_threads())
    try:
        if grid is None:
            grid = Grid.from_raster(ds)
        return warp_to_grid(ds, grid, resampling=resampling, band=band)
    except RuntimeError as exc:
        raise RasterReadError(f"{path}: cannot be read ({exc})") from exc
    finally:
        ds = None


def read_date_item(path: str | Path) -> dt.date | None:
    """The ``DATE`` metadata item of a raster, if any."""
    ds = open_raster(path)
    value = ds.GetMetadataItem(DATE_ITEM)
    ds = None
    return as_date(value) if value else None


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------

_GDAL_TYPES = {
    np.dtype("float32"): gdal.GDT_Float32,
    np.dtype("float64"): gdal.GDT_Float64,
    np.dtype("uint8"): gdal.GDT_Byte,
    np.dtype("int16"): gdal.GDT_Int16,
    np.dtype("uint16"): gdal.GDT_UInt16,
    np.dtype("int32"): gdal.GDT_Int32,
}


#: compression threads of the GeoTIFF writer (GDAL ``NUM_THREADS``): ``ALL_CPUS`` or a
#: number; ``SSM_WRITE_THREADS`` in the environment overrides it (1 = single-threaded)
WRITE_THREADS = "ALL_CPUS"


def write_threads() -> str:
    """The ``NUM_THREADS`` value for writers (``SSM_WRITE_THREADS`` or :data:`WRITE_THREADS`)."""
    v = os.environ.get("SSM_WRITE_THREADS", "").strip().upper() or WRITE_THREADS
    if v != "ALL_CPUS" and not (v.isdigit() and int(v) >= 1):
        log.warning("SSM_WRITE_THREADS=%r is neither ALL_CPUS nor a positive number; using 1", v)
        v = "1"
    return v


#: DEFLATE level of the GeoTIFFs written (GDAL ``ZLEVEL``, 1-9); ``SSM_DEFLATE_LEVEL`` in
#: the environment overrides it. Level 1: the day's float32 layers (floating-point
#: predictor) are mostly mantissa bits that no level compresses much, so higher levels
#: cost time and save little (a China-sized day's three outputs: 1.5-1.7 s and 123.1 MB
#: at level 1 against 2.6-2.9 s and 122.0 MB at GDAL's default 6, same pixels)
DEFLATE_LEVEL = 1


def deflate_level() -> int:
    """The ``ZLEVEL`` of written GeoTIFFs (``SSM_DEFLATE_LEVEL`` or :data:`DEFLATE_LEVEL`)."""
    v = os.environ.get("SSM_DEFLATE_LEVEL", "").strip()
    if not v:
        return DEFLATE_LEVEL
    if v.isdigit() and 1 <= int(v) <= 9:
        return int(v)
    log.warning("SSM_DEFLATE_LEVEL=%r is not a level from 1 to 9; using %d", v, DEFLATE_LEVEL)
    return DEFLATE_LEVEL


def creation_options(dtype: np.dtype, grid: Grid, threads: str | int | None = None) -> list[str]:
    """GeoTIFF creation options: tiled, DEFLATE at :func:`deflate_level`, the predictor
    suited to the type, and multi-threaded compression of the 256 px tiles of large grids
    (``threads``: GDAL's ``NUM_THREADS``, default :func:`write_threads`; the pixel data
    are the same bytes whatever the number of threads or the level)."""
    dtype = np.dtype(dtype)
    opts = ["COMPRESS=DEFLATE", f"ZLEVEL={deflate_level()}", "BIGTIFF=IF_SAFER"]
    if grid.width >= 256 or grid.height >= 256:
        opts += ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256"]
        n = str(threads).upper() if threads is not None else write_threads()
        if n != "1":
            opts.append(f"NUM_THREADS={n}")
    else:
        opts += ["TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"]
    opts.append("PREDICTOR=3" if dtype.kind == "f" else "PREDICTOR=2")
    return opts


class RasterWriter:
    """Writes a single-band GeoTIFF block by block, atomically.

    Used as a context manager: the file appears under its final name only when the
    block exits without an exception; otherwise the temporary file is removed.

    >>> with RasterWriter(path, grid, "float32", date=day) as w:
    ...     for row0, nrows in grid.row_blocks(512):
    ...         w.write(block, row0)
    """

    def __init__(
        self,
        path: str | Path,
        grid: Grid,
        dtype: str | np.dtype = "float32",
        *,
        nodata: float | None = None,
        date: dt.date | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ):
        self.path = Path(path)
        self.grid = grid
        self.dtype = np.dtype(dtype)
        if self.dtype not in _GDAL_TYPES:
            raise ValueError(f"unsupported dtype {self.dtype}")
        if nodata is None:
            nodata = NODATA if self.dtype.kind == "f" else (FLAG_NODATA if self.dtype == np.uint8 else None)
        self.nodata = nodata
        self.date = date
        self.description = description
        self.metadata = dict(metadata or {})
        self.tmp = self.path.with_name(f".{self.path.stem}.part{os.getpid()}{self.path.suffix}")
        self.ds: gdal.Dataset | None = None

    def __enter__(self) -> RasterWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        drv = gdal.GetDriverByName("GTiff")
        ds = drv.Create(
            str(self.tmp),
            self.grid.width,
            self.grid.height,
            1,
            _GDAL_TYPES[self.dtype],
            options=creation_options(self.dtype, self.grid),
        )
        ds.SetProjection(self.grid.crs_wkt)
        ds.SetGeoTransform(self.grid.transform)
        band = ds.GetRasterBand(1)
        if self.nodata is not None:
            band.SetNoDataValue(float(self.nodata))
        if self.description:
            band.SetDescription(self.description)
        md = dict(self.metadata)
        if self.date is not None:
            md[DATE_ITEM] = self.date.isoformat()
        if md:
            ds.SetMetadata({str(k): str(v) for k, v in md.items()})
        self.ds = ds
        return self

    def write(self, block: np.ndarray, row0: int = 0, col0: int = 0) -> None:
        """Write ``block`` with its top-left pixel at (row0, col0); NaN becomes nodata."""
        if self.ds is None:
            raise RuntimeError("RasterWriter.write() outside its context manager (use `with RasterWriter(...)`)")
        data = np.asarray(block)
        if self.dtype.kind == "f":
            data = data.astype(self.dtype, copy=True)
            if self.nodata is not None:
                data[~np.isfinite(data)] = self.nodata
        else:
            data = data.astype(self.dtype, copy=False)
        self.ds.GetRasterBand(1).WriteArray(data, col0, row0)

    def __exit__(self, exc_type, exc, tb) -> None:
        ds, self.ds = self.ds, None
        if ds is not None:
            ds.FlushCache()
            ds = None
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            try:
                self.tmp.unlink()
            except FileNotFoundError:
                pass


def write_raster(
    path: str | Path,
    array: np.ndarray,
    grid: Grid,
    *,
    dtype: str | np.dtype | None = None,
    nodata: float | None = None,
    date: dt.date | None = None,
    description: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a whole array as a tiled DEFLATE GeoTIFF, atomically; returns the path."""
    if array.shape != grid.shape:
        raise ValueError(f"array shape {array.shape} does not match the grid {grid.shape}")
    dtype = np.dtype(dtype or (np.float32 if array.dtype.kind == "f" else array.dtype))
    with RasterWriter(path, grid, dtype, nodata=nodata, date=date, description=description, metadata=metadata) as w:
        w.write(array, 0)
    return Path(path)


def write_day(
    folder: str | Path, prefix: str, day: dt.date, array: np.ndarray, grid: Grid, **kwargs
) -> Path:
    """Write the raster of ``day`` as ``folder/<prefix>_YYYY-MM-DD.tif``."""
    return write_raster(Path(folder) / day_filename(prefix, day), array, grid, date=day, **kwargs)


def daterange(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day from ``start`` to ``end`` inclusive."""
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
