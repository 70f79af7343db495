"""Parameters of a sample scene (:class:`SceneConfig`) and their validation."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import SsmError
from .places import PLACES

#: the coarse grids a scene can simulate its coarse product on
COARSE_GRIDS = ("ease2_36km", "geo_0.25deg")

#: generator version written to scene.json; bump when the same seed gives other numbers
GENERATOR_VERSION = "1.1"


class SceneError(SsmError):
    """A sample-scene parameter that makes no sense (the message says which and why)."""


@dataclass(frozen=True)
class SceneConfig:
    """Everything that defines a sample scene; the same config gives the same bytes.

    Sizes in km (the 1 km grid has ``width_km x height_km`` pixels); ``height_km`` 0 or
    None means square. ``days`` are written from ``start``; ``spinup_days`` are simulated
    before it (not written) so the soil water and vegetation start from a plausible state.
    The ``*_sd`` / ``*_bias`` values are the stated errors of the simulated sensors.
    """

    place: str = "tibet"
    width_km: float = 360
    height_km: float | None = None
    days: int = 92
    start: dt.date = dt.date(2019, 6, 1)
    cloudiness: float = 0.5
    n_stations: int = 30
    seed: int = 1
    spinup_days: int = 30
    #: override the place's centre (degrees)
    centre_lon: float | None = None
    centre_lat: float | None = None
    #: the coarse product's grid: ``"ease2_36km"`` (SMAP-like EASE-Grid 2.0, 36 km) or
    #: ``"geo_0.25deg"`` (AMSR2 LPRM / ESA CCI-like geographic 0.25 degree)
    coarse_grid: str = "ease2_36km"
    #: rows per processing block for large scenes (memory bound; 64 = a quarter of a
    #: GeoTIFF tile, so blocks complete tiles); small scenes are one block
    block_rows: int = 64
    # sensor errors ---------------------------------------------------------------------
    coarse_ssm_bias: float = 0.02
    coarse_ssm_noise_sd: float = 0.02
    #: a coarse cell needs at least this share of land pixels to have a retrieval
    coarse_min_land_fraction: float = 0.5
    station_noise_sd: float = 0.02
    station_offset_sd: float = 0.02
    #: probability that a station day is missing (plus occasional outages of several days)
    station_missing_fraction: float = 0.04
    lst_noise_sd_k: float = 0.7
    background_bias_k: float = -1.0
    background_bias_field_sd_k: float = 0.8
    background_noise_sd_k: float = 0.5
    background_smoothing_cells: float = 1.0
    albedo_noise_sd: float = 0.01
    ndvi_noise_sd: float = 0.01

    # ------------------------------------------------------------------------------
    @property
    def height(self) -> int:
        """Scene height in km (= pixels)."""
        return int(round(self.height_km)) if self.height_km else int(round(self.width_km))

    @property
    def width(self) -> int:
        return int(round(self.width_km))

    @property
    def lon(self) -> float:
        return float(PLACES[self.place].lon if self.centre_lon is None else self.centre_lon)

    @property
    def lat(self) -> float:
        return float(PLACES[self.place].lat if self.centre_lat is None else self.centre_lat)

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    @property
    def first_day(self) -> dt.date:
        """First simulated day (start of the spin-up)."""
        return self.start - dt.timedelta(days=self.spinup_days)

    def with_(self, **changes: Any) -> SceneConfig:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = self.start.isoformat()
        d["height_km"] = self.height
        d["width_km"] = self.width
        return d

    def validated(self) -> SceneConfig:
        """This config with normalised types; raises :class:`SceneError` on nonsense."""
        if not isinstance(self.place, str) or self.place.strip().lower() not in PLACES:
            raise SceneError(f"Unknown place {self.place!r}; choose one of: {', '.join(PLACES)}")
        place = self.place.strip().lower()

        def number(name: str, value: Any, lo: float | None = None, hi: float | None = None,
                   lo_open: bool = False) -> float:
            try:
                v = float(value)
            except (TypeError, ValueError):
                raise SceneError(f"{name} must be a number, got {value!r}") from None
            if not math.isfinite(v):
                raise SceneError(f"{name} must be finite, got {value!r}")
            if lo is not None and (v < lo or (lo_open and v <= lo)):
                raise SceneError(f"{name} must be {'>' if lo_open else '>='} {lo:g}, got {value!r}")
            if hi is not None and v > hi:
                raise SceneError(f"{name} must be <= {hi:g}, got {value!r}")
            return v

        def integer(name: str, value: Any, lo: int, hi: int | None = None) -> int:
            v = number(name, value, lo, hi)
            if v != int(v):
                raise SceneError(f"{name} must be a whole number, got {value!r}")
            return int(v)

        width = number("width_km", self.width_km, 0, 20000, lo_open=True)
        if round(width) < 1:
            raise SceneError(f"width_km must be at least 1 km (one pixel), got {self.width_km!r}")
        height = self.height_km
        if height is not None:
            height = number("height_km", height, 0, 20000)
            if height != 0 and round(height) < 1:
                raise SceneError(f"height_km must be at least 1 km (or 0 for a square scene), got {self.height_km!r}")
        days = integer("days", self.days, 1, 3660)
        start = self.start
        if isinstance(start, dt.datetime):
            start = start.date()
        elif isinstance(start, str):
            try:
                start = dt.date.fromisoformat(start[:10])
            except ValueError:
                raise SceneError(f"start must be a date (YYYY-MM-DD), got {self.start!r}") from None
        elif not isinstance(start, dt.date):
            raise SceneError(f"start must be a date, got {self.start!r}")
        cloudiness = number("cloudiness", self.cloudiness, 0.0, 1.0)
        n_stations = integer("n_stations", self.n_stations, 0, 100000)
        seed = integer("seed", self.seed, 0, 2**31 - 1)
        spinup = integer("spinup_days", self.spinup_days, 0, 3660)
        lon = self.centre_lon if self.centre_lon is None else number("centre_lon", self.centre_lon, -180, 180)
        lat = self.centre_lat if self.centre_lat is None else number("centre_lat", self.centre_lat, -80, 80)
        block_rows = integer("block_rows", self.block_rows, 8)
        if self.coarse_grid not in COARSE_GRIDS:
            raise SceneError(f"Unknown coarse grid {self.coarse_grid!r}; choose one of: {', '.join(COARSE_GRIDS)}")
        errs = {}
        for f in fields(self):
            if f.name.endswith(("_sd", "_sd_k", "_fraction", "_cells")) and f.name != "station_missing_fraction":
                errs[f.name] = number(f.name, getattr(self, f.name), 0.0)
        number("station_missing_fraction", self.station_missing_fraction, 0.0, 0.9)
        number("coarse_min_land_fraction", self.coarse_min_land_fraction, 0.0, 1.0)
        for name in ("coarse_ssm_bias", "background_bias_k"):
            number(name, getattr(self, name))
        half_h = (height or width) / 2.0 / 111.0
        centre_lat = PLACES[place].lat if lat is None else lat
        if abs(centre_lat) + half_h > 84:
            raise SceneError("The scene reaches beyond 84 degrees latitude, outside EASE-Grid 2.0 global; make it smaller")
        return replace(
            self, place=place, width_km=width, height_km=height, days=days, start=start, cloudiness=cloudiness,
            n_stations=n_stations, seed=seed, spinup_days=spinup, centre_lon=lon, centre_lat=lat, block_rows=block_rows,
        )
