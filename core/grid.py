"""Raster grids, coordinate transforms, and warping onto a target grid.

A :class:`Grid` is a CRS (WKT), a GDAL geotransform and a size. Arrays on a grid have
shape ``(height, width)``, row 0 at the top. All coordinates are in the traditional GIS
axis order (x = easting/longitude, y = northing/latitude).
"""

from __future__ import annotations

import math
import os
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

from .errors import GridError, RasterReadError

gdal.UseExceptions()
osr.UseExceptions()


#: GDAL resampling names accepted by :func:`warp_to_grid`.
RESAMPLING = ("nearest", "bilinear", "cubic", "average", "mode", "min", "max", "med")

_EQUAL_AREA_PROJECTIONS = {
    "Lambert_Azimuthal_Equal_Area",
    "Albers_Conic_Equal_Area",
    "Cylindrical_Equal_Area",
    "Mollweide",
    "Sinusoidal",
    "Goode_Homolosine",
    "Interrupted_Goode_Homolosine",
}


def to_srs(crs: str | int | osr.SpatialReference) -> osr.SpatialReference:
    """A SpatialReference (GIS axis order) from WKT, ``EPSG:n``, an EPSG int or PROJ string."""
    if isinstance(crs, osr.SpatialReference):
        srs = crs.Clone()
    else:
        srs = osr.SpatialReference()
        try:
            if isinstance(crs, int):
                srs.ImportFromEPSG(crs)
            else:
                srs.SetFromUserInput(str(crs))
        except RuntimeError as exc:
            raise GridError(f"Unknown coordinate reference system {str(crs)[:80]!r}: {exc}") from exc
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def to_wkt(crs: str | int | osr.SpatialReference) -> str:
    """WKT (WKT1 as GDAL writes it) of any CRS description accepted by :func:`to_srs`."""
    return to_srs(crs).ExportToWkt()


def same_crs(a: str, b: str) -> bool:
    """True when two WKT strings describe the same CRS."""
    if a == b:
        return True
    return bool(to_srs(a).IsSame(to_srs(b)))


