"""Daily weather of the sample scene: moving rain storms, clouds at the overpass, air
temperature.

Rain comes from storms: a Poisson number per day (scaled by area, season and a synoptic
"activity" index that persists for a few days), each a Gaussian rain cell of radius
10-60 km moving along a straight track. The daily depth at a point is the closed-form
time integral of the moving cell (an erf along the track), then modulated by upslope
flow (orographic enhancement, lee-side drying) and a lognormal fractal texture.

Clouds at the 10:30 overpass follow the storms: a broad cloud shield around each track
plus fractal texture, thresholded so that the day's cover equals a target that tracks the
scene's ``cloudiness`` (more cover on active days). Air temperature: seasonal cycle,
lapse rate, a slow synoptic anomaly field, cooler under cloud.

All random draws come from streams keyed by (seed, purpose, calendar date), so a day's
weather does not depend on the scene's start date or length.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np

from ..accel import kernel, prange
from .jit import jit_pair
from .noise import fbm_grid, from_lattice, lattice_for, octaves_for, stable_seed
from .places import Place

#: storm cell radius range (km), log-uniform
STORM_RADIUS_KM = (10.0, 60.0)
#: storm duration range (h), uniform
STORM_HOURS = (2.0, 10.0)
#: mean peak rain rate (mm/h) of a storm cell (gamma distribution, shape 1.5)
STORM_PEAK_MM_H = 2.5
#: the cloud shield of a storm is this much wider than its rain cell (radius ratio, + km)
CLOUD_WIDEN = (2.0, 15.0)
#: margin (km) around the domain where storms may start
STORM_MARGIN_KM = 150.0
#: persistence (lag-1 correlation) of the daily activity index
ACTIVITY_PHI = 0.6
#: lattice spacings (km) on which the smooth daily fields are evaluated
STORM_STEP_KM = 3.0
CLOUD_STEP_KM = 6.0
TEXTURE_STEP_KM = 2.0
#: standard deviation of the log of the rain texture (lognormal, mean 1)
RAIN_TEXTURE_SIGMA = 0.6


def rng_for(seed: int, *tags: object) -> np.random.Generator:
    """An independent random stream for (seed, tags...)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0x7FFFFFFF, stable_seed(seed, *tags)]))


def doy(day: dt.date) -> int:
    return day.timetuple().tm_yday


def seasonal_rain_factor(place: Place, day_of_year: float) -> float:
    """Share of the peak-season daily rain expected on a day of year (0..1)."""
    d = (day_of_year - place.rain_peak_doy + 182.5) % 365.0 - 182.5
    off = place.rain_offseason_fraction
    return off + (1.0 - off) * math.exp(-((d / place.rain_season_halfwidth_days) ** 2))


def activity(day: dt.date, seed: int, n_lags: int = 18) -> float:
    """Synoptic activity index of a day: a stationary AR(1) series (unit variance,
    lag-1 correlation :data:`ACTIVITY_PHI`) built from daily innovations."""
    total = 0.0
    for k in range(n_lags):
        e = rng_for(seed, "activity", (day - dt.timedelta(days=k)).toordinal()).standard_normal()
        total += ACTIVITY_PHI**k * e
    return math.sqrt(1.0 - ACTIVITY_PHI**2) * total


def mean_storm_volume() -> float:
    """Expected rain volume of one storm (mm km2): E[peak] E[duration] 2 pi E[r^2]."""
    r0, r1 = STORM_RADIUS_KM
    er2 = (r1 * r1 - r0 * r0) / (2.0 * math.log(r1 / r0))
    return STORM_PEAK_MM_H * 0.5 * (STORM_HOURS[0] + STORM_HOURS[1]) * 2.0 * math.pi * er2


