"""The per-pixel kernels: known answers, and numba == numpy."""

from __future__ import annotations

import numpy as np
import pytest

from ssm_downscaling.core.accel import HAVE_NUMBA, numba_disabled
from ssm_downscaling.core.lst import kernels as K

needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")


def both(kern, *args):
    """``(numba result, numpy result)`` of a kernel."""
    with numba_disabled():
        ref = kern(*args)
    return kern(*args), ref


# --- window sums --------------------------------------------------------------------


def test_window_sums_known_answer():
    stack = np.array([[[1.0, np.nan]], [[3.0, 5.0]], [[100.0, 7.0]]], dtype=np.float32)
    w = np.array([1.0, 0.5, 0.0])  # the third day is "today": weight 0
    for num, den in both(K.window_sums, stack, w):
        np.testing.assert_allclose(num, [[1.0 + 1.5, 2.5]])
        np.testing.assert_allclose(den, [[1.5, 0.5]])


@needs_numba
def test_window_sums_numba_equals_numpy():
    rng = np.random.default_rng(1)
    stack = rng.normal(0, 3, (9, 31, 27)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.4] = np.nan
    w = rng.random(9)
    w[4] = 0
    (n1, d1), (n2, d2) = both(K.window_sums, stack, w)
    np.testing.assert_allclose(n1, n2, atol=1e-5)
    np.testing.assert_allclose(d1, d2, atol=1e-6)


def test_quantised_stack_window_sums_known_answer_and_equal_to_float():
    """An int16 stack of 0.01 K quanta: missing and out-of-range values by hand, sums
    within half a quantum of the float32 stack's, numba == numpy."""
    from ssm_downscaling.core.lst.methods import DayStack, quantise

    q = quantise(np.array([1.234, -0.005, np.nan, 1e6, -np.inf], dtype=np.float32), 0.01)
    assert q.tolist() == [123, 0, K.MISSING_Q, 32767, K.MISSING_Q]  # rint: -0.5 quanta -> 0
    rng = np.random.default_rng(2)
    days = rng.normal(0, 4, (6, 17, 13)).astype(np.float32)
    days[rng.random(days.shape) < 0.3] = np.nan
    w = rng.random(6)
    w[2] = 0
    flt, qnt = DayStack(6, (17, 13)), DayStack(6, (17, 13), quantum=0.01)
    for d in range(6):
        flt.put(d, days[d])
        qnt.put(d, days[d])
    assert qnt.data.dtype == np.int16 and qnt.data.nbytes * 2 == flt.data.nbytes
    n_f, d_f = flt.window_sums(w)
    n_q, d_q = qnt.window_sums(w)
    np.testing.assert_array_equal(d_q, d_f)
    np.testing.assert_allclose(n_q, n_f, atol=0.005 * w.sum() + 1e-5)
    for num, den in both(K.window_sums, qnt.data, w, 0.01):
        np.testing.assert_allclose(num, n_q, atol=1e-5)
        np.testing.assert_array_equal(den, d_q)


def test_block_count_sum_known_answer_and_numba_equals_numpy():
    v = np.array([[1.0, np.nan, 2.0], [3.0, 4.0, np.nan]], dtype=np.float32)
    for out in both(K.block_count_sum, v, 2):
        np.testing.assert_array_equal(out[0], [[3.0, 1.0]])  # partial last block
        np.testing.assert_array_equal(out[1], [[8.0, 2.0]])
    rng = np.random.default_rng(4)
    big = rng.normal(0, 2, (37, 29)).astype(np.float32)
    big[rng.random(big.shape) < 0.3] = np.nan
    a, b = both(K.block_count_sum, big, 4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], atol=1e-9)


# --- temporal interpolation ----------------------------------------------------------


def test_temporal_interp_known_answers():
    vals = np.array([280.0, np.nan, 290.0, 300.0], dtype=np.float32).reshape(4, 1, 1)
    offsets = np.array([-3, -1, 2, 4])
    for out in both(K.temporal_interp, vals, offsets, 7):
        # nearest finite before: -3 (280); after: +2 (290) -> 280 + 10 * 3/5
        assert out[0, 0] == pytest.approx(286.0, abs=1e-5)
    for out in both(K.temporal_interp, vals, offsets, 2):
        assert out[0, 0] == pytest.approx(290.0)  # the day before is 3 > 2 days away: one side only
    for out in both(K.temporal_interp, vals, offsets, 1):
        assert np.isnan(out[0, 0])  # nothing within 1 day


