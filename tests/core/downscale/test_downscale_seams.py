"""Seams: borrowing residuals in time, flags, missing predictors, cancellation."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from ssm_downscaling.core.downscale import build_membership, downscale_arrays
from ssm_downscaling.core.downscale.seams import borrow_in_time, fill_coarse
from ssm_downscaling.core.errors import Cancelled
from ssm_downscaling.core.grid import Grid, to_wkt
from ssm_downscaling.core.series import FLAG_NODATA

LAEA = to_wkt("+proj=laea +lat_0=30 +lon_0=90 +datum=WGS84 +units=m +no_defs")


def test_borrow_in_time_interpolates_between_nearest_observed_days():
    s = {10: np.array([1.0, np.nan, 5.0, np.nan]), 12: np.array([np.nan, np.nan, 7.0, np.nan]),
         14: np.array([3.0, 4.0, np.nan, np.nan]), 30: np.array([9.0, 9.0, 9.0, 9.0])}
    out = borrow_in_time(s, 11, max_days=7)
    np.testing.assert_allclose(out[:3], [1.0 + (3.0 - 1.0) / 4, 4.0, 6.0])
    assert np.isnan(out[3])  # day 30 is too far
    assert borrow_in_time(s, 11, max_days=0).size == 4 and np.isnan(borrow_in_time(s, 11, 0)).all()


def test_fill_coarse_uses_time_then_space():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    series = {1: np.array([0.1, 0.2, np.nan])}
    out = fill_coarse(np.array([np.nan, 0.3, np.nan]), series, 2, 3, xy, np.array([True, True, True]))
    np.testing.assert_allclose(out, [0.1, 0.3, 0.3])


def test_seam_cells_are_flagged_and_borrow_the_residual(coarse_full, make_world):
    fine = Grid.from_bounds(LAEA, (-108e3, -108e3, 108e3, 108e3), 1000)
    world = {k: v for k, v in make_world(fine, seed=11).items() if k in ("lst", "ndvi", "albedo")}
    m = build_membership(fine, coarse_full)
    lst_c, _ = m.aggregate(world["lst"])
    offset = np.random.default_rng(4).normal(0, 0.01, m.coarse.shape)  # persistent per-cell departures
    d1, d2 = dt.date(2019, 6, 1), dt.date(2019, 6, 2)
    y1 = 0.9 - 0.002 * lst_c + offset
    y2 = 0.92 - 0.002 * lst_c + offset
    inner = np.flatnonzero((m.coverage() > 0.99).ravel())
    seam = inner[[3, 4, 10]]
    y2_obs = y2.copy()
    y2_obs.ravel()[seam] = np.nan
    ssm = {d1: y1, d2: y2_obs}
    with_b = downscale_arrays(ssm, world, fine, m.coarse, "gwr", seam_days=5, bandwidth=1e7, residual="coherent")
    without = downscale_arrays(ssm, world, fine, m.coarse, "gwr", seam_days=0, bandwidth=1e7, residual="coherent")
    r = with_b[d2]
    seam_px = np.isin(m.index, seam)
    assert (r.flags[seam_px] == 1).all() and (r.flags[~seam_px] == 0).all()
    assert np.isfinite(r.ssm).all() and r.stats["estimated_pct"] == 100.0
    assert r.stats["coarse_seam"] == 3 and r.stats["seam_cells_with_borrowed_residual"] == 3
    assert r.stats["seam_filled_pct"] == pytest.approx(100.0 * seam_px.mean())
    assert without[d2].stats["seam_cells_with_borrowed_residual"] == 0
    mean_b, _ = m.aggregate(r.ssm)
    mean_n, _ = m.aggregate(without[d2].ssm)
    err_b = np.abs(mean_b.ravel()[seam] - y2.ravel()[seam])
    err_n = np.abs(mean_n.ravel()[seam] - y2.ravel()[seam])
    assert err_b.max() < 0.002 and err_b.mean() < 0.5 * err_n.mean()
    # observed cells keep their coarse means exactly
    obs = np.setdiff1d(np.flatnonzero(m.members.ravel() > 0), seam)
    np.testing.assert_allclose(mean_b.ravel()[obs], y2_obs.ravel()[obs], atol=1e-6)


def test_lst_flags_and_missing_predictors(fine_grid, coarse_full, world):
    m = build_membership(fine_grid, coarse_full)
    y = np.full(m.coarse.shape, 0.25)
    y.ravel()[0] = np.nan
    lstf = np.zeros(fine_grid.shape, np.uint8)
    lstf[:, :30] = 1
    w = dict(world)
    w["ndvi"] = world["ndvi"].copy()
    w["ndvi"][50:55, 60:70] = np.nan
    res = next(iter(downscale_arrays(y, w, fine_grid, m.coarse, "gwr", lst_flags=lstf, bandwidth=80e3).values()))
    seam = m.index == 0
    expected = np.where(seam, 1, 0) + np.where(lstf == 1, 2, 0)
    expected[50:55, 60:70] = FLAG_NODATA
    np.testing.assert_array_equal(res.flags, expected)
    assert np.isnan(res.ssm[50:55, 60:70]).all() and np.isnan(res.uncertainty[50:55, 60:70]).all()
    ok = res.flags != FLAG_NODATA
    assert np.isfinite(res.ssm[ok]).all() and (res.uncertainty[ok] > 0).all()
    assert 0 < res.stats["lst_gapfilled_pct"] < 100


def test_values_are_clipped_to_the_physical_range(fine_grid, coarse_full, world):
    m = build_membership(fine_grid, coarse_full)
    lst_c, _ = m.aggregate(world["lst"])
    y = 0.3 + 0.03 * (lst_c - np.nanmean(lst_c))  # strong slope: the 1 km field spills over
    res = next(iter(downscale_arrays(y, world, fine_grid, m.coarse, "gwr", bandwidth=1e7, ssm_range=(0.2, 0.4),
                                     residual="coherent").values()))
    assert res.stats["clipped_pixels"] > 0
    assert np.nanmin(res.ssm) >= np.float32(0.2) and np.nanmax(res.ssm) <= np.float32(0.4)
    mean, _ = m.aggregate(res.ssm)
    inside = (y > 0.2) & (y < 0.4)
    np.testing.assert_allclose(mean[inside], y[inside], atol=1e-6)


def test_cancel_stops_the_run(fine_grid, coarse_full, world):
    m = build_membership(fine_grid, coarse_full)
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Cancelled):
        downscale_arrays({dt.date(2019, 6, d): np.full(m.coarse.shape, 0.2) for d in (1, 2, 3)}, world,
                         fine_grid, m.coarse, "gwr", is_cancelled=cancel)