@dataclass
class DayWeather:
    """Domain-wide weather of one day."""

    day: dt.date
    activity: float
    #: storms, float64 ``(n, 6)``: x_start, y_start, x_end, y_end (km), radius (km),
    #: depth factor peak/speed (mm/km)
    storms: np.ndarray
    #: unit vector of the day's flow (towards), for orographic rain
    wind_u: float
    wind_v: float
    wind_ms: float
    #: target cloud cover of the day (0..1) and the cloud-field threshold giving it
    cloud_target: float
    cloud_threshold: float
    #: domain-wide air-temperature anomaly (K)
    t_anomaly: float
    seed: int
    #: smooth fields of the day over the whole domain (see :func:`make_day`)
    lattices: dict = field(default_factory=dict)

    def cloud_seed(self) -> int:
        return stable_seed(self.seed, "cloud-texture", self.day.toordinal())

    def rain_seed(self) -> int:
        return stable_seed(self.seed, "rain-texture", self.day.toordinal())


def make_storms(day: dt.date, place: Place, seed: int, bounds_km: tuple[float, float, float, float],
                act: float, flow_from_deg: float) -> np.ndarray:
    """The storms of a day over ``bounds_km = (xmin, ymin, xmax, ymax)`` plus a margin."""
    rng = rng_for(seed, "storms", day.toordinal())
    xmin, ymin, xmax, ymax = bounds_km
    xmin -= STORM_MARGIN_KM
    ymin -= STORM_MARGIN_KM
    xmax += STORM_MARGIN_KM
    ymax += STORM_MARGIN_KM
    area = (xmax - xmin) * (ymax - ymin)
    mean_depth = place.rain_peak_mm_day * seasonal_rain_factor(place, doy(day))
    lam = mean_depth * area / mean_storm_volume() * math.exp(0.7 * act - 0.245)
    n = int(rng.poisson(lam))
    r0, r1 = STORM_RADIUS_KM
    xs = rng.uniform(xmin, xmax, n)
    ys = rng.uniform(ymin, ymax, n)
    radius = np.exp(rng.uniform(math.log(r0), math.log(r1), n))
    hours = rng.uniform(STORM_HOURS[0], STORM_HOURS[1], n)
    peak = rng.gamma(1.5, STORM_PEAK_MM_H / 1.5, n)
    speed = place.storm_speed_kmh * np.exp(rng.normal(0.0, 0.3, n))
    heading = np.radians(flow_from_deg + 180.0 + rng.normal(0.0, 25.0, n))  # towards, from north
    length = speed * hours
    # start points are drawn for the track centre so storms cross the domain both ways
    dx = np.sin(heading) * length
    dy = np.cos(heading) * length
    storms = np.empty((n, 6), dtype=np.float64)
    storms[:, 0] = xs - dx / 2
    storms[:, 1] = ys - dy / 2
    storms[:, 2] = xs + dx / 2
    storms[:, 3] = ys + dy / 2
    storms[:, 4] = radius
    storms[:, 5] = peak / speed
    return storms


# ---------------------------------------------------------------------------------------
# storm fields: closed-form track integrals (numba + numpy)
# ---------------------------------------------------------------------------------------

_SQRT_HALF_PI = math.sqrt(math.pi / 2.0)


def _storm_grid_py(storms, x0, y0, dx, nrows, ncols, widen_a, widen_b, cloud):  # pragma: no cover - compiled
    out = np.zeros((nrows, ncols), dtype=np.float64)
    n = storms.shape[0]
    for r in prange(nrows):
        y = y0 - r * dx
        for s in range(n):
            xa = storms[s, 0]
            ya = storms[s, 1]
            xb = storms[s, 2]
            yb = storms[s, 3]
            rad = storms[s, 4]
            if cloud:
                rad = widen_a * rad + widen_b
            reach = 4.0 * rad
            if y < min(ya, yb) - reach or y > max(ya, yb) + reach:
                continue
            length = math.hypot(xb - xa, yb - ya)
            ux = (xb - xa) / length
            uy = (yb - ya) / length
            c_lo = int(math.floor((min(xa, xb) - reach - x0) / dx))
            c_hi = int(math.ceil((max(xa, xb) + reach - x0) / dx))
            if c_lo < 0:
                c_lo = 0
            if c_hi > ncols - 1:
                c_hi = ncols - 1
            k = 1.0 / (rad * math.sqrt(2.0))
            for c in range(c_lo, c_hi + 1):
                x = x0 + c * dx
                px = x - xa
                py = y - ya
                cross = px * uy - py * ux
                if cross > reach or cross < -reach:
                    continue
                along = px * ux + py * uy
                g = math.exp(-0.5 * (cross / rad) ** 2)
                a1 = (length - along) * k
                a2 = along * k
                if a1 > 4.0 and a2 > 4.0:  # far from both ends: erf = 1 to 1.5e-8
                    e = 2.0
                else:
                    e = math.erf(a1) + math.erf(a2)
                if cloud:
                    out[r, c] += 0.5 * g * e
                else:
                    out[r, c] += storms[s, 5] * rad * 1.2533141373155003 * g * e
    return out


