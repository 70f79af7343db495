"""Vegetation and albedo of the sample scene.

The climatological peak NDVI falls with elevation above the place's mean (colder, shorter
season), is higher in hollows (wetter) and lower on steep slopes (thin soil), with fractal
patchiness. Daily NDVI follows a phenology curve (green-up / senescence) and relaxes
slowly (time constant :data:`NDVI_TAU_DAYS`) towards the level the root-zone water allows.
Fractional vegetation cover ``fv = ((NDVI - NDVI_soil) / (NDVI_veg - NDVI_soil))**2``.
Albedo mixes vegetation (0.16) and soil, which is brighter when sandy (and with its
colour) and darker when wet.
"""

from __future__ import annotations

import math

import numpy as np

from .noise import fbm_lattice, octaves_for, stable_seed
from .places import Place

NDVI_SOIL = 0.08
NDVI_VEG = 0.86
NDVI_TAU_DAYS = 12.0
VEG_ALBEDO = 0.16
#: NDVI of open water (not written: water is nodata in the land products)
NDVI_WATER = -0.05


def ndvi_peak(place: Place, seed: int, x0: float, y0: float, nrows: int, ncols: int, elev: np.ndarray,
              slope: np.ndarray, hollow: np.ndarray, sand: np.ndarray, wetness: np.ndarray | float = 0.0) -> np.ndarray:
    """Climatological peak NDVI of a block (float32); ``wetness`` is the log of the
    long-term rain factor of large scenes (wetter: greener)."""
    patch = fbm_lattice(x0, y0, 1.0, nrows, ncols, 25.0, octaves_for(25.0, 4.0), 0.6, stable_seed(seed, "ndvi-patch"),
                        2.0)
    v = (place.ndvi_peak
         + place.ndvi_per_km * (elev - place.elev_mean_m) / 1000.0
         + 0.15 * (hollow - 0.5)
         - 0.12 * np.tanh(slope / 0.5)
         - 0.10 * (sand - place.sand_mean)
         + 0.07 * patch
         + 0.22 * np.asarray(wetness, dtype=np.float32))
    return np.clip(v, NDVI_SOIL + 0.03, 0.9).astype(np.float32)


def phenology(place: Place, day_of_year: int) -> float:
    """Seasonal greenness (0..1): logistic green-up and senescence."""
    up = 1.0 / (1.0 + math.exp(-(day_of_year - place.greenup_doy) / 10.0))
    down = 1.0 / (1.0 + math.exp((day_of_year - place.senescence_doy) / 12.0))
    return up * down


def ndvi_target(peak: np.ndarray, green: float, th2: np.ndarray, wp: np.ndarray, fc: np.ndarray) -> np.ndarray:
    """The NDVI the vegetation tends to today: seasonal greenness limited by root-zone water."""
    avail = np.clip((th2 - wp) / (0.8 * (fc - wp)), 0.0, 1.0)
    stress = np.sqrt(avail)
    return (NDVI_SOIL + (peak - NDVI_SOIL) * green * (0.35 + 0.65 * stress)).astype(np.float32)


def relax_ndvi(ndvi: np.ndarray, target: np.ndarray) -> None:
    """One day of slow relaxation of ``ndvi`` towards ``target`` (in place)."""
    ndvi += (target - ndvi) / NDVI_TAU_DAYS


def cover_fraction(ndvi: np.ndarray) -> np.ndarray:
    """Fractional vegetation cover from NDVI (0..1)."""
    x = np.clip((ndvi - NDVI_SOIL) / (NDVI_VEG - NDVI_SOIL), 0.0, 1.0)
    return (x * x).astype(np.float32)


def albedo(fv: np.ndarray, dry_albedo: np.ndarray, th1: np.ndarray, por: np.ndarray, res: np.ndarray) -> np.ndarray:
    """Broadband surface albedo (0..1): bare soil darkens by up to 35 % from dry to
    saturated (Lobell and Asner 2002 report up to ~50 %), mixed with vegetation by cover."""
    wet = np.clip((th1 - res) / (por - res), 0.0, 1.0)
    soil = dry_albedo * (1.0 - 0.35 * wet)
    return (fv * VEG_ALBEDO + (1.0 - fv) * soil).astype(np.float32)
