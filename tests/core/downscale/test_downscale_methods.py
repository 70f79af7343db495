"""DisPATCh, forest, bilinear and the method registry on known-answer cases."""

from __future__ import annotations

import numpy as np
import pytest

from ssm_downscaling.core.downscale import (
    BilinearDownscaler,
    CoarseData,
    DispatchDownscaler,
    FineBlock,
    ForestDownscaler,
    build_membership,
    downscale_arrays,
    make_downscaler,
)


def _day(y, X, names, shape, y_filled=None):
    n = shape[0] * shape[1]
    xy = np.column_stack([np.arange(n) % shape[1] * 36e3, np.arange(n) // shape[1] * -36e3])
    return CoarseData(y, X, np.ones(n, bool), xy, shape, names, y_filled=y_filled)


def test_dispatch_with_uniform_see_returns_the_coarse_value():
    y = np.array([0.1, 0.2, 0.3, 0.45])
    est = DispatchDownscaler().fit(_day(y, np.full((4, 1), 0.37), ("see",), (2, 2), y_filled=y))
    cells = np.array([0, 1, 2, 3, 3, 1])
    pred, unc = est.predict(FineBlock(np.full((6, 1), 0.37), np.zeros(6), np.zeros(6), cells))
    np.testing.assert_allclose(pred, y[cells], atol=0)
    assert np.isnan(unc).all()


def test_dispatch_uniform_predictors_through_the_pipeline(fine_grid, coarse_full):
    m = build_membership(fine_grid, coarse_full)
    y = np.linspace(0.1, 0.4, m.coarse.size).reshape(m.coarse.shape)
    shape = fine_grid.shape
    world = {"lst": np.full(shape, 300.0, np.float32), "ndvi": np.full(shape, 0.4, np.float32),
             "albedo": np.full(shape, 0.2, np.float32)}
    res = next(iter(downscale_arrays(y, world, fine_grid, m.coarse, "dispatch").values()))
    np.testing.assert_allclose(res.ssm, m.expand(y.astype(np.float32)), atol=1e-7)


def test_dispatch_slope_is_the_inverse_derivative_of_the_see_model():
    sm, see = 0.22, 0.6
    est = DispatchDownscaler(see_clip=0.0).fit(_day(np.array([sm]), np.array([[see]]), ("see",), (1, 1), np.array([sm])))
    smp = np.pi * sm / np.arccos(1 - 2 * see)
    f = lambda s: 0.5 - 0.5 * np.cos(np.pi * s / smp)  # noqa: E731
    h = 1e-6
    assert f(sm) == pytest.approx(see)
    assert est.slope_[0] == pytest.approx(2 * h / (f(sm + h) - f(sm - h)), rel=1e-6)
    # wetter pixels (higher SEE) get more soil moisture
    p, _ = est.predict(FineBlock(np.array([[0.5], [0.7]]), np.zeros(2), np.zeros(2), np.zeros(2, int)))
    assert p[0] < sm < p[1]


def test_dispatch_trapezoid_recovers_the_vertices():
    rng = np.random.default_rng(0)
    ts_min, ts_max, tv_min, tv_max = 290.0, 330.0, 292.0, 305.0
    fv = rng.uniform(0, 1, 200_000)
    t = rng.uniform(0, 1, fv.size)  # 0 wet edge, 1 dry edge
    lo = ts_min + (tv_min - ts_min) * fv
    hi = ts_max + (tv_max - ts_max) * fv
    est = DispatchDownscaler(ndvi_soil=0.0, ndvi_veg=1.0, edge_quantile=0.001, predictors=("lst", "ndvi"))
    est.prepare({"lst": lo + t * (hi - lo), "ndvi": fv})
    np.testing.assert_allclose(est.vertices_, (ts_min, ts_max, tv_min, tv_max), atol=1.0)
    see = est.features({"lst": np.array([ts_max, ts_min, np.nan]), "ndvi": np.array([0.0, 0.0, 0.5])})
    np.testing.assert_allclose(see[:2, 0], [0.0, 1.0], atol=0.02)
    assert np.isnan(see[2, 0])


def test_forest_is_seeded_and_its_spread_is_an_uncertainty():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 3))
    y = 0.25 + 0.05 * X[:, 0] + rng.normal(0, 0.005, 64)
    day = _day(y, X, ("lst", "ndvi", "albedo"), (8, 8))
    Xf = rng.normal(size=(30, 3))
    blk = FineBlock(Xf, np.zeros(30), np.zeros(30), np.zeros(30, int))
    a = ForestDownscaler(n_estimators=20, random_state=5).fit(day).predict(blk)
    b = ForestDownscaler(n_estimators=20, random_state=5).fit(day).predict(blk)
    np.testing.assert_array_equal(a[0], b[0])
    assert (a[1] >= 0).all() and np.isfinite(a[1]).all()
    assert y.min() - 1e-12 <= a[0].min() and a[0].max() <= y.max() + 1e-12
    mean_of_trees = np.mean([t.predict(Xf.astype(np.float32)) for t in ForestDownscaler(n_estimators=20, random_state=5).fit(day).forest_.estimators_], axis=0)
    np.testing.assert_allclose(a[0], mean_of_trees, rtol=1e-12)


