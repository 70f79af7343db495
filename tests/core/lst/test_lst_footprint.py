"""The background footprint on real grids: bilinear positions, block means, blur."""

from __future__ import annotations

import numpy as np
import pytest

from ssm_downscaling.core.grid import array_to_mem, to_wkt, warp_to_grid
from ssm_downscaling.core.lst.footprint import BilinearMap, BlockFootprint, GridFootprint, blur_cells

from .conftest import background_grid, fine_grid


def test_bilinear_map_reproduces_a_linear_field_and_matches_gdal():
    fine = fine_grid(60)
    coarse = background_grid(fine)
    lon, lat = coarse.centres()
    field = (3.0 * lon - 2.0 * lat).astype(np.float64)  # linear in the coarse grid's axes
    out = BilinearMap(fine, coarse)(field)
    flon, flat = fine.lonlat()
    np.testing.assert_allclose(out, 3.0 * flon - 2.0 * flat, atol=1e-4)
    gdal_out = warp_to_grid(array_to_mem(field.astype(np.float32), coarse), fine, resampling="bilinear")
    np.testing.assert_allclose(out, gdal_out, atol=1e-3)


def test_grid_footprint_smooth_of_constant_and_blur():
    fine = fine_grid(40)
    fp = GridFootprint(fine, background_grid(fine))
    np.testing.assert_allclose(fp.smooth(np.full(fine.shape, 5.0, np.float32)), 5.0, atol=1e-5)
    z = np.zeros(fine.shape, np.float32)
    z[:, 20:] = 100.0
    sharp, blurred = fp.smooth(z), fp.with_sigma(2.0).smooth(z)
    assert np.ptp(blurred) < np.ptp(sharp)  # the blur spreads the step
    assert fp.with_sigma(2.0).membership is fp.membership  # shared, not rebuilt


def test_blur_cells_is_nan_aware():
    a = np.full((5, 5), 2.0)
    a[2, 2] = np.nan
    out = blur_cells(a, 1.0)
    assert np.isnan(out[2, 2]) and np.allclose(out[np.isfinite(out)], 2.0)


def test_block_footprint_with_sigma():
    fp = BlockFootprint((16, 16), 4).with_sigma(1.0)
    assert fp.sigma_cells == 1.0 and fp.smooth(np.ones((16, 16))).mean() == pytest.approx(1.0)


def test_grids_in_other_crs_are_supported():
    fine = fine_grid(30)
    from ssm_downscaling.core.grid import Grid

    ease = Grid.from_bounds(to_wkt(6933), (8_400_000, 3_300_000, 8_800_000, 3_700_000), 36032.22)
    out = BilinearMap(fine, ease)(np.arange(ease.size, dtype=float).reshape(ease.shape))
    assert np.isfinite(out).all()


@pytest.mark.parametrize("crs", ["laea", "geographic"])
def test_block_means_equal_the_membership_aggregate_numba_and_numpy(crs):
    """The footprint's block means (one compiled pass) equal Membership.aggregate, with
    constant (equal-area) and per-row (geographic) pixel areas, NaNs and empty cells."""
    from ssm_downscaling.core.accel import numba_disabled
    from ssm_downscaling.core.grid import Grid

    if crs == "laea":
        fine = fine_grid(30)
    else:
        fine = Grid.from_bounds(to_wkt(4326), (100.0, 30.0, 101.0, 31.0), 0.01)
    fp = GridFootprint(fine, background_grid(fine, 0.05) if crs == "laea" else Grid.from_bounds(to_wkt(4326), (99.0, 29.0, 102.0, 32.0), 0.25))
    rng = np.random.default_rng(3)
    v = (rng.normal(290.0, 5.0, fine.shape)).astype(np.float32)
    v[rng.random(fine.shape) < 0.3] = np.nan
    v[: fine.height // 4, : fine.width // 4] = np.nan  # whole cells without a valid member
    ref = fp.membership.aggregate(v, return_count=False)
    got = fp.block_means(v)
    with numba_disabled():
        got_np = GridFootprint(fine, fp.background, 0.0, fp._shared).block_means(v)
    assert np.isnan(ref).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(got_np, ref, rtol=1e-6, equal_nan=True)