def test_temporal_interp_ignores_today():
    vals = np.array([1.0, 500.0, 3.0], dtype=np.float32).reshape(3, 1, 1)
    for out in both(K.temporal_interp, vals, np.array([-1, 0, 1]), 5):
        assert out[0, 0] == pytest.approx(2.0)


@needs_numba
def test_temporal_interp_numba_equals_numpy():
    rng = np.random.default_rng(2)
    stack = rng.normal(300, 5, (11, 23, 19)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.6] = np.nan
    offsets = np.array([-6, -5, -3, -2, -1, 0, 1, 2, 4, 5, 7])
    a, b = both(K.temporal_interp, stack, offsets, 5)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, atol=1e-5, equal_nan=True)


# --- inverse distance weighting ------------------------------------------------------


def test_idw_known_answers():
    v = np.full((5, 5), np.nan, dtype=np.float32)
    v[2, 1], v[2, 3], v[1, 2], v[3, 2] = 1, 2, 3, 4  # four sources at distance 1
    t = np.zeros((5, 5), bool)
    t[2, 2] = True
    for out in both(K.idw_disk, v, t, 1.5, 2.0):
        assert out[2, 2] == pytest.approx(2.5)
        assert np.isnan(out[0, 0])  # not a target
    v = np.full((1, 7), np.nan, dtype=np.float32)
    v[0, 1], v[0, 4] = 20.0, 10.0  # distances 2 and 1 from column 3
    t = np.zeros((1, 7), bool)
    t[0, 3] = True
    for out in both(K.idw_disk, v, t, 3.0, 2.0):
        assert out[0, 3] == pytest.approx((10 * 1 + 20 * 0.25) / 1.25)
    for out in both(K.idw_disk, v, t, 1.0, 2.0):
        assert out[0, 3] == pytest.approx(10.0)  # the farther source is out of range


def test_idw_constant_field_and_no_source():
    v = np.full((30, 30), 287.5, dtype=np.float32)
    v[10:20, 10:20] = np.nan
    t = ~np.isfinite(v)
    for out in both(K.idw_disk, v, t, 8.0, 2.0):
        np.testing.assert_allclose(out[t], 287.5, atol=1e-6)
    for out in both(K.idw_disk, v, t, 3.0, 2.0):
        assert np.isnan(out[15, 15]) and np.isfinite(out[11, 11])  # the centre is > 3 px from any source


@needs_numba
def test_idw_numba_equals_numpy_fft():
    rng = np.random.default_rng(3)
    v = (300 + rng.normal(0, 4, (47, 53))).astype(np.float32)
    v[rng.random(v.shape) < 0.7] = np.nan
    t = ~np.isfinite(v)
    a, b = both(K.idw_disk, v, t, 6.5, 2.0)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, atol=1e-5, equal_nan=True)


def test_idw_fill_switches_path_with_same_numbers():
    rng = np.random.default_rng(4)
    v = (290 + rng.normal(0, 2, (40, 40))).astype(np.float32)
    v[rng.random(v.shape) < 0.5] = np.nan
    t = ~np.isfinite(v)
    direct = K.idw_disk(v, t, 5.0, 2.0)
    fft = K._idw_disk_numpy(v, t, 5.0, 2.0)
    np.testing.assert_allclose(K.idw_fill(v, t, 5.0, 2.0), direct, atol=1e-5, equal_nan=True)
    np.testing.assert_allclose(fft, direct, atol=1e-5, equal_nan=True)


# --- bilinear interpolation with precomputed positions -------------------------------


def test_bilinear_gather_known_answers():
    a = np.array([[0.0, 10.0], [20.0, 30.0]])
    padded = np.pad(a, ((0, 1), (0, 1)), mode="edge")
    base = np.array([[0, 0, -1]])
    fu = np.array([[0.5, 0.25, 0.0]], dtype=np.float32)
    fv = np.array([[0.5, 0.0, 0.0]], dtype=np.float32)
    for out in both(K.bilinear_gather, padded, base, fu, fv):
        assert out[0, 0] == pytest.approx(15.0) and out[0, 1] == pytest.approx(2.5) and np.isnan(out[0, 2])
    a[0, 1] = np.nan  # a missing neighbour: the weights of the others are renormalised
    padded = np.pad(a, ((0, 1), (0, 1)), mode="edge")
    for out in both(K.bilinear_gather, padded, base, fu, fv):
        assert out[0, 0] == pytest.approx((0 + 20 + 30) / 3) and out[0, 1] == pytest.approx(0.0)


