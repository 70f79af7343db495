"""A tiny scene for the bad-input catalogue (72 km x 72 km, 4 days): every input folder a
user gives the three tools, plus helpers to make faulty copies and to hash inputs.

Importable as ``badinput_scene`` (tests/ is on the pythonpath); no QGIS.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import shutil
from pathlib import Path

import numpy as np

from ssm_downscaling.core.grid import Grid, ease2_global, to_wkt
from ssm_downscaling.core.membership import Membership
from ssm_downscaling.core.series import write_day, write_raster

DAYS = [dt.date(2019, 7, 1) + dt.timedelta(days=i) for i in range(4)]
LAEA = "+proj=laea +lat_0=35 +lon_0=105 +datum=WGS84 +units=m +no_defs"


def fine_grid() -> Grid:
    return Grid.from_bounds(to_wkt(LAEA), (-36e3, -36e3, 36e3, 36e3), 1000)


def build_scene(root: Path) -> dict:
    """Write the scene under ``root``; returns the paths (and grids) by name."""
    root = Path(root)
    fine = fine_grid()
    coarse = ease2_global(36).covering(fine, margin=0)
    m = Membership.build(fine, coarse)
    bg_grid = Grid.from_bounds(to_wkt(LAEA), (-45e3, -45e3, 45e3, 45e3), 9000)
    yy, xx = np.mgrid[0 : fine.height, 0 : fine.width].astype(float)
    dem = (1500 + 200 * np.sin(xx / 9) * np.cos(yy / 13)).astype(np.float32)
    ndvi = (0.4 + 0.2 * np.sin(yy / 17)).astype(np.float32)
    albedo = np.full(fine.shape, 0.2, np.float32)
    rng = np.random.default_rng(3)
    for i, d in enumerate(DAYS):
        lst = (300 + 4 * np.cos(xx / 7 + i) - 0.0065 * (dem - 1500)).astype(np.float32)
        truth = (0.3 - 0.012 * (lst - 300) + 0.05 * ndvi).astype(np.float32)
        y, _ = m.aggregate(truth)
        write_day(root / "ssm", "ssm_coarse", d, y, coarse)
        write_day(root / "lst", "lst", d, lst, fine)
        clear = lst.copy()
        clear[(xx - 10 * i - 20) ** 2 + (yy - 30) ** 2 < 150] = np.nan  # a cloud
        write_day(root / "lst_clear", "lst", d, clear, fine)
        bg = np.full(bg_grid.shape, 300.0 - 1.0 * i, np.float32)
        write_day(root / "background", "bg", d, bg, bg_grid)
        write_day(root / "albedo", "albedo", d, albedo + np.float32(0.01 * i), fine)
        write_day(root / "product", "ssm", d, truth, fine)
    write_day(root / "ndvi", "ndvi", DAYS[0] - dt.timedelta(days=3), ndvi, fine)
    write_raster(root / "dem.tif", dem, fine)
    # stations: 5 inside the grid, in lon/lat
    from osgeo import osr

    src = osr.SpatialReference()
    src.ImportFromProj4(LAEA)
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(4326)
    dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    tr = osr.CoordinateTransformation(src, dst)
    rows = []
    for k, (x, y) in enumerate([(-20e3, -20e3), (15e3, -10e3), (0.0, 5e3), (-10e3, 25e3), (25e3, 25e3)]):
        lon, lat, _ = tr.TransformPoint(x, y)
        r, c = int((36e3 - y) // 1000), int((x + 36e3) // 1000)
        for i, d in enumerate(DAYS):
            lst = 300 + 4 * np.cos(c / 7 + i) - 0.0065 * (dem[r, c] - 1500)
            sm = 0.3 - 0.012 * (lst - 300) + 0.05 * ndvi[r, c] + rng.normal(0, 0.01)
            rows.append((f"S{k}", f"{lon:.6f}", f"{lat:.6f}", d.isoformat(), f"{sm:.4f}", "0.05", "NET"))
    write_stations(root / "stations.csv", rows)
    return {"root": root, "fine": fine, "coarse": coarse, "ssm": root / "ssm", "lst": root / "lst",
            "lst_clear": root / "lst_clear", "background": root / "background", "ndvi": root / "ndvi",
            "albedo": root / "albedo", "dem": root / "dem.tif", "product": root / "product",
            "stations": root / "stations.csv", "station_rows": rows}


def write_stations(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["station_id", "lon", "lat", "date", "sm", "depth", "network"])
        w.writerows(rows)
    return path


def copy_series(src: Path, dst: Path, func=None, *, nodata="keep", scale: float | None = None) -> Path:
    """Copy a series folder (or one raster), passing each array through ``func``; ``nodata``
    "keep" keeps the declared nodata, None removes it, a number sets it; ``scale`` sets the
    band's scale factor metadata."""
    from osgeo import gdal

    src, dst = Path(src), Path(dst)
    files = sorted(src.glob("*.tif")) if src.is_dir() else [src]
    (dst if src.is_dir() else dst.parent).mkdir(parents=True, exist_ok=True)
    for f in files:
        out = dst / f.name if src.is_dir() else dst
        ds = gdal.Open(str(f))
        a = ds.GetRasterBand(1).ReadAsArray().astype(np.float64)
        nd = ds.GetRasterBand(1).GetNoDataValue()
        if nd is not None:
            a[a == nd] = np.nan
        b = func(a) if func else a
        dtype = gdal.GDT_Float32 if np.asarray(b).dtype.kind == "f" else gdal.GDT_Int32
        drv = gdal.GetDriverByName("GTiff")
        o = drv.Create(str(out), ds.RasterXSize, ds.RasterYSize, 1, dtype)
        o.SetProjection(ds.GetProjection())
        o.SetGeoTransform(ds.GetGeoTransform())
        band = o.GetRasterBand(1)
        if nodata == "keep" and nd is not None:
            band.SetNoDataValue(nd)
            b = np.where(np.isnan(b), nd, b) if np.asarray(b).dtype.kind == "f" else b
        elif nodata not in ("keep", None):
            band.SetNoDataValue(float(nodata))
        if scale is not None:
            band.SetScale(scale)
        band.WriteArray(np.asarray(b))
        o = None
        ds = None
    return dst


def tree_hash(*paths: Path) -> dict[str, str]:
    """sha1 of every file under ``paths`` (files or folders), keyed by path."""
    out = {}
    for p in paths:
        p = Path(p)
        if p.is_file():
            files = [p]
        elif p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file())
        else:
            files = []
        for f in files:
            if f.name.endswith(".aux.xml"):  # QGIS's statistics of a raster opened as a layer, not its data
                continue
            out[str(f)] = hashlib.sha1(f.read_bytes()).hexdigest()
    return out


def files_under(p: Path) -> set[str]:
    p = Path(p)
    if not p.exists():
        return set()
    if p.is_file():
        return {str(p)}
    return {str(q) for q in p.rglob("*")}


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
