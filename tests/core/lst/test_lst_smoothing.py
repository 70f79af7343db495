"""Block smoothing, normalised convolution and local regression: closed-form cases."""

from __future__ import annotations

import numpy as np
import pytest

from ssm_downscaling.core.lst.footprint import BlockFootprint
from ssm_downscaling.core.lst.smoothing import BlockGrid, gaussian_fill, global_linear_fit, local_linear_fit


def test_block_sum_and_upsample_constant_and_linear():
    bg = BlockGrid((10, 13), 4)
    assert bg.block_shape == (3, 4)
    np.testing.assert_allclose(bg.sum(np.ones((10, 13))).sum(), 130)
    np.testing.assert_allclose(bg.upsample(np.full((3, 4), 7.0)), 7.0)
    # bilinear interpolation reproduces a linear field between block centres
    cols = (np.arange(4) + 0.5) * 4 - 0.5
    blocks = np.tile(2.0 * cols, (3, 1))
    fine = bg.upsample(blocks)
    x = np.arange(13)
    inside = (x >= cols[0]) & (x <= cols[-1])
    np.testing.assert_allclose(fine[:, inside], np.tile(2.0 * x[inside], (10, 1)), atol=1e-5)


def test_upsample_skips_nan_blocks():
    bg = BlockGrid((8, 8), 4)
    out = bg.upsample(np.array([[1.0, np.nan], [1.0, 1.0]]))
    np.testing.assert_allclose(out[np.isfinite(out)], 1.0)
    assert np.isfinite(out[2:6, 2:6]).all()  # between the centres the valid blocks carry the weight
    assert np.isnan(out[0, 7])  # only the NaN block is in reach


def test_block_footprint_is_block_mean_then_bilinear():
    fp = BlockFootprint((8, 8), 4)
    v = np.zeros((8, 8))
    v[:4, :4] = 4.0
    v[0, 0] = np.nan  # NaN-aware mean: the other 15 pixels are 4
    assert fp.block_means(v)[0, 0] == pytest.approx(4.0)
    assert fp.smooth(v)[0, 0] == pytest.approx(4.0)  # corner: constant extrapolation


@pytest.mark.parametrize("sigma", [1.0, 6.0, 20.0])
def test_gaussian_fill_reproduces_a_constant(sigma):
    v = np.full((60, 70), 3.25, dtype=np.float32)
    rng = np.random.default_rng(0)
    v[rng.random(v.shape) < 0.5] = np.nan
    out = gaussian_fill(v, sigma)
    np.testing.assert_allclose(out[np.isfinite(out)], 3.25, atol=1e-5)
    assert np.isfinite(out).mean() > 0.9
    shrunk = gaussian_fill(v, sigma, shrink=1.0)
    assert np.nanmax(shrunk) < 3.25  # shrinking pulls towards 0


def test_local_linear_fit_exact_for_a_linear_relation():
    rng = np.random.default_rng(1)
    x = rng.random((50, 60))
    y = 1.5 + 4.0 * x
    y[rng.random(y.shape) < 0.3] = np.nan
    fit = local_linear_fit(y, x, sigma_px=9.0, slope_prior=0.0, prior_pixels=0.0)
    np.testing.assert_allclose(fit.slope, 4.0, atol=1e-5)  # float32 inputs
    np.testing.assert_allclose(fit.intercept, 1.5, atol=1e-5)
    np.testing.assert_allclose(fit.intercept_fine(), 1.5, atol=1e-5)


def test_local_linear_fit_uses_the_prior_where_x_is_constant():
    y = np.full((40, 40), 2.0)
    x = np.full((40, 40), 0.3)
    fit = local_linear_fit(y, x, sigma_px=6.0, slope_prior=5.0, prior_pixels=100.0)
    np.testing.assert_allclose(fit.slope, 5.0, atol=1e-6)
    np.testing.assert_allclose(fit.intercept, 2.0 - 5.0 * 0.3, atol=1e-6)


def test_local_linear_fit_without_data_is_nan():
    y = np.full((20, 20), np.nan)
    fit = local_linear_fit(y, None, sigma_px=3.0)
    assert np.isnan(fit.intercept).all() and (fit.support == 0).all()


def test_global_linear_fit():
    x = np.array([0.0, 1.0, 2.0, 3.0, np.nan])
    a, b, n, var = global_linear_fit(2.0 + 3.0 * x, x)
    assert (a, b, n) == (pytest.approx(2.0), pytest.approx(3.0), 4)
    a, b, n, var = global_linear_fit(np.ones(5), np.zeros(5))
    assert np.isnan(b) and a == 1.0
