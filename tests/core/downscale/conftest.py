"""Small synthetic worlds for the downscaling tests (known answers, no scene needed)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from ssm_downscaling.core.grid import Grid, ease2_global, to_wkt

LAEA = to_wkt("+proj=laea +lat_0=30 +lon_0=90 +datum=WGS84 +units=m +no_defs")
DAY0 = dt.date(2019, 6, 1)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale: float = 12.0) -> np.ndarray:
    """A smooth random field (sum of a few random sinusoids), mean 0, sd about 1."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    f = np.zeros(shape)
    for _ in range(6):
        kx, ky = rng.normal(0, 1 / scale, 2)
        f += np.cos(2 * np.pi * (kx * xx + ky * yy) + rng.uniform(0, 2 * np.pi))
    return f / np.sqrt(3.0)


@pytest.fixture
def fine_grid() -> Grid:
    """120 km x 108 km at 1 km in a LAEA centred on 90E 30N."""
    return Grid.from_bounds(LAEA, (-60e3, -54e3, 60e3, 54e3), 1000)


@pytest.fixture
def coarse_full() -> Grid:
    return ease2_global(36)


def predictors_on(grid: Grid, seed: int = 7) -> dict[str, np.ndarray]:
    """Smooth random predictors on ``grid``: lst (K), ndvi, albedo, dem (m), float32."""
    rng = np.random.default_rng(seed)
    shape = grid.shape
    return {
        "lst": (305 + 6 * smooth_field(rng, shape, 15)).astype(np.float32),
        "ndvi": (0.45 + 0.15 * smooth_field(rng, shape, 25)).astype(np.float32),
        "albedo": (0.2 + 0.03 * smooth_field(rng, shape, 10)).astype(np.float32),
        "dem": (4000 + 300 * smooth_field(rng, shape, 20)).astype(np.float32),
    }


@pytest.fixture
def world(fine_grid):
    """Predictors on ``fine_grid`` (see :func:`predictors_on`)."""
    return predictors_on(fine_grid)


@pytest.fixture
def make_world():
    """``make_world(grid, seed=7)`` -> predictors on any grid."""
    return predictors_on
