"""GWR: agreement with mgwr and a dense weighted least squares, bandwidth search, numba vs numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ssm_downscaling.core.accel import numba_disabled
from ssm_downscaling.core.downscale import CoarseData, GWRDownscaler, gwr_aicc, gwr_fit, select_bandwidth
from ssm_downscaling.core.downscale import gwr_kernels as gk
from ssm_downscaling.core.downscale.base import FineBlock
from ssm_downscaling.core.downscale.gwr_kernels import apply_fields, local_fits

mgwr_gwr = pytest.importorskip("mgwr.gwr")
mgwr_sel = pytest.importorskip("mgwr.sel_bw")


@pytest.fixture(autouse=True)
def _mgwr_without_jit(monkeypatch):
    """mgwr compiles its distance function with numba on first use (uncached, ~10 s);
    its plain Python version computes the same distances."""
    import mgwr.kernels

    f = mgwr.kernels.local_cdist
    for mod in (mgwr.kernels, mgwr_sel):
        monkeypatch.setattr(mod, "local_cdist", getattr(f, "py_func", f))


def coarse_sample(n_side: int = 9, seed: int = 3):
    """Cells of a 36 km grid with three predictors and a spatially varying relation."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:n_side, 0:n_side]
    coords = np.column_stack([c.ravel() * 36e3, -r.ravel() * 36e3])
    X = np.column_stack([rng.normal(300, 5, r.size), rng.uniform(0.1, 0.8, r.size), rng.uniform(0.1, 0.3, r.size)])
    slope = -0.01 * (1 + coords[:, 0] / coords[:, 0].max())
    y = 0.3 + slope * (X[:, 0] - 300) - 0.05 * X[:, 1] + 0.1 * X[:, 2] + rng.normal(0, 0.01, r.size)
    return coords, y, X


@pytest.mark.parametrize("kernel,bw", [("gaussian", 60e3), ("gaussian", 150e3), ("bisquare", 150e3)])
def test_gwr_matches_mgwr(kernel, bw):
    coords, y, X = coarse_sample()
    ours = gwr_fit(coords, y, X, bw, kernel)
    ref = mgwr_gwr.GWR(coords, y[:, None], X, bw, kernel=kernel, fixed=True, n_jobs=1).fit()
    np.testing.assert_allclose(ours.params, ref.params, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.influ, ref.influ.ravel(), atol=1e-9)
    np.testing.assert_allclose(ours.bse, ref.bse, rtol=1e-6, atol=1e-9)
    assert ours.tr_S == pytest.approx(ref.tr_S, rel=1e-9)
    assert ours.sigma2 == pytest.approx(ref.sigma2, rel=1e-9)
    assert ours.aicc == pytest.approx(ref.aicc, rel=1e-9)


def test_gwr_matches_dense_weighted_least_squares():
    coords, y, X = coarse_sample(7)
    bw = 80e3
    D = np.column_stack([np.ones(len(y)), X])
    fit = gwr_fit(coords, y, X, bw, "gaussian")
    for i in (0, 10, 24, 48):
        d = np.hypot(*(coords - coords[i]).T)
        w = np.exp(-0.5 * (d / bw) ** 2)
        sw = np.sqrt(w)
        beta, *_ = np.linalg.lstsq(D * sw[:, None], y * sw, rcond=None)
        np.testing.assert_allclose(fit.params[i], beta, atol=1e-8)


def test_infinite_bandwidth_is_ordinary_least_squares():
    coords, y, X = coarse_sample(6)
    D = np.column_stack([np.ones(len(y)), X])
    beta, *_ = np.linalg.lstsq(D, y, rcond=None)
    fit = gwr_fit(coords, y, X, math.inf)
    np.testing.assert_allclose(fit.params, np.tile(beta, (len(y), 1)), atol=1e-9)
    assert fit.tr_S == pytest.approx(D.shape[1], abs=1e-9)


def test_pooled_duplicates_equal_stacked_weighted_least_squares():
    coords, y, X = coarse_sample(6)
    rng = np.random.default_rng(0)
    y2 = y + rng.normal(0, 0.01, y.size)
    cc, yy, XX = np.vstack([coords, coords]), np.concatenate([y, y2]), np.vstack([X, X])
    fit = gwr_fit(cc, yy, XX, 70e3)
    D = np.column_stack([np.ones(len(yy)), XX])
    i = 7
    w = np.exp(-0.5 * (np.hypot(*(cc - cc[i]).T) / 70e3) ** 2)
    beta, *_ = np.linalg.lstsq(D * np.sqrt(w)[:, None], yy * np.sqrt(w), rcond=None)
    np.testing.assert_allclose(fit.params[i], beta, atol=1e-8)
    np.testing.assert_allclose(fit.params[i], fit.params[i + len(y)], atol=0)


