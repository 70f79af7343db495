"""Parameters of a downscaling run (one frozen dataclass: the Processing algorithm, the
runner, the tests and every worker pass this one object)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from ..argcheck import choice, number
from ..errors import SsmError
from .methods import METHODS

#: residual corrections (see :mod:`.run`); ``interp`` is the former name of ``coherent``
RESIDUAL_MODES = ("filter", "coherent", "smooth", "cell", "none")
RESIDUAL_ALIASES = {"interp": "coherent"}
KERNELS = ("gaussian", "bisquare")
#: default cap on the days behind the run-wide statistics (anomaly gains, residual covariance)
STAT_DAYS = 366


@dataclass(frozen=True)
class DownscaleOptions:
    """How to downscale a daily coarse SSM series (every option of :func:`.run.downscale_series`).

    Attributes
    ----------
    method : "gwr" (default), "forest", "dispatch", "bilinear" or "nearest".
    kernel : GWR kernel, "gaussian" or "bisquare".
    bandwidth_km : GWR bandwidth (km); None or 0 = chosen by AICc.
    pool_days : the coarse data of +/- this many days are pooled into each day's fit.
    seam_days : seams borrow a cell's value or residual from up to this many days away.
    n_trees, seed, n_jobs : random forest trees, seed and threads.
    residual : residual correction (:data:`RESIDUAL_MODES`); None = the method's default.
    anomaly_gain : within-cell anomaly gain in 0..2, or "auto" (estimated one scale up).
    anomaly_days : within-cell anomalies are averaged over +/- this many days.
    noise_sd : coarse retrieval error (m3/m3) of the ``filter`` correction; None = estimated.
    ssm_range : physical range (m3/m3) of the output.
    ndvi_max_age, albedo_max_age : days a composite serves after its date.
    block_pixels : pixels per row block of the 1 km work (memory).
    ssm_percent : the coarse SSM is in percent (read as m3/m3).
    min_fit_coverage : share of a coarse cell's land that must have every predictor for the
        cell to be learnt from.
    stat_days : the run-wide statistics (anomaly gains, the residuals' space-time
        covariance, each pixel's persistent within-cell anomaly) are estimated from at most
        this many days, in blocks of consecutive days spread evenly over the run (every day
        of a shorter run). The gains and the covariance describe the method and the
        product's error structure, the persistent anomaly the soil, terrain and vegetation
        pattern: none of them is about a given day; a year of days samples every season and
        already gives thousands of cell pairs and hundreds of days per pixel, so a longer run
        only narrows their sampling error, while its memory and the driver's share of the
        work would grow with its length.
    """

    method: str = "gwr"
    kernel: str = "gaussian"
    bandwidth_km: float | None = None
    pool_days: int = 0
    seam_days: int = 7
    n_trees: int = 100
    seed: int = 0
    n_jobs: int = 1
    residual: str | None = None
    anomaly_gain: float | str = "auto"
    anomaly_days: int = 1
    noise_sd: float | None = None
    ssm_range: tuple[float, float] = (0.01, 0.6)
    ndvi_max_age: int = 16
    albedo_max_age: int = 8
    block_pixels: int = 1_000_000
    ssm_percent: bool = False
    min_fit_coverage: float = 0.5
    stat_days: int = STAT_DAYS

    def __post_init__(self) -> None:
        choice(self.method, "method", tuple(METHODS))
        choice(self.kernel, "kernel", KERNELS)
        if self.residual is not None:
            choice(self.residual, "residual", RESIDUAL_MODES + tuple(RESIDUAL_ALIASES))
            object.__setattr__(self, "residual", RESIDUAL_ALIASES.get(self.residual, self.residual))
        if self.bandwidth_km is not None:
            bw = number(self.bandwidth_km, "bandwidth_km", 0.0, hint=" (km; 0 or None = choose by AICc)")
            object.__setattr__(self, "bandwidth_km", float(bw) if bw else None)
        for k, lo, hi in (("pool_days", 0, 60), ("seam_days", 0, 366), ("n_trees", 1, 100_000), ("seed", 0, None),
                          ("n_jobs", -1, 1024), ("anomaly_days", 0, 60), ("ndvi_max_age", 0, 366),
                          ("albedo_max_age", 0, 366), ("block_pixels", 1, None), ("stat_days", 1, None)):
            object.__setattr__(self, k, number(getattr(self, k), k, lo, hi, integer=True))
        if self.noise_sd is not None:
            object.__setattr__(self, "noise_sd", float(number(self.noise_sd, "noise_sd", 0.0, 0.5,
                                                              hint=" (m3/m3; None = estimate from the data)")))
        g = self.anomaly_gain
        if g != "auto":
            if isinstance(g, bool) or not isinstance(g, (int, float)):
                raise SsmError(f"The anomaly gain must be 'auto' or a number in 0..2, got {g!r}")
            object.__setattr__(self, "anomaly_gain", float(number(g, "anomaly_gain", 0.0, 2.0, hint=" (or 'auto')")))
        try:
            lo, hi = self.ssm_range
        except (TypeError, ValueError):
            raise SsmError(f"ssm_range must be (min, max) in m3/m3, got {self.ssm_range!r}") from None
        lo, hi = number(lo, "ssm_range[0]", 0.0, 1.0), number(hi, "ssm_range[1]", 0.0, 1.0)
        if not lo < hi:
            raise SsmError(f"ssm_range must have min < max, got {self.ssm_range!r} (the physical range of soil "
                           "moisture, m3/m3)")
        object.__setattr__(self, "ssm_range", (float(lo), float(hi)))
        cov = number(self.min_fit_coverage, "min_fit_coverage", 0.0, 1.0)
        object.__setattr__(self, "min_fit_coverage", float(cov))
        if not isinstance(self.ssm_percent, bool):
            raise SsmError(f"ssm_percent must be True or False, got {self.ssm_percent!r}")

    @property
    def bandwidth_m(self) -> float | None:
        """The GWR bandwidth in metres (None = AICc search)."""
        return self.bandwidth_km * 1000.0 if self.bandwidth_km else None

    def estimator_params(self) -> dict[str, Any]:
        """Keyword arguments of :func:`.methods.make_downscaler` (each method takes the ones it knows)."""
        return {"kernel": self.kernel, "bandwidth": self.bandwidth_m, "n_estimators": self.n_trees,
                "random_state": self.seed, "n_jobs": self.n_jobs}

    def replace(self, **changes: Any) -> DownscaleOptions:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def options_from(options: DownscaleOptions | None, kwargs: dict[str, Any]) -> DownscaleOptions:
    """``options``, or :class:`DownscaleOptions` built from keyword arguments (not both)."""
    unknown = [k for k in kwargs if k not in DownscaleOptions.names()]
    if unknown:
        raise SsmError(f"Unknown downscaling option(s): {', '.join(unknown)}")
    if options is not None:
        if not isinstance(options, DownscaleOptions):
            raise SsmError(f"options must be a DownscaleOptions, got {type(options).__name__}")
        if kwargs:
            raise SsmError(f"Give either options= or keyword options, not both ({', '.join(kwargs)})")
        return options
    return DownscaleOptions(**kwargs)


__all__ = ["RESIDUAL_ALIASES", "RESIDUAL_MODES", "STAT_DAYS", "DownscaleOptions", "options_from"]
