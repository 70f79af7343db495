"""GWR engine speed-ups: tiled neighbour sums vs the dense numpy path, kernel truncation
and its error bound, the adaptive bandwidth search vs the exact one, the global candidate
as one least-squares fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ssm_downscaling.core.accel import numba_disabled, numba_enabled
from ssm_downscaling.core.downscale import gwr_aicc, gwr_fit, select_bandwidth
from ssm_downscaling.core.downscale.gwr import SEARCH_EPS, SEARCH_EPS_MIN_SPACINGS, aicc_truncation_bound
from ssm_downscaling.core.downscale.gwr_kernels import local_fits, neighbour_bins


def scattered_cells(n: int, seed: int = 0, k: int = 3):
    """Centres of a jittered, rotated 36 km lattice (not axis-aligned, like EASE cells seen
    in another CRS), smooth predictors and a relation whose slopes vary in space."""
    rng = np.random.default_rng(seed)
    side = int(math.ceil(math.sqrt(n)))
    r, c = np.divmod(np.arange(n), side)
    a = 0.3
    x = 36e3 * (c * math.cos(a) - r * math.sin(a)) + rng.normal(0, 2e3, n)
    y = 36e3 * (c * math.sin(a) + r * math.cos(a)) * (1 + 0.002 * c) + rng.normal(0, 2e3, n)
    coords = np.column_stack([x, y])
    X = np.column_stack([np.sin(coords[:, 0] / (150e3 + 60e3 * j)) + 0.6 * rng.normal(size=n) for j in range(k)])
    slope = 0.02 * (1 + np.cos(coords[:, 1] / 300e3))
    yv = 0.25 + slope * X[:, 0] - 0.01 * X[:, 1] + rng.normal(0, 0.01, n)
    return coords, yv, X


def _design(X):
    return np.column_stack([np.ones(len(X)), X])


@pytest.mark.parametrize("kern,bw", [(0, 40e3), (0, 150e3), (1, 90e3), (1, 400e3), (0, math.inf)])
def test_tiled_sums_equal_the_dense_numpy_path(kern, bw):
    if not numba_enabled():
        pytest.skip("numba not available")
    coords, y, X = scattered_cells(900, seed=1)
    D = _design(X)
    # regression points: on the cells, between them, and outside the cloud of cells
    at = np.vstack([coords[::7], coords[::11] + [13e3, -9e3], coords.min(0) - [300e3, 50e3], coords.max(0) + 80e3])
    a = local_fits(coords, y, D, at, bw, kern, True)
    with numba_disabled():
        b = local_fits(coords, y, D, at, bw, kern, True)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-12)
    assert np.isfinite(a[0][:-2]).all()  # NaN (no neighbour with a weight) only far outside


def test_neighbour_bins_cover_every_observation_once():
    coords, _, _ = scattered_cells(500, seed=2)
    order, starts, x0, y0, h, nbx, nby, nreach = neighbour_bins(coords, 100e3)
    assert starts[0] == 0 and starts[-1] == len(coords) and (np.diff(starts) >= 0).all()
    np.testing.assert_array_equal(np.sort(order), np.arange(len(coords)))
    b = np.clip(((coords[order] - [x0, y0]) // h).astype(int), 0, [nbx - 1, nby - 1])
    assert (np.diff(b[:, 1] * nbx + b[:, 0]) >= 0).all()
    assert nreach * h >= 100e3


@pytest.mark.parametrize("eps", [1e-2, *SEARCH_EPS, 1e-4])
def test_truncation_changes_the_aicc_by_less_than_the_stated_bound(eps):
    """|AICc(eps) - AICc(exact)| <= C n eps at bandwidths of 2 or more cell spacings (where
    the search uses coarse truncations), also on a locally constant predictor
    (ridge-penalised fits); and well inside it (<= n eps C / 5)."""
    coords, y, X = scattered_cells(1600, seed=3)
    flat = X.copy()
    flat[coords[:, 0] < np.median(coords[:, 0]), 1] = 0.5
    worst = 0.0
    for XX in (X, flat):
        for bw in (SEARCH_EPS_MIN_SPACINGS * 36e3, 90e3, 250e3):
            exact = gwr_aicc(coords, y, XX, bw, eps=0.0)
            trunc = gwr_aicc(coords, y, XX, bw, eps=eps)
            assert math.isfinite(exact)
            worst = max(worst, abs(trunc - exact) / aicc_truncation_bound(len(y), eps))
    assert 0 < worst <= 0.2


def test_truncation_at_the_fit_eps_leaves_coefficients_unchanged():
    """Weights below 1e-12 dropped: coefficients, hat values and standard errors equal the
    untruncated ones to 1e-9 (their stated bound: relative ~eps times the local condition)."""
    coords, y, X = scattered_cells(1200, seed=4)
    for bw in (30e3, 80e3, 300e3):
        a = gwr_fit(coords, y, X, bw)
        b = gwr_fit(coords, y, X, bw, eps=0.0)
        np.testing.assert_allclose(a.params, b.params, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a.influ, b.influ, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a.bse, b.bse, rtol=1e-9, atol=1e-12)
        assert a.aicc == pytest.approx(b.aicc, rel=1e-10)
    # and a coarse truncation moves the coefficients by about eps, relative
    a = gwr_fit(coords, y, X, 80e3, eps=1e-4)
    b = gwr_fit(coords, y, X, 80e3, eps=0.0)
    assert 0 < np.abs(a.params - b.params).max() <= 1e-2 * np.abs(b.params).max()


def test_global_candidate_is_one_least_squares_fit():
    coords, y, X = scattered_cells(700, seed=5)
    D = _design(X)
    beta, *_ = np.linalg.lstsq(D, y, rcond=None)
    rss = float(((y - D @ beta) ** 2).sum())
    n, p = D.shape
    expect = n * math.log(rss / n) + n * math.log(2 * math.pi) + n * (n + p) / (n - 2 - p)
    assert gwr_aicc(coords, y, X, math.inf) == pytest.approx(expect, rel=1e-12)
    fit = gwr_fit(coords, y, X, math.inf)
    np.testing.assert_allclose(fit.params, np.tile(beta, (n, 1)), atol=1e-10)
    assert fit.tr_S == pytest.approx(p, rel=1e-10)


@pytest.mark.parametrize("n,seed", [(600, 6), (2500, 7)])
def test_adaptive_search_takes_the_steps_of_the_exact_search(n, seed):
    """The adaptive search (coarse truncations first) ends at the bandwidth of the plain
    golden section at the fit's truncation and at the untruncated (exact) one, with the
    same AICc; every candidate is one of the exact search's."""
    coords, y, X = scattered_cells(n, seed=seed)
    bw, aicc, hist = select_bandwidth(coords, y, X, refine=False)
    bw_p, aicc_p, hist_p = select_bandwidth(coords, y, X, adaptive=False, refine=False)
    bw_x, aicc_x, hist_x = select_bandwidth(coords, y, X, eps=0.0, adaptive=False, refine=False)
    assert bw == bw_p == bw_x
    assert aicc == aicc_p
    assert aicc == pytest.approx(aicc_x, rel=1e-10)
    assert [h[0] for h in hist] == [h[0] for h in hist_p] == [h[0] for h in hist_x]
    assert 1 < bw / 36e3 < 40  # an interior optimum, the search did work