@needs_numba
def test_bilinear_gather_numba_equals_numpy():
    rng = np.random.default_rng(5)
    a = rng.normal(290, 5, (7, 9))
    a[2, 3] = np.nan
    padded = np.pad(a, ((0, 1), (0, 1)), mode="edge")
    i0 = rng.integers(0, 7, (40, 50))
    j0 = rng.integers(0, 9, (40, 50))
    base = i0 * 10 + j0
    base[0, :5] = -1
    fu = rng.random((40, 50)).astype(np.float32)
    fv = rng.random((40, 50)).astype(np.float32)
    x, y = both(K.bilinear_gather, padded, base, fu, fv)
    np.testing.assert_allclose(x, y, atol=1e-5, equal_nan=True)


@needs_numba
def test_bilinear_separable_numba_equals_numpy():
    rng = np.random.default_rng(6)
    a = rng.normal(0, 3, (6, 8))
    a[1, 2] = np.nan
    padded = np.pad(a, ((0, 1), (0, 1)), mode="edge")
    i0, j0 = rng.integers(0, 6, 30), rng.integers(0, 8, 41)
    fv, fu = rng.random(30).astype(np.float32), rng.random(41).astype(np.float32)
    x, y = both(K.bilinear_separable, padded, i0, fv, j0, fu)
    np.testing.assert_allclose(x, y, atol=1e-5, equal_nan=True)


def test_block_moments_known_answer_and_agreement():
    y = np.array([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0]], dtype=np.float32)
    x = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 2.0]], dtype=np.float32)
    for out in both(K.block_moments, y, x, 2):
        assert out.shape == (5, 1, 2)
        np.testing.assert_allclose(out[:, 0, 0], [3, 2, 7, 2, 3])  # n, x, y, x^2, xy over 3 valid pairs
        np.testing.assert_allclose(out[:, 0, 1], [2, 2, 9, 4, 12])
    rng = np.random.default_rng(7)
    y = rng.normal(size=(37, 29)).astype(np.float32)
    y[rng.random(y.shape) < 0.3] = np.nan
    x = rng.random((37, 29)).astype(np.float32)
    a, b = both(K.block_moments, y, x, 4)
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_fallbacks_in_row_blocks_equal_whole_grid(monkeypatch):
    """The numpy fallbacks of bilinear_gather and cell_sums work in row blocks (bounded
    temporaries): the same interpolation, the same sums to float64 rounding."""
    rng = np.random.default_rng(4)
    h, w = 37, 23
    padded = rng.normal(size=(6, 7))
    padded[2, 3] = np.nan
    base = rng.integers(-1, 5 * 7 - 8, (h, w)).astype(np.int32)
    fu, fv = rng.random((h, w)).astype(np.float32), rng.random((h, w)).astype(np.float32)
    values = rng.normal(size=(h, w)).astype(np.float32)
    values[rng.random((h, w)) < 0.2] = np.nan
    index = rng.integers(-1, 9, (h, w))
    row_w = rng.random(h)
    whole = (K._bilinear_gather_numpy(padded, base, fu, fv), K._cell_sums_numpy(values, index, row_w, 9))
    monkeypatch.setattr(K, "FALLBACK_ROWS", 5)
    np.testing.assert_array_equal(K._bilinear_gather_numpy(padded, base, fu, fv), whole[0])
    np.testing.assert_allclose(K._cell_sums_numpy(values, index, row_w, 9), whole[1], rtol=1e-12)


def test_idw_fft_in_strips_equals_one_piece(monkeypatch):
    """The FFT path works in row strips with the radius around them: the same estimate
    (to FFT round-off) as one convolution of the whole grid, edges included."""
    rng = np.random.default_rng(6)
    v = (290 + rng.normal(0, 3, (53, 41))).astype(np.float32)
    v[rng.random(v.shape) < 0.6] = np.nan
    t = ~np.isfinite(v)
    whole = K._idw_disk_numpy(v, t, 7.5, 2.0)
    monkeypatch.setattr(K, "IDW_STRIP_ROWS", 6)
    strips = K._idw_disk_numpy(v, t, 7.5, 2.0)
    assert np.array_equal(np.isfinite(strips), np.isfinite(whole)) and np.isfinite(whole).sum() > 500
    np.testing.assert_allclose(strips, whole, rtol=0, atol=1e-9)
