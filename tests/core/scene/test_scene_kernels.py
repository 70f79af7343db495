"""Per-pixel kernels of the scene generator: numba and numpy agree, and each gives the
known answer on cases that can be worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ssm_downscaling.core.accel import HAVE_NUMBA, numba_disabled
from ssm_downscaling.core.scene import energy, noise, weather
from ssm_downscaling.core.scene.soil import ROOT_MM, SURFACE_MM, pedotransfer
from ssm_downscaling.core.scene.waterbalance import water_balance_step

needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")
RNG = np.random.default_rng(42)


def both(fn, *args, **kwargs):
    """(numba result, numpy result) of the same call."""
    a = fn(*args, **kwargs)
    with numba_disabled():
        b = fn(*args, **kwargs)
    return a, b


# ---------------------------------------------------------------------------------------
# fractal noise
# ---------------------------------------------------------------------------------------


@needs_numba
def test_noise_numba_equals_numpy():
    a, b = both(noise.fbm_grid, -12.5, 40.5, 1.0, 37, 53, 30.0, 5, 0.55, 7)
    np.testing.assert_allclose(a, b, atol=1e-6)
    x = RNG.uniform(-500, 500, 300)
    y = RNG.uniform(-500, 500, 300)
    a, b = both(noise.fbm_points, x, y, 80.0, 4, 0.5, 3)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_noise_is_a_function_of_coordinates_only():
    whole = noise.fbm_grid(0.5, 99.5, 1.0, 60, 40, 25.0, 4, 0.5, 11)
    top = noise.fbm_grid(0.5, 99.5, 1.0, 25, 40, 25.0, 4, 0.5, 11)
    bottom = noise.fbm_grid(0.5, 99.5 - 25, 1.0, 35, 40, 25.0, 4, 0.5, 11)
    np.testing.assert_array_equal(np.vstack([top, bottom]), whole)
    pts = noise.fbm_points(np.array([0.5 + 7]), np.array([99.5 - 13]), 25.0, 4, 0.5, 11)
    assert pts[0] == pytest.approx(whole[13, 7], abs=1e-6)
    # a lattice field equals the noise at its nodes and is the same whatever the block
    lat = noise.fbm_lattice(0.0, 0.0, 1.0, 50, 50, 40.0, 3, 0.5, 5, 4.0)
    node = noise.fbm_points(np.array([8.0]), np.array([-12.0]), 40.0, 3, 0.5, 5)[0]
    assert lat[12, 8] == pytest.approx(node, abs=1e-5)
    part = noise.fbm_lattice(0.0, -20.0, 1.0, 10, 50, 40.0, 3, 0.5, 5, 4.0)
    np.testing.assert_allclose(part, lat[20:30], atol=1e-6)


def test_noise_statistics_and_seeds():
    a = noise.fbm_grid(0.0, 0.0, 1.0, 400, 400, 10.0, 4, 0.5, 1)
    assert abs(float(a.mean())) < 0.1
    assert 0.8 < float(a.std()) < 1.2
    b = noise.fbm_grid(0.0, 0.0, 1.0, 400, 400, 10.0, 4, 0.5, 2)
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.1
    assert noise.stable_seed(1, "x", 3) == noise.stable_seed(1, "x", 3) != noise.stable_seed(1, "x", 4)


# ---------------------------------------------------------------------------------------
# storms
# ---------------------------------------------------------------------------------------


def _storm(xa=0.0, ya=0.0, xb=60.0, yb=30.0, r=12.0, depth=0.1) -> np.ndarray:
    return np.array([[xa, ya, xb, yb, r, depth]])


@needs_numba
def test_storm_field_numba_equals_numpy():
    storms = np.vstack([_storm(), _storm(-40, 50, -10, -20, 30.0, 0.05), _storm(100, 100, 140, 100, 10.0, 0.2)])
    for cloud in (False, True):
        a, b = both(weather.storm_field, storms, -120.0, 150.0, 2.0, 160, 170, cloud)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_storm_volume_is_the_closed_form():
    """The rain of one moving Gaussian cell integrates to peak x duration x 2 pi r^2."""
    r, depth, length = 12.0, 0.1, math.hypot(60, 30)  # depth factor = peak / speed (mm/km)
    field = weather.storm_field(_storm(r=r, depth=depth), -100.0, 150.0, 1.0, 300, 300)
    volume = field.sum()  # mm km2 (1 km pixels)
    assert volume == pytest.approx(depth * length * 2 * math.pi * r * r, rel=2e-3)
    # symmetric about the middle of the track
    mid = field[150 - 15, 100 + 30]
    assert field[150 - 15 + 5, 100 + 30 - 10] == pytest.approx(field[150 - 15 - 5, 100 + 30 + 10], rel=1e-9)
    assert mid == pytest.approx(depth * r * math.sqrt(math.pi / 2) * 2 * math.erf(length / 2 / (r * math.sqrt(2))),
                                rel=1e-6)


def test_cloud_shield_is_wider_than_the_rain():
    storms = _storm()
    rain = weather.storm_field(storms, -150.0, 150.0, 2.0, 150, 150)
    shield = weather.storm_field(storms, -150.0, 150.0, 2.0, 150, 150, cloud=True)
    rc = weather.CLOUD_WIDEN[0] * 12.0 + weather.CLOUD_WIDEN[1]
    half = math.hypot(60, 30) / 2
    # the track coverage peaks mid-track at erf(L / 2 / (rc sqrt 2))
    assert shield.max() == pytest.approx(math.erf(half / (rc * math.sqrt(2))), rel=0.01)
    assert (shield > 0.1 * shield.max()).sum() > 3 * (rain > 0.1 * rain.max()).sum()
    long = weather.storm_field(_storm(-300, 0, 300, 0), -150.0, 150.0, 2.0, 150, 150, cloud=True)
    assert long.max() == pytest.approx(1.0, abs=1e-3)  # full coverage along a long track


def test_storm_count_scales_with_area_and_season():
    import datetime as dt

    from ssm_downscaling.core.scene import PLACES

    p = PLACES["tibet"]
    small = (-100.0, -100.0, 100.0, 100.0)
    big = (-800.0, -800.0, 800.0, 800.0)
    n_small = sum(len(weather.make_storms(dt.date(2019, 8, 1) + dt.timedelta(i), p, 1, small, 0.0, 250.0))
                  for i in range(30))
    n_big = sum(len(weather.make_storms(dt.date(2019, 8, 1) + dt.timedelta(i), p, 1, big, 0.0, 250.0))
                for i in range(30))
    n_dry = sum(len(weather.make_storms(dt.date(2019, 1, 15) + dt.timedelta(i), p, 1, big, 0.0, 250.0))
                for i in range(30))
    assert n_big > 5 * n_small
    assert n_dry < 0.5 * n_big
    # expected mean rain = peak daily rain x seasonal factor
    assert weather.seasonal_rain_factor(p, p.rain_peak_doy) == pytest.approx(1.0)
    assert weather.seasonal_rain_factor(p, p.rain_peak_doy + 182) == pytest.approx(p.rain_offseason_fraction, abs=1e-3)


# ---------------------------------------------------------------------------------------
# water balance
# ---------------------------------------------------------------------------------------


def _soil(n: int, sand: float = 0.5):
    por, fc, wp, res = (np.full(n, v, dtype=np.float32) for v in pedotransfer(np.full(n, sand)))
    return dict(por=por, fc=fc, wp=wp, res=res, drain_surface=np.full(n, 0.6, np.float32),
                drain_root=np.full(n, 0.05, np.float32), runoff_coef=np.zeros(n, np.float32),
                water=np.zeros(n, bool))


def _step(th1, th2, rain, pet, fv, s):
    return water_balance_step(th1, th2, rain, pet, fv, s["por"], s["fc"], s["wp"], s["res"], s["drain_surface"],
                              s["drain_root"], s["runoff_coef"], s["water"])


def test_pedotransfer_keeps_the_order_of_water_contents():
    por, fc, wp, res = pedotransfer(np.linspace(0, 1, 101))
    assert (res < wp).all() and (wp < fc).all() and (fc < por).all()
    assert 0.35 <= por.min() and por.max() <= 0.5


def test_water_balance_at_rest():
    """No rain, no evaporation, both layers at field capacity: nothing moves."""
    s = _soil(5)
    th1 = s["fc"].copy()
    th2 = s["fc"].copy()
    et = _step(th1, th2, np.zeros(5, np.float32), np.zeros(5, np.float32), np.zeros(5, np.float32), s)
    np.testing.assert_allclose(th1, s["fc"], atol=1e-7)
    np.testing.assert_allclose(th2, s["fc"], atol=1e-7)
    np.testing.assert_allclose(et, 0.0)


def test_bare_soil_evaporation_by_hand():
    """Bare soil, no rain, equal layers below field capacity (no exchange): the surface
    loses PET * beta with beta = (theta - residual) / (fc - residual)."""
    s = _soil(1)
    theta = np.float32(0.5 * (s["fc"][0] + s["res"][0]))
    th1 = np.array([theta], np.float32)
    th2 = np.array([theta], np.float32)
    pet = 4.0
    et = _step(th1, th2, np.zeros(1, np.float32), np.array([pet], np.float32), np.zeros(1, np.float32), s)
    beta = (theta - s["res"][0]) / (s["fc"][0] - s["res"][0])
    assert et[0] == pytest.approx(pet * beta, rel=1e-5)
    assert th1[0] == pytest.approx(theta - pet * beta / SURFACE_MM, rel=1e-5)
    assert th2[0] == pytest.approx(theta, rel=1e-6)


def test_storm_fills_then_drains_and_mass_balances():
    """Heavy rain on dry soil: the surface saturates, then drains 60 % of the excess over
    field capacity into the root zone; no evaporation, no runoff, so water is conserved."""
    s = _soil(1)
    th1 = s["wp"].copy()
    th2 = s["wp"].copy()
    before = th1[0] * SURFACE_MM + th2[0] * ROOT_MM
    rain = 30.0
    _step(th1, th2, np.array([rain], np.float32), np.zeros(1, np.float32), np.zeros(1, np.float32), s)
    after = th1[0] * SURFACE_MM + th2[0] * ROOT_MM
    assert after - before == pytest.approx(rain, rel=1e-5)
    por, fc = s["por"][0], s["fc"][0]
    assert th1[0] == pytest.approx(fc + 0.4 * (por - fc), rel=1e-5)


def test_water_pixels_and_bounds():
    n = 2000
    s = _soil(n, 0.3)
    s["water"][:10] = True
    s["runoff_coef"][:] = RNG.uniform(0, 0.5, n).astype(np.float32)
    th1 = RNG.uniform(s["res"][0], s["por"][0], n).astype(np.float32)
    th2 = RNG.uniform(s["wp"][0], s["por"][0], n).astype(np.float32)
    for _ in range(20):
        rain = (RNG.exponential(5, n) * (RNG.random(n) < 0.3)).astype(np.float32)
        pet = RNG.uniform(0, 8, n).astype(np.float32)
        fv = RNG.uniform(0, 1, n).astype(np.float32)
        et = _step(th1, th2, rain, pet, fv, s)
        assert (et >= 0).all()
        assert (th1 >= s["res"] - 1e-7).all() and (th1 <= s["por"] + 1e-6).all()
        assert (th2 <= s["por"] + 1e-6).all()
    np.testing.assert_array_equal(th1[:10], s["por"][:10])


@needs_numba
def test_water_balance_numba_equals_numpy():
    n = 3000
    s = _soil(n, 0.45)
    s["runoff_coef"][:] = RNG.uniform(0, 0.5, n).astype(np.float32)
    s["water"][::97] = True
    th1 = RNG.uniform(0.03, 0.44, n).astype(np.float32)
    th2 = RNG.uniform(0.05, 0.44, n).astype(np.float32)
    rain = (RNG.exponential(6, n) * (RNG.random(n) < 0.4)).astype(np.float32)
    pet = RNG.uniform(0, 7, n).astype(np.float32)
    fv = RNG.uniform(0, 1, n).astype(np.float32)
    a1, a2 = th1.copy(), th2.copy()
    b1, b2 = th1.copy(), th2.copy()
    et_a = _step(a1, a2, rain, pet, fv, s)
    with numba_disabled():
        et_b = _step(b1, b2, rain, pet, fv, s)
    np.testing.assert_allclose(a1, b1, atol=1e-7)
    np.testing.assert_allclose(a2, b2, atol=1e-7)
    np.testing.assert_allclose(et_a, et_b, atol=1e-5)


# ---------------------------------------------------------------------------------------
# radiation and surface temperature
# ---------------------------------------------------------------------------------------


def test_sun_vector_and_incidence():
    lat = np.radians(np.array([0.0, 30.0, 60.0], dtype=np.float32))
    east, north, up = energy.sun_position(80, np.sin(lat), np.cos(lat))  # near the equinox
    np.testing.assert_allclose(east**2 + north**2 + up**2, 1.0, atol=1e-5)  # a unit vector
    dec = energy.declination(80)
    w = energy.OVERPASS_HOUR_ANGLE
    np.testing.assert_allclose(up, np.sin(lat) * math.sin(dec) + np.cos(lat) * math.cos(dec) * math.cos(w), atol=1e-6)
    assert (east > 0).all()  # morning: the sun is in the east
    flat = energy.incidence(east, north, up, np.zeros(3, np.float32), np.zeros(3, np.float32))
    np.testing.assert_allclose(flat, up, atol=1e-6)
    # a slope whose normal points at the sun gets cos(incidence) = 1; the opposite face 0
    # (normal (-dzdx, -dzdy, 1) / norm parallel to the sun vector)
    dzdx = -east / up
    dzdy = -north / up
    np.testing.assert_allclose(energy.incidence(east, north, up, dzdx, dzdy), 1.0, atol=1e-5)
    np.testing.assert_allclose(energy.incidence(east, north, up, -3 * dzdx, -3 * dzdy)[1:], 0.0, atol=1e-6)


def test_extraterrestrial_radiation_fao_example():
    """FAO-56 example 8: 20 S on 3 September (day 246) gets Ra = 32.2 MJ m-2 day-1."""
    lat = np.radians(np.array([-20.0]))
    ra = energy.daily_extraterrestrial_mj(246, np.sin(lat), np.cos(lat))
    assert ra[0] == pytest.approx(32.2, abs=0.1)
    look = energy._extraterrestrial_lookup(246, np.array([-20.0, -19.93, -20.04]))
    full = energy.daily_extraterrestrial_mj(246, np.sin(np.radians([-20.0, -19.93, -20.04])),
                                            np.cos(np.radians([-20.0, -19.93, -20.04])))
    np.testing.assert_allclose(look, full, atol=1e-3)


def test_pressure_and_vapour_slope_fao():
    assert energy.pressure_kpa(np.array([1800.0]))[0] == pytest.approx(81.8, abs=0.1)  # FAO-56 example 2
    assert energy.sat_vapour_slope(np.array([273.15 + 25.0]))[0] == pytest.approx(0.189, abs=0.001)


def _lst_case(n=1, **kw):
    base = dict(cosz=0.85, cos_inc=0.85, pressure=60.0, sky_view=1.0, cloudy=False, thickness=0.0, albedo=0.2,
                evap_fraction=0.2, fv=0.2, ta=285.0)
    base.update(kw)
    arr = {k: np.full(n, v, dtype=bool if k == "cloudy" else np.float32) for k, v in base.items()}
    return energy.overpass_lst(190, arr["cosz"], arr["cos_inc"], arr["pressure"], arr["sky_view"], arr["cloudy"],
                               arr["thickness"], arr["albedo"], arr["evap_fraction"], arr["fv"], arr["ta"], 3.0)[0]


def test_surface_temperature_responds_like_physics():
    dry = _lst_case(evap_fraction=0.0)
    wet = _lst_case(evap_fraction=1.0)
    assert 285 < wet < dry < 330
    assert dry - wet > 3.0  # evaporation cools
    assert _lst_case(albedo=0.35) < _lst_case(albedo=0.15)  # brighter is cooler
    assert _lst_case(cos_inc=0.3) < _lst_case(cos_inc=1.0)  # shaded slope is cooler
    cloudy = _lst_case(cloudy=True, thickness=0.8)
    assert abs(cloudy - 285.0) < abs(dry - 285.0) and abs(cloudy - 285.0) < 6.0
    assert _lst_case(fv=0.8, evap_fraction=0.6) < _lst_case(fv=0.0, evap_fraction=0.6)  # rougher canopy couples


def test_surface_energy_balance_closes():
    """The returned Ts solves (rho cp / ra_eff + 4 sigma Ta^3) (Ts - Ta) = Rn* - G - LE."""
    n = 50
    ta = RNG.uniform(270, 300, n).astype(np.float32)
    rs = RNG.uniform(100, 1100, n).astype(np.float32)
    alb = RNG.uniform(0.1, 0.35, n).astype(np.float32)
    ef = RNG.uniform(0, 1, n).astype(np.float32)
    fv = RNG.uniform(0, 1, n).astype(np.float32)
    p = RNG.uniform(55, 101, n).astype(np.float32)
    cloudy = RNG.random(n) < 0.3
    ptf = energy.priestley_taylor_factor(ta, p)
    ts = energy.surface_temperature(ta, rs, alb, ef, fv, p, ptf, cloudy, 3.0).astype(np.float64)
    t = ta.astype(np.float64)
    eps = np.where(cloudy, 0.95, 0.72)
    rn = (1 - alb) * rs + (eps - 1) * energy.SIGMA * t**4
    avail = rn - (0.05 + 0.3 * (1 - fv)) * np.maximum(rn, 0)
    a = avail - np.clip(ef, 0, 1) * np.minimum(ptf, 1) * np.maximum(avail, 0)
    rho_cp = p * 1000 / (287.05 * t) * 1005
    z0 = 0.005 + 0.12 * fv
    ra = np.log(2 / z0) * np.log(20 / z0) / (0.41**2 * 3.0)
    dt_ = ts - t
    lhs = (rho_cp / ra * (1 + 0.04 * np.maximum(dt_, 0) * (a > 0)) + 4 * energy.SIGMA * t**3) * dt_
    assert (np.abs(lhs - a) <= 0.05 + 1e-3 * np.abs(a)).all()


@needs_numba
def test_energy_kernels_numba_equal_numpy():
    n = (30, 40)
    lat = RNG.uniform(15, 50, n).astype(np.float32)
    sl, cl = np.sin(np.radians(lat)).astype(np.float32), np.cos(np.radians(lat)).astype(np.float32)
    f = lambda lo, hi: RNG.uniform(lo, hi, n).astype(np.float32)  # noqa: E731
    p = energy.pressure_kpa(f(0, 5000))
    args = (200, lat, sl, cl, f(-0.6, 0.6), f(-0.6, 0.6), f(0, 5000), p, f(0, 1), f(0.1, 0.3), f(265, 305))
    (a_cz, a_ci, a_pet), (b_cz, b_ci, b_pet) = both(energy.radiation_and_pet, *args)
    np.testing.assert_allclose(a_cz, b_cz, atol=1e-6)
    np.testing.assert_allclose(a_ci, b_ci, atol=1e-5)
    np.testing.assert_allclose(a_pet, b_pet, rtol=1e-4, atol=1e-4)
    assert (b_pet >= 0).all() and b_pet.max() < 15
    largs = (200, b_cz, b_ci, p, f(0.7, 1), RNG.random(n) < 0.4, f(0, 1), f(0.1, 0.3), f(0, 1), f(0, 0.8),
             f(265, 305), 3.0)
    a, b = both(energy.overpass_lst, *largs)
    np.testing.assert_allclose(a, b, atol=2e-3)


@needs_numba
def test_lattice_interpolation_numba_equals_numpy():
    lat = RNG.normal(size=(40, 50)).astype(np.float32)
    a, b = both(noise.from_lattice, lat, -20.0, 100.0, 3.0, -18.5, 98.5, 1.0, 100, 130)
    np.testing.assert_allclose(a, b, atol=1e-5)
    # nodes reproduce the lattice values, midpoints the mean of the neighbours
    c = noise.from_lattice(lat, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 20, 20)
    assert c[4, 6] == pytest.approx(lat[2, 3], abs=1e-6)
    assert c[4, 7] == pytest.approx(0.5 * (lat[2, 3] + lat[2, 4]), abs=1e-6)


def test_background_has_no_gaps_outside_the_simulated_cells():
    from ssm_downscaling.core.scene import sensors

    count = np.full((3, 4), 10.0)
    sum_lst = count * np.array([[0, 0, 0, 0], [0, 290.0, 300.0, 0], [0, 0, 0, 0]])
    whole = np.zeros((3, 4), dtype=bool)
    whole[1, 1:3] = True  # only two cells lie wholly inside the simulated grid
    bg = sensors.background_lst(sum_lst, count, whole, 0.0, 1.5, np.zeros((3, 4)), 0.0,
                                np.random.default_rng(0))
    # each other cell takes its nearest simulated cell, then the bias
    want = np.array([[290, 290, 300, 300], [290, 290, 300, 300], [290, 290, 300, 300]]) + 1.5
    np.testing.assert_allclose(bg, want)
    assert bg.dtype == np.float32
