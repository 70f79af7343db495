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
    """cos(zenith), sin(zenith) and azimuth (rad from north, clockwise) at the overpass,
    from the sine and cosine of latitude."""
    dec = declination(day_of_year)
    w = OVERPASS_HOUR_ANGLE
    cosz = sin_lat * np.float32(math.sin(dec)) + cos_lat * np.float32(math.cos(dec) * math.cos(w))
    cosz = np.minimum(np.maximum(cosz, np.float32(0.02)), np.float32(1.0))
    sinz = np.sqrt(1.0 - cosz * cosz)
    # azimuth from north: east and north components of the direction to the sun
    east = np.float32(-math.cos(dec) * math.sin(w))
    north = np.float32(math.sin(dec)) * cos_lat - np.float32(math.cos(dec) * math.cos(w)) * sin_lat
    az = np.arctan2(east, north)
    return cosz.astype(np.float32), sinz.astype(np.float32), az.astype(np.float32)


def incidence(cosz: np.ndarray, sinz: np.ndarray, az: np.ndarray, dzdx: np.ndarray, dzdy: np.ndarray) -> np.ndarray:
    """cos of the sun's incidence angle on the terrain (0 when self-shaded)."""
    norm = np.sqrt(1.0 + dzdx * dzdx + dzdy * dzdy)
    ci = (-dzdx * sinz * np.sin(az) - dzdy * sinz * np.cos(az) + cosz) / norm
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
    direct = top * 0.75**air_mass
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
