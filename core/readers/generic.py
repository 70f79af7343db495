"""Any GDAL raster with a date in its file name (a soil moisture product already in GeoTIFF,
a SMOS or CCI export, a series made elsewhere)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..grid import Grid, open_raster
from ..series import date_from_name
from .base import ProductDay, ProductError, check_units

#: value units of a generic raster -> factor to the returned unit
UNIT_FACTORS = {"m3/m3": 1.0, "percent": 0.01, "K": 1.0, "celsius": 1.0, "1": 1.0}


def read_generic(path: str | Path, units: str = "m3/m3", band: int = 1) -> ProductDay:
    """Band ``band`` of a dated raster, scale/offset and nodata applied, converted from
    ``units`` (``m3/m3``, ``percent``, ``K``, ``celsius``, ``1``) to SI."""
    if units not in UNIT_FACTORS:
        raise ProductError(f"unknown units {units!r}; choose one of {', '.join(UNIT_FACTORS)}")
    day = date_from_name(Path(str(path)).name)
    if day is None:
        raise ProductError(f"{path}: no date in the file name (YYYY-MM-DD, YYYYMMDD or YYYYDDD)")
    try:
        ds = open_raster(path)
        grid = Grid.from_raster(ds)
    except Exception as exc:
        raise ProductError(str(exc)) from exc
    if band < 1 or band > ds.RasterCount:
        raise ProductError(f"{path}: has {ds.RasterCount} band(s); band {band} was asked for")
    b = ds.GetRasterBand(band)
    try:
        raw = b.ReadAsArray().astype(np.float64)
    except RuntimeError as exc:
        raise ProductError(f"{path}: cannot be read (truncated?): {exc}") from exc
    nd = b.GetNoDataValue()
    if nd is not None:
        raw[raw == nd] = np.nan
    scale, offset = b.GetScale() or 1.0, b.GetOffset() or 0.0
    data = raw * scale + offset
    if units == "celsius":
        data = data + 273.15
    data = (data * UNIT_FACTORS[units]).astype(np.float32)
    out_units = {"m3/m3": "m3/m3", "percent": "m3/m3", "K": "K", "celsius": "K", "1": "1"}[units]
    check_units(data, out_units, str(path), f"band {band}")
    return ProductDay(day, data, grid, f"band {band}", out_units, str(path))