@pytest.mark.parametrize("n,seed", [(600, 6), (2500, 7), (900, 3)])
def test_parabolic_refinement_finds_the_golden_optimum_with_fewer_evaluations(n, seed):
    """Brent's steps after the golden section's bracketing end at the exact golden
    section's optimum (same bandwidth to the search tolerance, AICc no worse than the
    golden one's by more than the curvature over that tolerance allows) with fewer
    evaluations."""
    coords, y, X = scattered_cells(n, seed=seed)
    bw, aicc, hist = select_bandwidth(coords, y, X)
    bw_x, aicc_x, hist_x = select_bandwidth(coords, y, X, eps=0.0, adaptive=False, refine=False)
    assert abs(math.log(bw / bw_x)) <= 0.01
    assert aicc <= aicc_x + 1e-3 * abs(aicc_x) and aicc == pytest.approx(aicc_x, abs=0.5)
    assert len(hist) < len(hist_x)
    assert 1 < bw / 36e3 < 40


def test_brent_on_a_parabola_and_on_a_kinked_function():
    """The refinement alone: the minimum of a parabola in a few steps, and of a function
    no parabola fits (|x - m|) through its golden safeguard, to the tolerance."""
    from ssm_downscaling.core.downscale.gwr import GOLDEN, _brent

    for fn, m in ((lambda x: (x - 0.3) ** 2, 0.3), (lambda x: abs(x - 0.71), 0.71)):
        cache: dict = {}

        def fx(x, fn=fn, cache=cache):
            cache[x] = (0, fn(x))
            return cache[x][1]

        a, b = 0.0, 1.0
        x1, x2 = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
        fx(x1), fx(x2)
        _brent(fx, a, b, x2, cache, 0, 1e-4, 100)
        best = min(cache, key=lambda k: cache[k][1])
        assert abs(best - m) < 1e-4
        assert len(cache) < 40


