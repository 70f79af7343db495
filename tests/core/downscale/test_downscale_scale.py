"""Scale transfer: super-cell aggregation and the within-cell anomaly gain."""

from __future__ import annotations

import numpy as np
import pytest

from ssm_downscaling.core.downscale import CoarseData, GWRDownscaler, build_membership, downscale_arrays
from ssm_downscaling.core.downscale.scale import anomaly_gain, combine_anomalies, super_cells


def _day(y, X, shape, seed=0):
    R, C = shape
    r, c = np.divmod(np.arange(R * C), C)
    xy = np.column_stack([c * 36e3, -r * 36e3])
    return CoarseData(y, X, np.ones(R * C, bool), xy, shape, tuple(f"x{j}" for j in range(X.shape[1])))


def test_super_cells_are_weighted_means_of_their_members():
    R, C = 4, 5
    rng = np.random.default_rng(0)
    y = rng.random(R * C)
    X = rng.random((R * C, 2))
    count = rng.integers(1, 10, R * C)
    y[3] = np.nan
    sup, sidx, fr, fc = super_cells(_day(y, X, (R, C)), count, (1, 0))
    assert sup.shape == (3, 3)
    members = np.flatnonzero(sidx == 4)  # rows 1-2, cols 2-3
    np.testing.assert_array_equal(np.sort(members), [7, 8, 12, 13])
    w = count[members]
    assert sup.y[4] == pytest.approx((y[members] * w).sum() / w.sum())
    np.testing.assert_allclose(sup.X[4], (X[members] * w[:, None]).sum(0) / w.sum())
    # cell (1, 2) is the top-left quarter of super-cell (1, 1): a quarter node spacing before it
    assert (fr[7], fc[7]) == (pytest.approx(0.75), pytest.approx(0.75))
    assert sup.usable[0] and not sup.usable[1]  # super-cell (0, 1) has one observed member (cell 3 is missing)


def test_gain_is_one_for_an_exact_linear_relation_and_half_for_halved_anomalies():
    R, C = 10, 10
    rng = np.random.default_rng(1)
    # a smooth large-scale part and a cell-to-cell part of the predictor
    r, c = np.divmod(np.arange(R * C), C)
    big = np.sin(r / 4.0) + np.cos(c / 5.0)
    small = rng.normal(0, 1, R * C)
    x = big + small
    count = np.full(R * C, 100)
    est = GWRDownscaler(predictors=("x0",), bandwidth=1e9)
    k, pairs = anomaly_gain(est, [(_day(0.3 + 0.02 * x, x[:, None], (R, C)), count)])
    assert k == pytest.approx(1.0, abs=1e-9) and pairs > 50
    # soil moisture follows the large-scale part fully but the cell-to-cell part only half
    days = []
    for s in range(5):
        rr = np.random.default_rng(10 + s)
        small = rr.normal(0, 1, R * C)
        big = np.sin(r / 4.0 + s) + np.cos(c / 5.0 - s)
        days.append((_day(0.3 + 0.02 * big + 0.01 * small, (big + small)[:, None], (R, C)), count))
    k, _ = anomaly_gain(est, days)
    assert 0.3 < k < 0.8


def test_gain_defaults_to_one_without_enough_cells():
    y = np.array([0.1, 0.2, 0.3, 0.4])
    k, pairs = anomaly_gain(GWRDownscaler(predictors=("x0",)), [(_day(y, y[:, None], (2, 2)), np.ones(4, int))])
    assert (k, pairs) == (1.0, 0)


def test_combine_anomalies_scales_and_averages_over_days():
    pred = np.array([[0.1, 0.3, np.nan], [0.2, 0.6, 0.4]], np.float32)
    index = np.array([[0, 0, 1], [0, 1, -1]])
    mean = np.array([0.2, 0.6])
    p = pred.copy()
    combine_anomalies(p, mean, [], index, 0.5)
    np.testing.assert_allclose(p[0, :2], [0.15, 0.25])
    assert p[1, 0] == pytest.approx(0.2) and p[1, 1] == pytest.approx(0.6) and p[1, 2] == pytest.approx(0.4)
    assert np.isnan(p[0, 2])
    # another day: cell means 0.3 / 0.5, anomalies +0.1, -0.1, 0 (and a NaN pixel)
    other = np.array([[0.4, 0.2, 0.5], [np.nan, 0.5, 0.9]], np.float32)
    p = pred.copy()
    combine_anomalies(p, mean, [(other, np.array([0.3, 0.5]))], index, 1.0)
    np.testing.assert_allclose(p[0, :2], [0.2 + (-0.1 + 0.1) / 2, 0.2 + (0.1 - 0.1) / 2], atol=1e-7)
    assert p[1, 0] == pytest.approx(0.2)  # only today's anomaly (0) where the other day has none
    assert p[1, 2] == pytest.approx(0.4) and np.isnan(p[0, 2])


