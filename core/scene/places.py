"""Places of the sample scene: location, terrain and a simple summer climate.

Each :class:`Place` holds what the generator needs to make a plausible world there
(meant for the warm season: there is no snow and no frozen soil):
terrain (a real DEM file shipped in ``data/`` or fractal parameters), air temperature at
the 10:30 overpass, rain climate (storm-driven daily rain with a monsoon season), soil
texture and vegetation. Numbers are rough climatological values, not fitted to anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Place:
    """Location and climate of a sample-scene place (units in the field names)."""

    name: str
    description: str
    lon: float
    lat: float
    #: real DEM in ``core/scene/data`` (None: fractal terrain everywhere)
    dem_file: str | None
    #: fractal terrain: mean elevation (m), relief standard deviation (m), wavelength of the
    #: largest relief (km), large-scale trend (m per km towards east and north)
    elev_mean_m: float
    elev_relief_m: float
    elev_scale_km: float
    elev_trend_east_m_per_km: float = 0.0
    elev_trend_north_m_per_km: float = 0.0
    #: share of the land area in lakes for fractal terrain (0 = none)
    lake_fraction: float = 0.0
    #: air temperature at the overpass at ``elev_mean_m`` on the warmest day (K), how much
    #: colder the coldest day is (K), the warmest day of year, and the lapse rate (K/km)
    t_air_k: float = 290.0
    t_season_amp_k: float = 8.0
    t_peak_doy: int = 200
    lapse_k_per_km: float = 6.5
    #: temperature change per degree of latitude northwards (K/deg), for large scenes
    t_lat_gradient_k_per_deg: float = -0.4
    #: mean daily rain at the height of the rainy season (mm/day), the share of it in
    #: the dry season, the centre (day of year) and half-width (days) of the rainy season
    rain_peak_mm_day: float = 4.0
    rain_offseason_fraction: float = 0.2
    rain_peak_doy: int = 205
    rain_season_halfwidth_days: float = 45.0
    #: relative rain change per 1000 km towards east and north (for large scenes)
    rain_trend_east_per_1000km: float = 0.0
    rain_trend_north_per_1000km: float = 0.0
    #: direction storms come from (deg, meteorological: 270 = from the west) and speed (km/h)
    storm_from_deg: float = 250.0
    storm_speed_kmh: float = 30.0
    #: mean sand fraction of the soil (0..1)
    sand_mean: float = 0.5
    #: climatological peak NDVI at the mean elevation, its change per km of elevation above
    #: it, green-up and senescence days of year
    ndvi_peak: float = 0.6
    ndvi_per_km: float = -0.15
    greenup_doy: int = 130
    senescence_doy: int = 270
    #: synoptic wind speed at 2 m (m/s), used for the aerodynamic resistance
    wind_ms: float = 3.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PLACES: dict[str, Place] = {
    p.name: p
    for p in (
        Place(
            name="tibet",
            description="Southern Tibetan Plateau around Lhasa and Nam Co (real SRTM30 terrain), semi-arid alpine "
            "steppe with a summer monsoon",
            lon=89.5,
            lat=29.8,
            dem_file="srtm30_tibet.tif",
            elev_mean_m=4600.0,
            elev_relief_m=500.0,
            elev_scale_km=120.0,
            t_air_k=284.5,
            t_season_amp_k=20.0,
            t_peak_doy=200,
            lapse_k_per_km=6.5,
            rain_peak_mm_day=4.5,
            rain_offseason_fraction=0.15,
            rain_peak_doy=215,
            rain_season_halfwidth_days=40.0,
            storm_from_deg=230.0,
            storm_speed_kmh=25.0,
            sand_mean=0.55,
            ndvi_peak=0.45,
            ndvi_per_km=-0.2,
            greenup_doy=150,
            senescence_doy=265,
            wind_ms=3.5,
        ),
        Place(
            name="loess",
            description="Loess Plateau (fractal terrain), semi-arid, dissected hills, summer storms",
            lon=108.0,
            lat=36.0,
            dem_file=None,
            elev_mean_m=1300.0,
            elev_relief_m=220.0,
            elev_scale_km=80.0,
            lake_fraction=0.0,
            t_air_k=298.0,
            t_season_amp_k=26.0,
            t_peak_doy=200,
            rain_peak_mm_day=3.5,
            rain_offseason_fraction=0.15,
            rain_peak_doy=215,
            rain_season_halfwidth_days=35.0,
            storm_from_deg=240.0,
            storm_speed_kmh=30.0,
            sand_mean=0.35,
            ndvi_peak=0.55,
            ndvi_per_km=-0.1,
            greenup_doy=120,
            senescence_doy=280,
            wind_ms=2.5,
        ),
        Place(
            name="northeast",
            description="Songnen/Sanjiang plain of Northeast China (fractal terrain), humid, cropland and "
            "wetlands with a few lakes",
            lon=126.0,
            lat=46.0,
            dem_file=None,
            elev_mean_m=180.0,
            elev_relief_m=40.0,
            elev_scale_km=100.0,
            lake_fraction=0.01,
            t_air_k=297.0,
            t_season_amp_k=40.0,
            t_peak_doy=200,
            rain_peak_mm_day=5.0,
            rain_offseason_fraction=0.1,
            rain_peak_doy=205,
            rain_season_halfwidth_days=30.0,
            storm_from_deg=250.0,
            storm_speed_kmh=35.0,
            sand_mean=0.3,
            ndvi_peak=0.8,
            ndvi_per_km=-0.1,
            greenup_doy=135,
            senescence_doy=265,
            wind_ms=3.5,
        ),
        Place(
            name="south",
            description="Hills of Hunan, South China (fractal terrain), humid subtropical, pre-monsoon and "
            "monsoon rain",
            lon=113.0,
            lat=26.0,
            dem_file=None,
            elev_mean_m=350.0,
            elev_relief_m=180.0,
            elev_scale_km=60.0,
            lake_fraction=0.005,
            t_air_k=303.0,
            t_season_amp_k=16.0,
            t_peak_doy=205,
            rain_peak_mm_day=8.0,
            rain_offseason_fraction=0.35,
            rain_peak_doy=165,
            rain_season_halfwidth_days=50.0,
            storm_from_deg=220.0,
            storm_speed_kmh=30.0,
            sand_mean=0.3,
            ndvi_peak=0.8,
            ndvi_per_km=-0.1,
            greenup_doy=60,
            senescence_doy=330,
            wind_ms=2.0,
        ),
        Place(
            name="china",
            description="China-sized fractal world centred at 35N 104E: high plateau in the south-west, plains in "
            "the east, wet south-east and dry north-west (for the China-sized benchmark day)",
            lon=104.0,
            lat=35.0,
            dem_file=None,
            elev_mean_m=1800.0,
            elev_relief_m=450.0,
            elev_scale_km=400.0,
            elev_trend_east_m_per_km=-0.9,
            elev_trend_north_m_per_km=-0.4,
            lake_fraction=0.004,
            t_air_k=298.0,
            t_season_amp_k=28.0,
            t_peak_doy=200,
            lapse_k_per_km=6.0,
            t_lat_gradient_k_per_deg=-0.5,
            rain_peak_mm_day=4.0,
            rain_offseason_fraction=0.25,
            rain_peak_doy=200,
            rain_season_halfwidth_days=45.0,
            rain_trend_east_per_1000km=0.45,
            rain_trend_north_per_1000km=-0.35,
            storm_from_deg=240.0,
            storm_speed_kmh=35.0,
            sand_mean=0.45,
            ndvi_peak=0.6,
            ndvi_per_km=-0.08,
            greenup_doy=120,
            senescence_doy=285,
            wind_ms=3.0,
        ),
    )
}
