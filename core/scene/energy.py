"""Radiation, potential evaporation and land-surface temperature of the sample scene.

Sun position at the 10:30 local-solar-time overpass, clear-sky shortwave on sloping
terrain, daily net radiation and Priestley-Taylor potential evaporation (FAO-56 style),
and the overpass surface temperature from a linearised surface energy balance:

    Rn* - G - LE = H + 4 eps sigma Ta^3 (Ts - Ta),    H = rho cp (Ts - Ta) / ra_eff

where Rn* is the isothermal net radiation, G the ground heat flux, LE the latent heat
from the water balance's evaporative fraction, and ``ra_eff = ra / (1 + 0.04 (Ts - Ta))``
an aerodynamic resistance reduced by unstable (free) convection; the quadratic in
``Ts - Ta`` is solved in closed form. Arrays are float32 of any equal shape.
"""

from __future__ import annotations

import math

import numpy as np

from ..accel import kernel, prange
from .jit import jit_pair

SIGMA = 5.670374e-8  # W m-2 K-4
SOLAR_CONSTANT = 1361.0  # W m-2
#: overpass hour angle (rad) at 10:30 local solar time
OVERPASS_HOUR_ANGLE = math.radians(-22.5)
#: albedo of open water, and the lake surface temperature offset from air (K)
WATER_ALBEDO = 0.07
LAKE_DT_K = -1.5


def declination(day_of_year: int) -> float:
    """Solar declination (rad), FAO-56 eq. 24."""
    return 0.409 * math.sin(2 * math.pi * day_of_year / 365.0 - 1.39)


