"""ESA CCI SM (and C3S) daily soil moisture images (netCDF4 CF, 0.25 degree).

File names: ``ESACCI-SOILMOISTURE-L3S-SSMV-{PASSIVE|ACTIVE|COMBINED}-YYYYMMDD000000-fvXX.Y.nc``
(C3S: ``C3S-SOILMOISTURE-L3S-SSMV-...``). Variables (time, lat, lon): ``sm`` float32
m3/m3, fill -9999; ``flag`` int16 (0 = no inconsistency detected; bit 1 snow or
temperature below zero, 2 dense vegetation, 4 no convergence, 8 value beyond physical
bounds, 16 weight of measurement below threshold; 127 = no data); ``sm_uncertainty``
m3/m3. Latitude descending. The netCDF carries no CRS GDAL recognises: the grid is
WGS84 from the coordinates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..series import date_from_name
from .base import ProductDay, ProductError, check_units, find_array, lonlat_layout, open_multidim, read_slice, unpack


def is_esa_cci(path: str | Path) -> bool:
    name = Path(str(path)).name.upper()
    return "SOILMOISTURE" in name and name.startswith(("ESACCI", "C3S"))


def read_esa_cci(path: str | Path, flag_zero_only: bool = True, max_uncertainty: float | None = None) -> ProductDay:
    """``sm`` (m3/m3) of one ESA CCI / C3S daily image, native grid.

    ``flag_zero_only``: keep only pixels with ``flag == 0``. ``max_uncertainty`` (m3/m3):
    reject pixels whose ``sm_uncertainty`` is larger (None keeps all).
    """
    day = date_from_name(Path(str(path)).name)
    ds = open_multidim(path)
    arr = find_array(ds, ["sm"], path)
    layout = lonlat_layout(arr, ds, path)
    sm = layout.orient(unpack(arr, read_slice(arr, layout, {}, path)))
    if day is None:
        from .base import time_values

        times = time_values(find_array(ds, ["time"], path), path)
        day = times[0].date() if times else None
    if day is None:
        raise ProductError(f"{path}: no date in the file name or its time variable")
    units = (arr.GetUnit() or "").replace(" ", "")
    if units and units not in ("m3m-3", "m3/m3", "m^3m^-3", "m3.m-3"):
        raise ProductError(f"{path}: sm has units {units!r}, expected m3 m-3 (is it an ESA CCI SM file?)")
    info: dict = {}
    if flag_zero_only:
        try:
            farr = find_array(ds, ["flag"], path)
        except ProductError:
            farr = None
        if farr is not None:
            flag = layout.orient(read_slice(farr, layout, {}, path))
            rej = np.isfinite(sm) & (flag != 0)
            sm[rej] = np.nan
            info["rejected_by_flag"] = int(rej.sum())
    if max_uncertainty is not None:
        uarr = find_array(ds, ["sm_uncertainty"], path)
        unc = layout.orient(unpack(uarr, read_slice(uarr, layout, {}, path)))
        with np.errstate(invalid="ignore"):
            rej = np.isfinite(sm) & ~(unc <= max_uncertainty)
        sm[rej] = np.nan
        info["rejected_by_uncertainty"] = int(rej.sum())
    check_units(sm, "m3/m3", str(path), "sm")
    return ProductDay(day, sm.astype(np.float32), layout.grid, "sm", "m3/m3", str(path), info=info)