def test_anomaly_window_averages_patterns_in_the_pipeline(fine_grid, coarse_full, world):
    import datetime as dt

    m = build_membership(fine_grid, coarse_full)
    lst_c, _ = m.aggregate(world["lst"])
    days = [dt.date(2019, 6, 1) + dt.timedelta(days=i) for i in range(3)]
    rng = np.random.default_rng(2)
    lsts = {d: world["lst"] + rng.normal(0, 1.0, world["lst"].shape).astype(np.float32) for d in days}
    ssm = {d: 0.9 - 0.002 * m.aggregate(lsts[d])[0] for d in days}
    preds = dict(world, lst=lsts)
    one = downscale_arrays(ssm, preds, fine_grid, m.coarse, "gwr", bandwidth=1e7, anomaly_gain=1.0, anomaly_days=0,
                           residual="coherent")
    three = downscale_arrays(ssm, preds, fine_grid, m.coarse, "gwr", bandwidth=1e7, anomaly_gain=1.0, anomaly_days=1,
                             residual="coherent")
    d = days[1]
    anom = {k: r[d].ssm - m.expand(m.aggregate(r[d].ssm)[0]) for k, r in (("one", one), ("three", three))}
    a_days = [one[o].ssm - m.expand(m.aggregate(one[o].ssm)[0]) for o in days]
    np.testing.assert_allclose(anom["three"], np.mean(a_days, axis=0), atol=2e-6)
    for r in (one, three):  # cell means are the coarse values either way
        np.testing.assert_allclose(m.aggregate(r[d].ssm)[0], ssm[d], atol=1e-6)


def test_fixed_gain_in_the_pipeline(fine_grid, coarse_full, world):
    m = build_membership(fine_grid, coarse_full)
    lst_c, _ = m.aggregate(world["lst"])
    y = 0.9 - 0.002 * lst_c
    opts = dict(bandwidth=1e7, residual="coherent")
    full = next(iter(downscale_arrays(y, world, fine_grid, m.coarse, "gwr", anomaly_gain=1.0, **opts).values()))
    half = next(iter(downscale_arrays(y, world, fine_grid, m.coarse, "gwr", anomaly_gain=0.5, **opts).values()))
    auto = next(iter(downscale_arrays(y, world, fine_grid, m.coarse, "gwr", bandwidth=1e7, residual="coherent").values()))
    assert half.stats["anomaly_gain"] == 0.5 and auto.stats["anomaly_gain"] == pytest.approx(1.0)
    a_full = full.ssm - m.expand(m.aggregate(full.ssm)[0])
    a_half = half.ssm - m.expand(m.aggregate(half.ssm)[0])
    np.testing.assert_allclose(a_half, 0.5 * a_full, atol=2e-6)
    np.testing.assert_allclose(auto.ssm, full.ssm, atol=1e-6)
    with pytest.raises(ValueError, match="anomaly gain"):
        downscale_arrays(y, world, fine_grid, m.coarse, "gwr", anomaly_gain="big")


def test_recombine_kernel_equals_the_numpy_path_and_the_formula():
    from ssm_downscaling.core.downscale.scale import _recombine

    rng = np.random.default_rng(3)
    n = 10_000
    F = rng.normal(0.25, 0.05, n).astype(np.float32)
    A = rng.normal(0.0, 0.02, n).astype(np.float32)
    S = rng.normal(0.0, 0.02, n).astype(np.float32)
    F[::7] = np.nan
    S[::5] = np.nan
    base = np.full(n, -1.0, dtype=np.float32)
    outs = []
    for impl in (_recombine.numba, _recombine.numpy):
        if impl is None:
            continue
        p = base.copy()
        impl(p, F, A, S, np.float32(1.2), np.float32(0.7))
        outs.append(p)
    for p in outs[1:]:
        np.testing.assert_array_equal(p, outs[0])
    p = outs[0]
    assert (p[::7] == -1.0).all()  # no large-scale value: left alone
    Sv = np.where(np.isfinite(S), S, A).astype(np.float64)
    want = F.astype(np.float64) + 1.2 * Sv + 0.7 * (A - Sv)
    ok = np.isfinite(F)
    np.testing.assert_allclose(p[ok], want[ok], rtol=0, atol=1e-6)


