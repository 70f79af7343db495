"""MODIS MCD43A3 daily 500 m albedo (Terra+Aqua BRDF/albedo, 16-day window, daily).

Fields (MCD43 C6.1 user guide): ``Albedo_WSA_shortwave`` (white-sky, bihemispherical)
and ``Albedo_BSA_shortwave`` (black-sky, directional-hemispherical at local solar noon),
int16, albedo = count x 0.001, valid 0..32766, fill 32767;
``BRDF_Albedo_Band_Mandatory_Quality_shortwave``: 0 full BRDF inversion, 1 magnitude
inversion, 255 fill. The blue-sky albedo is the blend
``(1 - d) * BSA + d * WSA`` with ``d`` the diffuse share of the irradiance (Lewis and
Barnsley 1994; Lucht, Schaaf and Strahler 2000, IEEE TGRS 38, 977-998).

No MCD43A3 sample is shipped with this project: the reader is tested on a file written in
the documented layout (field names, types, scale and fill, sinusoidal tile grid); it finds
the fields by name in the HDF4-EOS files LP DAAC distributes and in netCDF/HDF5
re-packagings with the same field names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import ProductDay, ProductError, check_units
from .modis_common import read_field
from .modis_tiles import modis_date, product_of

ALBEDO_SCALE = 1e-3
ALBEDO_FILL = 32767
KINDS = ("white", "black", "blue")


def read_mcd43a3(path: str | Path, kind: str = "blue", diffuse_fraction: float = 0.2,
                 full_inversion_only: bool = False) -> ProductDay:
    """Shortwave albedo (unitless) of one MCD43A3 tile.

    ``kind``: ``white`` (WSA), ``black`` (BSA) or ``blue`` (the blend with
    ``diffuse_fraction`` 0..1). ``full_inversion_only`` rejects magnitude inversions.
    """
    if kind not in KINDS:
        raise ProductError(f"unknown albedo kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not 0.0 <= diffuse_fraction <= 1.0:
        raise ProductError(f"diffuse fraction {diffuse_fraction} outside 0..1")
    prod = product_of(path)
    if prod and prod != "MCD43A3":
        raise ProductError(f"{path}: is a {prod} file, not MCD43A3")
    wsa, grid = read_field(path, "Albedo_WSA_shortwave", "MCD43A3")
    bsa, _ = read_field(path, "Albedo_BSA_shortwave", "MCD43A3")
    try:
        qa, _ = read_field(path, "BRDF_Albedo_Band_Mandatory_Quality_shortwave", "MCD43A3")
    except ProductError:
        qa = None

    def scaled(raw):
        ok = (raw >= 0) & (raw <= 32766)
        return np.where(ok, raw.astype(np.float32) * np.float32(ALBEDO_SCALE), np.nan).astype(np.float32)

    w, b = scaled(wsa), scaled(bsa)
    alb = w if kind == "white" else b if kind == "black" else (1 - diffuse_fraction) * b + diffuse_fraction * w
    alb = alb.astype(np.float32)
    if qa is not None:
        keep = qa == 0 if full_inversion_only else (qa == 0) | (qa == 1)
        alb[~keep] = np.nan
    day = modis_date(path)
    if day is None:
        raise ProductError(f"{path}: no AYYYYDDD date in the file name")
    check_units(alb, "albedo", str(path), f"{kind}-sky albedo")
    return ProductDay(day, alb, grid, f"albedo_{kind}", "1", str(path), platform="combined",
                      info={"kind": kind, "diffuse_fraction": diffuse_fraction})
