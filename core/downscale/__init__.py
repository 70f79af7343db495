"""Downscaling coarse soil moisture to 1 km (DESIGN.md section 4, "SSM downscaling").

Estimators in the scikit-learn style (:mod:`.base`): ``gwr`` (default), ``forest``,
``dispatch`` and the ``bilinear`` baseline; the scale-transfer anomaly gain
(:mod:`.scale`), residual correction (:mod:`.residual`), seam filling (:mod:`.seams`),
and the series driver :func:`downscale_series` (:mod:`.run`; :func:`downscale_arrays`
for in-memory arrays).
"""

from .base import CoarseData, Downscaler, FineBlock
from .bilinear import BilinearDownscaler
from .dispatch import DispatchDownscaler
from .forest import ForestDownscaler
from .gwr import GWRDownscaler, GWRFit, gwr_aicc, gwr_fit, select_bandwidth
from .methods import METHODS, make_downscaler
from .nearest import NearestDownscaler
from .options import DownscaleOptions
from .run import (
    FLAG_LEGEND,
    DayResult,
    DownscaleSummary,
    Engine,
    build_membership,
    downscale_arrays,
    downscale_series,
)
from .scale import anomaly_gain

__all__ = [
    "FLAG_LEGEND",
    "METHODS",
    "BilinearDownscaler",
    "CoarseData",
    "DayResult",
    "DispatchDownscaler",
    "DownscaleOptions",
    "DownscaleSummary",
    "Downscaler",
    "Engine",
    "FineBlock",
    "ForestDownscaler",
    "GWRDownscaler",
    "GWRFit",
    "NearestDownscaler",
    "anomaly_gain",
    "build_membership",
    "downscale_arrays",
    "downscale_series",
    "gwr_aicc",
    "gwr_fit",
    "make_downscaler",
    "select_bandwidth",
]
