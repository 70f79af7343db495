"""Gap-filling methods on tiny arrays: known answers, flags, windows, numba == numpy."""

from __future__ import annotations

import numpy as np
import pytest

from ssm_downscaling.core.accel import HAVE_NUMBA, numba_disabled
from ssm_downscaling.core.errors import SsmError
from ssm_downscaling.core.lst import (
    FLAG_FILLED,
    FLAG_NONE,
    FLAG_OBSERVED,
    METHODS,
    BlockFootprint,
    GapfillOptions,
    assemble,
    gapfill_stack,
)

# the tiny worlds keep the clear-sky contrasts and lapse rate under cloud
EXACT = {"prior_days": 0.0, "cloudy_anomaly_scale": 1.0, "cloudy_lapse_rate": None}


def checkerboard_world(days=10, n=48, amp=3.0, seed=0):
    """Constant background per day + a +-amp checkerboard anomaly (zero mean in every
    even block); clouds in aligned 2 x 2 units."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n]
    p = np.where((yy + xx) % 2 == 0, amp, -amp).astype(np.float32)
    level = 290 + 4 * np.sin(np.arange(days))
    truth = level[:, None, None] + p[None]
    cloud = np.kron(rng.random((days, n // 2, n // 2)) < 0.4, np.ones((1, 2, 2))).astype(bool)
    lst = np.where(cloud, np.nan, truth).astype(np.float32)
    bg = np.broadcast_to(level[:, None, None], truth.shape).astype(np.float32)
    return truth.astype(np.float32), lst, bg, cloud


def test_constant_field_plus_known_anomaly_is_recovered_exactly():
    truth, lst, bg, cloud = checkerboard_world()
    out, flags, _ = gapfill_stack(
        lst, bg, footprint=8, method="anomaly", window=11, cloud_correction=False, regional_scale_km=12.0, **EXACT
    )
    days = np.arange(len(cloud))
    # pixels clear on at least one other day of the window (+-5 days)
    seen_elsewhere = np.array([(~cloud[(days != t) & (abs(days - t) <= 5)]).any(axis=0) for t in days])
    check = cloud & seen_elsewhere
    assert check.sum() > 0.3 * cloud.sum()
    np.testing.assert_allclose(out[check], truth[check], atol=1e-3)
    assert (flags[cloud & seen_elsewhere] == FLAG_FILLED).all()


def test_linear_in_elevation_with_cloud_cooling_is_recovered(world):
    w = world(anomaly_sd=0.0, noise_sd=0.0, delta=5.0, bias=1.5, lapse=-0.006, days=8, cloud=0.4)
    land = np.ones(w["dem"].shape, bool)
    out, flags, info = gapfill_stack(
        w["lst"], w["background"], footprint=w["footprint"], dem=w["dem"], land=land, window=7, **EXACT
    )
    assert info["lapse_rate"] == pytest.approx(-0.006, abs=1e-6)
    c = w["cloud"]
    assert (flags[c] == FLAG_FILLED).all()
    np.testing.assert_allclose(out[c], w["truth"][c], atol=2e-3)


def test_background_method_recovers_a_linear_in_elevation_field(world):
    w = world(anomaly_sd=0.0, noise_sd=0.0, delta=0.0, bias=0.0, lapse=-0.0055, days=4)
    out, flags, info = gapfill_stack(
        w["lst"], w["background"], footprint=w["footprint"], dem=w["dem"], method="background", cloudy_lapse_rate=None
    )
    assert info["lapse_rate"] == pytest.approx(-0.0055, abs=1e-6)
    c = w["cloud"] & (flags == FLAG_FILLED)
    assert c.sum() > 0.9 * w["cloud"].sum()
    np.testing.assert_allclose(out[c], w["truth"][c], atol=1e-3)
    # with a fixed lapse rate of 0 the elevation detail is missing
    out0, _, _ = gapfill_stack(
        w["lst"], w["background"], footprint=w["footprint"], dem=w["dem"], method="background", lapse_rate=0.0
    )
    assert np.abs(out0[c] - w["truth"][c]).max() > 0.3


def test_anomaly_beats_baselines_in_a_model_world(world):
    w = world(noise_sd=0.5, days=14, cloud=0.5, seed=5)
    c = w["cloud"]
    rmse = {}
    for m in METHODS:
        kw = {k: v for k, v in EXACT.items() if k != "prior_days"}  # the world's physics under cloud
        out, flags, _ = gapfill_stack(
            w["lst"], w["background"], footprint=w["footprint"], dem=w["dem"], method=m, **kw
        )
        ok = c & (flags == FLAG_FILLED)
        rmse[m] = float(np.sqrt(np.mean((out[ok] - w["truth"][ok]) ** 2)))
    assert rmse["anomaly"] < 1.0
    assert rmse["anomaly"] < min(rmse[m] for m in METHODS if m != "anomaly")


def test_observed_pixels_pass_through_unchanged_and_flags(world):
    w = world(noise_sd=0.7, days=6)
    lst = w["lst"].copy()
    lst[:, :3, :3] = np.nan  # never observed: not land by default
    for m in METHODS:
        out, flags, _ = gapfill_stack(lst, w["background"], footprint=w["footprint"], dem=w["dem"], method=m)
        obs = np.isfinite(lst)
        assert np.array_equal(out[obs], lst[obs])  # bit for bit
        assert (flags[obs] == FLAG_OBSERVED).all()
        assert set(np.unique(flags)) <= {FLAG_OBSERVED, FLAG_FILLED, FLAG_NONE}
        assert (flags[:, :3, :3] == FLAG_NONE).all() and np.isnan(out[:, :3, :3]).all()
        assert np.array_equal(np.isfinite(out), flags != FLAG_NONE)
        assert flags.dtype == np.uint8 and out.dtype == np.float32


def test_never_observed_land_is_filled_when_declared_land(world):
    w = world(noise_sd=0.0, days=6)
    lst = w["lst"].copy()
    lst[:, 20:24, 20:24] = np.nan
    land = np.ones(lst.shape[1:], bool)
    out, flags, _ = gapfill_stack(lst, w["background"], footprint=w["footprint"], dem=w["dem"], land=land)
    assert (flags[:, 20:24, 20:24] == FLAG_FILLED).all()
    cloudy = w["cloud"][:, 20:24, 20:24]  # where the truth is a cloudy-sky temperature
    err = (out[:, 20:24, 20:24] - w["truth"][:, 20:24, 20:24])[cloudy]
    assert np.sqrt(np.mean(err**2)) < 3 * float(w["anomaly"].std())  # background + lapse rate, no anomaly


def test_filled_values_are_clipped_to_the_valid_range():
    lst = np.array([[300.0, np.nan, np.nan]], dtype=np.float32)
    est = np.array([[0.0, 500.0, 100.0]], dtype=np.float32)
    out, flags = assemble(lst, est, None, (250.0, 330.0))
    np.testing.assert_array_equal(out, [[300.0, 330.0, 250.0]])
    np.testing.assert_array_equal(flags, [[FLAG_OBSERVED, FLAG_FILLED, FLAG_FILLED]])
    out, flags = assemble(lst, None)
    np.testing.assert_array_equal(flags, [[FLAG_OBSERVED, FLAG_NONE, FLAG_NONE]])


@pytest.mark.parametrize("method", METHODS)
def test_clear_and_overcast_days(world, method):
    w = world(noise_sd=0.3, days=9, seed=2)
    lst, truth = w["lst"].copy(), w["truth"]
    lst[3] = np.nan  # 100 % cloud
    lst[5] = truth[5]  # 0 % cloud
    out, flags, _ = gapfill_stack(lst, w["background"], footprint=w["footprint"], dem=w["dem"], method=method)
    assert (flags[5] == FLAG_OBSERVED).all() and np.array_equal(out[5], lst[5])
    if method == "spatial":
        assert (flags[3] == FLAG_NONE).all()  # nothing to interpolate from on an overcast day
    else:
        assert (flags[3] == FLAG_FILLED).all()
        assert np.sqrt(np.mean((out[3] - truth[3]) ** 2)) < 6.0


def test_window_edges_and_days_outside_the_window(world):
    w = world(anomaly_sd=2.0, noise_sd=0.0, days=12, seed=4)
    args = dict(footprint=w["footprint"], dem=w["dem"], window=5, background_smoothing=0.0)
    out, flags, _ = gapfill_stack(w["lst"], w["background"], **args)
    c0 = w["cloud"][0]
    assert (flags[0][c0] == FLAG_FILLED).all()  # the first day: a one-sided window
    assert np.sqrt(np.mean((out[0][c0] - w["truth"][0][c0]) ** 2)) < 1.5
    # a day beyond the window (> window // 2 days away) does not change day 0
    lst2 = w["lst"].copy()
    lst2[3] += 25.0
    out2, _, _ = gapfill_stack(lst2, w["background"], **args)
    np.testing.assert_array_equal(out2[0], out[0])
    lst2[2] += 25.0  # inside the window: it does
    out3, _, _ = gapfill_stack(lst2, w["background"], **args)
    assert not np.array_equal(out3[0], out[0])


def test_calendar_days_not_positions_define_the_window(world):
    w = world(noise_sd=0.0, days=3, seed=6)
    days = [0, 1, 30]  # the third day is a month later: outside a 15-day window
    out_a, _, _ = gapfill_stack(w["lst"], w["background"], days=days, footprint=w["footprint"], method="temporal")
    lst = w["lst"].copy()
    lst[2] = 400.0
    out_b, _, _ = gapfill_stack(lst, w["background"], days=days, footprint=w["footprint"], method="temporal")
    np.testing.assert_array_equal(out_a[1], out_b[1])


def test_temporal_method_linear_in_time_is_exact():
    t = np.arange(7, dtype=np.float32)
    truth = np.broadcast_to((280 + 2.0 * t)[:, None, None], (7, 5, 5)).copy()
    lst = truth.copy()
    lst[2:5, 1:3, 1:3] = np.nan  # a 3-day gap
    lst[:, 4, 4] = np.nan
    lst[0, 4, 4] = 280.0  # only one observation, 6 days before the end
    out, flags, _ = gapfill_stack(lst, None, method="temporal", max_gap=3)
    np.testing.assert_allclose(out[2:5, 1:3, 1:3], truth[2:5, 1:3, 1:3], atol=1e-4)
    assert out[3, 4, 4] == 280.0 and flags[4, 4, 4] == FLAG_NONE  # one side only, then beyond max_gap


def test_spatial_method_constant_field_is_exact():
    lst = np.full((1, 30, 30), 301.25, dtype=np.float32)
    lst[0, 8:20, 5:25] = np.nan
    land = np.ones(lst.shape[1:], bool)
    out, flags, _ = gapfill_stack(lst, None, method="spatial", idw_radius_km=20.0, land=land)
    assert (flags == FLAG_FILLED).sum() == 12 * 20
    np.testing.assert_allclose(out, 301.25, atol=1e-4)


def test_missing_background_day_is_skipped(world):
    w = world(days=5)
    bg = w["background"].copy()
    bg[2] = np.nan
    land = np.ones(bg.shape[1:], bool)
    out, flags, _ = gapfill_stack(w["lst"], bg, footprint=w["footprint"], dem=w["dem"], land=land)
    assert not (flags[2] == FLAG_FILLED).any()
    assert (flags[1][w["cloud"][1]] == FLAG_FILLED).all()


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
@pytest.mark.parametrize("method", METHODS)
def test_numba_and_numpy_paths_agree(world, method):
    w = world(noise_sd=0.5, days=8, seed=7)
    args = dict(footprint=w["footprint"], dem=w["dem"], method=method, window=5)
    out, flags, _ = gapfill_stack(w["lst"], w["background"], **args)
    with numba_disabled():
        out2, flags2, _ = gapfill_stack(w["lst"], w["background"], **args)
    np.testing.assert_array_equal(flags, flags2)
    np.testing.assert_allclose(out, out2, atol=1e-5, equal_nan=True)


def test_ndvi_prior_helps_never_observed_pixels(world):
    rng = np.random.default_rng(0)
    w = world(anomaly_sd=0.0, noise_sd=0.0, days=6)
    ndvi = (0.4 + 0.1 * rng.standard_normal(w["dem"].shape)).astype(np.float32)
    effect = (-20.0 * (ndvi - w["footprint"].smooth(ndvi))).astype(np.float32)  # greener = cooler
    truth = w["truth"] + effect
    bg = np.array([w["footprint"].smooth(t) + 1.5 for t in truth])
    lst = np.where(w["cloud"], np.nan, truth).astype(np.float32)
    lst[:, 30:36, 30:36] = np.nan  # never observed
    land = np.ones(lst.shape[1:], bool)
    args = dict(footprint=w["footprint"], dem=w["dem"], land=land, cloudy_anomaly_scale=1.0, cloudy_lapse_rate=None)
    out_n, _, _ = gapfill_stack(lst, bg, ndvi=ndvi, **args)
    out_0, _, _ = gapfill_stack(lst, bg, **args)
    sl = (slice(None), slice(30, 36), slice(30, 36))
    cloudy = w["cloud"][sl]  # compare where the truth is a cloudy-sky temperature
    e_n = np.sqrt(np.mean((out_n[sl] - truth[sl])[cloudy] ** 2))
    e_0 = np.sqrt(np.mean((out_0[sl] - truth[sl])[cloudy] ** 2))
    assert e_n < 0.5 * e_0, (e_n, e_0)


@pytest.mark.parametrize(
    "kw",
    [
        {"method": "kriging"},
        {"window": 0},
        {"max_gap": 0},
        {"regional_scale_km": 0},
        {"idw_power": -1},
        {"lapse_rate": 6.5},
        {"valid_range": (300.0, 200.0)},
        {"cloudy_anomaly_scale": 3.0},
    ],
)
def test_bad_options_raise_a_clear_error(kw):
    with pytest.raises(SsmError):
        GapfillOptions(**kw)


def test_stack_shape_errors():
    with pytest.raises(SsmError, match="days, height, width"):
        gapfill_stack(np.zeros((4, 4)), None, method="spatial")
    with pytest.raises(SsmError, match="background"):
        gapfill_stack(np.zeros((2, 4, 4)), None, method="anomaly", footprint=BlockFootprint((4, 4), 2))


def test_day_stack_spills_to_a_temporary_file_when_large():
    from pathlib import Path

    from ssm_downscaling.core.lst.methods import DayStack

    st = DayStack(3, (4, 5), max_memory_mb=1e-6)
    assert isinstance(st.data, np.memmap)
    path = Path(st.data.filename)
    st.put(10, np.ones((4, 5)))
    st.put(11, np.full((4, 5), 2.0))
    st.remove(10)
    st.put(12, np.full((4, 5), 3.0))  # reuses the free slot
    assert sorted(st.slots) == [11, 12] and st.data[st.slots[12]].mean() == 3.0
    np.testing.assert_array_equal(st.weights(lambda d: d - 10.0)[[st.slots[11], st.slots[12]]], [1.0, 2.0])
    st.close()
    assert not path.exists()
    mem = DayStack(3, (4, 5))
    assert not isinstance(mem.data, np.memmap)
    mem.put(1, np.zeros((4, 5)))
    mem.put(2, np.zeros((4, 5)))
    mem.put(3, np.zeros((4, 5)))
    with pytest.raises(RuntimeError):
        mem.put(4, np.zeros((4, 5)))


def test_anomaly_cloud_fraction_once_per_day_and_freed(world, monkeypatch):
    """add() and estimate() of a day share one S[c], kept on the background cells (not as
    a full-size array); the window's cache is empty after a run, and the output equals a
    run that recomputes S[c] at every use."""
    from ssm_downscaling.core.lst import anomaly

    w = world(anomaly_sd=1.0, noise_sd=0.2, delta=4.0, bias=1.0, lapse=-0.006, days=9, cloud=0.5)
    args = dict(footprint=w["footprint"], dem=w["dem"], window=5)
    calls = []
    real = anomaly.cloud_fraction_cells
    monkeypatch.setattr(anomaly, "cloud_fraction_cells", lambda *a: calls.append(1) or real(*a))
    closed, shapes = [], []
    monkeypatch.setattr(anomaly.AnomalyFiller, "close",
                        lambda self: closed.append(dict(self.cloud)) or shapes.append(self.static.shape))
    real_add = anomaly.AnomalyFiller.add

    def add(self, day, data):
        real_add(self, day, data)
        shapes.extend(c.shape for c in self.cloud.values())

    monkeypatch.setattr(anomaly.AnomalyFiller, "add", add)
    out, _, _ = gapfill_stack(w["lst"], w["background"], **args)
    assert len(calls) == 9  # one per day, not one per add() and one per estimate()
    assert closed == [{}]  # every day's S[c] was freed at its last use
    assert set(shapes[:-1]) == {w["footprint"].blocks.block_shape} != {shapes[-1]}  # cells, not pixels

    cached = anomaly.AnomalyFiller._cloud

    def uncached(self, day, data):
        self.cloud.pop(day, None)
        return cached(self, day, data)

    monkeypatch.setattr(anomaly.AnomalyFiller, "_cloud", uncached)
    ref, _, _ = gapfill_stack(w["lst"], w["background"], **args)
    np.testing.assert_array_equal(out, ref)
