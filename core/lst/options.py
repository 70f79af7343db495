"""Parameters of the LST gap filler (one frozen dataclass shared by every method)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import SsmError

log = logging.getLogger(__name__)

#: the gap-filling methods: default first
METHODS = ("anomaly", "temporal", "spatial", "background")

METHOD_TITLES = {
    "anomaly": "Background + anomaly (default)",
    "temporal": "Temporal linear interpolation per pixel",
    "spatial": "Spatial inverse-distance weighting",
    "background": "Background only (lapse-rate corrected)",
}


@dataclass(frozen=True)
class GapfillOptions:
    """How to fill the cloud gaps of a clear-sky LST series.

    Attributes
    ----------
    method : "anomaly" (background + anomaly), "temporal", "spatial" or "background".
    window : length in days of the moving window centred on each day (odd; ``anomaly``
        learns the persistent per-pixel anomaly from its clear days).
    max_gap : ``temporal``: the farthest a clear observation may be from the day being
        filled, in days, on each side; None = ``window // 2``.
    time_scale_days : ``anomaly``: Gaussian time weights of the window days (sigma, days;
        nearer days say more about today's surface); 0 = equal weights.
    regional_scale_km : ``anomaly``: bandwidth (Gaussian sigma) of the local fit of today's
        anomaly against the cloud fraction (background bias and cloudy-sky cooling).
    residual_scale_km : ``anomaly``: bandwidth of the spatial interpolation of today's
        remaining anomaly (damped like the persistent one under cloud); 0 = off.
    cloud_correction : ``anomaly``: learn the clear/cloudy temperature difference from the
        background (else cloudy pixels get the clear-sky anomaly).
    cloudy_anomaly_scale : ``anomaly``: factor on the clear-sky anomalies (persistent and
        today's) under cloud: 1 keeps the clear-sky contrasts; less damps them, as the
        weaker sunlight under cloud does (surface heating contrasts scale with absorbed
        radiation, which thick cloud cuts to roughly a third to a half).
    lapse_rate : clear-sky LST lapse rate (K per metre) applied to the elevation
        difference between a pixel and the background footprint; None = learned from the
        clear pixels (``default_lapse_rate`` when the data cannot tell).
    cloudy_lapse_rate : the lapse rate under cloud (K/m), where LST follows the air
        temperature (standard atmosphere -6.5 K/km); None = the same as ``lapse_rate``.
    background_smoothing : effective-resolution blur of the background (Gaussian sigma in
        background cells); None = learned from the data among 0-3 cells.
    prior_days : ``anomaly``: weight, in days, of the NDVI-based prior of the persistent
        anomaly (decides pixels with few or no clear days in the window).
    idw_radius_km, idw_power : ``spatial``: search radius and distance power.
    valid_range : filled values are clipped to this range (K).
    """

    method: str = "anomaly"
    window: int = 15
    max_gap: int | None = None
    time_scale_days: float = 3.0
    regional_scale_km: float = 50.0
    residual_scale_km: float = 10.0
    cloud_correction: bool = True
    cloudy_anomaly_scale: float = 0.5
    lapse_rate: float | None = None
    cloudy_lapse_rate: float | None = -0.0065
    default_lapse_rate: float = -0.0065
    background_smoothing: float | None = None
    prior_days: float = 1.0
    idw_radius_km: float = 50.0
    idw_power: float = 2.0
    valid_range: tuple[float, float] = (200.0, 350.0)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SsmError(f"Unknown gap-filling method {self.method!r}; choose one of {', '.join(METHODS)}")
        if int(self.window) < 1:
            raise SsmError(f"The window must be at least 1 day, got {self.window}")
        if self.max_gap is not None and int(self.max_gap) < 1:
            raise SsmError(f"The maximum gap must be at least 1 day, got {self.max_gap}")
        for name in ("time_scale_days", "residual_scale_km", "prior_days"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise SsmError(f"{name} must be a finite number >= 0, got {v}")
        for name in ("regional_scale_km", "idw_radius_km", "idw_power"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise SsmError(f"{name} must be a finite number > 0, got {v}")
        if not (0.0 <= self.cloudy_anomaly_scale <= 2.0):
            raise SsmError(f"cloudy_anomaly_scale must be between 0 and 2, got {self.cloudy_anomaly_scale}")
        for name in ("lapse_rate", "cloudy_lapse_rate"):
            v = getattr(self, name)
            if v is not None and not (-0.05 <= v <= 0.05):
                raise SsmError(f"{name} is in K per metre (e.g. -0.0065); {v} is implausible")
        if self.background_smoothing is not None and not (0 <= self.background_smoothing <= 20):
            raise SsmError(f"background_smoothing is in background cells (0-20), got {self.background_smoothing}")
        lo, hi = self.valid_range
        if not (lo < hi):
            raise SsmError(f"valid_range must be (low, high) with low < high, got {self.valid_range}")
        window = int(self.window)
        if window % 2 == 0:  # a window centred on the day has an odd length: say what is used
            log.warning("The window of %d days is even; a window centred on each day has an odd length, so %d days "
                        "(%d on each side) are used", window, window + 1, window // 2)
            window += 1
        object.__setattr__(self, "window", window)

    @property
    def half_window(self) -> int:
        """Days needed on each side of the day being filled."""
        if self.method == "anomaly":
            return self.window // 2
        if self.method == "temporal":
            return self.gap
        return 0

    @property
    def gap(self) -> int:
        return int(self.max_gap) if self.max_gap is not None else max(1, self.window // 2)

    @property
    def needs_background(self) -> bool:
        return self.method in ("anomaly", "background")

    def replace(self, **changes: Any) -> GapfillOptions:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
