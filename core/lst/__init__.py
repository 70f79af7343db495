"""All-weather 1 km land surface temperature: filling the cloud gaps of clear-sky LST.

Methods (see :class:`GapfillOptions`): ``anomaly`` (default, background + anomaly),
``temporal``, ``spatial`` and ``background``. Entry points: :func:`gapfill_series`
(folders of daily rasters) and :func:`gapfill_stack` (arrays in memory).
"""

from .anomaly import AnomalyFiller
from .background import BackgroundModel, learn_background_model
from .footprint import BlockFootprint, GridFootprint
from .gapfill import GapfillSummary, gapfill_series, gapfill_stack, make_filler, run_window
from .methods import (
    FLAG_FILLED,
    FLAG_LEGEND,
    FLAG_NONE,
    FLAG_OBSERVED,
    BackgroundFiller,
    DayData,
    SpatialFiller,
    StaticLayers,
    TemporalFiller,
    assemble,
    fill_spatial,
)
from .modis import qc_keep, read_mod11a1
from .options import METHOD_TITLES, METHODS, GapfillOptions

__all__ = [
    "FLAG_FILLED",
    "FLAG_LEGEND",
    "FLAG_NONE",
    "FLAG_OBSERVED",
    "METHODS",
    "METHOD_TITLES",
    "AnomalyFiller",
    "BackgroundFiller",
    "BackgroundModel",
    "BlockFootprint",
    "DayData",
    "GapfillOptions",
    "GapfillSummary",
    "GridFootprint",
    "SpatialFiller",
    "StaticLayers",
    "TemporalFiller",
    "assemble",
    "fill_spatial",
    "gapfill_series",
    "gapfill_stack",
    "learn_background_model",
    "make_filler",
    "qc_keep",
    "read_mod11a1",
    "run_window",
]