def test_adaptive_search_on_a_locally_constant_predictor_and_bisquare():
    coords, y, X = scattered_cells(900, seed=8)
    X = X.copy()
    X[coords[:, 1] > np.median(coords[:, 1]), 1] = 2.0  # flat half: ridge-penalised local fits
    for kernel in ("gaussian", "bisquare"):
        bw, aicc, hist = select_bandwidth(coords, y, X, kernel, refine=False)
        bw_x, aicc_x, _ = select_bandwidth(coords, y, X, kernel, eps=0.0, adaptive=False, refine=False)
        assert bw == bw_x and aicc == pytest.approx(aicc_x, rel=1e-10)
        assert all(math.isfinite(h[1]) for h in hist)
        bw_r, aicc_r, _ = select_bandwidth(coords, y, X, kernel)  # with the parabolic refinement
        assert abs(math.log(bw_r / bw_x)) <= 0.01 and aicc_r == pytest.approx(aicc_x, abs=0.5)


def test_search_numba_and_numpy_agree():
    coords, y, X = scattered_cells(400, seed=9)
    for refine in (False, True):
        a = select_bandwidth(coords, y, X, refine=refine)
        with numba_disabled():
            b = select_bandwidth(coords, y, X, refine=refine)
        if refine:  # parabolic steps from values equal to rounding: the same point to rounding
            assert a[0] == pytest.approx(b[0], rel=1e-6) and a[1] == pytest.approx(b[1], rel=1e-10)
        else:
            assert a[0] == b[0] and a[1] == pytest.approx(b[1], rel=1e-12)


def _grid_day(R, C, seed, day):
    from ssm_downscaling.core.downscale import CoarseData

    rng = np.random.default_rng(seed)
    r, c = np.divmod(np.arange(R * C), C)
    xy = np.column_stack([c * 36e3, -r * 36e3])
    x = np.sin(r / 3.0 + seed) + np.cos(c / 4.0) + rng.normal(0, 0.5, R * C)
    y = 0.3 + 0.02 * x * (1 + c / C) + rng.normal(0, 0.005, R * C)
    return CoarseData(y, x[:, None], np.ones(R * C, bool), xy, (R, C), ("x0",), day=day)


def test_anomaly_gain_reuses_given_day_bandwidths_without_searching(monkeypatch):
    from ssm_downscaling.core.downscale import GWRDownscaler
    from ssm_downscaling.core.downscale import gwr as gwr_mod
    from ssm_downscaling.core.downscale.scale import anomaly_gain, fit_template

    days = [(_grid_day(12, 14, s, 700000 + s), np.full(12 * 14, 50)) for s in range(3)]
    bws = {700000 + s: 80e3 + 10e3 * s for s in range(3)}
    template = GWRDownscaler(predictors=("x0",))
    assert fit_template(template, 700001, bws).bandwidth == 90e3
    assert fit_template(template, 699999, bws).bandwidth is None  # no entry: its own search
    assert fit_template(GWRDownscaler(predictors=("x0",), bandwidth=5e4), 700001, bws).bandwidth == 5e4
    searched = anomaly_gain(template, days)
    # with the days' bandwidths no search runs, and each day's fits use its own bandwidth
    monkeypatch.setattr(gwr_mod, "select_bandwidth", lambda *a, **k: pytest.fail("searched"))
    k, pairs = anomaly_gain(template, days, bandwidths=bws)
    per_day = [anomaly_gain(GWRDownscaler(predictors=("x0",), bandwidth=bws[d.day]), [(d, n)]) for d, n in days]
    assert pairs == searched[1] == sum(p for _, p in per_day)
    assert 0 < k <= 2 and k != searched[0]


