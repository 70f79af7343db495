"""Space-time filtering of the coarse residuals (regression kriging with a nugget)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ssm_downscaling.core.downscale.interp import node_spacing, node_xy_metres
from ssm_downscaling.core.downscale.run import soft_bounds
from ssm_downscaling.core.downscale.stfilter import Covariance, estimate_covariance, krige
from ssm_downscaling.core.grid import Grid, to_wkt
from ssm_downscaling.core.membership import Membership

SP = 36e3


def _grid_xy(rows: int, cols: int) -> np.ndarray:
    r, c = np.divmod(np.arange(rows * cols), cols)
    return np.column_stack([c * SP, -r * SP]).astype(float)


def _simulate(rows=16, cols=16, days=80, s_sd=0.03, n_sd=0.02, L=2.0 * SP, T=3.0, seed=0):
    """Signal: separable exponential covariance (Cholesky in space, AR(1) in time) + white noise."""
    rng = np.random.default_rng(seed)
    xy = _grid_xy(rows, cols)
    h = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    Ls = np.linalg.cholesky(np.exp(-h / L) + 1e-10 * np.eye(len(xy)))
    rho = math.exp(-1.0 / T)
    s = np.zeros((days, len(xy)))
    s[0] = Ls @ rng.normal(size=len(xy))
    for t in range(1, days):
        s[t] = rho * s[t - 1] + math.sqrt(1 - rho * rho) * (Ls @ rng.normal(size=len(xy)))
    s *= s_sd
    return xy, s, s + rng.normal(0, n_sd, s.shape)


def test_covariance_recovers_the_retrieval_error_and_scales():
    xy, _, r = _simulate()
    cov = estimate_covariance(r, xy, np.arange(r.shape[0]), SP)
    assert cov.noise_sd == pytest.approx(0.02, rel=0.25)
    assert cov.signal_sd == pytest.approx(0.03, rel=0.25)
    assert 1.0 * SP < cov.length_m < 4.0 * SP and 1.5 < cov.time_days < 6.0


def test_covariance_separates_a_persistent_signal_from_the_retrieval_error():
    """A per-cell persistent part (soil, the retrieval's bias in that cell: correlated over
    all lags in time, not in space) + a decaying part + white noise: the error comes from
    the 1-3 day covariances, P + D rho^tau, not from an exponential through lags 1 and 2
    (which takes part of the decay for noise)."""
    xy, s, _ = _simulate(days=120, s_sd=0.02, T=2.0, seed=5)
    rng = np.random.default_rng(6)
    persistent = rng.normal(0, 0.02, (1, xy.shape[0]))  # white in space: invisible to spatial lags
    r = s + persistent + rng.normal(0, 0.02, s.shape)
    cov = estimate_covariance(r, xy, np.arange(r.shape[0]), SP)
    assert cov.noise_sd == pytest.approx(0.02, rel=0.15)
    assert cov.signal_sd == pytest.approx(math.hypot(0.02, 0.02), rel=0.15)


def test_persistent_plus_decaying_closed_form():
    from ssm_downscaling.core.downscale.stfilter import _persistent_plus_decaying

    P, D, rho = 2.0, 3.0, 0.5
    c = [P + D * rho**k for k in (1, 2, 3)]
    assert _persistent_plus_decaying(*c) == pytest.approx(P + D)
    assert math.isnan(_persistent_plus_decaying(1.0, 1.0, 0.5))  # no decay: undefined


def test_covariance_with_a_given_error_and_white_noise_only():
    xy, _, r = _simulate()
    cov = estimate_covariance(r, xy, np.arange(r.shape[0]), SP, noise_sd=0.01)
    assert cov.noise_var == pytest.approx(1e-4)
    rng = np.random.default_rng(1)
    white = rng.normal(0, 0.02, (60, 100))
    cw = estimate_covariance(white, _grid_xy(10, 10), np.arange(60), SP)
    assert cw.noise_sd == pytest.approx(0.02, rel=0.1) and cw.signal_sd < 0.01


def test_krige_filters_noise_and_fills_gaps():
    xy, s, r = _simulate(seed=3)
    days = list(range(r.shape[0]))
    r_obs = r.copy()
    r_obs[40, :20] = np.nan  # a seam
    cov = estimate_covariance(r_obs, xy, np.array(days), SP)
    out = krige({d: r_obs[d] for d in days}, xy, days[5:-5], cov, SP, grid_shape=(16, 16))
    est = np.stack([out[d][0] for d in days[5:-5]])
    truth, raw = s[5:-5], r_obs[5:-5]
    err_raw = np.nanstd(raw - truth)
    err_k = np.std(est - truth)
    assert err_k < 0.75 * err_raw
    assert np.isfinite(out[40][0][:20]).all()
    # the kriging variance is calibrated: standardised errors have unit variance
    var = np.stack([out[d][1] for d in days[5:-5]])
    z = (est - truth) / np.sqrt(var)
    assert 0.8 < z.std() < 1.25


def test_krige_identities():
    xy = _grid_xy(5, 5)
    v = np.linspace(-0.05, 0.05, 25)
    cov = Covariance(0.01, 1e-12, 2 * SP, 2.0)
    out = krige({0: v}, xy, [0], cov, SP, grid_shape=(5, 5))
    np.testing.assert_allclose(out[0][0], v, atol=1e-6)  # no nugget: the data are honoured
    assert out[0][1].max() < 1e-6
    # mirror symmetry: mirrored data give the mirrored estimate
    noisy = Covariance(0.01, 0.005, 2 * SP, 2.0)
    img = np.random.default_rng(0).normal(0, 0.05, (5, 5))
    a = krige({0: img.ravel()}, xy, [0], noisy, SP, grid_shape=(5, 5))[0][0].reshape(5, 5)
    b = krige({0: img[:, ::-1].ravel()}, xy, [0], noisy, SP, grid_shape=(5, 5))[0][0].reshape(5, 5)
    np.testing.assert_allclose(a[:, ::-1], b, atol=1e-12)
    # no data near: the prior (0, signal variance)
    far = krige({0: np.full(25, np.nan)}, xy, [0], noisy, SP, grid_shape=(5, 5))
    assert (far[0][0] == 0).all() and np.allclose(far[0][1], 0.01)
    # tiles give the same answer as one system when every cell is within reach
    t1 = krige({0: img.ravel()}, xy, [0], noisy, SP, radius_cells=10, grid_shape=(5, 5), tile=2)
    t2 = krige({0: img.ravel()}, xy, [0], noisy, SP, radius_cells=10, grid_shape=(5, 5), tile=8)
    np.testing.assert_allclose(t1[0][0], t2[0][0], atol=1e-12)


def _dense_krige(resid, xy, days, cov, radius_cells, window, tile, shape):
    """Reference: one simple-kriging system per tile and day over every source cell-day
    (the tile's cells within reach of one of its targets, the days within the window),
    solved directly."""
    rows, cols = shape
    out = {}
    for d in days:
        sig, var = np.zeros(len(xy)), np.full(len(xy), cov.signal_var)
        for tr in range(0, rows, tile):
            for tc in range(0, cols, tile):
                tgt = np.array([r * cols + c for r in range(tr, min(tr + tile, rows))
                                for c in range(tc, min(tc + tile, cols))])
                dist = np.hypot(*(xy[:, None, :] - xy[None, tgt, :]).transpose(2, 0, 1)).min(axis=1)
                src = np.flatnonzero(dist <= radius_cells * SP + 1e-6)
                pts = [(i, o) for o in sorted(resid) if abs(o - d) <= window for i in src if np.isfinite(resid[o][i])]
                if not pts:
                    continue
                i, o = np.array(pts).T
                h = np.hypot(*(xy[i][:, None, :] - xy[i][None, :, :]).transpose(2, 0, 1))
                K = cov(h, o[:, None] - o[None, :]) + cov.noise_var * np.eye(len(i))
                k0 = cov(np.hypot(*(xy[tgt][:, None, :] - xy[i][None, :, :]).transpose(2, 0, 1)), d - o[None, :])
                v = np.array([resid[a][b] for b, a in zip(i, o)])
                sig[tgt] = k0 @ np.linalg.solve(K, v)
                var[tgt] = cov.signal_var - np.einsum("ts,ts->t", k0, np.linalg.solve(K, k0.T).T)
        out[d] = (sig, var)
    return out


@pytest.mark.parametrize("time_days", [0.7, 3.0, 50.0])
def test_krige_equals_one_system_per_tile_and_day(time_days):
    """The Kalman smoother gives the direct solution of each tile's space-time system:
    missing cells, a day without data, a missing day (a two-day step), tiles at the edges."""
    rows, cols = 7, 9
    xy = _grid_xy(rows, cols)
    rng = np.random.default_rng(11)
    ords = [0, 1, 2, 3, 5, 6, 7, 8, 9]  # day 4 missing
    resid = {o: np.where(rng.random(rows * cols) < 0.7, rng.normal(0, 0.03, rows * cols), np.nan) for o in ords}
    resid[7][:] = np.nan
    cov = Covariance(4e-4, 3e-4, 1.5 * SP, time_days)
    days = [2, 4, 5, 7, 9]
    got = krige(resid, xy, days, cov, SP, radius_cells=2.0, window_days=3, tile=4, grid_shape=(rows, cols))
    ref = _dense_krige(resid, xy, days, cov, 2.0, 3, 4, (rows, cols))
    for d in days:
        np.testing.assert_allclose(got[d][0], ref[d][0], rtol=0, atol=1e-11)
        np.testing.assert_allclose(got[d][1], ref[d][1], rtol=0, atol=1e-12)


def test_krige_leaves_a_cell_without_a_position_at_the_prior():
    """A cell centre that cannot be placed (NaN coordinates) is neither a source nor a
    target: it keeps (0, signal variance); the others are as without it as a source."""
    xy = _grid_xy(5, 5)
    rng = np.random.default_rng(3)
    resid = {o: rng.normal(0, 0.03, 25) for o in range(3)}
    cov = Covariance(4e-4, 3e-4, 2 * SP, 2.0)
    lost = xy.copy()
    lost[7] = np.nan
    got = krige(resid, lost, [1], cov, SP, grid_shape=(5, 5), tile=5)[1]
    assert got[0][7] == 0 and got[1][7] == pytest.approx(4e-4)
    masked = {o: np.where(np.arange(25) == 7, np.nan, v) for o, v in resid.items()}
    ref = krige(masked, xy, [1], cov, SP, grid_shape=(5, 5), tile=5)[1]
    keep = np.arange(25) != 7
    np.testing.assert_allclose(got[0][keep], ref[0][keep], atol=1e-12)
    np.testing.assert_allclose(got[1][keep], ref[1][keep], atol=1e-12)


def test_krige_is_time_symmetric():
    """The stationary signal is time-reversible: the days mirrored give the same estimates."""
    xy = _grid_xy(6, 6)
    rng = np.random.default_rng(2)
    resid = {o: np.where(rng.random(36) < 0.8, rng.normal(0, 0.03, 36), np.nan) for o in range(9)}
    cov = Covariance(4e-4, 3e-4, 2 * SP, 2.0)
    a = krige(resid, xy, [3, 4], cov, SP, grid_shape=(6, 6), tile=3)
    b = krige({8 - o: v for o, v in resid.items()}, xy, [5, 4], cov, SP, grid_shape=(6, 6), tile=3)
    for d in (3, 4):
        np.testing.assert_allclose(a[d][0], b[8 - d][0], atol=1e-14)
        np.testing.assert_allclose(a[d][1], b[8 - d][1], atol=1e-15)


def test_soft_bounds_are_continuous_inside_and_identity_in_the_middle():
    x = np.linspace(-0.2, 0.9, 2201).astype(np.float32)
    y = soft_bounds(x.copy(), 0.01, 0.6)
    assert (y >= np.float32(0.01)).all() and (y <= np.float32(0.6)).all()
    near = (x > -0.03) & (x < 0.65)  # strictly inside unless far beyond a bound (float32)
    assert (y[near] > np.float32(0.01)).all() and (y[near] < np.float32(0.6)).all()
    mid = (x > 0.03 + 1e-6) & (x < 0.58 - 1e-6)
    np.testing.assert_array_equal(y[mid], x[mid])
    assert np.all(np.diff(y) >= 0)  # monotone
    assert np.abs(np.diff(y)).max() < 1.01 * (x[1] - x[0]) + 1e-7  # slope at most 1 (continuous)


def test_soft_bounds_counts_and_values_equal_the_whole_array_numpy_rule():
    from ssm_downscaling.core.downscale import daypass
    from ssm_downscaling.core.downscale.residual import CorrectionInfo

    lo, hi, m = 0.01, 0.6, 0.02
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.1, 0.7, 4000).astype(np.float32)
    x[:6] = (np.float32(lo), np.float32(hi), np.float32(lo + m), np.float32(hi - m), np.nan, np.inf)
    f32 = np.float32
    args = (f32(lo), f32(hi), f32(lo + m), f32(hi - m))
    ok = np.isfinite(x)
    want = (int((ok & ((x < lo) | (x > hi))).sum()), int((ok & (x < lo + m)).sum()), int((ok & (x > hi - m)).sum()))
    for impl in (daypass.bound_counts.numba, daypass.bound_counts.numpy):
        if impl is not None:
            assert tuple(int(v) for v in impl(x, *args)) == want
    info = CorrectionInfo()
    y = soft_bounds(x.copy(), lo, hi, info, margin=m)
    assert info.clipped == want[0]
    ref = x.copy()  # the rule on every pixel, without the compiled pre-check
    low, high = ok & (ref < lo + m), ok & (ref > hi - m)
    ref[low] = (lo + m * np.exp((ref[low].astype(np.float64) - lo - m) / m)).astype(np.float32)
    ref[high] = (hi - m * np.exp((hi - m - ref[high].astype(np.float64)) / m)).astype(np.float32)
    np.testing.assert_array_equal(y, ref)
    inside = np.full(50, 0.3, dtype=np.float32)
    assert soft_bounds(inside.copy(), lo, hi, margin=m).tobytes() == inside.tobytes()
    as64 = soft_bounds(x.astype(np.float64), lo, hi, margin=m)  # not float32: the numpy rule on its own dtype
    assert np.isfinite(as64[6:]).all() and (as64[6:] > lo).all() and (as64[6:] < hi).all()


def test_node_coordinates_are_metres_on_a_geographic_grid():
    fine = Grid(to_wkt(4326), (100.0, 0.01, 0.0, 40.0, 0.0, -0.01), 100, 100)
    coarse = Grid(to_wkt(4326), (99.75, 0.25, 0.0, 40.25, 0.0, -0.25), 8, 8)
    m = Membership.build(fine, coarse)
    xy = node_xy_metres(m)
    sp = node_spacing(xy)
    # 0.25 degree of latitude = 27.8 km; of longitude at ~39.5N = 21.5 km
    assert 20e3 < sp < 28.5e3
    d_lat = np.hypot(*(xy[8] - xy[0]))
    assert d_lat == pytest.approx(27.75e3, rel=0.01)