def _smooth_case(seed: int, H: int = 37, W: int = 53, R: int = 5, C: int = 7):
    fr = np.repeat((np.arange(H) + 0.5) / H * R - 0.5, W).reshape(H, W)
    fc = np.tile((np.arange(W) + 0.5) / W * C - 0.5, H).reshape(H, W)
    fr[3, 4] = np.nan  # an untransformable position

    def day(s):
        r = np.random.default_rng(s)
        p = r.normal(0.25, 0.05, (H, W)).astype(np.float32)
        p[r.random((H, W)) < 0.2] = np.nan
        m = r.normal(0.25, 0.05, R * C)
        m[r.random(R * C) < 0.15] = np.nan
        return p, m

    p, m = day(seed)
    return p, m, [day(seed + k) for k in (1, 2, 3)], fr, fc, (R, C)


def test_smooth_anomaly_is_the_mean_of_each_days_departure_from_its_interpolated_means():
    from ssm_downscaling.core.downscale.interp import interpolate
    from ssm_downscaling.core.downscale.residual import _fill_nodes
    from ssm_downscaling.core.downscale.scale import smooth_anomaly

    p, m, others, fr, fc, shape = _smooth_case(4)
    F, A = smooth_anomaly(p, m, others, fr, fc, shape, block_rows=5)
    f0 = interpolate(_fill_nodes(m, shape), fr, fc, shape)
    num = p.astype(np.float64) - f0
    cnt = np.ones(p.shape)
    for p_o, m_o in others:
        a = p_o.astype(np.float64) - interpolate(_fill_nodes(m_o, shape), fr, fc, shape)
        fin = np.isfinite(a)
        num[fin] += a[fin]
        cnt[fin] += 1
    want_A = np.where(np.isfinite(p), num / cnt, np.nan)
    want_F = np.where(np.isfinite(p), f0, np.nan)
    np.testing.assert_array_equal(np.isnan(A), np.isnan(want_A))
    np.testing.assert_allclose(A, want_A, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(F, want_F, rtol=1e-6, atol=1e-7)
    assert np.isnan(F[3, 4]) and np.isnan(A[3, 4])
    # a pixel no other day covers holds today's departure alone
    only = np.isfinite(p) & np.all([~np.isfinite(o[0]) for o in others], axis=0) & np.isfinite(fr)
    assert only.any()
    np.testing.assert_allclose(A[only], (p.astype(np.float64) - f0)[only], rtol=1e-6)


@pytest.mark.parametrize("block_rows", [None, 1, 7])
def test_smooth_anomaly_compiled_equals_numpy_bit_for_bit(block_rows):
    from ssm_downscaling.core.accel import numba_disabled
    from ssm_downscaling.core.downscale.scale import smooth_anomaly

    p, m, others, fr, fc, shape = _smooth_case(9)
    F, A = smooth_anomaly(p, m, others, fr, fc, shape, block_rows=block_rows)
    with numba_disabled():
        F0, A0 = smooth_anomaly(p, m, others, fr, fc, shape, block_rows=block_rows)
    assert F.tobytes() == F0.tobytes() and A.tobytes() == A0.tobytes()


@pytest.mark.parametrize("block_rows", [None, 7])
def test_smooth_anomaly_without_the_field_gives_the_same_anomaly(block_rows):
    from ssm_downscaling.core.accel import numba_disabled
    from ssm_downscaling.core.downscale.scale import smooth_anomaly

    p, m, others, fr, fc, shape = _smooth_case(9)
    _, A = smooth_anomaly(p, m, others, fr, fc, shape, block_rows=block_rows)
    F1, A1 = smooth_anomaly(p, m, others, fr, fc, shape, block_rows=block_rows, field=False)
    with numba_disabled():
        F0, A0 = smooth_anomaly(p, m, others, fr, fc, shape, block_rows=block_rows, field=False)
    assert F1 is None and F0 is None
    assert A1.tobytes() == A.tobytes() == A0.tobytes()
