"""Simulated observations of the sample scene's truth.

- Coarse SSM (36 km EASE-Grid 2.0): area mean of the true 0-5 cm SSM over the land
  pixels of each whole cell + a constant bias + Gaussian noise (both stated in
  scene.json); no retrieval where land covers less than ``coarse_min_land_fraction`` of
  the cell, nor where a swath seam crosses the cell that day.
- Swath seams: diagonal bands (tilted like a polar-orbit ground track) of 40-70 km width,
  repeating every :data:`SEAM_PERIOD_KM` along x and shifting by a quarter period per day
  (a 4-day repeat), so a given scene sees seams on some days only.
- Background LST (0.1 degree, like ERA5-Land skin temperature): the true all-weather LST
  (lakes included) averaged per cell, smoothed (Gaussian, NaN-aware), plus a constant bias,
  a slow large-scale bias field and Gaussian noise (stated).
- Clear-sky LST: the truth plus Gaussian noise (stated) where clear, nodata under cloud.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
from scipy import ndimage as ndi

from ..grid import Grid, same_crs, to_wkt, transform_points
from .noise import fbm_points, stable_seed
from .weather import rng_for

EASE2_WKT = to_wkt(6933)
SEAM_PERIOD_KM = 1200.0
SEAM_REPEAT_DAYS = 4
SEAM_TILT_DEG = 12.0
SEAM_WIDTH_KM = (40.0, 70.0)


def whole_cells(cells: Grid, padded: Grid, margin_m: float = 500.0) -> np.ndarray:
    """bool ``cells.shape``: cells lying entirely inside the padded simulation grid (all
    corners and edge midpoints inside, with a margin), whose means are whole-cell means."""
    h, w = cells.shape
    r, c = np.mgrid[0 : 2 * h + 1, 0 : 2 * w + 1] / 2.0
    x, y = cells.xy(r, c, offset=0.0)
    px, py = transform_points(x, y, cells.crs_wkt, padded.crs_wkt)
    xmin, ymin, xmax, ymax = padded.bounds
    inside = (np.isfinite(px) & np.isfinite(py) & (px >= xmin + margin_m) & (px <= xmax - margin_m)
              & (py >= ymin + margin_m) & (py <= ymax - margin_m))
    ok = np.ones((h, w), dtype=bool)
    for dr in range(3):
        for dc in range(3):
            ok &= inside[dr : dr + 2 * h : 2, dc : dc + 2 * w : 2]
    return ok


def seam_mask(coarse: Grid, day: dt.date, seed: int) -> np.ndarray:
    """Cells of ``coarse`` (any CRS; laid out in EASE-Grid 2.0 metres) that a swath seam crosses on ``day``."""
    period = SEAM_PERIOD_KM * 1000.0
    origin = rng_for(seed, "seam-origin").uniform(0.0, period)
    rng = rng_for(seed, "seam", day.toordinal())
    k = day.toordinal() % SEAM_REPEAT_DAYS
    phase = ((k * (SEAM_REPEAT_DAYS - 1)) % SEAM_REPEAT_DAYS) / SEAM_REPEAT_DAYS
    jitter = rng.uniform(-20e3, 20e3)
    width = rng.uniform(*SEAM_WIDTH_KM) * 1000.0
    x, y = coarse.centres()
    if not same_crs(coarse.crs_wkt, EASE2_WKT):  # seams are laid out in metres (EASE-Grid 2.0)
        x, y = transform_points(x, y, coarse.crs_wkt, EASE2_WKT)
    tilt = math.radians(SEAM_TILT_DEG)
    line_x = origin + phase * period + jitter + math.tan(tilt) * y
    d = np.mod(x - line_x + period / 2.0, period) - period / 2.0
    return np.abs(d) * math.cos(tilt) < width / 2.0


def coarse_ssm(sum_land: np.ndarray, n_land: np.ndarray, n_all: np.ndarray, whole: np.ndarray, seam: np.ndarray,
               bias: float, noise_sd: float, min_land_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Coarse SSM (float32, NaN = no retrieval) from per-cell sums over the true SSM."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sum_land / n_land
        land_frac = n_land / np.maximum(n_all, 1)
    noise = rng.normal(0.0, 1.0, mean.shape) * noise_sd
    valid = whole & (land_frac >= min_land_fraction) & (n_land > 0) & ~seam
    out = np.where(valid, np.maximum(mean + bias + noise, 0.0), np.nan)
    return out.astype(np.float32)


def background_bias_field(background: Grid, scene_wkt: str, seed: int, sd_k: float) -> np.ndarray:
    """Static large-scale bias field (K) of the background product on its grid."""
    x, y = background.centres()
    fx, fy = transform_points(x, y, background.crs_wkt, scene_wkt)
    f = fbm_points(np.nan_to_num(fx) / 1000.0, np.nan_to_num(fy) / 1000.0, 300.0, 3, 0.5,
                   stable_seed(seed, "background-bias"))
    return (sd_k * f).astype(np.float32)


def background_lst(sum_lst: np.ndarray, count: np.ndarray, whole: np.ndarray, smoothing_cells: float,
                   bias_k: float, bias_field: np.ndarray, noise_sd_k: float, rng: np.random.Generator) -> np.ndarray:
    """Background LST (float32, K) from per-cell sums. Like a reanalysis it has no gaps:
    cells not wholly simulated (corners of the window's lon/lat box, outside the scene and
    the ring of cells around it when the scene CRS is turned against the meridians) take
    the value of the nearest simulated cell, then bias and noise as every cell."""
    whole = whole & (count > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(whole, sum_lst / np.maximum(count, 1), np.nan)
    ok = np.isfinite(mean)
    if smoothing_cells > 0:
        num = ndi.gaussian_filter(np.where(ok, mean, 0.0), smoothing_cells, mode="nearest")
        den = ndi.gaussian_filter(ok.astype(np.float64), smoothing_cells, mode="nearest")
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(ok, num / den, np.nan)
    if ok.any() and not ok.all():
        near = ndi.distance_transform_edt(~ok, return_distances=False, return_indices=True)
        mean = mean[near[0], near[1]]
    noise = rng.normal(0.0, 1.0, mean.shape) * noise_sd_k
    return (mean + bias_k + bias_field + noise).astype(np.float32)


def observe_lst(truth: np.ndarray, cloudy: np.ndarray, water: np.ndarray, noise_sd_k: float,
                rng: np.random.Generator) -> np.ndarray:
    """Clear-sky LST (K): truth + noise where clear land, NaN under cloud and on water."""
    noise = rng.normal(0.0, 1.0, truth.shape).astype(np.float32) * np.float32(noise_sd_k)
    return np.where(cloudy | water, np.nan, truth + noise).astype(np.float32)


def day_seed_rng(seed: int, tag: str, day: dt.date, row0: int = 0) -> np.random.Generator:
    """The random stream of a sensor for one day (and row block)."""
    return rng_for(seed, tag, day.toordinal(), row0)