def transform_points(
    x: np.ndarray, y: np.ndarray, src_crs: str, dst_crs: str, chunk: int = 1_000_000
) -> tuple[np.ndarray, np.ndarray]:
    """Transform coordinate arrays (any equal shapes) between CRSs; NaN where it fails."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if same_crs(src_crs, dst_crs):
        return x.copy(), y.copy()
    try:
        ct = osr.CoordinateTransformation(to_srs(src_crs), to_srs(dst_crs))
    except RuntimeError as exc:
        raise GridError(f"Cannot transform coordinates between the two CRSs: {exc}") from exc
    xf, yf = x.ravel(), y.ravel()
    ox = np.full(xf.shape, np.nan)
    oy = np.full(yf.shape, np.nan)
    for s in range(0, xf.size, chunk):
        pts = np.column_stack([xf[s : s + chunk], yf[s : s + chunk]])
        ok = np.isfinite(pts).all(axis=1)
        if not ok.any():
            continue
        try:
            res = np.asarray(ct.TransformPoints(pts[ok]), dtype=np.float64)
        except RuntimeError:  # some points fail: do them one by one
            res = np.full((int(ok.sum()), 3), np.nan)
            for i, (px, py) in enumerate(pts[ok]):
                try:
                    res[i] = ct.TransformPoint(float(px), float(py))
                except RuntimeError:
                    pass
        res[~np.isfinite(res[:, :2]).all(axis=1) | (np.abs(res[:, :2]) > 1e30).any(axis=1), :2] = np.nan
        idx = np.arange(s, min(s + chunk, xf.size))[ok]
        ox[idx] = res[:, 0]
        oy[idx] = res[:, 1]
    return ox.reshape(x.shape), oy.reshape(y.shape)


@dataclass(frozen=True, eq=False)
class Grid:
    """A raster grid: CRS (WKT), GDAL geotransform, width and height in pixels.

    Two grids are equal when they have the same size, the same geotransform (to 1e-9 of
    a pixel) and CRSs that describe the same system (whatever their WKT spelling).
    """

    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise GridError(f"A grid needs a positive size, got {self.width} x {self.height}")
        gt = tuple(float(v) for v in self.transform)
        if len(gt) != 6 or gt[1] * gt[5] - gt[2] * gt[4] == 0:
            raise GridError(f"Degenerate geotransform {self.transform}")
        object.__setattr__(self, "transform", gt)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        if (self.width, self.height) != (other.width, other.height):
            return False
        tol = 1e-9 * max(self.res)
        if not np.allclose(self.transform, other.transform, rtol=0, atol=tol):
            return False
        return same_crs(self.crs_wkt, other.crs_wkt)

    def __hash__(self) -> int:
        return hash((self.width, self.height, tuple(round(v, 6) for v in self.transform)))

    # construction -----------------------------------------------------------------
    @classmethod
    def from_raster(cls, src: str | Path | gdal.Dataset) -> Grid:
        """The grid of a raster file (any GDAL-readable name) or an open dataset. A file's
        grid is remembered by its identity (path, inode, size, modification time): the
        readers ask for it once per strip, and the CRS of a GeoTIFF costs a few ms."""
        key = None if isinstance(src, gdal.Dataset) else _file_key(src)
        if key is not None:
            with _GRIDS_LOCK:
                hit = _GRIDS.get(key)
            if hit is not None:
                return hit
        ds = open_raster(src) if not isinstance(src, gdal.Dataset) else src
        wkt = ds.GetProjection()
        if not wkt:
            name = ds.GetDescription()
            raise GridError(f"{name}: the raster has no coordinate reference system")
        g = cls(wkt, tuple(ds.GetGeoTransform()), ds.RasterXSize, ds.RasterYSize)
        if key is not None:
            with _GRIDS_LOCK:
                if len(_GRIDS) >= _GRIDS_MAX:
                    _GRIDS.pop(next(iter(_GRIDS)))  # the oldest
                _GRIDS[key] = g
        return g

    @classmethod
    def from_bounds(
        cls,
        crs: str | int | osr.SpatialReference,
        bounds: Sequence[float],
        res: float | tuple[float, float],
    ) -> Grid:
        """A north-up grid covering ``bounds = (xmin, ymin, xmax, ymax)`` at ``res``."""
        xres, yres = (res, res) if np.isscalar(res) else res
        xmin, ymin, xmax, ymax = map(float, bounds)
        w = max(1, int(round((xmax - xmin) / xres)))
        h = max(1, int(round((ymax - ymin) / yres)))
        return cls(to_wkt(crs), (xmin, float(xres), 0.0, ymax, 0.0, -float(yres)), w, h)

    # properties -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def size(self) -> int:
        return self.width * self.height

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size ``(dx, dy)`` in CRS units, both positive."""
        gt = self.transform
        return (math.hypot(gt[1], gt[4]), math.hypot(gt[2], gt[5]))

    @property
    def north_up(self) -> bool:
        return self.transform[2] == 0 and self.transform[4] == 0

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the grid's corners."""
        xs, ys = self.corner_xy()
        return (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))

    @property
    def srs(self) -> osr.SpatialReference:
        return to_srs(self.crs_wkt)

    @property
    def is_geographic(self) -> bool:
        return bool(self.srs.IsGeographic())

    def __repr__(self) -> str:
        name = self.srs.GetName() or "?"
        return f"Grid({name!r}, {self.width}x{self.height}, res={self.res[0]:g}, origin=({self.transform[0]:g}, {self.transform[3]:g}))"

    # coordinates -----------------------------------------------------------------
    def xy(self, rows: np.ndarray, cols: np.ndarray, offset: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """CRS coordinates of pixel (row, col) positions; ``offset=0.5`` is the centre."""
        gt = self.transform
        c = np.asarray(cols, dtype=np.float64) + offset
        r = np.asarray(rows, dtype=np.float64) + offset
        return gt[0] + c * gt[1] + r * gt[2], gt[3] + c * gt[4] + r * gt[5]

    def centres(self, row0: int = 0, nrows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates ``(x, y)``, each of shape ``(nrows, width)``."""
        nrows = self.height - row0 if nrows is None else nrows
        r, c = np.mgrid[row0 : row0 + nrows, 0 : self.width]
        return self.xy(r, c)

    def corner_xy(self) -> tuple[np.ndarray, np.ndarray]:
        r = np.array([0, 0, self.height, self.height])
        c = np.array([0, self.width, 0, self.width])
        return self.xy(r, c, offset=0.0)

    def rowcol(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer (row, col) of the pixels containing points; -1 for both when outside."""
        inv = gdal.InvGeoTransform(self.transform)
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            c = np.floor(inv[0] + x * inv[1] + y * inv[2])
            r = np.floor(inv[3] + x * inv[4] + y * inv[5])
        ok = np.isfinite(c) & np.isfinite(r) & (c >= 0) & (c < self.width) & (r >= 0) & (r < self.height)
        rr = np.where(ok, r, -1).astype(np.int64)
        cc = np.where(ok, c, -1).astype(np.int64)
        return rr, cc

    def lonlat(self, row0: int = 0, nrows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Longitude and latitude (degrees, WGS84) of pixel centres, shape ``(nrows, width)``."""
        x, y = self.centres(row0, nrows)
        return transform_points(x, y, self.crs_wkt, to_wkt(4326))

    def footprint_in(self, crs_wkt: str, densify: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """The grid's outline (densified edges) transformed to another CRS."""
        t = np.linspace(0.0, 1.0, densify + 1)
        w, h = self.width, self.height
        rows = np.concatenate([np.zeros_like(t), t * h, np.full_like(t, h), (1 - t) * h])
        cols = np.concatenate([t * w, np.full_like(t, w), (1 - t) * w, np.zeros_like(t)])
        # also sample the interior, which matters for strongly curved transforms
        ri, ci = np.meshgrid(np.linspace(0, h, 9), np.linspace(0, w, 9), indexing="ij")
        rows = np.concatenate([rows, ri.ravel()])
        cols = np.concatenate([cols, ci.ravel()])
        x, y = self.xy(rows, cols, offset=0.0)
        return transform_points(x, y, self.crs_wkt, crs_wkt)

    # sub-grids -------------------------------------------------------------------
    def window(self, row0: int, col0: int, nrows: int, ncols: int) -> Grid:
        """The sub-grid of rows ``row0:row0+nrows`` and columns ``col0:col0+ncols``."""
        x0, y0 = self.xy(np.array(row0), np.array(col0), offset=0.0)
        gt = self.transform
        return Grid(self.crs_wkt, (float(x0), gt[1], gt[2], float(y0), gt[4], gt[5]), ncols, nrows)

    def row_blocks(self, block_rows: int) -> list[tuple[int, int]]:
        """``(row0, nrows)`` pairs that cover the grid in strips of ``block_rows``."""
        block_rows = max(1, int(block_rows))
        return [(r, min(block_rows, self.height - r)) for r in range(0, self.height, block_rows)]

    def window_of(self, other: Grid) -> tuple[int, int, int, int] | None:
        """If ``other`` is a pixel-aligned sub-grid of this grid (same CRS and pixel size),
        its ``(row0, col0, nrows, ncols)`` here (possibly extending outside); else None."""
        a, b = self.transform, other.transform
        if not (np.allclose(a[1:3], b[1:3], rtol=1e-9) and np.allclose(a[4:6], b[4:6], rtol=1e-9)):
            return None
        if not same_crs(self.crs_wkt, other.crs_wkt):
            return None
        inv = gdal.InvGeoTransform(a)
        c = inv[0] + b[0] * inv[1] + b[3] * inv[2]
        r = inv[3] + b[0] * inv[4] + b[3] * inv[5]
        if abs(c - round(c)) > 1e-6 or abs(r - round(r)) > 1e-6:
            return None
        return int(round(r)), int(round(c)), other.height, other.width

    def covering(self, other: Grid, margin: int = 1) -> Grid:
        """The smallest pixel-aligned window of this grid that covers ``other``'s footprint
        (plus ``margin`` cells), clipped to this grid. Raises when they do not overlap."""
        fx, fy = other.footprint_in(self.crs_wkt)
        ok = np.isfinite(fx) & np.isfinite(fy)
        if not ok.any():
            raise GridError(f"The grid {other!r} cannot be transformed into the CRS of {self!r}")
        inv = gdal.InvGeoTransform(self.transform)
        c = inv[0] + fx[ok] * inv[1] + fy[ok] * inv[2]
        r = inv[3] + fx[ok] * inv[4] + fy[ok] * inv[5]
        c0 = max(0, int(np.floor(c.min())) - margin)
        c1 = min(self.width, int(np.ceil(c.max())) + margin)
        r0 = max(0, int(np.floor(r.min())) - margin)
        r1 = min(self.height, int(np.ceil(r.max())) + margin)
        if c1 <= c0 or r1 <= r0:
            raise GridError(f"The grids do not overlap: {other!r} lies outside {self!r}")
        return self.window(r0, c0, r1 - r0, c1 - c0)

    # areas -------------------------------------------------------------------------
    def pixel_areas(self, row0: int = 0, nrows: int | None = None) -> np.ndarray:
        """Pixel areas in m2 on the ellipsoid, broadcastable to ``(nrows, width)``.

        Equal-area projections give a constant; geographic grids an exact per-row value;
        other CRSs a numerical estimate from corner coordinates in a local equal-area CRS.
        """
        nrows = self.height - row0 if nrows is None else nrows
        srs = self.srs
        gt = self.transform
        if srs.IsProjected() and srs.GetAttrValue("PROJECTION") in _EQUAL_AREA_PROJECTIONS:
            unit = srs.GetLinearUnits()
            return np.full((1, 1), abs(gt[1] * gt[5] - gt[2] * gt[4]) * unit * unit)
        if srs.IsGeographic() and self.north_up:
            a = srs.GetSemiMajor()
            b = srs.GetSemiMinor()
            e2 = 1 - (b * b) / (a * a)
            lat_top = gt[3] + np.arange(row0, row0 + nrows) * gt[5]
            lat_bot = lat_top + gt[5]
            q = _authalic_q(np.radians(lat_top), e2) - _authalic_q(np.radians(lat_bot), e2)
            area = 0.5 * a * a * (1 - e2) * np.abs(q) * np.radians(abs(gt[1]))
            return area[:, None]
        # general case: corners into a LAEA centred on the grid
        cx, cy = self.xy(np.array(self.height / 2), np.array(self.width / 2), offset=0.0)
        lon, lat = transform_points(cx, cy, self.crs_wkt, to_wkt(4326))
        laea = to_wkt(f"+proj=laea +lat_0={float(lat)} +lon_0={float(lon)} +datum=WGS84 +units=m +no_defs")
        r, c = np.mgrid[row0 : row0 + nrows + 1, 0 : self.width + 1]
        x, y = self.xy(r, c, offset=0.0)
        ex, ey = transform_points(x, y, self.crs_wkt, laea)
        # shoelace area of each quadrilateral
        x00, y00 = ex[:-1, :-1], ey[:-1, :-1]
        x01, y01 = ex[:-1, 1:], ey[:-1, 1:]
        x11, y11 = ex[1:, 1:], ey[1:, 1:]
        x10, y10 = ex[1:, :-1], ey[1:, :-1]
        s = (x00 * y01 - x01 * y00) + (x01 * y11 - x11 * y01) + (x11 * y10 - x10 * y11) + (x10 * y00 - x00 * y10)
        return np.abs(s) / 2.0

    # GDAL ------------------------------------------------------------------------------
    def create_mem(self, dtype: int = gdal.GDT_Float32, bands: int = 1) -> gdal.Dataset:
        """An empty in-memory GDAL dataset on this grid."""
        ds = gdal.GetDriverByName("MEM").Create("", self.width, self.height, bands, dtype)
        ds.SetProjection(self.crs_wkt)
        ds.SetGeoTransform(self.transform)
        return ds


def _authalic_q(phi: np.ndarray, e2: float) -> np.ndarray:
    """The authalic-latitude function q(phi) of an ellipsoid with eccentricity^2 ``e2``."""
    e = math.sqrt(e2)
    s = np.sin(phi)
    if e2 == 0:
        return 2 * s
    return s / (1 - e2 * s * s) - (1 / (2 * e)) * np.log((1 - e * s) / (1 + e * s))


# ---------------------------------------------------------------------------------------
# raster access
# ---------------------------------------------------------------------------------------


#: threads GDAL may use to decode a GeoTIFF's tiles and to warp (``NUM_THREADS``);
#: ``SSM_READ_THREADS`` in the environment overrides it (1 = single-threaded)
READ_THREADS = "ALL_CPUS"


def read_threads() -> str:
    """``NUM_THREADS`` for reads and warps (``SSM_READ_THREADS`` or :data:`READ_THREADS`)."""
    v = os.environ.get("SSM_READ_THREADS", "").strip().upper() or READ_THREADS
    return v if v == "ALL_CPUS" or (v.isdigit() and int(v) >= 1) else "1"


def open_raster(src: str | Path, threads: str | int | None = None) -> gdal.Dataset:
    """Open a raster read-only, with an error that names the file. ``threads`` (a number
    or ``ALL_CPUS``) lets GDAL decode a GeoTIFF's tiles in that many threads when a read
    covers several of them (GDAL >= 3.6; the values are the same)."""
    name = str(src)
    try:
        if threads is not None and str(threads) != "1" and name.lower().endswith((".tif", ".tiff")):
            ds = gdal.OpenEx(name, gdal.OF_RASTER | gdal.OF_READONLY, open_options=[f"NUM_THREADS={threads}"])
        else:
            ds = gdal.Open(name, gdal.GA_ReadOnly)
    except RuntimeError as exc:
        raise RasterReadError(f"{name}: cannot be opened as a raster ({exc})") from exc
    if ds is None:  # pragma: no cover - UseExceptions makes this unreachable
        raise RasterReadError(f"{name}: cannot be opened as a raster")
    if ds.RasterCount < 1:
        subs = ds.GetSubDatasets()
        hint = f"; it holds sub-datasets such as {subs[0][0]}" if subs else ""
        raise RasterReadError(f"{name}: has no raster band{hint}")
    return ds


#: grids of files already read (see :meth:`Grid.from_raster`), oldest first
_GRIDS: dict[tuple, Grid] = {}
_GRIDS_MAX = 4096
_GRIDS_LOCK = threading.Lock()


def _file_key(src: str | Path) -> tuple | None:
    """``(path, inode, size, mtime_ns)`` of a local file; None for anything else
    (``/vsi...`` names, sub-datasets, URLs)."""
    try:
        st = os.stat(src)
    except (OSError, ValueError, TypeError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (os.path.realpath(src), st.st_ino, st.st_size, st.st_mtime_ns)


def _band_nodata_and_scale(band: gdal.Band) -> tuple[float | None, float, float]:
    nodata = band.GetNoDataValue()
    scale = band.GetScale()
    offset = band.GetOffset()
    return nodata, (1.0 if scale in (None, 0) else float(scale)), (0.0 if offset is None else float(offset))


def warp_to_grid(
    src: str | Path | gdal.Dataset,
    grid: Grid,
    resampling: str = "bilinear",
    band: int = 1,
    src_nodata: float | None = None,
    apply_scale: bool = True,
) -> np.ndarray:
    """Read band ``band`` of ``src`` onto ``grid`` in memory; float32 with NaN as missing.

    Uses a direct window read when ``grid`` is a pixel-aligned window of the source, and
    ``gdal.Warp`` (exact transformer, :func:`read_threads` threads) otherwise. The band's
    scale/offset are applied.
    """
    if resampling not in RESAMPLING:
        raise ValueError(f"Unknown resampling {resampling!r}; choose from {', '.join(RESAMPLING)}")
    ds = open_raster(src) if not isinstance(src, gdal.Dataset) else src
    name = ds.GetDescription() or str(src)
    if band < 1 or band > ds.RasterCount:
        raise RasterReadError(f"{name}: has {ds.RasterCount} band(s), band {band} was asked for")
    b = ds.GetRasterBand(band)
    nodata, scale, offset = _band_nodata_and_scale(b)
    if src_nodata is not None:
        nodata = src_nodata
    try:
        sgrid = Grid.from_raster(ds if isinstance(src, gdal.Dataset) else src)  # a file's grid is remembered
    except GridError as exc:
        raise RasterReadError(f"{name}: {exc}") from exc
    win = sgrid.window_of(grid)
    if win is not None:
        arr = _read_window(b, win, sgrid)
        if nodata is not None:
            arr[arr == np.float32(nodata)] = np.nan
    else:
        mem = _single_band_vrt(ds, band) if ds.RasterCount > 1 else ds
        dst = grid.create_mem(gdal.GDT_Float32)
        dst.GetRasterBand(1).SetNoDataValue(float("nan"))
        dst.GetRasterBand(1).Fill(float("nan"))
        threads = read_threads()
        mt = {"multithread": True, "warpOptions": [f"NUM_THREADS={threads}"]} if threads != "1" else {}
        try:
            gdal.Warp(
                dst,
                mem,
                options=gdal.WarpOptions(
                    resampleAlg=resampling,
                    srcNodata=nodata,
                    dstNodata=float("nan"),
                    errorThreshold=0.0,
                    **mt,  # the same values as one thread
                ),
            )
        except RuntimeError as exc:
            raise GridError(f"{name}: cannot be warped onto the target grid ({exc})") from exc
        arr = dst.GetRasterBand(1).ReadAsArray().astype(np.float32)
        dst = None
    if apply_scale and (scale != 1.0 or offset != 0.0):
        arr = arr * np.float32(scale) + np.float32(offset)
    return arr


def _single_band_vrt(ds: gdal.Dataset, band: int) -> gdal.Dataset:
    return gdal.Translate("", ds, options=gdal.TranslateOptions(format="VRT", bandList=[band]))


#: largest strip (pixels) a window read decodes at once
READ_STRIP_PIXELS = 8 * 1024 * 1024


def _read_window(b: gdal.Band, win: tuple[int, int, int, int], sgrid: Grid) -> np.ndarray:
    """Read a window that may extend beyond the raster as float32; outside is NaN.

    The rows are read in strips whose edges fall on the band's internal block rows (the
    GeoTIFF's 256 px tiles), so each tile is decoded once, and converted to float32 strip
    by strip (the same values as converting the whole window at once).
    """
    r0, c0, nr, nc = win
    out = np.full((nr, nc), np.nan, dtype=np.float32)
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1, cc1 = min(r0 + nr, sgrid.height), min(c0 + nc, sgrid.width)
    if rr1 <= rr0 or cc1 <= cc0:
        return out
    by = max(1, int(b.GetBlockSize()[1]))
    step = max(1, READ_STRIP_PIXELS // max((cc1 - cc0) * by, 1)) * by
    r = rr0
    while r < rr1:
        r_end = min(rr1, (r // step + 1) * step)  # the next strip edge on a block row
        data = b.ReadAsArray(cc0, r, cc1 - cc0, r_end - r)
        out[r - r0 : r_end - r0, cc0 - c0 : cc1 - c0] = data
        r = r_end
    return out


def array_to_mem(array: np.ndarray, grid: Grid, nodata: float | None = None) -> gdal.Dataset:
    """An in-memory single-band dataset holding ``array`` on ``grid`` (for warping)."""
    dtype = gdal.GDT_Float32 if array.dtype.kind == "f" else gdal.GDT_Int32
    ds = grid.create_mem(dtype)
    b = ds.GetRasterBand(1)
    if nodata is not None:
        b.SetNoDataValue(float(nodata))
    elif array.dtype.kind == "f":
        b.SetNoDataValue(float("nan"))
    b.WriteArray(array)
    return ds


#: EASE-Grid 2.0 global (EPSG:6933) cell sizes in metres and grid sizes, by nominal km
_EASE2 = {
    36: (36032.220840584, 964, 406),
    25: (25025.2600000, 1388, 584),
    9: (9008.055210146, 3856, 1624),
    3: (3002.6850700487, 11568, 4872),
    1: (1000.89502334956, 34704, 14616),
}
_EASE2_X0 = -17367530.44516138
_EASE2_Y0 = 7314540.830638504


def ease2_global(cell_km: int = 36) -> Grid:
    """The EASE-Grid 2.0 global grid (EPSG:6933) at a nominal resolution of 36, 25, 9, 3 or 1 km."""
    try:
        res, w, h = _EASE2[int(cell_km)]
    except KeyError:
        raise GridError(f"EASE-Grid 2.0 has no {cell_km} km global grid; choose from {sorted(_EASE2)}") from None
    # the grids are centred on the equator: the 25 km grid's 584 rows reach 7 307 375.92 m, not 7 314 540.83
    y0 = _EASE2_Y0 if int(cell_km) != 25 else h * res / 2.0
    return Grid(to_wkt(6933), (_EASE2_X0, res, 0.0, y0, 0.0, -res), w, h)