def test_polynomial_gaussian_weight_is_exp_to_2e_14_and_the_same_bits_in_both_paths():
    from ssm_downscaling.core.downscale import gwr_kernels as gk

    z2 = np.concatenate([np.linspace(0.0, gk.POLY_Z2_MAX, 200_001), [gk.GAUSS_CUT2, 1e-300, 1e-9]])
    w = gk.gauss_weight_poly(z2)
    ref = np.exp(-0.5 * z2)
    assert np.max(np.abs(w - ref) / ref) < 2e-14
    assert gk.gauss_weight_poly(0.0) == pytest.approx(1.0, abs=2e-15)
    assert gk.cutoff2(gk.GAUSS_EPS) <= gk.POLY_Z2_MAX  # the default truncation takes this path
    for lev in SEARCH_EPS:  # and so does every coarser level of the search
        assert gk.cutoff2(lev) <= gk.POLY_Z2_MAX
    # the compiled row loop and the numpy weights: the same polynomial, the same bits, the
    # same truncation (including pairs just inside and just outside the cut)
    rng = np.random.default_rng(3)
    ox, oy = rng.uniform(-4e5, 4e5, 5000), rng.uniform(-4e5, 4e5, 5000)
    bw = 55e3
    ox[:2] = [bw * math.sqrt(gk.GAUSS_CUT2) * (1 - 1e-12), bw * math.sqrt(gk.GAUSS_CUT2) * (1 + 1e-12)]
    oy[:2] = 0.0
    d2 = ox * ox + oy * oy
    want = gk.weights_np(d2, bw, gk.GAUSSIAN)
    assert want[0] > 0 and want[1] == 0
    if numba_enabled():
        out = np.empty_like(ox)
        kept = gk._gauss_row(ox, oy, 0.0, 0.0, bw * bw, gk.GAUSS_CUT2, out)
        np.testing.assert_array_equal(out, want)
        assert kept == int((want > 0).sum())
    # beyond the polynomial's range (no truncation) the weights are libm's exp
    np.testing.assert_array_equal(gk.weights_np(d2, bw, gk.GAUSSIAN, eps=0.0), np.exp(-0.5 * d2 / (bw * bw)))


def test_fit_terms_equal_the_gathered_einsums_and_a_hand_case():
    from ssm_downscaling.core.downscale.gwr_kernels import fit_terms

    # one location, identity inverse: influence = |x|^2, prediction = x . beta
    D = np.array([[1.0, 2.0], [1.0, -1.0]])
    beta = np.array([[0.5, 0.25]])
    minv = np.eye(2)[None]
    predy, influ = fit_terms(D, beta, minv, np.array([0, 0]))
    np.testing.assert_allclose(predy, [1.0, 0.25])
    np.testing.assert_allclose(influ, [5.0, 2.0])
    rng = np.random.default_rng(5)
    n, m, p = 500, 80, 4
    D = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    beta = rng.normal(size=(m, p))
    A = rng.normal(size=(m, p, p))
    minv = A @ A.transpose(0, 2, 1)
    loc = rng.integers(0, m, n)
    want_p = np.einsum("np,np->n", D, beta[loc])
    want_i = np.einsum("na,nab,nb->n", D, minv[loc], D)
    for ctx in (numba_disabled, lambda: __import__("contextlib").nullcontext()):
        with ctx():
            got_p, got_i = fit_terms(D, beta, minv, loc)
        np.testing.assert_allclose(got_p, want_p, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(got_i, want_i, rtol=1e-13, atol=1e-12)
