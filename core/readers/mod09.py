"""MODIS MOD09GA/MYD09GA (daily) and MOD09A1/MYD09A1 (8-day) 500 m surface reflectance,
turned into NDVI and broadband (shortwave) albedo.

Fields (MOD09 C6.1 user guide): ``sur_refl_b01`` .. ``sur_refl_b07`` (MOD09GA:
``sur_refl_b01_1`` ...), int16, reflectance = count x 0.0001, valid -100..16000, fill
-28672. Cloud state: MOD09A1 ``sur_refl_state_500m``, MOD09GA ``state_1km_1`` (1 km,
repeated 2 x 2 onto the 500 m grid): bits 0-1 cloud state (00 clear, 01 cloudy, 10
mixed, 11 not set, assumed clear), bit 2 cloud shadow; only clear, unshadowed pixels are
kept.

- NDVI = (b2 - b1) / (b2 + b1) (NIR band 2, red band 1).
- Shortwave albedo from Liang (2001), "Narrowband to broadband conversions of land
  surface albedo I: Algorithms", Remote Sensing of Environment 76, 213-238, MODIS:
  ``a = 0.160 b1 + 0.291 b2 + 0.243 b3 + 0.116 b4 + 0.112 b5 + 0.081 b7 - 0.0015``.
  Applied to directional reflectance it assumes a Lambertian surface: prefer MCD43A3
  where it is available.

No MOD09 sample is shipped with this project: the reader is tested on a file written in
the documented layout (field names, types, scale, fill, state bits, sinusoidal grid).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import ProductDay, ProductError, check_units
from .modis_common import read_field
from .modis_tiles import modis_date, platform_of, product_of

REFL_SCALE = 1e-4
REFL_FILL = -28672
#: Liang (2001) MODIS shortwave coefficients for bands 1, 2, 3, 4, 5, 7 and the intercept
LIANG_2001 = {1: 0.160, 2: 0.291, 3: 0.243, 4: 0.116, 5: 0.112, 7: 0.081}
LIANG_2001_INTERCEPT = -0.0015
OUTPUTS = ("ndvi", "albedo")


def _band(path, n: int) -> tuple[np.ndarray, object]:
    for name in (f"sur_refl_b{n:02d}", f"sur_refl_b{n:02d}_1"):
        try:
            raw, grid = read_field(path, name, "MOD09GA/MOD09A1")
        except ProductError:
            continue
        ok = (raw != REFL_FILL) & (raw >= -100) & (raw <= 16000)
        return np.where(ok, raw.astype(np.float32) * np.float32(REFL_SCALE), np.nan).astype(np.float32), grid
    raise ProductError(f"{path}: has no sur_refl_b{n:02d} field (is it a MOD09GA/MOD09A1 file?)")


def clear_mask(state: np.ndarray) -> np.ndarray:
    """Clear (cloud state 00 or 11) and not cloud-shadowed, from MOD09 state bits."""
    s = state.astype(np.uint16)
    cloud = s & 0b11
    return ((cloud == 0) | (cloud == 3)) & ((s >> 2) & 1 == 0)


def _state(path, shape: tuple[int, int]) -> np.ndarray | None:
    for name in ("sur_refl_state_500m", "state_1km_1", "state_1km"):
        try:
            raw, _ = read_field(path, name, "MOD09GA/MOD09A1")
        except ProductError:
            continue
        if raw.shape != shape:
            fy, fx = shape[0] // raw.shape[0], shape[1] // raw.shape[1]
            if fy * raw.shape[0] != shape[0] or fx * raw.shape[1] != shape[1]:
                raise ProductError(f"{path}: {name} {raw.shape} does not fit the reflectance grid {shape}")
            raw = np.repeat(np.repeat(raw, fy, axis=0), fx, axis=1)
        return clear_mask(raw)
    return None


def read_mod09(path: str | Path, output: str = "ndvi", cloud_mask: bool = True) -> ProductDay:
    """NDVI or Liang (2001) shortwave albedo (unitless) of one MOD09GA/MOD09A1 tile."""
    if output not in OUTPUTS:
        raise ProductError(f"unknown MOD09 output {output!r}; choose one of {', '.join(OUTPUTS)}")
    prod = product_of(path)
    if prod and not prod.startswith(("MOD09", "MYD09")):
        raise ProductError(f"{path}: is a {prod} file, not MOD09GA/MOD09A1")
    b1, grid = _band(path, 1)
    b2, _ = _band(path, 2)
    if output == "ndvi":
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (b2 - b1) / (b2 + b1)
        out[~np.isfinite(out)] = np.nan
        units, var = "1", "NDVI"
    else:
        out = np.float32(LIANG_2001_INTERCEPT) + LIANG_2001[1] * b1 + LIANG_2001[2] * b2
        for n in (3, 4, 5, 7):
            out = out + np.float32(LIANG_2001[n]) * _band(path, n)[0]
        units, var = "albedo", "albedo_shortwave"
    out = out.astype(np.float32)
    if cloud_mask:
        clear = _state(path, out.shape)
        if clear is not None:
            out[~clear] = np.nan
    day = modis_date(path)
    if day is None:
        raise ProductError(f"{path}: no AYYYYDDD date in the file name")
    if output == "ndvi":
        with np.errstate(invalid="ignore"):
            out[(out < -1) | (out > 1)] = np.nan
    check_units(out, units, str(path), var)
    return ProductDay(day, out, grid, var, "1", str(path), platform=platform_of(path))
