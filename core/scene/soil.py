"""Soil of the sample scene: sand fraction and hydraulic parameters (simple pedotransfer),
and a topographic wetness proxy from elevation relative to a ~5 km smoothed surface.

Sand fraction is a fractal field around the place's mean, coarser on steep slopes (thin
stony soils) and finer in hollows (deposition). The pedotransfer keeps
``residual < wilting point < field capacity < porosity`` for any sand fraction:

    porosity  = 0.50 - 0.14 sand        field capacity = 0.40 - 0.29 sand
    wilting   = 0.20 - 0.16 sand        residual       = 0.02 + 0.03 (1 - sand)

The dry-soil albedo is brighter for sandy soils and varies with soil colour (mineralogy,
organic matter: a fractal field of sd 0.035). Hollows drain more slowly (lateral inflow, shallow water table): the gravity-drainage
rates are scaled down by ``1 - 0.7 hollow``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .noise import fbm_lattice, octaves_for, stable_seed

#: layer depths (mm): the 0-5 cm surface layer (truth SSM) and the 5-50 cm root zone
SURFACE_MM = 50.0
ROOT_MM = 450.0


@dataclass
class SoilParams:
    """Per-pixel soil parameters of a block (float32, same shape)."""

    sand: np.ndarray
    porosity: np.ndarray
    field_capacity: np.ndarray
    wilting: np.ndarray
    residual: np.ndarray
    #: share of the water above field capacity drained per day, surface and root zone
    drain_surface: np.ndarray
    drain_root: np.ndarray
    #: share of net rain lost to fast runoff on slopes at high intensity
    runoff_coef: np.ndarray
    hollow: np.ndarray
    #: albedo of the dry bare soil: brighter when sandy, plus a soil-colour field
    dry_albedo: np.ndarray


def hollowness(relative_m: np.ndarray, scale_m: float = 60.0) -> np.ndarray:
    """0 on ridges, 0.5 on plains, 1 in valley bottoms, from elevation relative to the
    smoothed surface (m)."""
    return (0.5 * (1.0 - np.tanh(relative_m / scale_m))).astype(np.float32)


def pedotransfer(sand: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Porosity, field capacity, wilting point, residual water content (m3/m3) from sand."""
    s = np.clip(sand, 0.0, 1.0).astype(np.float32)
    return (
        (0.50 - 0.14 * s).astype(np.float32),
        (0.40 - 0.29 * s).astype(np.float32),
        (0.20 - 0.16 * s).astype(np.float32),
        (0.02 + 0.03 * (1.0 - s)).astype(np.float32),
    )


def soil_block(sand_mean: float, seed: int, x0: float, y0: float, nrows: int, ncols: int,
               slope: np.ndarray, relative_m: np.ndarray, wetness: np.ndarray | float = 0.0) -> SoilParams:
    """Soil parameters of a block (pixel (0, 0) centre at ``(x0, y0)`` km, 1 km pixels);
    ``wetness`` is the log of the long-term rain factor (drier climates: sandier soils)."""
    tex = fbm_lattice(x0, y0, 1.0, nrows, ncols, 40.0, octaves_for(40.0, 4.0), 0.55, stable_seed(seed, "sand"), 2.0)
    hollow = hollowness(relative_m)
    sand = (sand_mean + 0.13 * tex + 0.25 * np.tanh(slope / 0.4) - 0.12 * (hollow - 0.5)
            - 0.12 * np.asarray(wetness, dtype=np.float32))
    sand = np.clip(sand, 0.05, 0.95).astype(np.float32)
    por, fc, wp, res = pedotransfer(sand)
    drain_s = (0.35 + 0.55 * sand) * (1.0 - 0.6 * hollow)
    drain_r = (0.02 + 0.12 * sand) * (1.0 - 0.7 * hollow)
    runoff = 0.6 * np.tanh(slope / 0.5) * (1.0 - 0.5 * sand)
    colour = fbm_lattice(x0, y0, 1.0, nrows, ncols, 30.0, octaves_for(30.0, 4.0), 0.55, stable_seed(seed, "soil-colour"),
                         2.0)
    dry = np.clip(0.17 + 0.16 * sand + 0.035 * colour, 0.10, 0.40)
    return SoilParams(sand, por, fc, wp, res, drain_s.astype(np.float32), drain_r.astype(np.float32),
                      runoff.astype(np.float32), hollow, dry.astype(np.float32))