def _storm_grid_np(storms, x0, y0, dx, nrows, ncols, widen_a, widen_b, cloud):
    from scipy.special import erf

    out = np.zeros((nrows, ncols), dtype=np.float64)
    ys_all = y0 - np.arange(nrows) * dx
    xs_all = x0 + np.arange(ncols) * dx
    for s in range(storms.shape[0]):
        xa, ya, xb, yb, rad, depth = storms[s]
        if cloud:
            rad = widen_a * rad + widen_b
        reach = 4.0 * rad
        rows = np.flatnonzero((ys_all >= min(ya, yb) - reach) & (ys_all <= max(ya, yb) + reach))
        c_lo = max(0, int(math.floor((min(xa, xb) - reach - x0) / dx)))
        c_hi = min(ncols - 1, int(math.ceil((max(xa, xb) + reach - x0) / dx)))
        if rows.size == 0 or c_hi < c_lo:
            continue
        length = math.hypot(xb - xa, yb - ya)
        ux, uy = (xb - xa) / length, (yb - ya) / length
        k = 1.0 / (rad * math.sqrt(2.0))
        px = xs_all[c_lo : c_hi + 1][None, :] - xa
        py = ys_all[rows][:, None] - ya
        along = px * ux + py * uy
        cross = px * uy - py * ux
        g = np.exp(-0.5 * (cross / rad) ** 2)
        a1 = (length - along) * k
        a2 = along * k
        e = np.where((a1 > 4.0) & (a2 > 4.0), 2.0, erf(a1) + erf(a2))
        val = 0.5 * g * e if cloud else depth * rad * _SQRT_HALF_PI * g * e
        val = np.where(np.abs(cross) > reach, 0.0, val)
        out[rows[0] : rows[-1] + 1, c_lo : c_hi + 1] += val
    return out


_storm_grid_pair = jit_pair(_storm_grid_py)


def _storm_grid_nb(storms, x0, y0, dx, nrows, ncols, widen_a, widen_b, cloud):
    work = nrows * ncols * max(storms.shape[0], 1) * 0.25  # storms touch part of the grid
    return _storm_grid_pair(work, storms, x0, y0, dx, nrows, ncols, widen_a, widen_b, cloud)


_storm_grid = kernel(_storm_grid_nb if _storm_grid_pair else None, _storm_grid_np, "storm_grid")


def storm_field(storms: np.ndarray, x0: float, y0: float, dx: float, nrows: int, ncols: int,
                cloud: bool = False) -> np.ndarray:
    """Daily rain depth (mm) of all storms at the grid pixels, or with ``cloud=True`` the
    summed track coverage of their (wider) cloud shields (0..n); float64 ``(nrows, ncols)``."""
    storms = np.ascontiguousarray(storms, dtype=np.float64).reshape(-1, 6)
    return _storm_grid(storms, float(x0), float(y0), float(dx), int(nrows), int(ncols),
                       CLOUD_WIDEN[0], CLOUD_WIDEN[1], bool(cloud))


# ---------------------------------------------------------------------------------------
# day set-up and per-block fields
# ---------------------------------------------------------------------------------------


@dataclass
class Lattice:
    """Values of a smooth field on a lattice of spacing ``step`` (km) with top-left node
    ``(x0, y0)``; blocks interpolate from it bilinearly."""

    values: np.ndarray
    x0: float
    y0: float
    step: float

    def at(self, x0: float, y0: float, dx: float, nrows: int, ncols: int) -> np.ndarray:
        return from_lattice(self.values, self.x0, self.y0, self.step, x0, y0, dx, nrows, ncols)


