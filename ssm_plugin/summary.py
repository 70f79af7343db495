"""One-line statistics of a day's raster (and its flags) for the viewer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from osgeo import gdal

from .styling import flag_legend, unit_label

MAX_READ = 1_000_000  # pixels: larger rasters are summarised from a decimated read


def _read(path: Path) -> np.ndarray:
    ds = gdal.Open(str(path))
    b = ds.GetRasterBand(1)
    w, h = ds.RasterXSize, ds.RasterYSize
    f = max(1.0, (w * h / MAX_READ) ** 0.5)
    arr = b.ReadAsArray(buf_xsize=max(1, int(w / f)), buf_ysize=max(1, int(h / f))).astype(np.float64)
    nodata = b.GetNoDataValue()
    if nodata is not None:
        arr[arr == nodata] = np.nan
    ds = None
    return arr


def day_summary(path: Path, flag_path: Path | None, day: dt.date) -> str:
    """``"2019-06-15: mean 0.213 m3/m3 (0.05-0.41), 99.6 % with a value; flags: ..."``."""
    v = _read(path)
    ok = np.isfinite(v)
    unit = unit_label(Path(path).parent.name + " " + Path(path).name)
    if ok.any():
        q = np.nanpercentile(v, [2, 98])
        text = f"{day}: mean {np.nanmean(v):.3f} {unit} ({q[0]:.3f}-{q[1]:.3f}), {ok.mean():.1%} of pixels with a value"
    else:
        text = f"{day}: no valid pixel"
    if flag_path is not None:
        f = _read(flag_path)
        legend = flag_legend(flag_path)
        valid = np.isfinite(f)
        parts = []
        for code in sorted(int(c) for c in np.unique(f[valid])):
            share = float((f[valid] == code).mean())
            parts.append(f"{legend.get(code, code)} {share:.0%}")
        if parts:
            text += "; flags: " + ", ".join(parts)
    return text
