"""SMAP L3 radiometer soil moisture: SPL3SMP (36 km) and SPL3SMP_E (enhanced, 9 km), HDF5.

File names ``SMAP_L3_SM_P_YYYYMMDD_Rxxxxx_nnn.h5`` / ``SMAP_L3_SM_P_E_YYYYMMDD_...h5``.
Datasets (SPL3SMP product specification, NSIDC): ``/Soil_Moisture_Retrieval_Data_AM/
soil_moisture`` (06:00 descending) and ``/Soil_Moisture_Retrieval_Data_PM/
soil_moisture_pm`` (18:00 ascending), float32 m3/m3, fill -9999, shape 406 x 964
(36 km) or 1624 x 3856 (9 km) on the global EASE-Grid 2.0 (EPSG:6933), row 0 north;
``retrieval_qual_flag`` (``_pm``) uint16, bit 0 = 0 means *recommended quality*.

No SMAP L3 image is shipped with this project (only time series): the reader is tested on
a file written in the documented layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..grid import ease2_global
from ..series import date_from_name
from .base import ProductDay, ProductError, check_units
from .hdf5 import read_dataset

PASSES = ("AM", "PM")
_SHAPES = {(406, 964): 36, (1624, 3856): 9}


def read_smap_l3(path: str | Path, overpass: str = "AM", recommended_only: bool = True) -> ProductDay:
    """Soil moisture (m3/m3) of one SPL3SMP / SPL3SMP_E file, ``overpass`` AM or PM."""
    overpass = overpass.upper()
    if overpass not in PASSES:
        raise ProductError(f"SMAP overpass {overpass!r}: choose AM or PM")
    sfx = "" if overpass == "AM" else "_pm"
    group = f"/Soil_Moisture_Retrieval_Data_{overpass}"
    raw, attrs = read_dataset(path, f"{group}/soil_moisture{sfx}")
    shape = tuple(raw.shape)
    if shape not in _SHAPES:
        raise ProductError(f"{path}: soil_moisture{sfx} has shape {shape}, not a 36 or 9 km EASE-Grid 2.0 image")
    fill = float(attrs.get("_FillValue", -9999.0))
    sm = raw.astype(np.float32)
    sm[(raw == fill) | (raw < 0)] = np.nan
    info = {"overpass": overpass, "cell_km": _SHAPES[shape]}
    if recommended_only:
        try:
            q, _ = read_dataset(path, f"{group}/retrieval_qual_flag{sfx}")
        except ProductError:
            q = None
        if q is not None:
            rej = np.isfinite(sm) & ((q.astype(np.uint16) & 1) != 0)
            sm[rej] = np.nan
            info["rejected_by_quality"] = int(rej.sum())
    day = date_from_name(Path(str(path)).name)
    if day is None:
        raise ProductError(f"{path}: no date in the file name")
    check_units(sm, "m3/m3", str(path), f"soil_moisture{sfx}")
    return ProductDay(day, sm, ease2_global(_SHAPES[shape]), f"soil_moisture{sfx}", "m3/m3", str(path), info=info)