@pytest.mark.parametrize("kernel", ["gaussian", "bisquare"])
def test_bandwidth_search_agrees_with_mgwr(kernel):
    coords, y, X = coarse_sample(9)
    bw, aicc, hist = select_bandwidth(coords, y, X, kernel)
    ref_bw = mgwr_sel.Sel_BW(coords, y[:, None], X, kernel=kernel, fixed=True, n_jobs=1).search(tol=1e-3)
    ref_aicc = mgwr_gwr.GWR(coords, y[:, None], X, ref_bw, kernel=kernel, fixed=True, n_jobs=1).fit().aicc
    assert aicc == pytest.approx(gwr_aicc(coords, y, X, bw, kernel))
    # same optimum: bandwidths within 2 %, and ours is no worse than mgwr's
    assert bw == pytest.approx(ref_bw, rel=0.02)
    assert aicc <= ref_aicc + 1e-3
    assert len(hist) < 40


def test_search_prefers_global_fit_for_a_global_relation():
    rng = np.random.default_rng(1)
    coords, _, X = coarse_sample(8)
    y = 0.2 + 0.01 * X[:, 0] - 0.1 * X[:, 1] + rng.normal(0, 0.01, len(X))
    bw, _, _ = select_bandwidth(coords, y, X)
    assert bw == math.inf or bw > 500e3


def test_numba_and_numpy_local_fits_agree():
    coords, y, X = coarse_sample(8)
    D = np.column_stack([np.ones(len(y)), X])
    at = coords[::3] + 5e3
    for kern, bw in ((0, 50e3), (1, 120e3), (0, math.inf)):
        a = local_fits(coords, y, D, at, bw, kern, True)
        with numba_disabled():
            b = local_fits(coords, y, D, at, bw, kern, True)
        for u, v in zip(a, b):  # raw (unstandardised) predictors: X'WX conditioned ~1e8, so
            np.testing.assert_allclose(u, v, rtol=1e-8, atol=1e-12)  # summation order shows at 1e-9


def test_singular_local_fit_gives_nan_not_garbage():
    coords, y, X = coarse_sample(5)
    D = np.column_stack([np.ones(len(y)), X])
    beta, _, _ = local_fits(coords, y, D, coords[:3], 10e3, 1, False)  # bisquare: only the cell itself
    assert np.isnan(beta).all()
    assert gwr_aicc(coords, y, X, 10e3, "bisquare") == math.inf


