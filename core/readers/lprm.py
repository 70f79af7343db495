"""AMSR-E / AMSR2 LPRM level-3 daily soil moisture (NASA GES DISC, netCDF4 0.25 degree).

File names: ``LPRM-AMSR2_L3_{A|D}_SOILM3_V001_YYYYMMDDhhmmss.nc4`` (AMSR-E:
``LPRM-AMSR_E_L3_{A|D}_SOILM3_V002_YYYYMMDDhhmmss.nc``); ``A`` = ascending pass (13:30
local solar time, day), ``D`` = descending (01:30, night). Variables
``soil_moisture_c1`` (6.9 GHz), ``soil_moisture_c2`` (7.3 GHz, AMSR2 only),
``soil_moisture_x`` (10.7 GHz) and ``*_error`` are int16 in **percent** (volumetric,
scale 1), fill -32767; they are stored with dimensions **(Longitude, Latitude)**, latitude
descending from 89.875, longitude -179.875..179.875. Returned: m3/m3 (percent / 100),
north-up (lat, lon) on the 0.25 degree WGS84 grid.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np

from ..series import date_from_name
from .base import ProductDay, ProductError, check_units, find_array, lonlat_layout, open_multidim, read_slice, unpack

BANDS = ("c1", "c2", "x")
#: pass letter in the file name -> local overpass (for AMSR-E and AMSR2)
PASSES = {"A": "ascending (13:30, day)", "D": "descending (01:30, night)"}
_PASS_RX = re.compile(r"_L3_([AD])_", re.IGNORECASE)


def is_lprm(path: str | Path) -> bool:
    return Path(str(path)).name.upper().startswith("LPRM-AMSR")


def lprm_pass(path: str | Path) -> str:
    """``A`` or ``D`` from the file name ("" when it says neither)."""
    m = _PASS_RX.search(Path(str(path)).name)
    return m.group(1).upper() if m else ""


def read_lprm(path: str | Path, band: str = "c1", max_error: float | None = None) -> ProductDay:
    """Soil moisture of one LPRM L3 file in m3/m3 on its native grid.

    ``band``: ``c1``, ``c2`` or ``x``. ``max_error`` (m3/m3): pixels whose
    ``soil_moisture_<band>_error`` exceeds it are rejected (None keeps all).
    """
    band = band.lower()
    if band not in BANDS:
        raise ProductError(f"LPRM band {band!r}: choose one of {', '.join(BANDS)}")
    day = date_from_name(Path(str(path)).name)
    if day is None:
        raise ProductError(f"{path}: no date in the file name (LPRM names end in YYYYMMDDhhmmss)")
    ds = open_multidim(path)
    var = f"soil_moisture_{band}"
    arr = find_array(ds, [var], path)
    layout = lonlat_layout(arr, ds, path)
    sm = layout.orient(unpack(arr, read_slice(arr, layout, {}, path))) / np.float32(100.0)
    info = {"pass": lprm_pass(path), "band": band}
    units = (arr.GetUnit() or "").lower()
    if units and "percent" not in units and units != "%":
        raise ProductError(f"{path}: {var} has units {units!r}, expected percent (is it an LPRM L3 file?)")
    with np.errstate(invalid="ignore"):
        out = (sm < 0) | (sm > 1)
    sm[out] = np.nan
    info["out_of_range"] = int(out.sum())
    if max_error is not None:
        try:
            earr = find_array(ds, [f"{var}_error"], path)
        except ProductError:
            earr = None
        if earr is not None:
            err = layout.orient(unpack(earr, read_slice(earr, layout, {}, path))) / np.float32(100.0)
            with np.errstate(invalid="ignore"):
                rej = np.isfinite(sm) & ~(err <= max_error)
            sm[rej] = np.nan
            info["rejected_by_error"] = int(rej.sum())
    check_units(sm, "m3/m3", str(path), var)
    overpass = dt.time(13, 30) if info["pass"] == "A" else dt.time(1, 30) if info["pass"] == "D" else None
    info["overpass_local_solar_time"] = overpass.isoformat() if overpass else ""
    return ProductDay(day, sm.astype(np.float32), layout.grid, var, "m3/m3", str(path), info=info)
