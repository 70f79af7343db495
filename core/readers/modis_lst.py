"""MODIS MOD11A1 (Terra) / MYD11A1 (Aqua) daily 1 km LST, day or night, with QC choices.

``LST_Day_1km`` / ``LST_Night_1km``: uint16, K = count x 0.02, 0 = fill (valid counts
7500-65535). ``QC_Day`` / ``QC_Night`` bits (MOD11 C6.1 user guide, table 10): 1-0
mandatory QA (00 produced, good quality; 01 produced, other quality - check the other
bits; 10 not produced due to cloud; 11 not produced, other reasons), 3-2 data quality,
5-4 emissivity error, 7-6 LST error (00 <= 1 K, 01 <= 2 K, 10 <= 3 K, 11 > 3 K).
Overpass: Terra 10:30 (day) / 22:30 (night), Aqua 13:30 / 01:30 local solar time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import ProductDay, ProductError, check_units
from .modis_common import read_field
from .modis_tiles import modis_date, platform_of, product_of

LST_SCALE = 0.02
#: QC choices: good only, or LST error at most 1, 2 or 3 K (mandatory QA 00 or 01)
QC_CHOICES = ("good", "error_1k", "error_2k", "error_3k")


def qc_mask(qc: np.ndarray, choice: str) -> np.ndarray:
    """Pixels accepted by a QC choice (see :data:`QC_CHOICES`)."""
    qc = qc.astype(np.uint8)
    mandatory = qc & 0b11
    if choice == "good":
        return mandatory == 0
    try:
        limit = {"error_1k": 0, "error_2k": 1, "error_3k": 2}[choice]
    except KeyError:
        raise ProductError(f"unknown LST QC choice {choice!r}; choose one of {', '.join(QC_CHOICES)}") from None
    return (mandatory == 0) | ((mandatory == 1) & (((qc >> 6) & 0b11) <= limit))


def read_mod11(path: str | Path, night: bool = False, qc: str = "error_2k") -> ProductDay:
    """Day (or night) LST in K of one MOD11A1/MYD11A1 tile, NaN where fill or rejected."""
    prod = product_of(path)
    if prod and prod not in ("MOD11A1", "MYD11A1"):
        raise ProductError(f"{path}: is a {prod} file, not MOD11A1/MYD11A1")
    which = "Night" if night else "Day"
    raw, grid = read_field(path, f"LST_{which}_1km", "MOD11A1/MYD11A1")
    qcv, _ = read_field(path, f"QC_{which}", "MOD11A1/MYD11A1")
    produced = raw > 0
    keep = produced & qc_mask(qcv, qc)
    lst = np.where(keep, raw.astype(np.float32) * np.float32(LST_SCALE), np.nan).astype(np.float32)
    day = modis_date(path)
    if day is None:
        raise ProductError(f"{path}: no AYYYYDDD date in the file name")
    var = f"LST_{which}_1km"
    check_units(lst, "K", str(path), var)
    info = {"produced": int(produced.sum()), "kept": int(keep.sum()), "rejected_by_qc": int((produced & ~keep).sum())}
    return ProductDay(day, lst, grid, var, "K", str(path), platform=platform_of(path), info=info)


def read_mod11_difference(path: str | Path, qc: str = "error_2k") -> ProductDay:
    """Day minus night LST (K) of one MOD11A1/MYD11A1 tile (both from the same file, same
    QC choice); NaN where either is missing. The predictor of the day-night difference."""
    d = read_mod11(path, night=False, qc=qc)
    n = read_mod11(path, night=True, qc=qc)
    diff = (d.data - n.data).astype(np.float32)
    check_units(diff, "K_difference", str(path), "LST_Day_1km - LST_Night_1km")
    return ProductDay(d.date, diff, d.grid, "LST_Day_1km - LST_Night_1km", "K", str(path), platform=d.platform,
                      info={"kept": int(np.isfinite(diff).sum())})