def test_apply_fields_numba_numpy_and_known_values():
    rng = np.random.default_rng(2)
    R, C, p = 3, 4, 3
    coef = rng.normal(size=(R, C, p))
    A = rng.normal(size=(R, C, p, p))
    cov = np.einsum("rcab,rcdb->rcad", A, A)
    X = rng.normal(size=(50, p - 1))
    fr = rng.uniform(-0.7, R - 0.3, 50)
    fc = rng.uniform(-0.7, C - 0.3, 50)
    X[3, 0] = np.nan
    pred, se = apply_fields(X, fr, fc, coef, cov, 0.01)
    with numba_disabled():
        pred2, se2 = apply_fields(X, fr, fc, coef, cov, 0.01)
    np.testing.assert_allclose(pred, pred2, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(se, se2, rtol=1e-12, equal_nan=True)
    assert np.isnan(pred[3]) and np.isnan(se[3])
    # at a node the coefficients are the node's own
    p0, s0 = apply_fields(np.array([[1.5, -2.0]]), np.array([1.0]), np.array([2.0]), coef, cov, 0.0)
    x = np.array([1.0, 1.5, -2.0])
    assert p0[0] == pytest.approx(coef[1, 2] @ x)
    assert s0[0] == pytest.approx(math.sqrt(x @ cov[1, 2] @ x))


def test_apply_fields_runs_chunks_and_the_quadratic_form():
    """Pixels come in runs between the same four nodes (as along a 1 km row), with missing
    pixels inside runs; every chunk size gives the same bytes, numba and numpy agree, and
    the standard error is sqrt(sigma2 + x' C x) of the bilinearly interpolated C."""
    rng = np.random.default_rng(5)
    R, C, p = 4, 5, 4
    coef = rng.normal(size=(R, C, p))
    A = rng.normal(size=(R, C, p, p))
    cov = np.einsum("rcab,rcdb->rcad", A, A)
    rows, cols = np.divmod(np.arange(40 * 48), 48)  # a 40 x 48 px grid, 12 px per node spacing
    fr = (rows + 0.5) / 12.0 - 0.5
    fc = (cols + 0.5) / 12.0 - 0.5
    X = np.asfortranarray(rng.normal(size=(fr.size, p - 1)))
    X[[5, 6, 300], 1] = np.nan
    fr[77] = np.nan
    want_p, want_s = apply_fields(X, fr, fc, coef, cov, 0.02)
    cpk = gk.pack_covariance(cov)
    for chunk in (1, 7, 48, 10_000):
        got_p, got_s = np.empty(fr.size), np.empty(fr.size)
        gk._apply(X, fr, fc, coef, cpk, 0.02, got_p, got_s, chunk)
        np.testing.assert_array_equal(got_p, want_p)
        np.testing.assert_array_equal(got_s, want_s)
    with numba_disabled():
        np_p, np_s = apply_fields(X, fr, fc, coef, cov, 0.02)
    np.testing.assert_allclose(np_p, want_p, rtol=1e-13, equal_nan=True)
    np.testing.assert_allclose(np_s, want_s, rtol=1e-13, equal_nan=True)
    bad = np.zeros(fr.size, bool)
    bad[[5, 6, 300, 77]] = True
    assert np.isnan(want_p[bad]).all() and np.isnan(want_s[bad]).all() and np.isfinite(want_s[~bad]).all()
    # the direct formula, pixel by pixel
    for i in rng.choice(np.flatnonzero(~bad), 40, replace=False):
        r0 = min(max(math.floor(fr[i]), 0), R - 2)
        c0 = min(max(math.floor(fc[i]), 0), C - 2)
        tr = min(max(fr[i] - r0, 0.0), 1.0)
        tc = min(max(fc[i] - c0, 0.0), 1.0)
        w = {(0, 0): (1 - tr) * (1 - tc), (0, 1): (1 - tr) * tc, (1, 0): tr * (1 - tc), (1, 1): tr * tc}
        b = sum(v * coef[r0 + dr, c0 + dc] for (dr, dc), v in w.items())
        Ci = sum(v * cov[r0 + dr, c0 + dc] for (dr, dc), v in w.items())
        x = np.concatenate([[1.0], X[i]])
        assert want_p[i] == pytest.approx(b @ x, rel=1e-12)
        assert want_s[i] == pytest.approx(math.sqrt(0.02 + x @ Ci @ x), rel=1e-12)
    # the packed triangle: x' C x = sum_t u_t c_t
    x = rng.normal(size=p)
    a, b = np.triu_indices(p)
    assert (x[a] * x[b]) @ gk.pack_covariance(cov[0, 0]) == pytest.approx(x @ cov[0, 0] @ x, rel=1e-12)


def test_unique_locations_equal_numpy_unique():
    from ssm_downscaling.core.downscale.gwr import _unique_locations

    rng = np.random.default_rng(9)
    base = np.round(rng.normal(size=(300, 2)) * 5.0)  # ties in x with other y, and repeated rows
    base[:40, 0] = 1.0
    coords = np.concatenate([base, base[::3], [[0.0, -0.0], [-0.0, 0.0]]])
    rng.shuffle(coords)
    uniq, inv = _unique_locations(coords)
    want_u, want_i = np.unique(coords, axis=0, return_inverse=True)
    np.testing.assert_array_equal(uniq, want_u)
    np.testing.assert_array_equal(inv, want_i.ravel())
    np.testing.assert_array_equal(uniq[inv], coords)
    u0, i0 = _unique_locations(np.zeros((0, 2)))
    assert u0.shape == (0, 2) and i0.shape == (0,)


def _coarse_data(coords, y, X, shape):
    return CoarseData(y, X, np.ones(len(y), bool), coords, shape, ("lst", "ndvi", "albedo"))


def test_downscaler_coefficients_equal_mgwr_in_raw_units():
    coords, y, X = coarse_sample(8)
    day = _coarse_data(coords, y, X, (8, 8))
    est = GWRDownscaler(predictors=("lst", "ndvi", "albedo"), bandwidth=90e3).fit(day)
    ref = mgwr_gwr.GWR(coords, y[:, None], X, 90e3, kernel="gaussian", fixed=True, n_jobs=1).fit()
    np.testing.assert_allclose(est.coef_, ref.params, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.einsum("naa->na", est.cov_)), ref.bse, rtol=1e-6)
    assert est.sigma2_ == pytest.approx(ref.sigma2, rel=1e-9)
    assert est.aicc_ == pytest.approx(ref.aicc, rel=1e-9)


def test_exactly_linear_field_recovered_with_wide_bandwidth():
    coords, _, X = coarse_sample(6)
    y = 0.9 - 0.002 * X[:, 0]  # exactly linear in LST
    est = GWRDownscaler(predictors=("lst", "ndvi", "albedo"), bandwidth=1e7).fit(_coarse_data(coords, y, X, (6, 6)))
    np.testing.assert_allclose(est.coef_[:, 0], 0.9, atol=1e-9)
    np.testing.assert_allclose(est.coef_[:, 1], -0.002, atol=1e-12)
    np.testing.assert_allclose(est.coef_[:, 2:], 0.0, atol=1e-9)
    fine = np.array([[290.0, 0.5, 0.2], [310.0, 0.1, 0.25]])
    pred, se = est.predict(FineBlock(fine, np.array([0.2, 4.7]), np.array([3.3, 0.1]), np.array([0, 1])))
    np.testing.assert_allclose(pred, 0.9 - 0.002 * fine[:, 0], atol=1e-9)
    assert (se < 1e-6).all()


