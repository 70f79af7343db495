"""Terrain of a sample scene: elevation (m) and lakes on the padded 1 km grid.

``tibet`` uses the committed SRTM30 subset (``data/srtm30_tibet.tif``), warped bilinearly;
lakes are its flat connected areas. Pixels outside the subset take the nearest valid
elevation plus fractal detail, blending into the place's fractal terrain beyond
:data:`FAR_FILL_KM` from the subset. Other places use fractal terrain (multi-octave gradient
noise with a place-specific mean, relief and trend) with a few lakes in closed basins.
Per-block derivatives (slopes, elevation relative to a ~5 km smoothed surface) come from
:func:`block_terrain` with a halo, so blocks give the same numbers as the whole grid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..grid import Grid, array_to_mem, open_raster, warp_to_grid
from .noise import fbm_grid, fbm_lattice, octaves_for, stable_seed
from .places import Place

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
#: lakes in the real DEM: connected pixels with 3x3 relief <= this (m) ...
LAKE_RELIEF_M = 1.0
#: ... covering at least this many native (30 arc-second, ~0.75 km2) pixels (~20 km2)
LAKE_MIN_PIXELS = 27
#: beyond this distance (km) from the real DEM, filled terrain blends into fractal terrain
FAR_FILL_KM = 60.0
#: smoothing of the relative-elevation (wetness) surface, km
RELATIVE_SIGMA_KM = 5.0


@dataclass
class Terrain:
    """Elevation (float32, m) and water (bool) on the padded grid, and how they were made."""

    elevation: np.ndarray
    water: np.ndarray
    source: str
    filled_fraction: float = 0.0


def lakes_in_dem(dem: np.ndarray, relief_m: float = LAKE_RELIEF_M, min_pixels: int = LAKE_MIN_PIXELS) -> np.ndarray:
    """Flat connected areas of a DEM (bool): 3x3 relief <= ``relief_m`` over at least
    ``min_pixels`` pixels, grown by one pixel into neighbours at the lake level (+-1 m)."""
    a = np.asarray(dem, dtype=np.float64)
    relief = ndi.maximum_filter(a, 3) - ndi.minimum_filter(a, 3)
    labels, n = ndi.label(relief <= relief_m)
    if n == 0:
        return np.zeros(a.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = np.flatnonzero(sizes >= min_pixels)
    if keep.size == 0:
        return np.zeros(a.shape, dtype=bool)
    level = np.zeros(n + 1)
    level[keep] = ndi.median(a, labels, keep)
    lut = np.zeros(n + 1, dtype=bool)
    lut[keep] = True
    lake = lut[labels]
    # grow one pixel into neighbours at the lake level (the 3x3 test erodes the shore)
    grown_lab = ndi.grey_dilation(np.where(lake, labels, 0), size=(3, 3))
    near_level = np.abs(a - level[grown_lab]) <= relief_m
    return lake | ((grown_lab > 0) & near_level)


def build_terrain(place: Place, grid: Grid, x0_km: float, y0_km: float, seed: int, block_rows: int = 512) -> Terrain:
    """Elevation and lakes of ``place`` on ``grid`` (padded scene grid, 1 km, km coordinates
    of pixel (0, 0) centre ``(x0_km, y0_km)`` relative to the scene centre)."""
    if place.dem_file:
        return _real_terrain(place, grid, x0_km, y0_km, seed)
    return _fractal_terrain(place, grid, x0_km, y0_km, seed, block_rows)


def _real_terrain(place: Place, grid: Grid, x0_km: float, y0_km: float, seed: int) -> Terrain:
    path = DATA_DIR / str(place.dem_file)
    ds = open_raster(path)
    native = ds.GetRasterBand(1).ReadAsArray().astype(np.float32)
    native_grid = Grid.from_raster(ds)
    elev = warp_to_grid(ds, grid, resampling="bilinear")
    lakes = lakes_in_dem(native).astype(np.float32)
    lake_share = warp_to_grid(array_to_mem(lakes, native_grid), grid, resampling="average")
    ds = None
    missing = ~np.isfinite(elev)
    water = np.nan_to_num(lake_share, nan=0.0) > 0.5
    filled = float(missing.mean())
    if missing.all():
        log.info("The scene lies outside the SRTM subset of %s: fractal terrain only", place.name)
        return _fractal_terrain(place, grid, x0_km, y0_km, seed, 512)
    if missing.any():
        dist, (ri, ci) = ndi.distance_transform_edt(missing, return_indices=True)
        near = elev[ri, ci]
        del ri, ci
        detail = fbm_grid(x0_km, y0_km, 1.0, grid.height, grid.width, 40.0, octaves_for(40.0), 0.55,
                          stable_seed(seed, "fill-detail"))
        ramp = np.clip(dist / 25.0, 0.0, 1.0).astype(np.float32)
        fill = near + 0.6 * place.elev_relief_m * ramp * detail
        if dist.max() > FAR_FILL_KM:  # far from the subset: blend into the place's fractal terrain
            far = _fractal_terrain(place, grid, x0_km, y0_km, seed, 512).elevation
            w = np.clip((dist - FAR_FILL_KM) / 100.0, 0.0, 1.0).astype(np.float32)
            fill = (1.0 - w) * fill + w * far
        elev = np.where(missing, fill, elev).astype(np.float32)
        log.info("%.1f %% of the padded scene lies outside the SRTM subset: filled with the nearest elevation "
                 "plus fractal detail", 100 * filled)
    return Terrain(elev.astype(np.float32), water & ~missing, f"SRTM30 subset {place.dem_file}", filled)


def _fractal_terrain(place: Place, grid: Grid, x0_km: float, y0_km: float, seed: int, block_rows: int) -> Terrain:
    elev = np.empty(grid.shape, dtype=np.float32)
    scale = place.elev_scale_km
    for r0 in range(0, grid.height, block_rows):
        nr = min(block_rows, grid.height - r0)
        y0 = y0_km - r0
        xs = x0_km + np.arange(grid.width, dtype=np.float32)
        ys = y0 - np.arange(nr, dtype=np.float32)[:, None]
        base = place.elev_mean_m + place.elev_trend_east_m_per_km * xs[None, :] + place.elev_trend_north_m_per_km * ys
        # relief varies between plains and mountain belts
        belt = fbm_lattice(x0_km, y0, 1.0, nr, grid.width, 2.5 * scale, 3, 0.5, stable_seed(seed, "belts"), 8.0)
        amp = place.elev_relief_m * (0.3 + 1.4 / (1.0 + np.exp(-2.0 * belt)))
        z = fbm_grid(x0_km, y0, 1.0, nr, grid.width, scale, octaves_for(scale), 0.52, stable_seed(seed, "relief"))
        elev[r0 : r0 + nr] = np.maximum(base + amp * z, 2.0)
    water = np.zeros(grid.shape, dtype=bool)
    if place.lake_fraction > 0:
        water = _basin_lakes(elev, place.lake_fraction)
    return Terrain(elev, water, "fractal")


def _basin_lakes(elev: np.ndarray, fraction: float, sigma_km: float = 10.0, min_pixels: int = 12) -> np.ndarray:
    """Lakes in the deepest closed lows (elevation below a smoothed surface), about
    ``fraction`` of the area; each lake is flattened to its shore level (in place)."""
    depth = ndi.gaussian_filter(elev, sigma_km, mode="nearest")
    np.subtract(depth, elev, out=depth)
    sample = depth[::3, ::3]
    thr = max(float(np.quantile(sample, 1.0 - fraction)), 1.0)
    cand = depth > thr
    del depth
    labels, n = ndi.label(cand)
    if n == 0:
        return cand
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = sizes >= min_pixels
    keep[0] = False
    water = keep[labels]
    idx = np.flatnonzero(keep)
    if idx.size:
        level = np.zeros(n + 1, dtype=np.float32)
        level[idx] = ndi.maximum(elev, labels, idx)
        elev[water] = level[labels[water]]
    return water


@dataclass
class BlockTerrain:
    """Terrain derivatives of a row block: slopes (m/m, x east, y north), smoothed slopes
    (for orographic rain), and elevation relative to the smoothed surface (m)."""

    dzdx: np.ndarray
    dzdy: np.ndarray
    dzdx_smooth: np.ndarray
    dzdy_smooth: np.ndarray
    relative: np.ndarray


def block_terrain(elev: np.ndarray, r0: int, nr: int, res_m: float = 1000.0,
                  sigma_km: float = RELATIVE_SIGMA_KM) -> BlockTerrain:
    """Derivatives of rows ``r0:r0+nr`` of ``elev``, computed with enough halo rows that
    the result equals that of the whole array."""
    sigma = sigma_km * 1000.0 / res_m
    halo = int(4.0 * sigma + 0.5) + 2
    a0 = max(0, r0 - halo)
    a1 = min(elev.shape[0], r0 + nr + halo)
    sub = np.asarray(elev[a0:a1], dtype=np.float32)
    smooth = ndi.gaussian_filter(sub, sigma, mode="nearest")
    s = slice(r0 - a0, r0 - a0 + nr)
    gy, gx = np.gradient(sub, res_m)  # the padded grid always has many rows and columns
    sgy, sgx = np.gradient(smooth, res_m)
    return BlockTerrain(
        dzdx=gx[s].astype(np.float32),
        dzdy=(-gy[s]).astype(np.float32),
        dzdx_smooth=sgx[s].astype(np.float32),
        dzdy_smooth=(-sgy[s]).astype(np.float32),
        relative=(sub[s] - smooth[s]).astype(np.float32),
    )
