"""Validation of soil moisture products against in-situ stations (no QGIS).

Readers (:mod:`.stations`), point extraction from daily raster series (:mod:`.extract`),
metrics with pytesmo's names and definitions (:mod:`.metrics`), matching and the
clear-sky/cloudy split (:mod:`.matching`), product comparison (:mod:`.compare`), the
whole run (:mod:`.validate`), report and station layer (:mod:`.report`), and netCDF
time-series cells to daily rasters (:mod:`.timeseries`).
"""

from .compare import Comparison, compare_products
from .extract import PointSample, sample_series
from .matching import sky_condition
from .metrics import (
    bias,
    bias_ci,
    metrics_table,
    pairwise_metrics,
    pearson_r,
    pearson_r_ci,
    pearson_r_p,
    rmsd,
    ubrmsd,
    ubrmsd_ci,
    with_analytical_ci,
)
from .stations import StationError, StationSet, read_ismn, read_station_csv, read_stations
from .validate import ValidationError, ValidationResult, validate_stations, write_metrics_csv

__all__ = [
    "Comparison",
    "PointSample",
    "StationError",
    "StationSet",
    "ValidationError",
    "ValidationResult",
    "bias",
    "bias_ci",
    "compare_products",
    "metrics_table",
    "pairwise_metrics",
    "pearson_r",
    "pearson_r_ci",
    "pearson_r_p",
    "read_ismn",
    "read_station_csv",
    "read_stations",
    "rmsd",
    "sample_series",
    "sky_condition",
    "ubrmsd",
    "ubrmsd_ci",
    "validate_stations",
    "with_analytical_ci",
    "write_metrics_csv",
]
