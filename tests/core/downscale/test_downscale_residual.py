"""Residual correction: exact cell means on any coarse grid, constants stay constant, clipping."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest

from ssm_downscaling.core.downscale import build_membership, downscale_arrays
from ssm_downscaling.core.downscale.interp import interpolate, node_positions
from ssm_downscaling.core.downscale.residual import cell_means, clip_preserving_means, correct, solve_nodes
from ssm_downscaling.core.grid import Grid, to_wkt


def rotated_coarse(crs: str, angle_deg: float = 20.0, res: float = 30e3) -> Grid:
    """A coarse grid in ``crs`` (the fine LAEA), rotated by ``angle_deg`` (non north-up)."""
    a = math.radians(angle_deg)
    gt = (-110e3, res * math.cos(a), -res * math.sin(a), 60e3, -res * math.sin(a), -res * math.cos(a))
    return Grid(crs, gt, 9, 9)


def geographic_coarse() -> Grid:
    """0.25 degree geographic cells around 90E 30N (like ESA CCI)."""
    return Grid(to_wkt(4326), (89.0, 0.25, 0.0, 31.0, 0.0, -0.25), 8, 8)


def _setup(fine, coarse):
    m = build_membership(fine, coarse)
    fr = np.empty(fine.shape, np.float32)
    fc = np.empty(fine.shape, np.float32)
    fr[:], fc[:] = node_positions(fine, m.coarse)
    return m, fr, fc


@pytest.mark.parametrize("coarse_kind", ["ease2", "rotated", "geographic"])
@pytest.mark.parametrize("mode", ["interp", "smooth", "cell"])
def test_cell_means_are_exact(fine_grid, coarse_full, coarse_kind, mode, world):
    coarse = {"ease2": coarse_full, "rotated": rotated_coarse(fine_grid.crs_wkt), "geographic": geographic_coarse()}[coarse_kind]
    m, fr, fc = _setup(fine_grid, coarse)
    rng = np.random.default_rng(0)
    pred = (0.2 + 0.002 * (world["lst"] - 305)).astype(np.float32)
    pred[10:20, 30:50] = np.nan  # a lake
    delta = rng.normal(0, 0.03, m.coarse.size)
    out, info = correct(pred, m.index, m.weights, fr, fc, m.coarse.shape, delta, mode)
    before, _ = m.aggregate(pred)
    after, count = m.aggregate(out)
    has = count.ravel() > 0
    np.testing.assert_allclose(after.ravel()[has], (before.ravel() + delta)[has], atol=1e-6)
    assert np.isnan(out[10:20, 30:50]).all()
    if mode == "smooth":
        assert info.smooth_ok
        assert info.max_shift < 1e-5  # the smooth field alone already hits the means


def test_smooth_residual_is_smooth_and_cell_residual_is_blocky(fine_grid, coarse_full):
    m, fr, fc = _setup(fine_grid, coarse_full)
    pred = np.full(fine_grid.shape, 0.2, np.float32)
    n = m.coarse.size
    delta = np.linspace(-0.05, 0.05, n)
    smooth, _ = correct(pred, m.index, m.weights, fr, fc, m.coarse.shape, delta, "smooth")
    interp, _ = correct(pred, m.index, m.weights, fr, fc, m.coarse.shape, delta, "interp")
    cell, _ = correct(pred, m.index, m.weights, fr, fc, m.coarse.shape, delta, "cell")
    jump = lambda a: np.nanmax(np.abs(np.diff(a, axis=1)))  # noqa: E731
    assert jump(smooth) < 0.5 * jump(cell)
    assert jump(interp) < 0.7 * jump(cell)


@pytest.mark.parametrize("mode", ["interp", "smooth", "cell"])
def test_constant_coarse_field_stays_constant(fine_grid, coarse_full, world, mode):
    coarse_value = 0.27
    m = build_membership(fine_grid, coarse_full)
    y = np.full(m.coarse.shape, coarse_value)
    for method in ("gwr", "forest", "bilinear"):
        res = next(iter(downscale_arrays(y, world, fine_grid, m.coarse, method, residual=mode, bandwidth=80e3).values()))
        np.testing.assert_allclose(res.ssm, coarse_value, atol=2e-6, err_msg=method)


def test_constant_residual_gives_constant_nodes():
    shape = (4, 5)
    A9 = np.zeros((20, 9))  # rows sum to 1, as bilinear weights clamped at the edges do
    A9[:, 4] = 0.6
    A9[:, 1] = A9[:, 7] = 0.2
    A9[:5, 1] = A9[-5:, 7] = 0.0
    A9[:5, 4] = A9[-5:, 4] = 0.8
    d = np.full(20, 0.03)
    r, ok = solve_nodes(d, A9, np.ones(20, bool), shape)
    assert ok
    np.testing.assert_allclose(r, 0.03)


def test_clip_keeps_means_inside_the_range(fine_grid, coarse_full):
    m, _, _ = _setup(fine_grid, coarse_full)
    rng = np.random.default_rng(3)
    field = (0.3 + 0.25 * rng.standard_normal(fine_grid.shape)).astype(np.float32)
    before, cnt = m.aggregate(field)
    lo, hi = 0.01, 0.6
    clip_preserving_means(field, m.index, m.weights, m.coarse.size, lo, hi)
    after, _ = m.aggregate(field)
    assert np.nanmin(field) >= np.float32(lo) and np.nanmax(field) <= np.float32(hi)
    ok = (cnt > 0) & (before > lo) & (before < hi)
    np.testing.assert_allclose(after[ok], before[ok], atol=1e-6)


def test_clip_moves_an_impossible_mean_to_the_bound(fine_grid, coarse_full):
    m, _, _ = _setup(fine_grid, coarse_full)
    field = np.full(fine_grid.shape, 0.7, np.float32)
    clip_preserving_means(field, m.index, m.weights, m.coarse.size, 0.01, 0.6)
    np.testing.assert_allclose(field, 0.6)


def test_cell_means_match_membership_aggregate(fine_grid):
    coarse = geographic_coarse()
    m = build_membership(fine_grid, coarse)
    v = np.random.default_rng(1).random(fine_grid.shape).astype(np.float32)
    mean, _ = cell_means(v, m.index, m.weights, m.coarse.size)
    agg, _ = m.aggregate(v)
    np.testing.assert_allclose(mean.reshape(m.coarse.shape), agg, rtol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_cell_means_sum_blocks_in_order_on_any_thread_count(weighted, monkeypatch):
    """The blocks summed in parallel give the bytes of summing block after block with
    :func:`cell_sums` (each block from zero, in pixel order), on 1 or 2 threads and from
    the numpy fallback; cells hit by no valid pixel are NaN."""
    import numba

    from ssm_downscaling.core.accel import numba_disabled
    from ssm_downscaling.core.downscale import residual as res

    blocks = res._blocks
    monkeypatch.setattr(res, "_blocks", lambda H, W, max_pixels=1_000_000: blocks(H, W, 900))  # 4 blocks here
    rng = np.random.default_rng(4)
    H, W, n = 61, 47, 40
    vals = rng.normal(0.3, 0.1, (H, W)).astype(np.float32)
    vals[rng.random((H, W)) < 0.1] = np.nan
    index = rng.integers(-1, n - 1, (H, W))  # cell n - 1 has no pixel
    weights = np.broadcast_to(rng.uniform(0.5, 2.0, (H, 1)), (H, W)) if weighted else None
    wsum = np.zeros(n)
    vsum = np.zeros(n)
    for r0, nr in res._blocks(H, W):  # the reference: block after block
        w = None if weights is None else weights[r0 : r0 + nr]
        vp, wp, _ = res.cell_sums(vals[r0 : r0 + nr].reshape(-1, 1), index[r0 : r0 + nr], n, weights=w)
        wsum += wp
        vsum += vp[:, 0]
    assert len(res._blocks(H, W)) == 4
    got = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            got.append(cell_means(vals, index, weights, n))
    finally:
        numba.set_num_threads(before)  # the session's setting, not the machine's maximum
    with numba_disabled():
        got.append(cell_means(vals, index, weights, n))
    for mean, ws in got:
        assert ws.tobytes() == wsum.tobytes()
        with np.errstate(invalid="ignore", divide="ignore"):
            assert mean[:-1].tobytes() == (vsum / wsum)[:-1].tobytes()
        assert np.isnan(mean[-1])


def test_positions_put_cell_centres_on_nodes(fine_grid, coarse_full):
    m = build_membership(fine_grid, coarse_full)
    fr, fc = node_positions(fine_grid, m.coarse)
    # every pixel lies within half a node spacing of its own cell's node
    r, c = np.divmod(m.index, m.coarse.width)
    assert np.abs(fr - r).max() <= 0.5 + 1e-3 and np.abs(fc - c).max() <= 0.5 + 1e-3  # lattice-interpolated positions
    # a plane in node coordinates is interpolated exactly
    R, C = m.coarse.shape
    nr, nc = np.mgrid[0:R, 0:C]
    plane = 0.1 + 0.01 * nr - 0.02 * nc
    inside = (fr >= 0) & (fr <= R - 1) & (fc >= 0) & (fc <= C - 1)
    np.testing.assert_allclose(interpolate(plane, fr, fc, (R, C))[inside], (0.1 + 0.01 * fr - 0.02 * fc)[inside], atol=1e-12)
    fr1, fc1 = node_positions(fine_grid, m.coarse, step=1)  # every pixel transformed exactly
    assert np.abs(fr1 - fr).max() < 1e-3 and np.abs(fc1 - fc).max() < 1e-3


@pytest.mark.parametrize("shape", [(7, 9), (1, 6), (5, 1), (1, 1)])
def test_interpolate_numba_equals_numpy_bit_for_bit(shape):
    """The compiled interpolation gives the numpy path's numbers exactly: positions inside,
    beyond the outer nodes (clamped), NaN positions and NaN node values, float32 input."""
    from ssm_downscaling.core.accel import numba_disabled

    R, C = shape
    rng = np.random.default_rng(9)
    vals = rng.normal(size=R * C)
    vals[rng.random(R * C) < 0.1] = np.nan
    fr = rng.uniform(-1.5, R + 0.5, 500).astype(np.float32)
    fc = rng.uniform(-1.5, C + 0.5, 500).astype(np.float32)
    fr[::17] = np.nan
    got = interpolate(vals, fr, fc, shape)
    with numba_disabled():
        ref = interpolate(vals, fr, fc, shape)
    np.testing.assert_array_equal(got, ref)
    assert np.isnan(got[::17]).all() and got.dtype == np.float64


@pytest.mark.parametrize("shape", [(7, 9), (1, 6)])
def test_add_interpolated_is_interpolate_added_where_finite(shape):
    """The fused pass adds the interpolated node field where the field is finite (the sum
    in float64, rounded to float32) and returns the interpolated variances there, NaN
    elsewhere; compiled and numpy paths give the same bits."""
    from ssm_downscaling.core.accel import numba_disabled
    from ssm_downscaling.core.downscale.interp import add_interpolated

    R, C = shape
    rng = np.random.default_rng(4)
    v, vv = rng.normal(size=R * C), rng.uniform(0, 1e-3, R * C)
    fr = rng.uniform(-1.0, R, (30, 40)).astype(np.float32)
    fc = rng.uniform(-1.0, C, (30, 40)).astype(np.float32)
    field0 = rng.normal(0.2, 0.05, (30, 40)).astype(np.float32)
    field0[rng.random((30, 40)) < 0.2] = np.nan
    fr[0, :5] = np.nan  # a pixel outside the coarse grid: NaN position
    ok = np.isfinite(field0)
    want = field0.copy()
    want[ok] = (field0[ok] + interpolate(v, fr[ok], fc[ok], shape)).astype(np.float32)
    want_var = np.where(ok, interpolate(vv, fr, fc, shape), np.nan).astype(np.float32)
    for disabled in (False, True):
        field = field0.copy()
        with numba_disabled() if disabled else contextlib.nullcontext():
            var = add_interpolated(field, v, vv, fr, fc, shape)
        np.testing.assert_array_equal(field, want)
        np.testing.assert_array_equal(var, want_var)
        assert var.dtype == np.float32 and var.shape == field.shape


def test_cell_sums_kernel_equals_bincount_path():
    from ssm_downscaling.core.downscale.residual import _cell_sums

    rng = np.random.default_rng(5)
    m, k, n = 20_000, 3, 50
    vals = rng.normal(size=(m, k)).astype(np.float32)
    vals[rng.random((m, k)) < 0.05] = np.nan
    idx = rng.integers(-1, n, m)
    mask = rng.random(m) < 0.9
    w = rng.uniform(0.5, 1.5, m)
    for use_mask in (False, True):
        for use_w in (False, True):
            outs = []
            for impl in (_cell_sums.numba, _cell_sums.numpy):
                if impl is None:
                    continue
                vp, wp, cn = np.zeros((n, k)), np.zeros(n), np.zeros(n, dtype=np.int64)
                impl(vals, idx, mask, use_mask, w, use_w, vp, wp, cn)
                outs.append((vp, wp, cn))
            for o in outs[1:]:
                for a, b in zip(o, outs[0]):
                    np.testing.assert_array_equal(a, b)
            vp, wp, cn = outs[0]
            ok = (idx >= 0) & np.isfinite(vals).all(axis=1) & (mask if use_mask else True)
            ww = w if use_w else np.ones(m)
            for c in (0, 7, n - 1):
                sel = ok & (idx == c)
                assert cn[c] == sel.sum()
                np.testing.assert_allclose(wp[c], ww[sel].sum(), rtol=1e-12)
                np.testing.assert_allclose(vp[c], (vals[sel].astype(np.float64) * ww[sel, None]).sum(axis=0), rtol=1e-9,
                                           atol=1e-12)
