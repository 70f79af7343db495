"""MODIS MOD13A2/MYD13A2 (1 km) and MOD13A1/MYD13A1 (500 m) 16-day vegetation indices.

``1 km 16 days NDVI``: int16, NDVI = count / 10000 (the HDF attribute ``scale_factor`` is
10000 and means *divide*: GDAL reports it as a multiplier, the trap of a plain
``gdal_translate``), valid -2000..10000, fill -3000. ``1 km 16 days pixel reliability``:
-1 fill, 0 good, 1 marginal, 2 snow/ice, 3 cloudy (MOD13 C6.1 user guide). The file date
``AYYYYDDD`` is the first day of the 16-day composite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import ProductDay, ProductError, check_units
from .modis_common import read_field
from .modis_tiles import modis_date, platform_of, product_of

NDVI_SCALE = 1e-4
NDVI_FILL = -3000
COMPOSITE_DAYS = 16


def _field(path, res_name: str, what: str) -> tuple[np.ndarray, object]:
    for prefix in ("1 km", "500m", "250m"):
        try:
            return read_field(path, f"{prefix} 16 days {what}", "MOD13A2/MYD13A2")
        except ProductError:
            continue
    raise ProductError(f"{path}: has no '16 days {what}' field (is it a MOD13A2/MYD13A2 file?)")


def read_mod13(path: str | Path, max_reliability: int = 1) -> ProductDay:
    """NDVI (unitless) of one MOD13 tile; pixels with reliability above ``max_reliability``
    (0 good only, 1 also marginal) or fill are NaN. ``date`` is the composite start."""
    prod = product_of(path)
    if prod and not prod.startswith(("MOD13", "MYD13")):
        raise ProductError(f"{path}: is a {prod} file, not MOD13A2/MYD13A2")
    raw, grid = _field(path, "", "NDVI")
    try:
        rel, _ = _field(path, "", "pixel reliability")
    except ProductError:
        rel = None
    ok = (raw != NDVI_FILL) & (raw >= -2000) & (raw <= 10000)
    if rel is not None:
        ok &= (rel >= 0) & (rel <= max_reliability)
    ndvi = np.where(ok, raw.astype(np.float32) * np.float32(NDVI_SCALE), np.nan).astype(np.float32)
    day = modis_date(path)
    if day is None:
        raise ProductError(f"{path}: no AYYYYDDD date in the file name")
    check_units(ndvi, "1", str(path), "NDVI")
    info = {"valid": int(ok.sum()), "composite_days": COMPOSITE_DAYS}
    return ProductDay(day, ndvi, grid, "NDVI", "1", str(path), platform=platform_of(path), info=info)