def sun_position(day_of_year: int, sin_lat: np.ndarray, cos_lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The unit vector towards the sun at the overpass in local east/north/up components
    ``(east, north, up)``, from the sine and cosine of latitude; ``up`` is cos(zenith),
    kept >= 0.02."""
    dec = declination(day_of_year)
    w = OVERPASS_HOUR_ANGLE
    up = sin_lat * np.float32(math.sin(dec)) + cos_lat * np.float32(math.cos(dec) * math.cos(w))
    up = np.minimum(np.maximum(up, np.float32(0.02)), np.float32(1.0))
    east = np.full(up.shape, -math.cos(dec) * math.sin(w), dtype=np.float32)
    north = np.float32(math.sin(dec)) * cos_lat - np.float32(math.cos(dec) * math.cos(w)) * sin_lat
    return east.astype(np.float32), north.astype(np.float32), up.astype(np.float32)


def incidence(east: np.ndarray, north: np.ndarray, up: np.ndarray, dzdx: np.ndarray, dzdy: np.ndarray) -> np.ndarray:
    """cos of the sun's incidence angle on the terrain (0 when self-shaded): the sun vector
    dotted with the surface normal ``(-dz/dx, -dz/dy, 1) / norm``."""
    norm = np.sqrt(1.0 + dzdx * dzdx + dzdy * dzdy)
    ci = (-dzdx * east - dzdy * north + up) / norm
    return np.maximum(ci, 0.0).astype(np.float32)


def pressure_kpa(elev: np.ndarray) -> np.ndarray:
    """Air pressure (kPa) from elevation (m), FAO-56 eq. 7."""
    return (101.3 * ((293.0 - 0.0065 * np.maximum(elev, -400.0)) / 293.0) ** 5.26).astype(np.float32)


def overpass_shortwave(cosz: np.ndarray, cos_inc: np.ndarray, pressure: np.ndarray, sky_view: np.ndarray,
                       cloudy: np.ndarray, cloud_thickness: np.ndarray, day_of_year: int) -> np.ndarray:
    """Shortwave irradiance (W m-2) at the overpass: clear sky = direct beam on the slope
    (broadband transmittance 0.75 per air mass) + diffuse; under cloud a diffuse fraction
    0.15-0.45 of the clear-sky flat value depending on cloud thickness (0..1)."""
    e0 = 1.0 + 0.033 * math.cos(2 * math.pi * day_of_year / 365.0)
    top = SOLAR_CONSTANT * e0
    air_mass = (pressure / 101.3) / cosz
    direct = top * np.exp(np.float32(math.log(0.75)) * air_mass)
    diffuse = 0.12 * top * cosz * sky_view
    clear = direct * cos_inc + diffuse
    flat_clear = direct * cosz + 0.12 * top * cosz
    overcast = flat_clear * (0.45 - 0.30 * cloud_thickness)
    return np.where(cloudy, overcast, clear).astype(np.float32)


def daily_extraterrestrial_mj(day_of_year: int, sin_lat: np.ndarray, cos_lat: np.ndarray) -> np.ndarray:
    """Daily extraterrestrial radiation Ra (MJ m-2 day-1), FAO-56 eq. 21."""
    dr = 1 + 0.033 * math.cos(2 * math.pi * day_of_year / 365.0)
    dec = declination(day_of_year)
    ws = np.arccos(np.minimum(np.maximum(-(sin_lat / cos_lat) * np.float32(math.tan(dec)), -1.0), 1.0))
    ra = np.float32(24 * 60 / math.pi * 0.0820 * dr) * (
        ws * sin_lat * np.float32(math.sin(dec)) + cos_lat * np.float32(math.cos(dec)) * np.sin(ws))
    return ra.astype(np.float32)


def _extraterrestrial_lookup(day_of_year: int, lat: np.ndarray, step_deg: float = 0.05) -> np.ndarray:
    """:func:`daily_extraterrestrial_mj` interpolated from a table over the latitudes
    present (Ra is smooth in latitude; the table error is < 1e-4 MJ m-2)."""
    lo, hi = float(lat.min()), float(lat.max())
    knots = np.arange(lo - step_deg, hi + 2 * step_deg, step_deg)
    rad = np.radians(knots)
    table = daily_extraterrestrial_mj(day_of_year, np.sin(rad), np.cos(rad))
    return np.interp(lat, knots, table).astype(np.float32)


def sat_vapour_slope(t_k: np.ndarray) -> np.ndarray:
    """Slope of the saturation vapour pressure curve (kPa/K), FAO-56 eq. 13."""
    t = t_k - 273.15
    es = 0.6108 * np.exp(17.27 * t / (t + 237.3))
    return (4098.0 * es / (t + 237.3) ** 2).astype(np.float32)


def priestley_taylor_factor(t_k: np.ndarray, pressure: np.ndarray) -> np.ndarray:
    """alpha * Delta / (Delta + gamma) with alpha = 1.26."""
    delta = sat_vapour_slope(t_k)
    gamma = 0.000665 * pressure
    return (1.26 * delta / (delta + gamma)).astype(np.float32)


def daily_pet_mm(ra_mj: np.ndarray, elev: np.ndarray, daily_cloud: np.ndarray, albedo: np.ndarray,
                 t_mean_k: np.ndarray, pt_factor: np.ndarray, illumination: np.ndarray) -> np.ndarray:
    """Priestley-Taylor potential evaporation (mm/day) from daily net radiation: clear-sky
    Rso = (0.75 + 2e-5 z) Ra scaled by cloud (Rs = Rso (1 - 0.7 cloud)) and by the slope's
    share of sunshine; net longwave after FAO-56 eq. 39 with a dry-air emissivity term."""
    rso = (0.75 + 2e-5 * elev) * ra_mj
    rs = rso * (1.0 - 0.7 * daily_cloud) * illumination
    rnl = 4.903e-9 * t_mean_k**4 * 0.22 * (1.35 * (1.0 - 0.7 * daily_cloud) - 0.35)
    rn = (1.0 - albedo) * rs - rnl
    g = 0.0  # daily ground heat flux ~ 0
    return np.maximum(pt_factor * (rn - g) / np.float32(2.45), 0.0).astype(np.float32)


def surface_temperature(ta: np.ndarray, rs: np.ndarray, albedo: np.ndarray, evap_fraction: np.ndarray,
                        fv: np.ndarray, pressure: np.ndarray, pt_factor: np.ndarray, cloudy: np.ndarray,
                        wind_ms: float, emissivity_air_clear: float = 0.72) -> np.ndarray:
    """Overpass land-surface temperature (K) from the linearised energy balance.

    ``evap_fraction`` is actual / potential evaporation of the day (0..1) from the water
    balance; the latent heat is that share of the Priestley-Taylor equilibrium value of
    the available energy. ``fv`` sets the ground heat flux share and the roughness.
    """
    eps_a = np.where(cloudy, 0.95, emissivity_air_clear).astype(np.float32)
    ta4 = ta * ta * ta * ta
    rn_iso = (1.0 - albedo) * rs + (eps_a - 1.0) * SIGMA * ta4
    g = (0.05 + 0.30 * (1.0 - fv)) * np.maximum(rn_iso, 0.0)
    avail = rn_iso - g
    le = np.minimum(np.maximum(evap_fraction, 0.0), 1.0) * np.minimum(pt_factor, 1.0) * np.maximum(avail, 0.0)
    a_energy = avail - le
    rho_cp = pressure * 1000.0 / (287.05 * ta) * 1005.0
    z0m = 0.005 + 0.12 * fv
    ra = np.log(2.0 / z0m) * np.log(20.0 / z0m) / (0.41 * 0.41 * wind_ms)
    lin = rho_cp / ra + 4.0 * SIGMA * ta * ta * ta
    c = 0.04 * rho_cp / ra  # free-convection reduction of the resistance
    pos = a_energy > 0
    disc = np.sqrt(np.maximum(lin * lin + 4.0 * c * np.maximum(a_energy, 0.0), 0.0))
    dt_pos = (disc - lin) / (2.0 * c)
    dt_neg = a_energy / lin
    return (ta + np.where(pos, dt_pos, dt_neg)).astype(np.float32)


# ---------------------------------------------------------------------------------------
# fused per-pixel kernels (numba) with the numpy compositions above as the fallback
# ---------------------------------------------------------------------------------------


def _radiation_pet_np(doy, sin_lat, cos_lat, dzdx, dzdy, elev, pressure, daily_cloud, albedo, ta, ra):
    east, north, cosz = sun_position(doy, sin_lat, cos_lat)
    cos_inc = incidence(east, north, cosz, dzdx, dzdy)
    illum = np.clip(0.6 + 0.4 * cos_inc / cosz, 0.3, 1.6)
    t_mean = ta - np.float32(3.0)
    pet = daily_pet_mm(ra, elev, daily_cloud, albedo, t_mean, priestley_taylor_factor(t_mean, pressure), illum)
    return cosz, cos_inc, pet


def _radiation_pet_py(doy, sin_lat, cos_lat, dzdx, dzdy, elev, pressure, daily_cloud, albedo, ta, ra):  # pragma: no cover
    shape = sin_lat.shape
    sl_ = sin_lat.ravel()
    cl_ = cos_lat.ravel()
    gx = dzdx.ravel()
    gy = dzdy.ravel()
    z_ = elev.ravel()
    p_ = pressure.ravel()
    dc_ = daily_cloud.ravel()
    al_ = albedo.ravel()
    ta_ = ta.ravel()
    ra_ = ra.ravel()
    n = sl_.size
    cosz_out = np.empty(n, dtype=np.float32)
    ci_out = np.empty(n, dtype=np.float32)
    pet_out = np.empty(n, dtype=np.float32)
    dec = 0.409 * math.sin(2 * math.pi * doy / 365.0 - 1.39)
    sd = math.sin(dec)
    cd = math.cos(dec)
    w = -0.39269908169872414  # 10:30 local solar time
    cw = math.cos(w)
    east = -cd * math.sin(w)
    for i in prange(n):
        sl = float(sl_[i])
        cl = float(cl_[i])
        cosz = min(max(sl * sd + cl * cd * cw, 0.02), 1.0)
        north = sd * cl - cd * cw * sl
        ax = float(gx[i])
        ay = float(gy[i])
        ci = max((-ax * east - ay * north + cosz) / math.sqrt(1.0 + ax * ax + ay * ay), 0.0)
        illum = min(max(0.6 + 0.4 * ci / cosz, 0.3), 1.6)
        tm = float(ta_[i]) - 3.0
        t = tm - 273.15
        es = 0.6108 * math.exp(17.27 * t / (t + 237.3))
        delta = 4098.0 * es / ((t + 237.3) * (t + 237.3))
        ptf = 1.26 * delta / (delta + 0.000665 * float(p_[i]))
        dc = float(dc_[i])
        rs = (0.75 + 2e-5 * float(z_[i])) * float(ra_[i]) * (1.0 - 0.7 * dc) * illum
        tm2 = tm * tm
        rnl = 4.903e-9 * tm2 * tm2 * 0.22 * (1.35 * (1.0 - 0.7 * dc) - 0.35)
        rn = (1.0 - float(al_[i])) * rs - rnl
        cosz_out[i] = cosz
        ci_out[i] = ci
        pet_out[i] = max(ptf * rn / 2.45, 0.0)
    return cosz_out.reshape(shape), ci_out.reshape(shape), pet_out.reshape(shape)


def _overpass_lst_np(doy, cosz, cos_inc, pressure, sky_view, cloudy, thickness, albedo, evap_fraction, fv, ta,
                     wind_ms):
    rs = overpass_shortwave(cosz, cos_inc, pressure, sky_view, cloudy, thickness, doy)
    return surface_temperature(ta, rs, albedo, evap_fraction, fv, pressure, priestley_taylor_factor(ta, pressure),
                               cloudy, wind_ms)


def _overpass_lst_py(doy, cosz, cos_inc, pressure, sky_view, cloudy, thickness, albedo, evap_fraction, fv, ta,
                     wind_ms):  # pragma: no cover
    shape = cosz.shape
    cz_ = cosz.ravel()
    ci_ = cos_inc.ravel()
    p_ = pressure.ravel()
    sv_ = sky_view.ravel()
    cl_ = cloudy.ravel()
    th_ = thickness.ravel()
    al_ = albedo.ravel()
    ef_ = evap_fraction.ravel()
    fv_ = fv.ravel()
    ta_ = ta.ravel()
    n = cz_.size
    out = np.empty(n, dtype=np.float32)
    top = 1361.0 * (1.0 + 0.033 * math.cos(2 * math.pi * doy / 365.0))
    sigma = 5.670374e-8
    for i in prange(n):
        cz = float(cz_[i])
        p = float(p_[i])
        direct = top * math.exp(-0.2876820724517809 * (p / 101.3) / cz)  # 0.75 ** air mass
        if cl_[i]:
            rs = (direct * cz + 0.12 * top * cz) * (0.45 - 0.30 * float(th_[i]))
            eps_a = 0.95
        else:
            rs = direct * float(ci_[i]) + 0.12 * top * cz * float(sv_[i])
            eps_a = 0.72
        ta = float(ta_[i])
        t = ta - 273.15
        es = 0.6108 * math.exp(17.27 * t / (t + 237.3))
        delta = 4098.0 * es / ((t + 237.3) * (t + 237.3))
        ptf = 1.26 * delta / (delta + 0.000665 * p)
        f = float(fv_[i])
        rn_iso = (1.0 - float(al_[i])) * rs + (eps_a - 1.0) * sigma * ta * ta * ta * ta
        g = (0.05 + 0.30 * (1.0 - f)) * max(rn_iso, 0.0)
        avail = rn_iso - g
        le = min(max(float(ef_[i]), 0.0), 1.0) * min(ptf, 1.0) * max(avail, 0.0)
        a = avail - le
        rho_cp = p * 1000.0 / (287.05 * ta) * 1005.0
        z0m = 0.005 + 0.12 * f
        ra = math.log(2.0 / z0m) * math.log(20.0 / z0m) / (0.41 * 0.41 * wind_ms)
        lin = rho_cp / ra + 4.0 * sigma * ta * ta * ta
        if a > 0:
            c = 0.04 * rho_cp / ra
            dt = (math.sqrt(lin * lin + 4.0 * c * a) - lin) / (2.0 * c)
        else:
            dt = a / lin
        out[i] = ta + dt
    return out.reshape(shape)


_radiation_pet_pair = jit_pair(_radiation_pet_py)
_overpass_lst_pair = jit_pair(_overpass_lst_py)


def _radiation_pet_nb(doy, sin_lat, *args):
    return _radiation_pet_pair(sin_lat.size * 20, doy, sin_lat, *args)


def _overpass_lst_nb(doy, cosz, *args):
    return _overpass_lst_pair(cosz.size * 20, doy, cosz, *args)


_radiation_pet = kernel(_radiation_pet_nb if _radiation_pet_pair else None, _radiation_pet_np, "radiation_pet")
_overpass_lst = kernel(_overpass_lst_nb if _overpass_lst_pair else None, _overpass_lst_np, "overpass_lst")


def radiation_and_pet(day_of_year: int, lat: np.ndarray, sin_lat: np.ndarray, cos_lat: np.ndarray, dzdx: np.ndarray,
                      dzdy: np.ndarray, elev: np.ndarray, pressure: np.ndarray, daily_cloud: np.ndarray,
                      albedo: np.ndarray, ta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel: cos(sun zenith) at the overpass, cos of the incidence on the slope, and
    the day's potential evaporation (mm) with the slope's share of sunshine (latitude
    ``lat`` in degrees and its sine and cosine; the
    composition of :func:`sun_position`, :func:`incidence`, :func:`daily_extraterrestrial_mj`
    and :func:`daily_pet_mm`; daily mean air temperature ``ta - 3 K``; the slope gets
    ``0.6 + 0.4 cos(incidence)/cos(zenith)`` of the flat daily radiation, within 0.3-1.6)."""
    ra = _extraterrestrial_lookup(int(day_of_year), lat)
    args = [np.ascontiguousarray(a, dtype=np.float32)
            for a in (sin_lat, cos_lat, dzdx, dzdy, elev, pressure, daily_cloud, albedo, ta, ra)]
    return _radiation_pet(int(day_of_year), *args)


def overpass_lst(day_of_year: int, cosz: np.ndarray, cos_inc: np.ndarray, pressure: np.ndarray,
                 sky_view: np.ndarray, cloudy: np.ndarray, thickness: np.ndarray, albedo: np.ndarray,
                 evap_fraction: np.ndarray, fv: np.ndarray, ta: np.ndarray, wind_ms: float) -> np.ndarray:
    """Land-surface temperature (K) at the overpass: :func:`overpass_shortwave` then
    :func:`surface_temperature`."""
    f32 = [np.ascontiguousarray(a, dtype=np.float32) for a in (cosz, cos_inc, pressure, sky_view)]
    rest = [np.ascontiguousarray(a, dtype=np.float32) for a in (thickness, albedo, evap_fraction, fv, ta)]
    return _overpass_lst(int(day_of_year), *f32, np.ascontiguousarray(cloudy, dtype=np.bool_), *rest, float(wind_ms))