def test_bilinear_interpolates_a_plane_exactly():
    R, C = 3, 4
    r, c = np.mgrid[0:R, 0:C]
    y = (0.1 + 0.02 * r + 0.03 * c).ravel()
    est = BilinearDownscaler().fit(_day(y, np.zeros((12, 0)), (), (R, C), y_filled=y))
    fr, fc = np.array([0.5, 1.25, 2.0]), np.array([0.5, 2.75, 3.0])
    p, u = est.predict(FineBlock(np.zeros((3, 0)), fr, fc, np.zeros(3, int)))
    np.testing.assert_allclose(p, 0.1 + 0.02 * fr + 0.03 * fc)
    assert np.isnan(u).all()


def test_make_downscaler_picks_options_that_apply():
    est = make_downscaler("gwr", ("lst", "ndvi", "albedo", "dem"), kernel="bisquare", n_estimators=5)
    assert est.kernel == "bisquare" and est.feature_names == ("lst", "ndvi", "albedo", "dem")
    f = make_downscaler("forest", ("lst", "ndvi", "albedo"), n_estimators=5, random_state=3)
    assert (f.n_estimators, f.random_state) == (5, 3)
    d = make_downscaler("dispatch", ("lst", "ndvi", "albedo"))
    assert d.predictors == ("lst", "ndvi") and d.feature_names == ("see",)
    with pytest.raises(ValueError, match="Unknown downscaling method"):
        make_downscaler("kriging")


def test_fitted_gwr_pickles_the_covariance_triangle_and_predicts_the_same_bits():
    """A fitted GWR goes to the run's scratch folder with its coefficient covariance's
    upper triangle (all the prediction reads): smaller, same predictions to the bit."""
    import pickle

    from ssm_downscaling.core.downscale import GWRDownscaler

    rng = np.random.default_rng(5)
    shape = (6, 7)
    n = shape[0] * shape[1]
    X = np.column_stack([rng.normal(300, 5, n), rng.uniform(0.1, 0.8, n), rng.uniform(0.1, 0.3, n)])
    y = 0.3 - 0.01 * (X[:, 0] - 300) - 0.05 * X[:, 1] + rng.normal(0, 0.01, n)
    est = GWRDownscaler(predictors=("lst", "ndvi", "albedo"), bandwidth=80e3).fit(
        _day(y, X, ("lst", "ndvi", "albedo"), shape))
    blob = pickle.dumps(est)
    back = pickle.loads(blob)
    p = est.cov_.shape[1]
    iu = np.triu_indices(p)
    assert back.cov_.shape == est.cov_.shape
    np.testing.assert_array_equal(back.cov_[:, iu[0], iu[1]], est.cov_[:, iu[0], iu[1]])
    np.testing.assert_allclose(back.cov_, np.swapaxes(back.cov_, 1, 2), rtol=0, atol=0)  # mirrored
    np.testing.assert_allclose(back.cov_, est.cov_, rtol=1e-12, atol=1e-18)
    est.cov_ = est.cov_.copy()
    full = len(pickle.dumps({**est.__dict__}))
    assert len(blob) < full - 8 * n * (p * p - len(iu[0])) * 0.9
    fine = np.column_stack([rng.normal(300, 5, 50), rng.uniform(0.1, 0.8, 50), rng.uniform(0.1, 0.3, 50)])
    blk = FineBlock(fine, rng.uniform(0, shape[0] - 1, 50), rng.uniform(0, shape[1] - 1, 50), rng.integers(0, n, 50))
    for a, b in zip(est.predict(blk), back.predict(blk)):
        assert a.tobytes() == b.tobytes()
    assert pickle.loads(pickle.dumps(GWRDownscaler())).__dict__.keys() == GWRDownscaler().__dict__.keys()  # unfitted
