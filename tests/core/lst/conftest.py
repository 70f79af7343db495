"""Small synthetic LST worlds for the gap-filling tests (not the sample scene: tiny,
built so that the right answers are known)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from ssm_downscaling.core.grid import Grid, array_to_mem, to_wkt, transform_points, warp_to_grid
from ssm_downscaling.core.lst import BlockFootprint
from ssm_downscaling.core.series import write_day, write_raster

START = dt.date(2019, 6, 1)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    a = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    return (a - a.mean()) / a.std()


def cloud_mask(rng: np.random.Generator, shape: tuple[int, int], frac: float, sigma: float = 4) -> np.ndarray:
    """Smooth cloud blobs covering ``frac`` of the pixels."""
    if frac <= 0:
        return np.zeros(shape, bool)
    if frac >= 1:
        return np.ones(shape, bool)
    f = smooth_noise(rng, shape, sigma)
    return f > np.quantile(f, 1 - frac)


def make_world(
    shape: tuple[int, int] = (48, 48),
    days: int = 12,
    factor: int = 8,
    lapse: float = -0.006,
    delta: float = 5.0,
    bias: float = 1.5,
    anomaly_sd: float = 2.0,
    noise_sd: float = 0.0,
    cloud: float = 0.4,
    seed: int = 0,
) -> dict:
    """A world that follows the anomaly model: ``T = 295 + wave(t) + lapse*z + P - delta*cloud``,
    background ``= S[T] + bias`` with ``S`` the block footprint, LST = T where clear."""
    rng = np.random.default_rng(seed)
    h, w = shape
    fp = BlockFootprint(shape, factor)
    z = (smooth_noise(rng, shape, 5) * 400 + 3000).astype(np.float32)
    p = (smooth_noise(rng, shape, 1.5) * anomaly_sd).astype(np.float32)
    truth = np.empty((days, h, w), np.float32)
    lst = np.empty_like(truth)
    bg = np.empty_like(truth)
    clouds = np.zeros((days, h, w), bool)
    for t in range(days):
        c = cloud_mask(rng, shape, cloud)
        tcs = 295 + 3 * np.sin(t / 2.0) + lapse * z + p
        truth[t] = tcs - delta * c
        bg[t] = fp.smooth(truth[t]) + bias
        lst[t] = np.where(c, np.nan, truth[t] + (rng.normal(0, noise_sd, shape) if noise_sd else 0))
        clouds[t] = c
    return {"truth": truth, "lst": lst, "background": bg, "cloud": clouds, "dem": z, "anomaly": p, "footprint": fp}


@pytest.fixture
def world() -> Callable[..., dict]:
    return make_world


# ---------------------------------------------------------------------------------------
# a tiny series on disk, on real grids
# ---------------------------------------------------------------------------------------

LAEA = "+proj=laea +lat_0=29.8 +lon_0=89.5 +datum=WGS84 +units=m +no_defs"


def fine_grid(n: int = 40) -> Grid:
    half = n * 500.0
    return Grid.from_bounds(to_wkt(LAEA), (-half, -half, half, half), 1000.0)


def background_grid(fine: Grid, res: float = 0.1) -> Grid:
    xs, ys = fine.corner_xy()
    lon, lat = transform_points(xs, ys, fine.crs_wkt, to_wkt(4326))
    lon0 = np.floor(lon.min() / res) * res - res
    lat0 = np.floor(lat.min() / res) * res - res
    lon1 = np.ceil(lon.max() / res) * res + res
    lat1 = np.ceil(lat.max() / res) * res + res
    return Grid.from_bounds(to_wkt(4326), (lon0, lat0, lon1, lat1), res)


def write_series(
    root: Path,
    days: int = 6,
    n: int = 40,
    cloud_days: dict[int, float] | None = None,
    seed: int = 3,
    skip_background: tuple[int, ...] = (),
) -> dict:
    """Folders ``lst/``, ``bg/``, ``ndvi/`` and ``dem.tif`` under ``root`` (plus the truth arrays).

    A lake (never observed, NDVI nodata) sits in one corner. ``cloud_days`` maps a day
    index to its cloud fraction (default 0.4)."""
    rng = np.random.default_rng(seed)
    fine = fine_grid(n)
    coarse = background_grid(fine)
    z = (smooth_noise(rng, fine.shape, 4) * 300 + 4000).astype(np.float32)
    p = (smooth_noise(rng, fine.shape, 1.5) * 2).astype(np.float32)
    lake = np.zeros(fine.shape, bool)
    lake[:6, :6] = True
    ndvi = np.where(lake, np.nan, 0.3 + 0.05 * smooth_noise(rng, fine.shape, 2)).astype(np.float32)
    for sub in ("lst", "bg", "ndvi", "truth"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    write_raster(root / "dem.tif", z, fine)
    write_day(root / "ndvi", "ndvi", START, ndvi, fine)
    truths = []
    for t in range(days):
        d = START + dt.timedelta(days=t)
        c = cloud_mask(rng, fine.shape, (cloud_days or {}).get(t, 0.4))
        truth = (290 + t - 0.006 * z + p - 4 * c).astype(np.float32)
        truth[lake] = np.nan
        lst = np.where(c | lake, np.nan, truth)
        write_day(root / "lst", "lst", d, lst, fine)
        write_day(root / "truth", "lst", d, truth, fine)
        if t not in skip_background:
            # coarse background: the truth averaged onto the 0.1 degree grid, plus a bias
            src = array_to_mem(np.where(lake, 280.0, truth).astype(np.float32), fine)
            bgc = warp_to_grid(src, coarse, resampling="average") + 1.0
            write_day(root / "bg", "lst_background", d, bgc, coarse)
        truths.append(truth)
    return {"fine": fine, "coarse": coarse, "truth": np.array(truths), "lake": lake, "root": root}


@pytest.fixture
def series(tmp_path: Path) -> Callable[..., dict]:
    def make(**kw) -> dict:
        return write_series(tmp_path / "in", **kw)

    return make
