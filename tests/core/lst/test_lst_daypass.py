"""The fused per-pixel passes of the anomaly filler (core/lst/daypass.py): answers by hand
on tiny arrays, numba == numpy fallback (row blocks), and the whole filler equal to the
plain whole-grid implementation it replaced (tests/core/lst/reference_anomaly.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ssm_downscaling.core.accel import HAVE_NUMBA, numba_disabled
from ssm_downscaling.core.lst import assemble, daypass, gapfill, gapfill_stack
from ssm_downscaling.core.lst.kernels import MISSING_Q
from ssm_downscaling.core.lst.methods import DayStack, quantise
from ssm_downscaling.core.lst.smoothing import BlockGrid


def _reference_filler() -> type:
    spec = importlib.util.spec_from_file_location("lst_reference_anomaly", Path(__file__).with_name("reference_anomaly.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.AnomalyFiller


ReferenceFiller = _reference_filler()
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
D = np.zeros((1, 1), dtype=np.float32)  # an unused array


def both(kern, *args):
    """``(numba result, numpy result, numba's arrays, numpy's arrays)``: each on its own copies."""
    a1 = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    a2 = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    r1 = kern(*a1)
    with numba_disabled():
        r2 = kern(*a2)
    return r1, r2, a1, a2


# --- pass 1 by hand -------------------------------------------------------------------


def test_prepare_pass_by_hand():
    """A 2 x 2 day, one other window day (0.5 K everywhere, int16 quanta of 0.01 K),
    prior weight k = 1: P = 0.5 / (1 + 1) = 0.25 where that day is valid."""
    lst = np.array([[300.0, np.nan], [302.0, 301.0]], np.float32)
    bg = np.array([[299.0, 299.0], [300.0, 300.0]], np.float32)
    stack = np.full((2, 2, 2), 50, np.int16)
    stack[0, 1, 1] = MISSING_Q  # pixel (1, 1): no clear day in the window -> P = 0
    s = np.array([[0.5, 1.0], [0.0, np.nan]], np.float32)  # NaN counts as 0
    slots, weights = np.array([0]), np.array([1.0])
    for mode in (0, 1):
        out1, out2 = np.empty((2, 2), np.float32), np.empty((2, 2), np.float32)
        sums = daypass.prepare_pass(lst, bg, False, D, 0.0, stack, slots, weights, 0.01, 1.0, False, D, 0.0, 0.0,
                                    True, s, 2, 0.5, mode, out1, out2)
        y = np.array([[0.75, np.nan], [1.75, 1.0]])
        if mode == 0:
            np.testing.assert_allclose(out1, [[1.0, np.nan], [2.0, 1.0]])  # A0 = LST - B
        else:
            np.testing.assert_allclose(out1, y)
            np.testing.assert_allclose(out2, [[299.125, 299.125], [300.125, 300.0]])  # B + 0.5 P
        # one 2 x 2 block: (n, sum S, sum y, sum S^2, sum S y) over the 3 clear pixels
        np.testing.assert_allclose(sums[:, 0, 0], [3, 0.5, 3.5, 0.25, 0.375])


def test_prepare_pass_lapse_rate_and_ndvi_prior_by_hand():
    """B1 = B + g dz; without window days P = 0 even with a prior; with a prior and
    k = 2: P = (sum w x + k (a + b nd)) / (sum w + k)."""
    lst = np.array([[290.0, 291.0]], np.float32)
    bg = np.array([[288.0, 288.0]], np.float32)
    dz = np.array([[100.0, -100.0]], np.float32)
    nd = np.array([[0.1, np.nan]], np.float32)
    stack = np.array([[[1.0, np.nan]]], np.float32)  # a float stack: quantum 1
    out1, out2 = np.empty((1, 2), np.float32), np.empty((1, 2), np.float32)
    daypass.prepare_pass(lst, bg, True, dz, -0.005, stack, np.array([0]), np.array([2.0]), 1.0, 2.0,
                         True, nd, 0.5, 10.0, False, D, 1, 1.0, 1, out1, out2)
    # B1 = 287.5, 288.5; prior = 0.5 + 10 * 0.1 = 1.5, and a = 0.5 where nd is NaN
    p = np.array([(2 * 1.0 + 2 * 1.5) / (2 + 2), (0 + 2 * 0.5) / (0 + 2)])
    np.testing.assert_allclose(out1[0], [2.5, 2.5] - p, rtol=1e-6)
    np.testing.assert_allclose(out2[0], [287.5, 288.5] + p, rtol=1e-6)


# --- numba == numpy (row blocks) ------------------------------------------------------


def _day(rng, h, w):
    lst = (300 + rng.normal(0, 3, (h, w))).astype(np.float32)
    lst[rng.random((h, w)) < 0.4] = np.nan
    bg = (299 + rng.normal(0, 1, (h, w))).astype(np.float32)
    bg[0, :3] = np.nan
    dz = rng.normal(0, 200, (h, w)).astype(np.float32)
    s = rng.random((h, w)).astype(np.float32)
    s[rng.random((h, w)) < 0.1] = np.nan
    return lst, bg, dz, s


@needs_numba
@pytest.mark.parametrize("quantum", [None, 0.01])
def test_passes_numba_equal_numpy_row_blocks(monkeypatch, quantum):
    monkeypatch.setattr(daypass, "ROWS", 8)  # several row blocks, a partial last one
    rng = np.random.default_rng(5)
    h, w, f, f2 = 45, 37, 4, 3
    lst, bg, dz, s = _day(rng, h, w)
    days = rng.normal(0, 2, (4, h, w)).astype(np.float32)
    days[rng.random(days.shape) < 0.3] = np.nan
    st = DayStack(4, (h, w), quantum=quantum)
    for d in range(4):
        st.put(d, days[d])
    slots, weights = np.array([0, 2, 3]), np.array([0.5, 1.0, 0.25])
    nd = rng.normal(0, 0.1, (h, w)).astype(np.float32)
    q = 1.0 if quantum is None else quantum
    for mode in (0, 1):
        args = (lst, bg, True, dz, -0.004, st.data, slots, weights, q, 1.0, True, nd, 0.3, 2.0, True, s, f, 0.5, mode,
                np.empty((h, w), np.float32), np.empty((h, w), np.float32))
        r1, r2, a1, a2 = both(daypass.prepare_pass, *args)
        np.testing.assert_allclose(r1, r2, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(a1[-2], a2[-2])
        if mode == 1:
            np.testing.assert_array_equal(a1[-1], a2[-1])
    grid = BlockGrid((h, w), f)
    pad_a = grid.padded(rng.normal(0, 1, grid.block_shape))
    pad_d = grid.padded(rng.normal(-5, 1, grid.block_shape))
    pad_a[1, 2] = np.nan
    est, y = (300 + rng.normal(0, 1, (h, w))).astype(np.float32), rng.normal(0, 1, (h, w)).astype(np.float32)
    y[rng.random((h, w)) < 0.3] = np.nan
    r1, r2, a1, a2 = both(daypass.estimate_pass, est, y, True, s, *grid.axes(), pad_a, pad_d, True, -0.002, dz, f2)
    np.testing.assert_allclose(r1, r2, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(a1[0], a2[0], rtol=0, atol=1e-4)  # est: the interpolations may differ by float rounding
    np.testing.assert_allclose(a1[1], a2[1], rtol=0, atol=1e-5)
    a0 = lst - bg
    codes = quantum is not None
    out = np.empty((h, w), np.int16 if codes else np.float32)
    _, _, a1, a2 = both(daypass.residual_pass, a0, True, s, *grid.axes(), pad_a, pad_d, codes, q, out)
    if codes:
        assert np.abs(a1[-1].astype(int) - a2[-1]).max() <= 1 and (a1[-1] == MISSING_Q).sum() == (a2[-1] == MISSING_Q).sum()
    else:
        np.testing.assert_allclose(a1[-1], a2[-1], atol=1e-5)
    _, _, a1, a2 = both(daypass.add_upsampled, est, *grid.axes(), pad_a, 0.5)
    np.testing.assert_allclose(a1[0], a2[0], rtol=0, atol=1e-4)


def test_residual_pass_codes_are_quantise():
    """The stored anomaly ``A0 - a - D S`` in int16 quanta, as :func:`quantise` codes it."""
    a0 = np.array([[1.234, np.nan, 1e6, -0.305]], np.float32)
    s = np.array([[0.5, 0.5, 0.0, np.nan]], np.float32)
    grid = BlockGrid((1, 4), 4)  # one block: a and D constant
    pad_a, pad_d = grid.padded(np.array([[0.2]])), grid.padded(np.array([[-2.0]]))
    for disabled in (False, True):
        out = np.zeros((1, 4), np.int16)
        if disabled:
            with numba_disabled():
                daypass.residual_pass(a0, True, s, *grid.axes(), pad_a, pad_d, True, 0.01, out)
        else:
            daypass.residual_pass(a0, True, s, *grid.axes(), pad_a, pad_d, True, 0.01, out)
        e = (a0 - np.float32(0.2)) - np.float32(-2.0) * np.nan_to_num(s)
        np.testing.assert_array_equal(out, quantise(e, 0.01))
        assert out[0].tolist() == [203, MISSING_Q, 32767, -50]  # (1.234 - 0.2 + 1) / 0.01; clipped; -0.505 -> -50


@needs_numba
def test_assemble_numba_equals_numpy():
    rng = np.random.default_rng(2)
    lst = (300 + rng.normal(0, 20, (300, 11))).astype(np.float32)
    lst[rng.random(lst.shape) < 0.5] = np.nan
    est = (300 + rng.normal(0, 40, lst.shape)).astype(np.float32)
    est[rng.random(lst.shape) < 0.2] = np.nan
    land = rng.random(lst.shape) < 0.8
    for e, lnd in ((est, land), (est.astype(np.float64), None), (None, land)):
        got = assemble(lst, e, lnd, (250.0, 330.0))
        with numba_disabled():
            ref = assemble(lst, e, lnd, (250.0, 330.0))
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])


# --- the whole filler against the plain implementation ----------------------------------


@pytest.mark.parametrize("numba", [True, False])
@pytest.mark.parametrize("opts", [
    {},
    {"cloud_correction": False},
    {"residual_scale_km": 0.0},
    {"window": 1},
    {"lapse_rate": 0.0, "prior_days": 0.0},
    {"cloudy_lapse_rate": None, "time_scale_days": 0.0},
])
def test_fused_filler_equals_the_plain_one(world, monkeypatch, opts, numba):
    """Same outputs, to float32 rounding (bitwise on these days), as the whole-grid
    implementation, with and without NDVI prior, from the compiled passes and the fallbacks."""
    if numba and not HAVE_NUMBA:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(daypass, "ROWS", 16)
    w = world(shape=(70, 53), anomaly_sd=1.0, noise_sd=0.2, delta=4.0, bias=1.0, lapse=-0.006, days=9, cloud=0.5)
    ndvi = (0.5 + 0.1 * np.random.default_rng(3).normal(size=w["dem"].shape)).astype(np.float32)
    for nd in (None, ndvi):
        args = dict(footprint=w["footprint"], dem=w["dem"], window=5, ndvi=nd, regional_scale_km=12.0,
                    residual_scale_km=6.0) | opts
        if numba:
            out, flags, _ = gapfill_stack(w["lst"], w["background"], **args)
        else:
            with numba_disabled():
                out, flags, _ = gapfill_stack(w["lst"], w["background"], **args)
        with monkeypatch.context() as m:
            m.setattr(gapfill, "AnomalyFiller", ReferenceFiller)
            ref, ref_flags, _ = gapfill_stack(w["lst"], w["background"], **args)
        np.testing.assert_array_equal(flags, ref_flags)
        ok = np.isfinite(ref)
        np.testing.assert_allclose(out[ok], ref[ok], rtol=0, atol=1e-4)  # float32 at 300 K: 3e-5


def test_day_stack_active_slots():
    st = DayStack(4, (2, 2))
    for d in (10, 11, 12):
        st.put(d, np.zeros((2, 2)))
    st.remove(11)
    st.put(13, np.ones((2, 2)))  # takes the freed slot 1
    slots, w = st.active(lambda d: 0.0 if d == 12 else float(d))
    assert slots.tolist() == [0, 1] and w.tolist() == [10.0, 13.0]
    assert st.reserve(13) == 1 and st.reserve(14) == 3
