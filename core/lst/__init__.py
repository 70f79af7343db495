"""All-weather 1 km land surface temperature: filling the cloud gaps of clear-sky LST.

Methods (see :class:`GapfillOptions`): ``anomaly`` (default, background + anomaly),
``temporal``, ``spatial`` and ``background``. Entry points: :func:`gapfill_series`
(folders of daily rasters) and :func:`gapfill_stack` (arrays in memory).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> submodule. Loaded on first use: a downscaling run that only needs
#: :mod:`.modis` (to recognise MOD11A1 files) does not import the gap filler's compiled
#: kernels (about 0.5 s of loading in a fresh process).
_EXPORTS = {
    "AnomalyFiller": "anomaly",
    "BackgroundModel": "background",
    "learn_background_model": "background",
    "BlockFootprint": "footprint",
    "GridFootprint": "footprint",
    "GapfillSummary": "gapfill",
    "gapfill_series": "gapfill",
    "gapfill_stack": "gapfill",
    "make_filler": "gapfill",
    "run_window": "gapfill",
    "FLAG_FILLED": "methods",
    "FLAG_LEGEND": "methods",
    "FLAG_NONE": "methods",
    "FLAG_OBSERVED": "methods",
    "BackgroundFiller": "methods",
    "DayData": "methods",
    "SpatialFiller": "methods",
    "StaticLayers": "methods",
    "TemporalFiller": "methods",
    "assemble": "methods",
    "fill_spatial": "methods",
    "qc_keep": "modis",
    "read_mod11a1": "modis",
    "METHOD_TITLES": "options",
    "METHODS": "options",
    "GapfillOptions": "options",
}


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


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