def _domain_lattice(bounds_km: tuple[float, float, float, float], step: float) -> tuple[float, float, int, int]:
    xmin, ymin, xmax, ymax = bounds_km
    ncols = int(round(xmax - xmin))
    nrows = int(round(ymax - ymin))
    return lattice_for(xmin + 0.5, ymax - 0.5, 1.0, nrows, ncols, step)


def _day_lattices(w: DayWeather, bounds_km: tuple[float, float, float, float]) -> dict[str, Lattice]:
    """The day's smooth fields over the whole domain, on a 2 km lattice:

    - ``rain``: storm rain (evaluated on a 3 km lattice) x lognormal fractal texture (mm);
    - ``cloud``: cloud shields of the storms (6 km lattice) + fractal texture;
    - ``t_field``: the slow synoptic temperature anomaly (unit sd), a blend of key fields
      three days apart.
    """
    out: dict[str, Lattice] = {}
    tx0, ty0, tr, tc = _domain_lattice(bounds_km, TEXTURE_STEP_KM)
    step = TEXTURE_STEP_KM
    lx0, ly0, lr, lc = _domain_lattice(bounds_km, STORM_STEP_KM)
    storms = storm_field(w.storms, lx0, ly0, STORM_STEP_KM, lr, lc)
    rain = from_lattice(storms, lx0, ly0, STORM_STEP_KM, tx0, ty0, step, tr, tc)
    tex = fbm_grid(tx0, ty0, step, tr, tc, 25.0, octaves_for(25.0, 4.0), 0.6, w.rain_seed())
    sigma = RAIN_TEXTURE_SIGMA
    rain *= np.exp(sigma * tex - 0.5 * sigma * sigma)
    out["rain"] = Lattice(rain, tx0, ty0, step)
    lx0, ly0, lr, lc = _domain_lattice(bounds_km, CLOUD_STEP_KM)
    shield = storm_field(w.storms, lx0, ly0, CLOUD_STEP_KM, lr, lc, cloud=True)
    shield = (2.5 * (1.0 - np.exp(-shield))).astype(np.float32)
    cloud = from_lattice(shield, lx0, ly0, CLOUD_STEP_KM, tx0, ty0, step, tr, tc)
    cloud += fbm_grid(tx0, ty0, step, tr, tc, 80.0, 5, 0.55, w.cloud_seed())
    out["cloud"] = Lattice(cloud, tx0, ty0, step)
    k, frac = divmod(w.day.toordinal(), 3)
    phase = 0.5 * math.pi * frac / 3.0
    lx0, ly0, lr, lc = _domain_lattice(bounds_km, 16.0)
    fa = fbm_grid(lx0, ly0, 16.0, lr, lc, 600.0, 3, 0.5, stable_seed(w.seed, "t-field", k))
    fb = fbm_grid(lx0, ly0, 16.0, lr, lc, 600.0, 3, 0.5, stable_seed(w.seed, "t-field", k + 1))
    out["t_field"] = Lattice((math.cos(phase) * fa + math.sin(phase) * fb).astype(np.float32), lx0, ly0, 16.0)
    return out


def cloud_field(w: DayWeather, x0: float, y0: float, dx: float, nrows: int, ncols: int) -> np.ndarray:
    """The continuous cloud field of a day (clouds where it exceeds the day's threshold):
    storm cloud shields plus fractal texture."""
    return w.lattices["cloud"].at(x0, y0, dx, nrows, ncols)


