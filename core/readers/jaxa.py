"""JAXA AMSR-E / AMSR2 level-3 soil moisture content (SMC), HDF5 (G-Portal).

File names ``GW1AM2_YYYYMMDD_01D_EQM{A|D}_L3SGSMC{L|H}...h5`` (``01D`` daily, ``EQM``
equirectangular, ``A`` ascending 13:30 / ``D`` descending 01:30, ``L`` 0.25 degree / ``H``
0.1 degree). Dataset ``Geophysical Data``: int16, shape (lines, pixels[, 1]), 720 x 1440
(0.25 degree) or 1800 x 3600 (0.1 degree), line 0 at 90 N, pixel 0 at 180 W
(equirectangular, global); attribute ``SCALE FACTOR`` (0.1: volumetric percent per
count); negative counts (-32768 missing, -32767 error) are no data (JAXA AMSR2 level-3
product format description). Returned in m3/m3.

No JAXA L3 sample is shipped with this project: the reader is tested on a file written in
the documented layout.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..grid import Grid, to_wkt
from ..series import date_from_name
from .base import ProductDay, ProductError, check_units
from .hdf5 import read_dataset

_PASS_RX = re.compile(r"_EQM([AD])_", re.IGNORECASE)


def read_jaxa_l3(path: str | Path) -> ProductDay:
    """Soil moisture (m3/m3) of one JAXA AMSR-E/AMSR2 L3 SMC file on its global grid."""
    raw, attrs = read_dataset(path, "/Geophysical Data")
    if raw.ndim == 3:
        raw = raw[:, :, 0]
    if raw.ndim != 2 or raw.shape[1] != 2 * raw.shape[0]:
        raise ProductError(f"{path}: Geophysical Data has shape {raw.shape}, not a global equirectangular image")
    scale = attrs.get("SCALE FACTOR", attrs.get("SCALE_FACTOR"))
    if scale is None:
        raise ProductError(f"{path}: Geophysical Data has no SCALE FACTOR attribute (is it a JAXA L3 SMC file?)")
    sm = raw.astype(np.float32) * np.float32(scale) / np.float32(100.0)
    sm[raw < 0] = np.nan
    res = 180.0 / raw.shape[0]
    grid = Grid(to_wkt(4326), (-180.0, res, 0.0, 90.0, 0.0, -res), raw.shape[1], raw.shape[0])
    day = date_from_name(Path(str(path)).name)
    if day is None:
        raise ProductError(f"{path}: no date in the file name")
    m = _PASS_RX.search(Path(str(path)).name)
    check_units(sm, "m3/m3", str(path), "Geophysical Data")
    return ProductDay(day, sm, grid, "Geophysical Data", "m3/m3", str(path),
                      info={"pass": m.group(1).upper() if m else "", "resolution_deg": res})
