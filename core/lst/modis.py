"""Reading MODIS MOD11A1/MYD11A1 daily LST (HDF4-EOS through GDAL) with its QC honoured.

``LST_Day_1km`` is uint16 with scale 0.02 K and fill 0. ``QC_Day`` bits (MOD11 user
guide, collection 6/6.1): 1-0 mandatory QA (00 good, 01 produced - check the other bits,
10 not produced because of cloud, 11 not produced for other reasons), 3-2 data quality
(00 good, 01 other, 1x TBD), 5-4 emissivity error (<= 0.01, 0.02, 0.04, > 0.04), 7-6 LST
error (<= 1 K, 2 K, 3 K, > 3 K).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..errors import RasterReadError
from ..grid import Grid, open_raster, warp_to_grid

gdal.UseExceptions()

#: LST_Day_1km / LST_Night_1km scale factor (K per count)
LST_SCALE = 0.02


@dataclass(frozen=True)
class Mod11Day:
    """One MOD11A1 day: LST (K, float32, NaN where not kept), the raw QC and the grid."""

    lst: np.ndarray
    qc: np.ndarray
    grid: Grid
    produced: np.ndarray  # bool: LST was produced (not fill)

    @property
    def valid_fraction(self) -> float:
        return float(np.isfinite(self.lst).mean())


def is_mod11(path: str | Path) -> bool:
    """True for a MOD11A1/MYD11A1 HDF file name."""
    name = Path(str(path)).name.upper()
    return name.startswith(("MOD11A1", "MYD11A1")) and name.endswith(".HDF")


def subdataset(path: str | Path, field: str) -> str:
    """The GDAL name of the ``field`` sub-dataset (e.g. ``LST_Day_1km``) of an HDF-EOS file."""
    ds = gdal.Open(str(path)) if Path(str(path)).exists() else None
    if ds is None:
        raise RasterReadError(f"{path}: no such file")
    for name, _ in ds.GetSubDatasets():
        if name.split(":")[-1] == field:
            return name
    raise RasterReadError(f"{path}: has no {field} field (is it a MOD11A1/MYD11A1 file?)")


def qc_keep(qc: np.ndarray, max_lst_error_k: int = 2, max_emis_error: float = 0.04) -> np.ndarray:
    """Pixels whose QC accepts the LST: mandatory QA good (00), or produced (01) with an
    LST error of at most ``max_lst_error_k`` (1, 2 or 3 K) and an emissivity error of at
    most ``max_emis_error`` (0.01, 0.02 or 0.04)."""
    qc = qc.astype(np.uint8)
    mandatory = qc & 0b11
    emis_code = (qc >> 4) & 0b11
    err_code = (qc >> 6) & 0b11
    err_limit = {1: 0, 2: 1, 3: 2}.get(int(max_lst_error_k), 3)
    emis_limit = {0.01: 0, 0.02: 1, 0.04: 2}.get(float(max_emis_error), 3)
    return (mandatory == 0) | ((mandatory == 1) & (err_code <= err_limit) & (emis_code <= emis_limit))


def read_mod11a1(
    path: str | Path,
    day: bool = True,
    max_lst_error_k: int = 2,
    max_emis_error: float = 0.04,
    grid: Grid | None = None,
) -> Mod11Day:
    """Day (or night) LST of a MOD11A1 file in K with NaN where not produced or rejected by QC.

    With ``grid`` the kept LST is warped onto it (nearest neighbour: observed values are
    not blended with gaps).
    """
    which = "Day" if day else "Night"
    lst_name = subdataset(path, f"LST_{which}_1km")
    qc_name = subdataset(path, f"QC_{which}")
    ds = open_raster(lst_name)
    native = Grid.from_raster(ds)
    raw = ds.GetRasterBand(1).ReadAsArray()
    ds = None
    qds = open_raster(qc_name)  # keep the dataset alive while its band is read
    qc = qds.GetRasterBand(1).ReadAsArray()
    qds = None
    produced = raw > 0
    keep = produced & qc_keep(qc, max_lst_error_k, max_emis_error)
    lst = np.where(keep, raw.astype(np.float32) * np.float32(LST_SCALE), np.nan).astype(np.float32)
    if grid is not None and grid != native:
        mem = native.create_mem(gdal.GDT_Float32)
        mem.GetRasterBand(1).SetNoDataValue(float("nan"))
        mem.GetRasterBand(1).WriteArray(lst)
        lst = warp_to_grid(mem, grid, resampling="nearest")
        qmem = native.create_mem(gdal.GDT_Float32)
        qmem.GetRasterBand(1).WriteArray(qc.astype(np.float32))
        qc_w = np.nan_to_num(warp_to_grid(qmem, grid, resampling="nearest"), nan=255).astype(np.uint8)
        return Mod11Day(lst, qc_w, grid, np.isfinite(lst))
    return Mod11Day(lst, qc, native, produced)