def test_downscaler_rejects_unknown_kernel_and_needs_fit():
    coords, y, X = coarse_sample(5)
    with pytest.raises(ValueError, match="kernel"):
        GWRDownscaler(kernel="boxcar").fit(_coarse_data(coords, y, X, (5, 5)))
    with pytest.raises(RuntimeError, match="not fitted"):
        GWRDownscaler().predict_coarse(_coarse_data(coords, y, X, (5, 5)))
    est = GWRDownscaler(kernel="bisquare", bandwidth=5e4)
    assert est.clone().get_params() == est.get_params()


def test_locally_constant_predictor_is_ridge_penalised_and_the_search_finds_an_optimum():
    """A flat region (the DEM constant over the left half, like a delta): small bandwidths
    make local fits singular; the ridge keeps them finite, so the AICc is finite and the
    search ends at a real optimum, not at the edge of the singular range."""
    coords, y, X = coarse_sample(12, seed=5)
    dem = X[:, 1].copy()
    flat = coords[:, 0] < np.median(coords[:, 0])
    dem[flat] = 2.0  # metres, everywhere in the flat part
    X2 = np.column_stack([X[:, 0], dem])
    rng = np.random.default_rng(7)
    y2 = 0.25 + 0.004 * (X[:, 0] - 300) + rng.normal(0, 0.01, len(y))
    D = np.column_stack([np.ones(len(y)), (X2 - X2.mean(0)) / X2.std(0)])
    beta, minv, cov = local_fits(coords, y2, D, coords, 40e3, 0, True)
    assert np.isfinite(beta).all() and np.isfinite(cov).all()
    with numba_disabled():
        beta_np, _, _ = local_fits(coords, y2, D, coords, 40e3, 0, True)
    np.testing.assert_allclose(beta, beta_np, rtol=1e-6, atol=1e-8)  # ridge: rounding differs
    fit = gwr_fit(coords, y2, X2, 40e3)
    assert np.isfinite(fit.aicc) and (fit.bse > 0).all()
    bw, aicc, hist = select_bandwidth(coords, y2, X2)
    finite = [h for h in hist if math.isfinite(h[1])]
    assert math.isfinite(aicc) and len(finite) == len(hist)
    lo = min(h[0] for h in hist)
    assert bw > lo * 1.05  # an interior optimum (or the global fit), not the lower edge


def test_features_are_column_major_and_predict_the_same_as_row_major():
    """features() fills one contiguous column per predictor; the prediction kernels take
    any layout and give the bytes of a row-major matrix (numba and numpy)."""
    from ssm_downscaling.core.downscale.gwr import INTERACTION, LST_CENTRE_K

    rng = np.random.default_rng(5)
    raw = {k: rng.normal(300 if k == "lst" else 0.5, 5 if k == "lst" else 0.2, (7, 9)).astype(np.float32)
           for k in ("lst", "ndvi", "albedo", "elevation", "lst_diff")}
    for predictors in (("lst", "ndvi", "albedo"), ("lst", "ndvi", INTERACTION, "albedo")):
        est = GWRDownscaler(predictors=predictors)
        X = est.features(raw)
        assert X.shape == (63, len(est.feature_names)) and X.flags.f_contiguous and X.dtype == np.float64
        ref = np.column_stack([
            (raw["lst"].astype(np.float64).ravel() - LST_CENTRE_K) * raw["ndvi"].astype(np.float64).ravel()
            if n == INTERACTION else raw[n].astype(np.float64).ravel() for n in est.feature_names])
        np.testing.assert_array_equal(X, ref)
    R, C, k = 3, 4, X.shape[1]
    coef = rng.normal(size=(R, C, k + 1))
    A = rng.normal(size=(R, C, k + 1, k + 1))
    cov = A @ np.swapaxes(A, -1, -2)
    fr, fc = rng.uniform(0, R - 1, 63), rng.uniform(0, C - 1, 63)
    want = apply_fields(np.ascontiguousarray(X), fr, fc, coef, cov, 0.01)
    for got in (apply_fields(X, fr, fc, coef, cov, 0.01), _numpy(apply_fields, X, fr, fc, coef, cov, 0.01)):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-14)


def _numpy(fn, *args):
    with numba_disabled():
        return fn(*args)