def make_day(day: dt.date, place: Place, seed: int, cloudiness: float,
             bounds_km: tuple[float, float, float, float]) -> DayWeather:
    """Storms, flow, target cloud cover and its threshold for a day over the domain
    ``bounds_km = (xmin, ymin, xmax, ymax)`` (pixel edges, km)."""
    act = activity(day, seed)
    rng = rng_for(seed, "day", day.toordinal())
    flow_from = place.storm_from_deg + rng.normal(0.0, 35.0)
    storms = make_storms(day, place, seed, bounds_km, act, flow_from)
    heading = math.radians(flow_from + 180.0)
    wind = place.wind_ms * math.exp(rng.normal(0.0, 0.3))
    if cloudiness <= 0.0:
        target = 0.0
    elif cloudiness >= 1.0:
        target = 1.0
    else:
        c = min(max(cloudiness, 1e-4), 1 - 1e-4)
        target = 1.0 / (1.0 + math.exp(-(math.log(c / (1 - c)) + 1.4 * act + rng.normal(0.0, 0.5))))
    w = DayWeather(day, act, storms, math.sin(heading), math.cos(heading), wind, target, 0.0,
                   -1.2 * act + rng.normal(0.0, 0.8), seed)
    w.lattices = _day_lattices(w, bounds_km)
    w.cloud_threshold = _threshold_for_cover(w, bounds_km, target)
    return w


def _threshold_for_cover(w: DayWeather, bounds_km: tuple[float, float, float, float], target: float) -> float:
    """The cloud-field value exceeded on ``target`` of the domain (over its lattice nodes)."""
    if target <= 0.0:
        return np.inf
    if target >= 1.0:
        return -np.inf
    return float(np.quantile(w.lattices["cloud"].values, 1.0 - target))


def rain_block(w: DayWeather, place: Place, x0: float, y0: float, nrows: int, ncols: int,
               dzdx_smooth: np.ndarray, dzdy_smooth: np.ndarray) -> np.ndarray:
    """Daily rain (mm) of a block: storms x orographic factor x lognormal texture x trend."""
    rain = w.lattices["rain"].at(x0, y0, 1.0, nrows, ncols)
    upslope = w.wind_u * dzdx_smooth + w.wind_v * dzdy_smooth  # m/m along the flow
    rain *= np.clip(1.0 + 8.0 * upslope, 0.3, 2.5)
    if place.rain_trend_east_per_1000km or place.rain_trend_north_per_1000km:
        rain *= np.exp(climate_wetness(place, x0, y0, nrows, ncols))
    return rain.astype(np.float32)


def climate_wetness(place: Place, x0: float, y0: float, nrows: int, ncols: int) -> np.ndarray:
    """log of the long-term rain factor across a large scene (0 where the place has no
    rain trend): the rain is ``exp`` of it times the storm rain, and soils and vegetation
    follow it (drier: sandier, sparser)."""
    if not (place.rain_trend_east_per_1000km or place.rain_trend_north_per_1000km):
        return np.zeros((nrows, ncols), dtype=np.float32)
    xs = x0 + np.arange(ncols, dtype=np.float32)
    ys = y0 - np.arange(nrows, dtype=np.float32)[:, None]
    w = place.rain_trend_east_per_1000km * xs / 1000.0 + place.rain_trend_north_per_1000km * ys / 1000.0
    return np.clip(w, math.log(0.1), math.log(4.0)).astype(np.float32)


def air_temperature(w: DayWeather, place: Place, x0: float, y0: float, nrows: int, ncols: int,
                    elev: np.ndarray, lat: np.ndarray, lat0: float, daily_cloud: np.ndarray) -> np.ndarray:
    """Air temperature at the 10:30 overpass (K): seasonal cycle at the place's mean
    elevation, lapse rate, latitude gradient, synoptic anomaly (domain-wide and a slow
    ~600 km field that changes over a few days), and cooling under cloud."""
    d = doy(w.day)
    season = place.t_air_k - place.t_season_amp_k * 0.5 * (1.0 - math.cos(2 * math.pi * (d - place.t_peak_doy) / 365.0))
    field = w.lattices["t_field"].at(x0, y0, 1.0, nrows, ncols)
    ta = (season + w.t_anomaly + 1.5 * field
          - place.lapse_k_per_km * (elev - place.elev_mean_m) / 1000.0
          + place.t_lat_gradient_k_per_deg * (lat - lat0)
          - 2.0 * daily_cloud)
    return ta.astype(np.float32)
